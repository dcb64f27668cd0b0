"""Choosing wake thresholds from labelled audio: `assistant wake-tune DIR` and `bench wake`.

Both passes are run once over every file, continuously, and their scores kept chunk by
chunk (a ScoreTrace). Each mode and threshold pair is then replayed on the traces alone,
so a sweep over a hundred pairs costs one pass over the audio. The two-pass rule here is
the detector's own: a candidate where the first pass crosses its threshold (then nothing
new for `refractory_s`), accepted when the verifier's score crosses its own within the
window the detector would give it (the primed `verifier_window_s` before, `verifier_hold_s`
after). `bench wake` checks these simulated figures against the real detector.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import numpy as np

from assistant.config import Settings, WakeSettings
from assistant.errors import UsageError
from assistant.hear.audio import check_audio_file, file_chunks
from assistant.hear.endpoint import VoiceActivity
from assistant.hear.noise import NoiseCleaner
from assistant.hear.verifier import OpenWakeWordFeatures, WakeHead
from assistant.hear.wake import FirstPass

FIRST_PASS_GRID = (0.001, 0.005, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
VERIFIER_GRID = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98)
VERIFIER_WARM_UP_S = 1.96
"""A primed verifier gives its first score after 76 mel frames and 15 embedding steps of
audio; the rest of its window is what it looks back over."""


@dataclass(frozen=True)
class ScoreTrace:
    """One file's scores, chunk by chunk: what each pass says at every moment."""

    times: np.ndarray
    """Each chunk's end, in s of the file."""
    first_pass: np.ndarray
    verifier: np.ndarray
    duration_s: float
    first_pass_cpu_s: float
    verifier_cpu_s: float
    raw: np.ndarray | None = None
    """The first pass's raw outputs, one per inference (every 30 ms), before any pooling."""
    raw_chunk: np.ndarray | None = None
    """The chunk (index into `times`) each raw output came in."""
    vad: np.ndarray | None = None
    """Silero's speech probability for each chunk, when it was run."""
    vad_cpu_s: float = 0.0
    pooling: tuple[str, int] = ("mean", 5)
    """How `first_pass` pooled the raw outputs: the model's own mean over 5, unless re-pooled."""

    def pooled(self, pooling: str, window: int) -> ScoreTrace:
        """This trace with the first pass's score pooled another way from its raw outputs:
        what FirstPass(pooling=, window=) would have given, chunk by chunk."""
        assert self.raw is not None and self.raw_chunk is not None
        scores = np.zeros(len(self.times))
        if len(self.raw) >= window:
            windows = np.lib.stride_tricks.sliding_window_view(self.raw, window)
            pooled = windows.max(axis=1) if pooling == "max" else windows.mean(axis=1)
            np.maximum.at(scores, self.raw_chunk[window - 1:], pooled)
        return replace(self, first_pass=scores, pooling=(pooling, window))


@dataclass(frozen=True)
class Rule:
    """A mode and its thresholds, with the detector's timing."""

    mode: str
    first_pass: float
    verifier: float
    refractory_s: float = 2.0
    lookback_s: float = 0.54
    hold_s: float = 0.5
    pooling: str = "mean"
    window: int = 5
    """The first pass's pooling of its raw outputs (FirstPass)."""
    fusion: float = 0.0
    """Score fusion: accept when (1 - fusion) x the verifier's score + fusion x the first
    pass's peak reaches `verifier`; 0 is the plain rule, both above their thresholds."""
    gate: float = 0.0
    """The speech gate: while Silero hears speech (`gate_vad`), a first-pass score of only
    this much (a phrase the first pass half-liked) also starts a candidate; 0: off."""
    gate_vad: float = 0.5
    second_chance_s: float = 0.0
    """After a candidate turned down with a verifier score of at least `near`, a candidate
    within this many seconds needs only `lowered` (a person saying it again); 0: never."""
    near: float = 0.0
    lowered: float = 0.0

    @staticmethod
    def of(settings: WakeSettings, mode: str, first_pass: float, verifier: float) -> Rule:
        """The detector's rule with these thresholds and the settings' fusion and second chance."""
        return Rule(mode, first_pass, verifier, refractory_s=settings.refractory_s,
                    lookback_s=max(0.0, settings.verifier_window_s - VERIFIER_WARM_UP_S),
                    hold_s=settings.verifier_hold_s, fusion=settings.fusion,
                    second_chance_s=settings.second_chance_s, near=settings.near_miss_score,
                    lowered=settings.second_chance_threshold)


