"""Where the resident memory goes: each model alone, in a fresh process, loaded and then used.

Each configuration is one stage of the default configuration, in its own process, measured
at four points: Python with numpy and the settings (`base`), the stage's libraries imported,
its model loaded, and after using it as turns do (warm-up: the buffers a first inference and
a few more fill in). `all` is the whole pipeline as the daemon loads it, then the fixtures
with a wake word replayed through it twice (as `bench soak` does for an hour).

Memory is /proc/self/smaps_rollup's: resident (RSS), split into anonymous (heaps, malloc
arenas, the libraries' own allocators, the Python objects) and file-backed (the mapped
libraries and mmapped model files, as far as their pages were touched; RSS counts those).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from assistant.config import Settings, with_changes
from assistant.hear.audio import AudioChunk
from assistant.run.memory import release

from .runner import memory

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CONFIGURATIONS = ("python", "wake", "vad", "smart_turn", "asr", "llm", "tts", "skills", "all")
COMMANDS = ("wake_time.wav", "wake_pause_llm_slow.wav", "wake_timer_whole.wav", "wake_two_turns_noisy.wav")
"""Fixtures whose audio is recognised (as a command) by the `asr` and `smart_turn` stages."""
QUESTIONS = ("Why is the sky blue?", "How are you today?", "Tell me something about the moon.",
             "What should I cook for dinner?")
REPLIES = ("It's 4:05 PM.", "Timer set for 10 minutes.",
           "The sky looks blue because air scatters short blue light from the sun more than red light. "
           "That scattered light reaches your eyes from every direction.",
           "I'm doing well, thank you for asking! How can I help you today?")
TRANSCRIPTS = ("what time is it", "set a timer for ten minutes", "cancelled the timer", "why is the sky blue",
               "add milk to the shopping list", "turn the volume down a bit", "what's the date today")


def measure(configuration: str) -> dict:
    settings = with_changes(Settings(), {"cloud": {"fallback": "local_llm"}})
    points = {"base": memory()}
    use = _STAGES[configuration](settings, points)
    if use is not None:  # `all` uses itself
        for _ in range(3):  # warm-up: a first use, then enough for its buffers to settle
            use()
            release()  # as the pipeline does after each turn
        points["warm"] = memory()
        for _ in range(3):
            use()
            release()
        points["steady"] = memory()
    return {"points": points, "threads": _threads()}


def loaded() -> dict:
    """Memory once a model is loaded, after `release` (as load_stages ends)."""
    release()
    return memory()


def _python(settings: Settings, points: dict):
    return None


def _wake(settings: Settings, points: dict):
    from assistant.hear.audio import file_chunks
    from assistant.run import stages

    points["imported"] = memory()
    wake, own_voice = stages.load_wake(settings), stages.load_own_voice(settings)
    points["loaded"] = loaded()
    chunks = [c for name in COMMANDS for c in file_chunks(FIXTURES / name)]

    def use() -> None:
        for chunk in chunks:
            wake.process(chunk, armed=True, own_voice=False)
            own_voice.wake_like(chunk)
    return use


def _vad(settings: Settings, points: dict):
    from assistant import models
    from assistant.hear.audio import file_chunks
    from assistant.hear.endpoint import VoiceActivity

    points["imported"] = memory()
    vad = VoiceActivity(models.vad_model(settings.endpoint.vad_model), settings.endpoint.threads)
    points["loaded"] = loaded()
    chunks = [c for name in COMMANDS for c in file_chunks(FIXTURES / name)]
    return lambda: [vad.probability(c) for c in chunks]


def _commands() -> list[np.ndarray]:
    from assistant.hear.audio import iter_file_audio

    return [np.concatenate(list(iter_file_audio(FIXTURES / name))) for name in COMMANDS]


def _smart_turn(settings: Settings, points: dict):
    from assistant import models
    from assistant.hear.turn_detector import SmartTurn

    points["imported"] = memory()
    model = SmartTurn(models.turn_model(settings.endpoint.turn_model), settings.endpoint.threads)
    points["loaded"] = loaded()
    audio = _commands()
    return lambda: [model.probability(a) for a in audio]


def _asr(settings: Settings, points: dict):
    import faster_whisper  # noqa: F401  (imported apart from loading, to tell the two apart)

    from assistant.run import stages
    points["imported"] = memory()
    asr = stages.load_asr(settings)
    points["loaded"] = loaded()
    audio = _commands()
    return lambda: [asr.recognize(a) for a in audio]


def _llm(settings: Settings, points: dict):
    import threading

    import llama_cpp  # noqa: F401

    from assistant import models
    from assistant.understand.llm import LocalLlm
    points["imported"] = memory()
    llm = LocalLlm(models.llm_model(settings.llm.model), settings.llm,
                   chat_format=models.llm_chat_format(settings.llm.model))
    points["loaded"] = loaded()
    llm.warm()
    points["prompt_evaluated"] = memory()
    return lambda: [list(llm.sentences(q, threading.Event())) for q in QUESTIONS]


def _tts(settings: Settings, points: dict):
    import piper  # noqa: F401

    from assistant.run import stages
    points["imported"] = memory()
    tts = stages.load_tts(settings)
    points["loaded"] = loaded()
    return lambda: [list(tts.synthesize(r)) for r in REPLIES]


def _skills(settings: Settings, points: dict):
    """The templates (hassil) and the near matcher's written-out sentences (rapidfuzz)."""
    from assistant.run import stages

    points["imported"] = memory()
    skills = stages.load_skills()
    points["templates"] = memory()
    router = stages.load_router(skills, None, stages.load_cloud(settings))
    points["loaded"] = loaded()
    return lambda: [router.route(t) for t in TRANSCRIPTS]


