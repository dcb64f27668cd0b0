"""Listening that feels instant, measured: how each end-of-turn judge ends commands, on the
same labelled audio, against the fixed silence of before and Home Assistant's sequential way.

Configurations, each in its own process:
- `both` (shipped): at a 0.15 s pause the command so far is transcribed; a template match
  ends it, a finished-looking sentence ends it when smart-turn hears it finished too;
- `both_pause_0.1`, `both_pause_0.2`: the same, asked at a 0.1 s and a 0.2 s pause;
- `smart_turn`: smart-turn v3.2 alone; `transcript`: the words alone;
- `silence`: the fixed 0.7 s silence of before, no speculative transcript;
- `sequential` (HA-like): 0.7 s silence, Whisper's full 30 s window, then the whole
  reply synthesised before any of it plays.

The labelled audio: requests said whole and said with a hesitation (0.6 to 1.0 s, after
"for", "to", "at", ...) after the wake phrase, by the bundled voice, made once and cached
outside git. The truth comes from the generator: the end of the whole command and where
the hesitation lies. A hesitant command is cut when its command ends before the words
after the pause. Times are input-audio time; voice-to-voice counts from the true end.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from assistant.config import Settings, with_changes
from assistant.events import Recorder
from assistant.hear.audio import NullSink, as_stream, file_chunks
from assistant.run.pipeline import replay_pipeline
from assistant.run.stages import for_a_run, load_stages

from .runner import peak_rss_mb
from .turns import HA_LIKE, SequentialTurn, voice_to_voice_from_truth

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assistant" / "bench" / "listening"
CONFIGURATIONS = ("both", "both_pause_0.1", "both_pause_0.2", "smart_turn", "transcript", "silence", "sequential")
_LOCAL_TRY = {"cloud": {"fallback": "local_llm"}}
SETTINGS = {
    "both": {},
    "both_pause_0.1": {"endpoint": {"pause_s": 0.1}},
    "both_pause_0.2": {"endpoint": {"pause_s": 0.2}},
    "smart_turn": {"endpoint": {"end_of_turn": "smart_turn"}},
    "transcript": {"endpoint": {"end_of_turn": "transcript"}},
    "silence": {"endpoint": HA_LIKE["endpoint"]},
    "sequential": HA_LIKE,
}


@dataclass(frozen=True)
class Request:
    text: str
    intent: str | None
    """The skill that answers it; None: a model answers."""
    pause_after: str | None = None
    pause_s: float = 0.0


def _whole_and_hesitant(text: str, intent: str | None, pause_after: str, pause_s: float) -> list[Request]:
    """The request said whole, then with a hesitation after `pause_after`."""
    return [Request(text, intent), Request(text, intent, pause_after, pause_s)]


_FAST = [
    Request("What time is it?", "GetTime"), Request("What's the date today?", "GetDate"),
    Request("What's your name?", "GetName"), Request("What can you do?", "GetHelp"),
    Request("Tell me the time, please.", "GetTime"), Request("Stop.", "Stop"),
    *_whole_and_hesitant("Set a timer for ten minutes.", "SetTimer", "for", 0.6),
    *_whole_and_hesitant("Wake me up at six thirty.", "SetAlarm", "at", 0.8),
    *_whole_and_hesitant("Set the volume to forty percent.", "SetVolume", "to", 1.0),
    *_whole_and_hesitant("What is twelve times nine?", "Calculate", "times", 0.7),
    *_whole_and_hesitant("Set a pasta timer for eight minutes.", "SetTimer", "for", 0.9),
    *_whole_and_hesitant("Set an alarm for seven in the morning.", "SetAlarm", "for", 0.5),
]
_OPEN = [
    Request("Why is the sky blue?", None),
    *_whole_and_hesitant("Tell me a fact about the moon.", None, "about", 0.8),
    *_whole_and_hesitant("What should I cook for dinner tonight?", None, "for", 0.7),
]
REQUESTS = _FAST + _OPEN
_LEAD_S, _GAP_S, _TAIL_S = 1.0, 0.05, 5.0


def measure(configuration: str) -> dict:
    settings = with_changes(with_changes(Settings(), _LOCAL_TRY), SETTINGS[configuration])
    stages = load_stages(settings)
    turn_class = SequentialTurn if configuration == "sequential" else None
    measured: dict[str, list] = {"endpoint_ms": [], "hesitant_endpoint_ms": [], "asr_ms": [], "fast_path_v2v_ms": [],
                                 "open_v2v_ms": []}
    cut, heard_right, decided, each = [], [], 0, []
    for request, path, truth in request_wavs():
        events = _replay(stages, settings, path, turn_class)
        ends = [e for e in events if e.name == "speech_end" and e.speech_end_s is not None]
        if not ends:
            raise RuntimeError(f"{request.text!r}: no command heard: {[e.name for e in events]}")
        end = ends[0]
        decided += end.decided_by is not None
        if request.pause_after:
            was_cut = end.t < truth["speech_end_s"] or len(ends) > 1
            cut.append(was_cut)
            if not was_cut:
                measured["hesitant_endpoint_ms"].append((end.t - truth["speech_end_s"]) * 1000)
        else:
            measured["endpoint_ms"].append((end.t - truth["speech_end_s"]) * 1000)
        transcripts = [e for e in events if e.name == "transcript"]
        if transcripts:
            measured["asr_ms"].append((transcripts[0].t - end.t) * 1000)
        routes = [e for e in events if e.name == "route"]
        if request.intent is not None:
            heard_right.append(len(routes) == 1 and routes[0].intent == request.intent)
        v2v = voice_to_voice_from_truth(events[:events.index(end) + 1] + [e for e in events if e.name == "turn"][:1],
                                        [truth["speech_end_s"]])
        if v2v and (not request.pause_after or not cut[-1]):
            measured["fast_path_v2v_ms" if request.intent else "open_v2v_ms"] += v2v
        each.append({"said": request.text, "pause_s": request.pause_s or None,
                     "endpoint_ms": round((end.t - truth["speech_end_s"]) * 1000), "decided_by": end.decided_by,
                     "heard": [e.text for e in transcripts], "intents": [e.intent for e in routes],
                     "voice_to_voice_ms": v2v[0] if v2v else None})
    return {
        **{name: _spread(values) for name, values in measured.items()},
        "hesitant_cut": f"{sum(cut)} of {len(cut)}",
        "skills_heard_right": f"{sum(heard_right)} of {len(heard_right)}",
        "ended_by_a_judge": f"{decided} of {len(REQUESTS)}",
        "peak_rss_mb": peak_rss_mb(),
        "requests": each,
    }


def _replay(stages, settings: Settings, path: Path, turn_class) -> list:
    recorder = Recorder()
    extra = {} if turn_class is None else {"turn_class": turn_class}
    pipeline = replay_pipeline(for_a_run(stages, settings), settings, recorder, NullSink(), **extra)
    asyncio.run(pipeline.run(as_stream(file_chunks(path))))
    return recorder.events


def request_wavs() -> list[tuple[Request, Path, dict]]:
    """(request, file, truth) for every request, made once with the bundled voice."""
    sys.path.insert(0, str(ROOT / "fixtures"))
    from make_fixtures import (  # the fixtures' own generator
        WAKE_PHRASE,
        Speaker,
        hesitation,
    )

    CACHE.mkdir(parents=True, exist_ok=True)
    speaker = None
    made = []
    for i, request in enumerate(REQUESTS):
        key = hashlib.sha256(repr((request.text, request.pause_after, request.pause_s)).encode()).hexdigest()[:12]
        path = CACHE / f"{key}.wav"
        if not path.exists():
            speaker = speaker or Speaker()
            quiet = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
            pieces = [quiet(_LEAD_S), speaker.say(WAKE_PHRASE, 1.0), quiet(_GAP_S)]
            truth = {}
            if request.pause_after:
                before, rest = hesitation(request.text, request.pause_after)
                pieces.append(speaker.say(before, 1.0))
                truth["pause_start_s"] = sum(map(len, pieces)) / 16000
                pieces.append(quiet(request.pause_s))
                truth["pause_end_s"] = sum(map(len, pieces)) / 16000
                pieces.append(speaker.say(rest, 1.0))
            else:
                pieces.append(speaker.say(request.text, 1.0))
            truth["speech_end_s"] = sum(map(len, pieces)) / 16000
            audio = np.concatenate(pieces + [quiet(_TAIL_S)])
            audio += np.random.default_rng(i).standard_normal(len(audio)).astype(np.float32) * 1e-4
            soundfile.write(path, audio, 16000, subtype="PCM_16")
            path.with_suffix(".json").write_text(json.dumps(truth))
        made.append((request, path, json.loads(path.with_suffix(".json").read_text())))
    return made


def _spread(values: list[float]) -> dict | None:
    if not values:
        return None
    return {"median": round(statistics.median(values), 1), "worst": round(max(values), 1), "n": len(values)}


def _ms(spread: dict | None) -> str:
    return "—" if spread is None else f"{spread['median']:.0f} / {spread['worst']:.0f} ms"


def table(results: dict[str, dict]) -> str:
    rows = ["| median / worst | " + " | ".join(CONFIGURATIONS) + " |", "|---" * (len(CONFIGURATIONS) + 1) + "|"]
    lines = [("true end of speech to `speech_end`, whole commands", "endpoint_ms"),
             ("the same, hesitant commands not cut", "hesitant_endpoint_ms"),
             ("`speech_end` to `transcript`", "asr_ms"),
             ("fast-path voice to voice", "fast_path_v2v_ms"),
             ("local LLM voice to voice", "open_v2v_ms")]
    for label, key in lines:
        rows.append(f"| {label} | " + " | ".join(_ms(results[c][key]) for c in CONFIGURATIONS) + " |")
    for label, key in (("hesitant commands cut", "hesitant_cut"), ("skill requests heard right", "skills_heard_right"),
                       ("commands a judge ended early", "ended_by_a_judge")):
        rows.append(f"| {label} | " + " | ".join(results[c][key] for c in CONFIGURATIONS) + " |")
    base = results["sequential"]["fast_path_v2v_ms"]["median"]
    rows.append("| fast-path voice to voice against sequential | "
                + " | ".join(f"{results[c]['fast_path_v2v_ms']['median'] / base:.2f}" for c in CONFIGURATIONS) + " |")
    rows.append("| peak RSS | " + " | ".join(f"{results[c]['peak_rss_mb']:.0f} MB" for c in CONFIGURATIONS) + " |")
    return "\n".join(rows)
