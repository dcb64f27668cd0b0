"""Two-pass wake word detection.

A tiny always-on first pass (microWakeWord, ~50 KB) scores every 30 ms. Only when it
fires does the larger verifier (openWakeWord) score the last few seconds of audio, kept
in a ring buffer; the candidate wakes the assistant only if the verifier agrees.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from assistant.config import WakeSettings
from assistant.events import Event, Wake, WakeCandidate, WakeRejected
from assistant.hear.audio import RATE_HZ, AudioChunk
from assistant.hear.verifier import SAMPLES_PER_STEP, OpenWakeWordFeatures, WakeHead


class FirstPass:
    """microWakeWord: cheap enough to run on every chunk.

    The model gives a raw probability every 30 ms; its score is the mean of the last
    `sliding_window_size` of them, as the model's own rule. The raw outputs are kept apart so
    `bench wake` can try other poolings on them (a max, longer means: none did better)."""

    def __init__(self, config_path: Path, threshold: float) -> None:
        from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures

        own = MicroWakeWord.from_config(config_path)
        # The same model with no smoothing of its own: the pooling below is this class's.
        self.model = MicroWakeWord(own.id, wake_word=own.wake_word, tflite_model=own.tflite_model,
                                   probability_cutoff=own.probability_cutoff, sliding_window_size=1,
                                   trained_languages=own.trained_languages,
                                   libtensorflowlite_c_path=own.libtensorflowlite_c_path)
        own.close()
        self.features = MicroWakeWordFeatures()
        self.threshold = threshold
        self.word = self.model.wake_word
        self.window = own.sliding_window_size
        self._recent: deque[float] = deque(maxlen=self.window)
        self._fed = 0

    def reset(self) -> None:
        self.model.reset()
        self.features.reset()
        self._recent.clear()
        self._fed = 0

    def probabilities(self, chunk: AudioChunk) -> list[float]:
        """The model's raw outputs completed by this chunk: one per `stride` feature frames."""
        found = []
        for features in self.features.process_streaming(chunk.audio):
            probability = self.model.process_streaming_prob(features)
            self._fed += 1
            if probability is not None and self._fed % self.model.stride == 0:
                found.append(float(probability))
        return found

    def score(self, chunk: AudioChunk) -> float:
        """The highest pooled score seen in this chunk (0 until a whole window has been heard)."""
        return self.pooled(self.probabilities(chunk))

    def pooled(self, probabilities: list[float]) -> float:
        best = 0.0
        for probability in probabilities:
            self._recent.append(probability)
            if len(self._recent) == self.window:
                best = max(best, statistics.mean(self._recent))
        return best


class Verifier:
    """openWakeWord for one word, started on demand: primed with the recent window, then
    fed live audio. Scores equal pyopen-wakeword's (see `verifier`).

    openWakeWord's score depends on where its 80 ms steps fall in the audio: one "hey
    Travis" scored 0.40 or 0.61 by its alignment alone. So a candidate is scored by
    `alignments` copies of the models, each started at a different offset within a step,
    and judged by their mean: a verdict that does not hang on the chunk grid.
    """

    def __init__(self, pipelines: list[tuple[OpenWakeWordFeatures, WakeHead]], threshold: float) -> None:
        self.pipelines = pipelines
        self.features, self.head = pipelines[0]
        self.threshold = threshold
        self._best = [0.0] * len(pipelines)

    def start(self, window: np.ndarray) -> float:
        """Forget the last candidate and score a window of int16 audio; the score so far."""
        offset = SAMPLES_PER_STEP // len(self.pipelines)
        for n, (features, head) in enumerate(self.pipelines):
            features.reset()
            head.reset()
            self._best[n] = max(head.scores(features.embeddings(window[n * offset:])), default=0.0)
        return sum(self._best) / len(self._best)

    def feed(self, audio: np.ndarray) -> float:
        """Score more audio of the same candidate; the score so far."""
        for n, (features, head) in enumerate(self.pipelines):
            self._best[n] = max([self._best[n], *head.scores(features.embeddings(audio))])
        return sum(self._best) / len(self._best)


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
_PHRASE_END_SCORE = 0.5


