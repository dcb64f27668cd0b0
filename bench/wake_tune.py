"""`assistant wake-tune` over many short files against the same audio in one file.

Configurations, each in its own process: `one_file` (1,000 s of the fixtures' requests,
looped, as one negative) and `2000_files` (the same audio cut into 2,000 files of 0.5 s);
both with the same one positive. Written once as 16 kHz WAV into the cache outside git.
Reported: wall and CPU time of the whole run after the models load (`tune`, which checks
every file, scores it and sweeps the thresholds), and CPU time per second of audio.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
import soundfile

from assistant.config import Settings
from assistant.hear.audio import RATE_HZ, read_file_audio
from assistant.hear.wake_tune import tune

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assistant" / "bench" / "wake_tune"
CONFIGURATIONS = ("one_file", "2000_files")
_AUDIO_S = 1000
_FILE_S = 0.5


def measure(configuration: str) -> dict:
    folder = labelled_folder(configuration)
    files = sum(1 for _ in folder.rglob("*.wav"))
    wall, cpu = time.perf_counter(), time.process_time()
    tune(folder, Settings(), io.StringIO())
    wall_s, cpu_s = time.perf_counter() - wall, time.process_time() - cpu
    return {"files": files, "audio_s": _AUDIO_S, "wall_s": round(wall_s, 1), "cpu_s": round(cpu_s, 1),
            "cpu_per_audio_s": round(cpu_s / _AUDIO_S, 4)}


def labelled_folder(configuration: str) -> Path:
    """The folder `wake-tune` reads for this configuration, made once into the cache."""
    folder = CACHE / configuration
    if folder.exists():
        return folder
    partial = folder.with_name(f"{folder.name}.partial")
    for name in ("positives", "negatives"):
        (partial / name).mkdir(parents=True, exist_ok=True)
    soundfile.write(partial / "positives" / "wake_time.wav", read_file_audio(ROOT / "fixtures" / "wake_time.wav"),
                    RATE_HZ, subtype="PCM_16")
    audio = _looped_requests()
    pieces = [audio] if configuration == "one_file" else np.split(audio, int(_AUDIO_S / _FILE_S))
    for n, piece in enumerate(pieces):
        soundfile.write(partial / "negatives" / f"{n:05d}.wav", piece, RATE_HZ, subtype="PCM_16")
    partial.rename(folder)
    return folder


def _looped_requests() -> np.ndarray:
    """The fixtures' spoken requests in name order, looped to `_AUDIO_S`."""
    said = np.concatenate([read_file_audio(p) for p in sorted((ROOT / "fixtures").glob("wake_*.wav"))])
    return np.resize(said, _AUDIO_S * RATE_HZ)


def table(results: dict[str, dict]) -> str:
    rows = ["| input | files | audio | wall | CPU | CPU per s of audio |", "|---|---|---|---|---|---|"]
    for configuration, r in results.items():
        rows.append(f"| {configuration.replace('_', ' ')} | {r['files']:,} | {r['audio_s']} s | {r['wall_s']:.0f} s "
                    f"| {r['cpu_s']:.0f} s | {r['cpu_per_audio_s'] * 1000:.1f} ms |")
    return "\n".join(rows)
