"""Two-pass wake word detection.

A tiny always-on first pass (microWakeWord, ~50 KB) scores every 30 ms. Only when it
fires does the larger verifier (openWakeWord) score the last few seconds of audio, kept
in a ring buffer; the candidate wakes the assistant only if the verifier agrees.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import RATE_HZ, AudioChunk
from .config import WakeSettings
from .events import Event, Wake, WakeCandidate, WakeRejected


class FirstPass:
    """microWakeWord: cheap enough to run on every chunk."""

    def __init__(self, config_path: Path, threshold: float) -> None:
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

        self.model = MicroWakeWord.from_config(config_path)
        self.features = MicroWakeWordFeatures()
        self.threshold = threshold
        self.word = self.model.wake_word

    def score(self, chunk: AudioChunk) -> float:
        """The highest wake probability seen in this chunk."""
        best = 0.0
        for features in self.features.process_streaming(chunk.audio):
            probability = self.model.process_streaming_prob(features)
            if probability is not None:
                best = max(best, float(probability))
        return best


class Verifier:
    """openWakeWord: scores a window of audio on demand, from a clean state each time."""

    def __init__(self, model_path: Path, threshold: float) -> None:
        from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures

        self.model = OpenWakeWord.from_model(model_path)
        self.features = OpenWakeWordFeatures.from_builtin()
        self.threshold = threshold

    def score(self, audio: np.ndarray) -> float:
        """The highest wake probability over a window of int16 audio."""
        self.features.reset()
        self.model.reset()
        # reset() pre-fills 8 s of silence as unseen audio; score only the window itself.
        self.features.new_audio_samples = 0
        best = 0.0
        for embeddings in self.features.process_streaming(audio.tobytes()):
            for probability in self.model.process_streaming(embeddings):
                best = max(best, float(probability))
        return best


@dataclass(frozen=True)
class WakeDecision:
    """What one candidate came to: the events to report and whether the assistant woke."""

    events: list[Event]
    accepted: bool
    t: float


class WakeDetector:
    """The first pass on every chunk; the verifier on each first-pass candidate."""

    def __init__(self, first_pass: FirstPass, verifier: Verifier | None, settings: WakeSettings) -> None:
        self.first_pass = first_pass
        self.verifier = verifier
        self.settings = settings
        self.word = first_pass.word.lower()
        self._ring: deque[np.ndarray] = deque()
        self._ring_samples = 0
        self._quiet_until_s = 0.0

    def process(self, chunk: AudioChunk, armed: bool = True) -> WakeDecision | None:
        """Feed one chunk; a decision when a candidate was found and `armed` is set."""
        self._remember(chunk)
        first_pass = self.first_pass.score(chunk)
        if not armed or chunk.end_s < self._quiet_until_s or first_pass < self.first_pass.threshold:
            return None
        t = chunk.end_s
        self._quiet_until_s = t + self.settings.refractory_s
        candidate = WakeCandidate(t=t, word=self.word, first_pass=round(first_pass, 3))
        if self.verifier is None:
            wake = Wake(t=t, word=self.word, first_pass=candidate.first_pass, verifier=None)
            return WakeDecision([candidate, wake], True, t)
        started = time.perf_counter()
        verifier = round(self.verifier.score(self._window()), 3)
        verifier_ms = round((time.perf_counter() - started) * 1000, 1)
        if verifier >= self.verifier.threshold:
            return WakeDecision([candidate, Wake(t=t, word=self.word, first_pass=candidate.first_pass,
                                                 verifier=verifier, verifier_ms=verifier_ms)], True, t)
        return WakeDecision([candidate, WakeRejected(t=t, word=self.word, first_pass=candidate.first_pass,
                                                     verifier=verifier, verifier_ms=verifier_ms)], False, t)

    def _remember(self, chunk: AudioChunk) -> None:
        samples = chunk.as_int16()
        self._ring.append(samples)
        self._ring_samples += len(samples)
        keep = int(self.settings.verifier_window_s * RATE_HZ)
        while self._ring_samples - len(self._ring[0]) >= keep:
            self._ring_samples -= len(self._ring.popleft())

    def _window(self) -> np.ndarray:
        return np.concatenate(self._ring)