@dataclass
class _Candidate:
    t: float
    deadline_s: float
    started_wall: float
    """perf_counter() when the verifier was asked."""
    threshold: float
    """The score that accepts it: the verifier's, or the lower one of a second chance."""
    first_pass_peak: float = 0.0
    """The first pass's highest score since the candidate started (for score fusion)."""
    heard_t: float | None = None
    """Where the phrase ended, as well as the first pass tells: see WordDetector._candidate_heard."""
    peak_t: float = 0.0
    jobs: list[Future] = field(default_factory=list)
    """The verifier's work on this candidate, in order; each gives (best score, ms spent)."""

    def verdict_so_far(self) -> tuple[float, float, bool]:
        """Best score and ms spent over the jobs done, and whether all are done."""
        done = [job.result() for job in self.jobs if job.done()]
        return max((best for best, _ in done), default=0.0), sum(ms for _, ms in done), len(done) == len(self.jobs)


class WordDetector:
    """One wake word in `two_pass` or `first_pass_only` mode: the first pass on every
    chunk, the verifier (when there is one) on each first-pass candidate.

    openWakeWord scores a phrase best a little after it ends, so a candidate stays open
    for `verifier_hold_s`, the verifier fed live, and is accepted as soon as it agrees.
    What must agree is a fusion of both scores, mostly the verifier's (`fusion`): a first
    pass that is sure lets a verifier that is nearly sure accept. A candidate turned down
    narrowly opens a second chance: for `second_chance_s` the next one needs less, as when
    a person not heard says it again (`bench wake` measured both; see docs/benchmarks.md).
    The verifier runs in a worker thread: scoring the 2.5 s window takes ~0.1 s, more than
    a chunk lasts, and the first pass must go on scoring every chunk meanwhile. Its
    verdict is taken at the first chunk after it is ready.
    """

    def __init__(self, first_pass: FirstPass, verifier: Verifier | None, settings: WakeSettings,
                 worker: ThreadPoolExecutor, window: Callable[[], np.ndarray]) -> None:
        self.first_pass = first_pass
        self.verifier = verifier
        self.settings = settings
        self.word = first_pass.word.lower()
        self._worker = worker
        self._window = window
        self._quiet_until_s = 0.0
        self._second_chance_until_s = -math.inf
        self._candidate: _Candidate | None = None

    def process(self, chunk: AudioChunk, armed: bool, own_voice: bool) -> WakeUpdate:
        first_pass = self.first_pass.score(chunk)
        if self._candidate is not None:
            self._candidate_heard(first_pass, chunk.end_s)
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
        threshold = (self.settings.second_chance_threshold if t <= self._second_chance_until_s
                     else self.verifier.threshold)
        self._candidate = _Candidate(t, t + self.settings.verifier_hold_s, time.perf_counter(), threshold)
        self._candidate_heard(first_pass, t)
        self._ask(self.verifier.start, self._window())
        settled = self._settle(t)
        return WakeUpdate([candidate, *settled.events], settled.woke, t, settled.verifier_ms)

    def _candidate_heard(self, first_pass: float, t: float) -> None:
        """Follow the first pass through a candidate: its peak (for fusion), and where the
        phrase ended. The candidate starts where the first pass first rises past its (low)
        threshold, often mid-phrase; the first pass reaches _PHRASE_END_SCORE within about
        0.1 s of the phrase's end, and the command's audio is taken from there."""
        candidate = self._candidate
        assert candidate is not None
        if first_pass > candidate.first_pass_peak:
            candidate.first_pass_peak, candidate.peak_t = first_pass, t
        if candidate.heard_t is None and first_pass >= _PHRASE_END_SCORE:
            candidate.heard_t = t

    def verifying_since(self) -> tuple[float, float] | None:
        candidate = self._candidate
        return None if candidate is None else (candidate.t, candidate.started_wall)

    def catch_up(self) -> None:
        if self._candidate is not None:
            futures.wait(self._candidate.jobs)

    def verdict(self) -> WakeUpdate:
        if self._candidate is None:
            return _NOTHING
        self.catch_up()
        return self._settle(math.inf)

    def _ask(self, work: Callable[[np.ndarray], float], audio: np.ndarray) -> None:
        assert self._candidate is not None

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
        fusion = self.settings.fusion
        score = (1 - fusion) * best + fusion * candidate.first_pass_peak
        accepted = score >= candidate.threshold
        if not accepted and not (all_done and t >= candidate.deadline_s):
            return _NOTHING
        self._candidate = None
        if not accepted and self.settings.second_chance_s and score >= self.settings.near_miss_score:
            self._second_chance_until_s = candidate.t + self.settings.second_chance_s
        kind = Wake if accepted else WakeRejected
        # Stamped where the phrase was heard, not where the verifier made up its mind.
        heard_t = candidate.heard_t if candidate.heard_t is not None else candidate.peak_t
        event = kind(t=heard_t, word=self.word, first_pass=round(candidate.first_pass_peak, 3),
                     verifier=round(best, 3), verifier_ms=round(spent_ms, 1))
        return WakeUpdate([event], accepted, heard_t, event.verifier_ms)


