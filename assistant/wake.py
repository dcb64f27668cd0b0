"""Two-pass wake word detection.

A tiny always-on first pass (microWakeWord, ~50 KB) scores every 30 ms. Only when it
fires does the larger verifier (openWakeWord) score the last few seconds of audio, kept
in a ring buffer; the candidate wakes the assistant only if the verifier agrees.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .audio import RATE_HZ, AudioChunk
from .config import WakeSettings
from .errors import ModelError
from .events import Event, Wake, WakeCandidate, WakeRejected


class FirstPass:
    """microWakeWord: cheap enough to run on every chunk."""

    def __init__(self, config_path: Path, threshold: float) -> None:
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

        self.model = MicroWakeWord.from_config(config_path)
        self.features = MicroWakeWordFeatures()
        self.threshold = threshold
        self.word = self.model.wake_word

    def reset(self) -> None:
        self.model.reset()
        self.features.reset()

    def score(self, chunk: AudioChunk) -> float:
        """The highest wake probability seen in this chunk."""
        best = 0.0
        for features in self.features.process_streaming(chunk.audio):
            probability = self.model.process_streaming_prob(features)
            if probability is not None:
                best = max(best, float(probability))
        return best


class Verifier:
    """openWakeWord, started on demand: primed with the recent window, then fed live audio."""

    def __init__(self, model_path: Path, threshold: float, threads: int) -> None:
        from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures
        from pyopen_wakeword.openwakeword import EMB_SHAPE, MEL_SHAPE

        self.model = OpenWakeWord.from_model(model_path)
        self.features = OpenWakeWordFeatures.from_builtin()
        self.threshold = threshold
        # pyopen-wakeword lets TFLite pick its thread count (all cores); rebuild with ours.
        model, features = self.model, self.features
        model.interpreter, model.input_tensor, model.output_tensor = _interpreter(
            model.lib, model.model, model.interpreter, threads)
        features.mel_interpreter, features.mel_input_tensor, features.mel_output_tensor = _interpreter(
            features.lib, features.mel_model, features.mel_interpreter, threads, MEL_SHAPE)
        features.emb_interpreter, features.emb_input_tensor, features.emb_output_tensor = _interpreter(
            features.lib, features.emb_model, features.emb_interpreter, threads, EMB_SHAPE)

    def start(self, window: np.ndarray) -> float:
        """Forget the last candidate and score a window of int16 audio; the best score."""
        self.features.reset()
        self.model.reset()
        # reset() queues 8 s of silence to score first; the window is already padded.
        self.features.new_audio_samples = 0
        return self.feed(window)

    def feed(self, audio: np.ndarray) -> float:
        """Score more audio of the same candidate; the best score in it."""
        best = 0.0
        for embeddings in self.features.process_streaming(audio.tobytes()):
            for probability in self.model.process_streaming(embeddings):
                best = max(best, float(probability))
        return best


def _interpreter(lib: Any, model: Any, old: Any, threads: int,
                 input_shape: tuple[int, ...] | None = None) -> tuple[Any, Any, Any]:
    """A TFLite interpreter for `model` with a set thread count, replacing `old`."""
    lib.TfLiteInterpreterOptionsCreate.argtypes = []
    lib.TfLiteInterpreterOptionsCreate.restype = ctypes.c_void_p
    lib.TfLiteInterpreterOptionsSetNumThreads.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.TfLiteInterpreterOptionsSetNumThreads.restype = None
    lib.TfLiteInterpreterOptionsDelete.argtypes = [ctypes.c_void_p]
    lib.TfLiteInterpreterOptionsDelete.restype = None
    options = lib.TfLiteInterpreterOptionsCreate()
    lib.TfLiteInterpreterOptionsSetNumThreads(options, ctypes.c_int32(threads))
    interpreter = lib.TfLiteInterpreterCreate(model, options)
    lib.TfLiteInterpreterOptionsDelete(options)
    if not interpreter:
        raise ModelError("TFLite could not create an interpreter for the verifier", code="corrupt_model")
    lib.TfLiteInterpreterDelete(old)
    if input_shape is not None:
        dims = (ctypes.c_int32 * len(input_shape))(*input_shape)
        lib.TfLiteInterpreterResizeInputTensor(interpreter, ctypes.c_int32(0), dims, ctypes.c_int32(len(input_shape)))
    lib.TfLiteInterpreterAllocateTensors(interpreter)
    return (interpreter, lib.TfLiteInterpreterGetInputTensor(interpreter, ctypes.c_int32(0)),
            lib.TfLiteInterpreterGetOutputTensor(interpreter, ctypes.c_int32(0)))


@dataclass(frozen=True)
class WakeUpdate:
    """What one chunk brought: events to report, and whether the assistant woke."""

    events: list[Event] = field(default_factory=list)
    woke: bool = False
    candidate_t: float | None = None
    """Input time when the first pass fired for this wake: about the end of the phrase."""
    verifier_ms: float | None = None
    """Wall time the verifier spent on this candidate, when it ran."""


_NOTHING = WakeUpdate()


@dataclass
class _Candidate:
    t: float
    first_pass: float
    deadline_s: float
    started_wall: float
    """perf_counter() when the verifier was asked."""
    jobs: list[Future] = field(default_factory=list)
    """The verifier's work on this candidate, in order; each gives (best score, ms spent)."""

    def verdict_so_far(self) -> tuple[float, float, bool]:
        """Best score and ms spent over the jobs done, and whether all are done."""
        done = [job.result() for job in self.jobs if job.done()]
        return max((best for best, _ in done), default=0.0), sum(ms for _, ms in done), len(done) == len(self.jobs)


