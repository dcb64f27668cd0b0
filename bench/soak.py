"""An hour of audio through the daemon's pipeline: does memory stay flat?

The fixtures with a wake word (questions, LLM answers, interruptions, timers that ring,
noise, silence) are played back to back, on one input clock, into one pipeline, as a
day at home would be; replay's clock keeps the turns' timing, so the turns, players,
threads and caches behave as live. Resident memory is read every five minutes of audio
(anonymous and file-backed apart, and the peak so far). Goals: less than 20 MB of growth
over the hour (issue 13); at most 500 MB resident after the warm-up (issue 24).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from assistant.config import Settings, with_changes
from assistant.events import Recorder
from assistant.hear.audio import AudioChunk, NullSink, file_chunks
from assistant.run.pipeline import replay_pipeline
from assistant.run.stages import load_stages

from .runner import memory

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CONFIGURATIONS = ("hour",)
AUDIO_S = 3600.0
SAMPLE_EVERY_S = 300.0


def rss_mb() -> float:
    """Resident memory now (not the peak): /proc's page count times the page size."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


async def a_day_at_home(samples: list[dict], started: float, audio_s: float = AUDIO_S) -> AsyncIterator[AudioChunk]:
    """The wake fixtures, back to back until an hour of audio; samples memory as it goes."""
    names = [n for n, entry in MANIFEST.items() if not entry["ptt"]]
    offset_s, next_sample_s = 0.0, 0.0
    while offset_s < audio_s:
        for name in names:
            for chunk in file_chunks(FIXTURES / name):
                chunk = dataclasses.replace(chunk, timestamp_s=offset_s + chunk.timestamp_s)
                if chunk.timestamp_s >= next_sample_s:
                    samples.append({"audio_s": round(chunk.timestamp_s), **memory(),
                                    "wall_s": round(time.perf_counter() - started, 1)})
                    next_sample_s += SAMPLE_EVERY_S
                yield chunk
            offset_s = chunk.end_s
            if offset_s >= audio_s:
                break


def measure(_configuration: str) -> dict:
    settings = with_changes(Settings(), {"cloud": {"fallback": "local_llm"}})  # the LLM answers, as it may
    stages = load_stages(settings)
    loaded_mb = rss_mb()
    recorder = Recorder()
    pipeline = replay_pipeline(stages, settings, recorder, NullSink())
    samples: list[dict] = []
    started = time.perf_counter()
    asyncio.run(pipeline.run(a_day_at_home(samples, started)))
    samples.append({"audio_s": round(pipeline.now_t), **memory(),
                    "wall_s": round(time.perf_counter() - started, 1)})
    turns = [e for e in recorder.events if e.name == "turn"]
    return {"audio_s": round(pipeline.now_t, 1), "wall_s": round(time.perf_counter() - started, 1),
            "turns": len(turns), "answered": sum(t.outcome == "answered" for t in turns),
            "interrupted": sum(t.outcome == "interrupted" for t in turns),
            "announcements": sum(e.name == "announcement" for e in recorder.events),
            "errors": sum(e.name == "error" for e in recorder.events),
            "rss_loaded_mb": loaded_mb, "peak_mb": samples[-1]["peak_mb"],
            "rss_first_mb": samples[0]["rss_mb"], "rss_last_mb": samples[-1]["rss_mb"],
            "growth_mb": round(samples[-1]["rss_mb"] - samples[0]["rss_mb"], 1),
            "growth_after_5_min_mb": round(samples[-1]["rss_mb"] - samples[1]["rss_mb"], 1), "samples": samples}


def table(results: dict) -> str:
    r = results["hour"]
    lines = ["| audio | wall | turns (answered / interrupted) | timers rung | errors | RSS loaded | "
             "RSS at 0 min | RSS at the end | growth | growth after 5 min | peak RSS |",
             "|---|---|---|---|---|---|---|---|---|---|---|",
             f"| {r['audio_s'] / 60:.0f} min | {r['wall_s'] / 60:.1f} min | {r['turns']} ({r['answered']} / "
             f"{r['interrupted']}) | {r['announcements']} | {r['errors']} | {r['rss_loaded_mb']} MB | "
             f"{r['rss_first_mb']} MB | {r['rss_last_mb']} MB | {r['growth_mb']:+} MB | "
             f"{r['growth_after_5_min_mb']:+} MB | {r.get('peak_mb', '?')} MB |",
             "", "| audio (min) | " + " | ".join(str(s["audio_s"] // 60) for s in r["samples"]) + " |",
             "|---|" + "---|" * len(r["samples"]),
             "| RSS (MB) | " + " | ".join(str(s["rss_mb"]) for s in r["samples"]) + " |"]
    if "anon_mb" in r["samples"][0]:
        lines += ["| of which anonymous | " + " | ".join(str(s["anon_mb"]) for s in r["samples"]) + " |",
                  "| of which file-backed | " + " | ".join(str(s["file_mb"]) for s in r["samples"]) + " |"]
    return "\n".join(lines)
