"""Long files through `assistant transcribe`: memory stays flat in the file's length.

Configurations, each in its own process:
- `5min`, `20min`, `60min`: the windowed path `assistant transcribe` takes
  (`SpeechRecognizer.stream_segments` over `iter_file_audio`: 30 s windows read from the file);
- `5min_whole`: the whole-file path it took before (`read_file_audio`, then faster-whisper's
  long-form `segments()` over it), on 5 min only, for its peak memory.

The input is real speech: `../shared/audio/jfk.flac` (when it is there) and the fixtures'
spoken requests (the bundled piper voice), in a seeded random order with 0.3 to 2 s of
quiet between them, looped to the length; written once as 16 kHz FLAC, clip by clip (so
building it takes no memory), into the cache outside git. Reported: peak RSS, wall time
(recognition only, after the model loads), real-time factor (wall / audio), segments found,
and the decoded float32 audio the whole-file path held before any features were computed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import soundfile

from assistant.config import Settings
from assistant.hear.audio import (
    RATE_HZ,
    file_duration_s,
    iter_file_audio,
    read_file_audio,
)
from assistant.run.stages import load_asr

from .runner import peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
JFK = ROOT.parent / "shared" / "audio" / "jfk.flac"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assistant" / "bench" / "transcribe"
CONFIGURATIONS = ("5min", "20min", "60min", "5min_whole")
_NOT_SPEECH = {"silence_long.wav", "noise_only.wav"}
_SEED = 16


def measure(configuration: str) -> dict:
    minutes = int(configuration.split("min")[0])
    whole = configuration.endswith("_whole")
    path = speech_file(minutes)
    asr = load_asr(Settings())
    loaded_mb = peak_rss_mb()
    started = time.perf_counter()
    if whole:
        segments = asr.segments(read_file_audio(path))
    else:
        segments = list(asr.stream_segments(iter_file_audio(path)))
    wall_s = time.perf_counter() - started
    audio_s = file_duration_s(path)
    return {"path": "whole file" if whole else "windows", "audio_s": round(audio_s, 1), "wall_s": round(wall_s, 1),
            "real_time_factor": round(wall_s / audio_s, 3), "segments": len(segments),
            "words": sum(len(s.text.split()) for s in segments), "peak_rss_mb": peak_rss_mb(),
            "model_loaded_rss_mb": loaded_mb, "decoded_float32_mb": round(audio_s * RATE_HZ * 4 / 2**20, 1),
            "jfk": JFK.exists()}


def speech_file(minutes: int) -> Path:
    """`minutes` of real speech with quiet gaps, made once into the cache."""
    path = CACHE / f"speech_{minutes}min.flac"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    clips = _speech_clips()
    rng = np.random.default_rng(_SEED)
    left = minutes * 60 * RATE_HZ
    partial = path.with_suffix(".partial")
    with soundfile.SoundFile(partial, "w", RATE_HZ, 1, "PCM_16", format="FLAC") as out:
        while left > 0:
            for index in rng.permutation(len(clips)):
                gap = np.zeros(int(rng.uniform(0.3, 2.0) * RATE_HZ), np.float32)
                for piece in (clips[index], gap):
                    out.write(piece[:left])
                    left -= min(left, len(piece))
    partial.rename(path)
    return path


def _speech_clips() -> list[np.ndarray]:
    paths = [p for p in sorted((ROOT / "fixtures").glob("*.wav")) if p.name not in _NOT_SPEECH]
    return [read_file_audio(p) for p in paths + ([JFK] if JFK.exists() else [])]


def table(results: dict[str, dict]) -> str:
    rows = ["| audio | path | peak RSS | model loaded | wall | real-time factor | segments "
            "| the whole file as float32 |", "|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        rows.append(f"| {r['audio_s'] / 60:.0f} min | {r['path']} | {r['peak_rss_mb']:.0f} MB "
                    f"| {r['model_loaded_rss_mb']:.0f} MB | {r['wall_s']:.0f} s | {r['real_time_factor']:.3f} "
                    f"| {r['segments']} | {r['decoded_float32_mb']:.0f} MB |")
    return "\n".join(rows)