def _all(settings: Settings, points: dict):
    """The whole pipeline, loaded as the daemon loads it; its use is one replay (one pipeline,
    as the daemon runs) of the fixtures with a wake word back to back (about 7 minutes of
    audio) for the warm-up, then once more."""
    from assistant.events import Recorder
    from assistant.hear.audio import NullSink
    from assistant.run.pipeline import replay_pipeline
    from assistant.run.stages import load_stages
    from assistant.run.worker import _STEPS

    from .soak import a_day_at_home

    points["imported"] = memory()
    stages = load_stages(settings)
    points["loaded"] = loaded()
    pipeline = replay_pipeline(stages, settings, Recorder(), NullSink())
    day = sum(entry["duration_s"] for entry in MANIFEST.values() if not entry["ptt"])

    async def passes() -> AsyncIterator[AudioChunk]:
        async for chunk in a_day_at_home([], 0.0, audio_s=2 * day):
            if chunk.timestamp_s >= day and "warm" not in points:
                points["warm"] = memory()
            yield chunk
    asyncio.run(pipeline.run(passes()))
    _STEPS.submit(lambda: None).result()  # the last turn's release_memory has run
    points["steady"] = memory()
    return None


_STAGES = {"python": _python, "wake": _wake, "vad": _vad, "smart_turn": _smart_turn, "asr": _asr, "llm": _llm,
           "tts": _tts, "skills": _skills, "all": _all}


def _threads() -> int:
    """Threads in the process now (native libraries' pools included)."""
    return len(list(Path("/proc/self/task").iterdir()))


def table(results: dict) -> str:
    """Per stage: what its libraries, its model and its use add (anonymous + file-backed)."""
    base = results["python"]["points"]["base"]
    rows = [f"Python, numpy and the settings: {base['rss_mb']:.0f} MB resident "
            f"({base['anon_mb']:.0f} anonymous, {base['file_mb']:.0f} file-backed)", "",
            "| stage | libraries imported | model loaded | used (warm) | steady | stage alone (RSS) | "
            "of which anonymous / file | threads |",
            "|---|---|---|---|---|---|---|---|"]

    def added(after: dict, before: dict) -> str:
        return (f"+{after['rss_mb'] - before['rss_mb']:.1f} "
                f"({after['anon_mb'] - before['anon_mb']:+.1f} / {after['file_mb'] - before['file_mb']:+.1f})")

    for name, result in results.items():
        p = result["points"]
        if name == "python":
            continue
        steps = [p["base"], p["imported"], p["loaded"], p["warm"], p["steady"]]
        alone = {k: p["steady"][k] - p["base"][k] for k in ("rss_mb", "anon_mb", "file_mb")}
        rows.append(f"| {name} | " + " | ".join(added(b, a) for a, b in zip(steps, steps[1:]))
                    + f" | {alone['rss_mb']:.1f} | {alone['anon_mb']:.1f} / {alone['file_mb']:.1f} "
                    f"| {result['threads']} |")
    rows.append("")
    rows.append("MB; each step's RSS added (anonymous / file-backed). `all` is the whole pipeline: its "
                "steady RSS is " + f"{results['all']['points']['steady']['rss_mb']:.0f} MB, "
                f"peak {results['all']['points']['steady']['peak_mb']:.0f} MB.")
    return "\n".join(rows)
