"""The spine, measured: every fixture replayed on the real models, and wake detection's cost.

Configurations, each in its own process so its peak memory is its own:
- `pipeline`: all fixtures through the whole pipeline, default settings (but a fixture's own);
- `wake_two_pass`: the wake stage as shipped (first pass always, verifier on candidates);
- `wake_verifier_alone`: the obvious alternative, openWakeWord scoring every chunk.
Voice-to-voice uses the generator's true end of speech, not the VAD's estimate.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import numpy as np

from assistant.config import Settings, with_changes
from assistant.events import Recorder
from assistant.hear.audio import (
    NullSink,
    as_stream,
    file_chunks,
    frames,
    iter_file_audio,
)
from assistant.run.pipeline import replay_pipeline
from assistant.run.stages import for_a_run, load_stages, load_wake

from .runner import peak_rss_mb
from .turns import voice_to_voice_from_truth

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CONFIGURATIONS = ("pipeline", "wake_two_pass", "wake_verifier_alone")


def measure(configuration: str) -> dict:
    if configuration == "pipeline":
        return _pipeline()
    return _wake(verifier_alone=configuration == "wake_verifier_alone")


def _pipeline() -> dict:
    settings = Settings()
    started = time.perf_counter()
    stages = load_stages(settings)
    load_s = time.perf_counter() - started
    stage_ms: dict[str, list[float]] = {}
    voice_to_voice_ms, replay_s, audio_s = [], 0.0, 0.0
    for name, entry in MANIFEST.items():
        recorder = Recorder()
        these = with_changes(settings, entry["settings"])  # the fixture's own, as its tests replay it
        fresh = for_a_run(stages, these)
        pipeline = replay_pipeline(fresh, these, recorder, NullSink())
        started = time.perf_counter()
        asyncio.run(pipeline.run(as_stream(file_chunks(FIXTURES / name)), ptt=entry["ptt"]))
        replay_s += time.perf_counter() - started
        audio_s += entry["duration_s"]
        voice_to_voice_ms += voice_to_voice_from_truth(recorder.events,
                                                       [t["speech_end_s"] for t in entry["turns"] if t["text"]])
        for turn in (e for e in recorder.events if e.name == "turn"):
            for stage, ms in turn.stages_ms.items():
                stage_ms.setdefault(stage, []).append(ms)
    return {
        "model_load_s": round(load_s, 2),
        "audio_s": round(audio_s, 1),
        "replay_s": round(replay_s, 2),
        "real_time_factor": round(replay_s / audio_s, 3),
        "voice_to_voice_ms_median": round(statistics.median(voice_to_voice_ms), 1),
        "voice_to_voice_ms_max": round(max(voice_to_voice_ms), 1),
        "turns": len(voice_to_voice_ms),
        "stage_ms_median": {k: round(statistics.median(v), 1) for k, v in sorted(stage_ms.items())},
        "peak_rss_mb": peak_rss_mb(),
    }


def _wake(verifier_alone: bool) -> dict:
    """CPU time of wake detection over every fixture, per hour of audio."""
    settings = Settings()
    detector = load_wake(settings)
    chunks = []
    for name in MANIFEST:  # one continuous stream, so refractory times keep their meaning
        chunks += frames(iter_file_audio(FIXTURES / name), start_s=chunks[-1].end_s if chunks else 0.0)
    audio_s = sum(c.duration_s for c in chunks)
    detections = 0
    started = time.process_time()
    if verifier_alone:
        verifier = detector.words[0].verifier  # the shipped wake word's
        assert verifier is not None
        verifier.start(np.zeros(int(settings.wake.verifier_window_s * 16000), dtype=np.int16))
        quiet_until = 0.0
        for chunk in chunks:
            if verifier.feed(chunk.as_int16()) >= verifier.threshold and chunk.end_s >= quiet_until:
                detections += 1
                quiet_until = chunk.end_s + settings.wake.refractory_s
    else:
        for chunk in chunks:
            detections += detector.process(chunk).woke
            detector.catch_up()
    cpu_s = time.process_time() - started
    return {
        "audio_s": round(audio_s, 1),
        "cpu_s": round(cpu_s, 3),
        "cpu_s_per_audio_hour": round(cpu_s / audio_s * 3600, 1),
        "detections": detections,
        "expected_detections": sum(e["wake_count"] for e in MANIFEST.values()),
        "peak_rss_mb": peak_rss_mb(),
    }


def table(results: dict[str, dict]) -> str:
    p = results["pipeline"]
    two, alone = results["wake_two_pass"], results["wake_verifier_alone"]
    rows = [
        "| measure | value |",
        "|---|---|",
        f"| fixtures replayed | {p['audio_s']} s of audio, {p['turns']} turns |",
        f"| model loading | {p['model_load_s']} s |",
        f"| replay real-time factor | {p['real_time_factor']} |",
        f"| voice-to-voice, median / max | {p['voice_to_voice_ms_median']} / {p['voice_to_voice_ms_max']} ms |",
    ]
    rows += [f"| stage `{k}`, median | {v} ms |" for k, v in p["stage_ms_median"].items()]
    rows += [
        f"| peak RSS, whole pipeline | {p['peak_rss_mb']} MB |",
        "",
        "| wake detection | CPU s per audio hour | detections (expected) | peak RSS |",
        "|---|---|---|---|",
        f"| two-pass (shipped) | {two['cpu_s_per_audio_hour']} | {two['detections']} ({two['expected_detections']}) "
        f"| {two['peak_rss_mb']} MB |",
        f"| verifier alone | {alone['cpu_s_per_audio_hour']} | {alone['detections']} ({alone['expected_detections']}) "
        f"| {alone['peak_rss_mb']} MB |",
        f"| ratio two-pass / verifier alone | {two['cpu_s'] / alone['cpu_s']:.3f} | | |",
    ]
    return "\n".join(rows)