@dataclass(frozen=True)
class Outcome:
    """A rule's figures over a labelled set."""

    rule: Rule
    recall: float
    found: int
    positives: int
    false_accepts: int
    negative_hours: float
    verifier_calls: int
    """First-pass candidates on the negatives: each one runs the verifier."""

    @property
    def false_accepts_per_hour(self) -> float:
        return self.false_accepts / self.negative_hours if self.negative_hours else float("nan")

    @property
    def verifier_calls_per_hour(self) -> float:
        return self.verifier_calls / self.negative_hours if self.negative_hours else float("nan")


def score_file(path: Path, first_pass: FirstPass, features: OpenWakeWordFeatures, head: WakeHead,
               cleaner: NoiseCleaner | None = None, vad: VoiceActivity | None = None) -> ScoreTrace:
    """Run both passes over the whole file, continuously, timing each; `cleaner`: what both
    hear goes through it first; `vad`: Silero's speech probability too, timed."""
    first_pass.reset()
    head.reset()
    # Silence first, as the detector pads a window at a stream's start: else the verifier
    # could not score a phrase in a recording's first two seconds.
    head.scores(features.reset_to_silence(int(VERIFIER_WARM_UP_S * 16000) + 1280))
    times, first_scores, verifier_scores, raw, raw_chunk, speech = [], [], [], [], [], []
    first_cpu = verifier_cpu = vad_cpu = 0.0
    if cleaner is not None:
        cleaner.reset()
    if vad is not None:
        vad.reset()
    for n, chunk in enumerate(file_chunks(path)):
        if cleaner is not None:
            chunk = cleaner.process(chunk)  # same stamp, audio 10 ms late
        started = time.process_time()
        probabilities = first_pass.probabilities(chunk)
        first_scores.append(first_pass.pooled(probabilities))
        between = time.process_time()
        verifier_scores.append(max(head.scores(features.embeddings(chunk.as_int16())), default=0.0))
        first_cpu += between - started
        verifier_cpu += time.process_time() - between
        raw += probabilities
        raw_chunk += [n] * len(probabilities)
        if vad is not None:
            started = time.process_time()
            speech.append(vad.probability(chunk))
            vad_cpu += time.process_time() - started
        times.append(chunk.end_s)
    return ScoreTrace(np.array(times), np.array(first_scores), np.array(verifier_scores),
                      times[-1] if times else 0.0, first_cpu, verifier_cpu, np.array(raw), np.array(raw_chunk, dtype=int),
                      np.array(speech) if vad is not None else None, vad_cpu)


def detections(trace: ScoreTrace, rule: Rule) -> tuple[list[float], int]:
    """When `rule` wakes on this trace (the audio time of each verdict), and how many
    first-pass candidates it took (the verifier's calls)."""
    if rule.mode == "verifier_only":
        return _crossings(trace.times, trace.verifier, rule.verifier, rule.refractory_s), 0
    if trace.pooling != (rule.pooling, rule.window):
        trace = trace.pooled(rule.pooling, rule.window)
    found = candidates(trace, rule)
    if rule.mode == "first_pass_only":
        return found, 0
    woke: list[float] = []
    near_miss_until = -1.0
    times = trace.times
    for t in found:
        # What the verifier hears of a candidate: the primed window before it, the hold after.
        first, last = np.searchsorted(times, [t - rule.lookback_s - 1e-9, t + rule.hold_s + 1e-9], side="right")
        since = np.searchsorted(times, t - 1e-9)
        threshold = rule.lowered if t <= near_miss_until else rule.verifier
        # The detector fuses the verifier's best with the first pass's peak since the candidate.
        peak = float(trace.first_pass[since:last].max(initial=0.0))
        scores = (1 - rule.fusion) * trace.verifier[first:last] + rule.fusion * peak
        agreeing = np.flatnonzero(scores >= threshold)
        if len(agreeing):
            woke.append(max(t, float(times[first + agreeing[0]])))
        elif rule.second_chance_s and float(scores.max(initial=0.0)) >= rule.near:
            near_miss_until = t + rule.second_chance_s
    return woke, len(found)


def candidates(trace: ScoreTrace, rule: Rule) -> list[float]:
    """Where the first pass (or the speech gate) starts a candidate, refractory time apart."""
    return _crossings(trace.times, _candidate_scores(trace, rule), rule.first_pass, rule.refractory_s)