class ContinuousVerifier:
    """`verifier_only` mode: openWakeWord on every chunk, no first pass. The embeddings are
    computed once and scored by every word's head."""

    def __init__(self, features: OpenWakeWordFeatures, words: list[tuple[str, Verifier]], settings: WakeSettings) -> None:
        self.features = features
        self.words = words
        self.settings = settings
        self._quiet_until_s = {word: 0.0 for word, _ in words}

    def process(self, chunk: AudioChunk, armed: bool, own_voice: bool) -> WakeUpdate:
        embeddings = self.features.embeddings(chunk.as_int16())
        update = _NOTHING
        for word, verifier in self.words:
            best = max(verifier.head.scores(embeddings), default=0.0)
            if update.woke or not armed or chunk.end_s < self._quiet_until_s[word] or best < verifier.threshold:
                continue
            t = chunk.end_s
            self._quiet_until_s[word] = t + self.settings.refractory_s
            if own_voice:
                update = WakeUpdate([WakeRejected(t=t, word=word, first_pass=None, verifier=round(best, 3),
                                                  verifier_ms=None, reason="own_voice")])
            else:
                update = WakeUpdate([Wake(t=t, word=word, first_pass=None, verifier=round(best, 3))], True, t)
        return update


class WakeDetector:
    """Every configured wake word, in the configured mode; one verdict stream."""

    def __init__(self, words: list[tuple[FirstPass, Verifier | None]], settings: WakeSettings,
                 features: OpenWakeWordFeatures | None = None) -> None:
        self.settings = settings
        self._ring: deque[AudioChunk] = deque()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="verifier")
        self.words = [WordDetector(first_pass, verifier, settings, self._worker, self._window)
                      for first_pass, verifier in words]
        self.word = self.words[0].word
        self._continuous = None
        if settings.mode == "verifier_only":
            assert features is not None and all(verifier is not None for _, verifier in words)
            self._continuous = ContinuousVerifier(
                features, [(d.word, d.verifier) for d in self.words if d.verifier is not None], settings)

    def process(self, chunk: AudioChunk, armed: bool = True, own_voice: bool = False) -> WakeUpdate:
        """Feed one chunk; `armed` false (while listening) lets no new candidate start, and
        `own_voice` true (the speaker is saying something wake-like) turns one down unheard."""
        if self._continuous is not None:
            return self._continuous.process(chunk, armed, own_voice)
        self._remember(chunk)
        return _merged([word.process(chunk, armed, own_voice) for word in self.words])

    def verifying_since(self) -> tuple[float, float] | None:
        """(candidate time, perf_counter() at the ask) while a verdict is outstanding."""
        return min((since for word in self.words if (since := word.verifying_since()) is not None), default=None)

    def catch_up(self) -> None:
        """Wait until the verifier has scored all it was given: for callers that feed audio
        faster than real time and want the verdicts a live stream would get."""
        for word in self.words:
            word.catch_up()

    def verdict(self) -> WakeUpdate:
        """The outstanding verdicts, if any, once the input has ended."""
        return _merged([word.verdict() for word in self.words])

    def close(self) -> None:
        """Let the verifier's thread finish its job and end."""
        self._worker.shutdown(wait=True)

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


def _merged(updates: list[WakeUpdate]) -> WakeUpdate:
    """The words' updates for one chunk as one: all their events; the first word that woke."""
    if len(updates) == 1:
        return updates[0]
    events = [event for update in updates for event in update.events]
    woke = next((update for update in updates if update.woke), None)
    if woke is not None:
        return WakeUpdate(events, True, woke.candidate_t, woke.verifier_ms)
    return WakeUpdate(events) if events else _NOTHING