class WakeDetector:
    """The first pass on every chunk; the verifier on each first-pass candidate.

    openWakeWord scores a phrase best a little after it ends, so a candidate stays open
    for `verifier_hold_s`, the verifier fed live, and is accepted as soon as it agrees.
    The verifier runs in its own thread: scoring the 2.5 s window takes ~0.1 s, more than
    a chunk lasts, and the first pass must go on scoring every chunk meanwhile. Its
    verdict is taken at the first chunk after it is ready.
    """

    def __init__(self, first_pass: FirstPass, verifier: Verifier | None, settings: WakeSettings) -> None:
        self.first_pass = first_pass
        self.verifier = verifier
        self.settings = settings
        self.word = first_pass.word.lower()
        self._ring: deque[AudioChunk] = deque()
        self._quiet_until_s = 0.0
        self._candidate: _Candidate | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="verifier") if verifier is not None else None

    def process(self, chunk: AudioChunk, armed: bool = True, own_voice: bool = False) -> WakeUpdate:
        """Feed one chunk; `armed` false (while listening) lets no new candidate start, and
        `own_voice` true (the speaker is saying something wake-like) turns one down unheard."""
        self._remember(chunk)
        first_pass = self.first_pass.score(chunk)
        if self._candidate is not None:
            return self._verify(chunk)
        if not armed or chunk.end_s < self._quiet_until_s or first_pass < self.first_pass.threshold:
            return _NOTHING
        t = chunk.end_s
        self._quiet_until_s = t + self.settings.refractory_s
        candidate = WakeCandidate(t=t, word=self.word, first_pass=round(first_pass, 3))
        if own_voice:
            rejected = WakeRejected(t=t, word=self.word, first_pass=candidate.first_pass, verifier=None,
                                    verifier_ms=None, reason="own_voice")
            return WakeUpdate([candidate, rejected])
        if self.verifier is None:
            wake = Wake(t=t, word=self.word, first_pass=candidate.first_pass, verifier=None)
            return WakeUpdate([candidate, wake], True, t)
        self._candidate = _Candidate(t, candidate.first_pass, t + self.settings.verifier_hold_s, time.perf_counter())
        self._ask(self.verifier.start, self._window())
        settled = self._settle(t)
        return WakeUpdate([candidate, *settled.events], settled.woke, t, settled.verifier_ms)

    def verifying_since(self) -> tuple[float, float] | None:
        """(candidate time, perf_counter() at the ask) while a verdict is outstanding."""
        candidate = self._candidate
        return None if candidate is None else (candidate.t, candidate.started_wall)

    def catch_up(self) -> None:
        """Wait until the verifier has scored all it was given: for callers that feed audio
        faster than real time and want the verdicts a live stream would get."""
        if self._candidate is not None:
            futures.wait(self._candidate.jobs)

    def verdict(self) -> WakeUpdate:
        """The outstanding verdict, if any, once the input has ended."""
        if self._candidate is None:
            return _NOTHING
        self.catch_up()
        return self._settle(math.inf)

    def close(self) -> None:
        """Let the verifier's thread finish its job and end."""
        if self._worker is not None:
            self._worker.shutdown(wait=True)

    def _ask(self, work: Callable[[np.ndarray], float], audio: np.ndarray) -> None:
        assert self._worker is not None and self._candidate is not None

        def timed() -> tuple[float, float]:
            started = time.perf_counter()
            best = work(audio)
            return best, (time.perf_counter() - started) * 1000

        self._candidate.jobs.append(self._worker.submit(timed))

    def _verify(self, chunk: AudioChunk) -> WakeUpdate:
        assert self.verifier is not None and self._candidate is not None
        if chunk.timestamp_s < self._candidate.deadline_s:
            self._ask(self.verifier.feed, chunk.as_int16())
        return self._settle(chunk.end_s)

    def _settle(self, t: float) -> WakeUpdate:
        """Accept once the verifier agrees; reject once it has heard all it may and did not; else wait."""
        candidate = self._candidate
        assert candidate is not None and self.verifier is not None
        best, spent_ms, all_done = candidate.verdict_so_far()
        accepted = best >= self.verifier.threshold
        if not accepted and not (all_done and t >= candidate.deadline_s):
            return _NOTHING
        self._candidate = None
        kind = Wake if accepted else WakeRejected
        # Stamped where the phrase was heard, not where the verifier made up its mind.
        event = kind(t=candidate.t, word=self.word, first_pass=candidate.first_pass, verifier=round(best, 3),
                     verifier_ms=round(spent_ms, 1))
        return WakeUpdate([event], accepted, candidate.t, event.verifier_ms)

    def _remember(self, chunk: AudioChunk) -> None:
        self._ring.append(chunk)
        keep_s = self.settings.verifier_window_s + self.settings.verifier_hold_s
        while self._ring and self._ring[0].end_s < chunk.end_s - keep_s:
            self._ring.popleft()

    def _window(self) -> np.ndarray:
        """The last verifier_window_s of audio, padded with silence at a stream's start."""
        want = int(self.settings.verifier_window_s * RATE_HZ)
        audio = np.concatenate([chunk.as_int16() for chunk in self._ring])[-want:]
        return np.concatenate([np.zeros(want - len(audio), dtype=np.int16), audio])