def _candidate_scores(trace: ScoreTrace, rule: Rule) -> np.ndarray:
    """The first pass's scores, raised to its threshold where the speech gate lets a lower one in."""
    if not rule.gate:
        return trace.first_pass
    assert trace.vad is not None, "the speech gate needs Silero's scores in the trace"
    gated = (trace.first_pass >= rule.gate) & (trace.vad >= rule.gate_vad)
    return np.where(gated, np.maximum(trace.first_pass, rule.first_pass), trace.first_pass)


def _crossings(times: np.ndarray, scores: np.ndarray, threshold: float, refractory_s: float) -> list[float]:
    """Times where the score reaches the threshold, none within refractory_s of the last."""
    above = times[scores >= threshold]
    found: list[float] = []
    i = 0
    while i < len(above):
        found.append(float(above[i]))
        i = int(np.searchsorted(above, above[i] + refractory_s - 1e-9))
    return found


def evaluate(rule: Rule, positives: Sequence[ScoreTrace], negatives: Sequence[ScoreTrace]) -> Outcome:
    found = sum(1 for trace in positives if detections(trace, rule)[0])
    false_accepts = calls = 0
    for trace in negatives:
        woke, asked = detections(trace, rule)
        false_accepts += len(woke)
        calls += asked
    hours = sum(trace.duration_s for trace in negatives) / 3600
    return Outcome(rule, found / len(positives) if positives else float("nan"), found, len(positives),
                   false_accepts, hours, calls)


def sweep(settings: WakeSettings, positives: Sequence[ScoreTrace], negatives: Sequence[ScoreTrace]) -> list[Outcome]:
    """Every mode over its thresholds: the first pass alone, the verifier alone, and each pair."""
    return [evaluate(rule, positives, negatives) for rule in sweep_rules(settings)]


def sweep_rules(settings: WakeSettings, first_pass_grid: Iterable[float] = FIRST_PASS_GRID,
                verifier_grid: Iterable[float] = VERIFIER_GRID) -> list[Rule]:
    """The first pass alone over its grid, the verifier alone over its, and every pair."""
    first_pass_grid, verifier_grid = list(first_pass_grid), list(verifier_grid)
    rules = [Rule.of(settings, "first_pass_only", t, 0.0) for t in first_pass_grid]
    rules += [Rule.of(settings, "verifier_only", 0.0, t) for t in verifier_grid]
    return rules + [Rule.of(settings, "two_pass", a, b) for a in first_pass_grid for b in verifier_grid]


def recommend(outcomes: Sequence[Outcome], max_false_accepts_per_hour: float) -> Outcome | None:
    """The two-pass pair with the best recall within the false-accept budget (then the
    fewest false accepts). Many pairs often tie; the middle of the tied range is taken for
    each threshold, away from the edges where recall or false accepts start to change."""
    allowed = [o for o in outcomes if o.rule.mode == "two_pass"
               and o.false_accepts_per_hour <= max_false_accepts_per_hour]
    if not allowed:
        return None
    best = max((o.found, -o.false_accepts) for o in allowed)
    tied = [o for o in allowed if (o.found, -o.false_accepts) == best]
    verifier = _middle(sorted({o.rule.verifier for o in tied}))
    return next(o for o in tied if o.rule.verifier == verifier
                and o.rule.first_pass == _middle(sorted(t.rule.first_pass for t in tied if t.rule.verifier == verifier)))


def _middle(values: Sequence[float]) -> float:
    return values[(len(values) - 1) // 2]


# --- `assistant wake-tune DIR` ------------------------------------------------------

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
PROGRESS_EVERY_S = 5.0
_PRINTED_FIRST_PASS = (0.001, 0.005, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
_PRINTED_VERIFIER = (0.1, 0.3, 0.5, 0.7, 0.9, 0.95)


def labelled_folder(folder: Path) -> tuple[list[Path], list[Path]]:
    """The recordings of `folder`/positives (each one wake phrase) and `folder`/negatives
    (room sound without it); raises UsageError naming what is missing."""
    if not folder.is_dir():
        raise UsageError(f"{folder}: {'not a directory' if folder.exists() else 'no such directory'}")
    found = []
    for name in ("positives", "negatives"):
        sub = folder / name
        files = _audio_files(sub) if sub.is_dir() else []
        if not files:
            raise UsageError(f"{sub}: needs audio files ({', '.join(AUDIO_SUFFIXES)}): "
                             f"{'each holding one wake phrase' if name == 'positives' else 'room sound without the wake phrase'}")
        found.append(files)
    return found[0], found[1]


def _audio_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    except OSError as err:
        raise UsageError(f"{folder}: cannot read: {err.strerror or err}") from None


class _Progress:
    """'wake-tune: 2,400 of 10,000 files' on stderr, at most every `every_s`: a long run shows it moves."""

    def __init__(self, total: int, every_s: float) -> None:
        self.total, self.every_s = total, every_s
        self.done = 0
        self._shown = time.monotonic()

    def one_more(self) -> None:
        self.done += 1
        if time.monotonic() - self._shown >= self.every_s:
            print(f"wake-tune: {self.done:,} of {self.total:,} files", file=sys.stderr, flush=True)
            self._shown = time.monotonic()


def tune(folder: Path, settings: Settings, out: TextIO, max_false_accepts_per_hour: float = 0.5,
         progress_every_s: float = PROGRESS_EVERY_S) -> int:
    """Score the folder's recordings with the configured main wake word, print recall and
    false accepts per hour over a grid of threshold pairs, and the pair to use."""
    positives, negatives = labelled_folder(folder)
    for path in positives + negatives:
        check_audio_file(path)
    first_pass, features, head = _main_word_models(settings)
    progress = _Progress(len(positives) + len(negatives), progress_every_s)

    def scored(path: Path) -> ScoreTrace:
        trace = score_file(path, first_pass, features, head)
        progress.one_more()
        return trace

    positive_traces = [scored(p) for p in positives]
    negative_traces = [scored(p) for p in negatives]
    wake = settings.wake
    outcomes = sweep(wake, positive_traces, negative_traces)
    print(_grid(outcomes, len(positives), negative_traces), file=out)
    now = evaluate(Rule.of(wake, "two_pass", wake.first_pass_threshold, wake.verifier_threshold),
                   positive_traces, negative_traces)
    print(f"\nnow ({wake.first_pass_threshold} / {wake.verifier_threshold}): {_figures(now)}", file=out)
    best = recommend(outcomes, max_false_accepts_per_hour)
    if best is None:
        fewest = min(o.false_accepts for o in outcomes if o.rule.mode == "two_pass")
        best = max((o for o in outcomes if o.rule.mode == "two_pass" and o.false_accepts == fewest),
                   key=lambda o: (o.found, o.rule.first_pass))
        print(f"no pair stays within {max_false_accepts_per_hour} false accepts per hour; the fewest:", file=out)
    print(f"recommended ({best.rule.first_pass} / {best.rule.verifier}): {_figures(best)}", file=out)
    print(f"[wake] first_pass_threshold = {best.rule.first_pass}, verifier_threshold = {best.rule.verifier}",
          file=out)
    hours = best.negative_hours
    if hours < 1:
        print(f"note: {_minutes(hours)} of negatives: each false accept counts as {1 / hours:.1f} per hour; "
              "record more room sound for a firmer figure", file=out)
    return 0


def _main_word_models(settings: Settings) -> tuple[FirstPass, OpenWakeWordFeatures, WakeHead]:
    from assistant import models
    from assistant.run.stages import verifier_pipelines

    wake = settings.wake
    [(features, head)] = verifier_pipelines(models.verifier_model(wake.verifier_model), wake.verifier_threads)
    return FirstPass(models.first_pass_config(wake.first_pass_model), wake.first_pass_threshold), features, head


def _figures(outcome: Outcome) -> str:
    return (f"recall {outcome.recall:.0%} ({outcome.found}/{outcome.positives}), "
            f"{outcome.false_accepts_per_hour:.1f} false accepts per hour ({outcome.false_accepts} in "
            f"{_minutes(outcome.negative_hours)}), {outcome.verifier_calls_per_hour:.0f} verifier calls per hour")


def _minutes(hours: float) -> str:
    return f"{hours * 60:.1f} min" if hours < 1 / 6 else f"{hours * 60:.0f} min"


def _grid(outcomes: Sequence[Outcome], positives: int, negatives: Sequence[ScoreTrace]) -> str:
    """Recall and false accepts per hour for each pair: rows the first pass's threshold,
    columns the verifier's."""
    cells = {(o.rule.first_pass, o.rule.verifier): o for o in outcomes if o.rule.mode == "two_pass"}
    minutes = sum(t.duration_s for t in negatives) / 60
    lines = [f"{positives} positives, {minutes:.1f} min of negatives; each cell: recall / false accepts per hour",
             "first pass \\ verifier" + "".join(f"{v:>13}" for v in _PRINTED_VERIFIER)]
    for f in _PRINTED_FIRST_PASS:
        row = "".join(f"{cells[f, v].recall:>7.0%} /{cells[f, v].false_accepts_per_hour:>4.1f}"
                      for v in _PRINTED_VERIFIER)
        lines.append(f"{f:>21}{row}")
    return "\n".join(lines)
