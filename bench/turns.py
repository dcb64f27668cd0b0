"""Turns that never stop the ears, measured: answers that stream against answers that don't.

Configurations, each in its own process:
- `streaming`: the shipped pipeline. The answer streams as sentences into speech.
- `sequential`: the same models and audio, answered as Home Assistant's pipeline does:
  a fixed 0.7 s silence, the whole transcript (Whisper's 30 s window), the whole reply,
  the whole synthesis, then playback.
- `llm_prompt_cache`: the local LLM's time to the first token with the system prompt's
  evaluated state kept, and with it dropped before each request.
- `live`: the daemon on a private PulseAudio: barge-in (the stop to the last frame heard),
  input lag while a turn thinks and speaks, and the exit time after SIGTERM mid-reply.

The requests are spoken by the bundled voice after the wake phrase and followed by
silence, so the endpointer works as it does live; they are made once and cached outside
git. Voice-to-voice is measured from the generator's true end of speech.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile

from assistant.config import Settings, with_changes
from assistant.events import Recorder, Route, Transcript
from assistant.hear.audio import NullSink, as_stream, file_chunks
from assistant.run.pipeline import replay_pipeline
from assistant.run.stages import Stages, for_a_run, load_stages
from assistant.run.turn import Turn
from assistant.run.worker import in_thread, timed

from .runner import peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATIONS = ("streaming", "sequential", "llm_prompt_cache", "own_voice", "live")
ECHO_DB = (-12.0, -6.0, 0.0, 6.0)
"""The reply's level at the microphone against the level it was synthesised at."""
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assistant" / "bench" / "turns"

REQUESTS = {
    "fast_path": ["What time is it?", "What's the date today?", "What day is it today?", "Tell me the time, please.",
                  "What's your name?", "What can you do?", "What's the time right now?", "Who are you?"],
    "local_llm": ["Why is the sky blue?", "Tell me something interesting about the moon.",
                  "How do bees make honey?", "Tell me a long story about a brave little dragon.",
                  "What should I cook for dinner tonight?", "Why do cats purr?",
                  "Give me a tip for sleeping better.", "How far away is the sun?"],
}
_LEAD_S, _GAP_S, _TAIL_S = 1.0, 0.3, 6.0


HA_LIKE = {"endpoint": {"end_of_turn": "silence", "silence_s": 0.7}, "asr": {"min_window_s": 30.0}}
"""Settings for Home Assistant's way: a fixed 0.7 s silence, Whisper's whole 30 s window."""


def local_answers() -> Settings:
    """The defaults, but what belongs in the cloud (most of the questions above) is tried by the
    local LLM, as `cloud.fallback = "local_llm"` has it: this benchmark measures the LLM's turns."""
    return with_changes(Settings(), {"cloud": {"fallback": "local_llm"}})


def measure(configuration: str) -> dict:
    if configuration == "llm_prompt_cache":
        return _prompt_cache()
    if configuration == "live":
        return _live()
    if configuration == "own_voice":
        return _own_voice()
    if configuration == "sequential":
        return _voice_to_voice(SequentialTurn, with_changes(local_answers(), HA_LIKE))
    return _voice_to_voice(Turn, local_answers())


class SequentialTurn(Turn):
    """The obvious alternative: nothing is spoken until the whole reply is synthesised."""

    async def _compute(self) -> None:
        text, self.stages_ms["asr"] = await timed(self.stages.asr.transcribe, self.command.audio)
        self.events.emit(Transcript(t=self.input_time(), text=text, asr_ms=self.stages_ms["asr"]))
        if not text:
            return
        self.outcome_if_silent = "answered"
        route, self.stages_ms["route"] = await timed(self.stages.router.route, text)
        self.events.emit(Route(t=self.input_time(), tier=route.tier, intent=route.intent, fallback=route.fallback,
                               reason=route.reason, slots=route.slots))
        started = time.perf_counter()
        reply = self.stages.router.whole_reply(route, self.skill_request())
        if reply is None:
            reply = " ".join(await in_thread(lambda: list(self.stages.router.streamed_reply(text, threading.Event()))))
        self.stages_ms[route.answered_by] = round((time.perf_counter() - started) * 1000, 1)
        self._replied(reply, route)
        chunks, self.stages_ms["tts"] = await timed(lambda: list(self.stages.tts.synthesize(reply)))
        for chunk in chunks:
            if not self.spoke:
                self._first_audio()
            self.player.play(chunk)
            self.synthesized_s += chunk.duration_s


def request_wavs() -> list[tuple[str, str, Path, float]]:
    """(tier, text, file, true end of speech) for every request, made once with the bundled voice."""
    sys.path.insert(0, str(ROOT / "fixtures"))
    from make_fixtures import WAKE_PHRASE, Speaker  # the fixtures' own generator

    CACHE.mkdir(parents=True, exist_ok=True)
    speaker = None
    made = []
    for tier, texts in REQUESTS.items():
        for text in texts:
            path = CACHE / f"{hashlib.sha256(text.encode()).hexdigest()[:12]}.wav"
            rng = np.random.default_rng(len(made))
            if not path.exists():
                speaker = speaker or Speaker()
                pieces = [np.zeros(int(_LEAD_S * 16000), np.float32), speaker.say(WAKE_PHRASE, 1.0),
                          np.zeros(int(_GAP_S * 16000), np.float32), speaker.say(text, 1.0)]
                speech = np.concatenate(pieces)
                audio = np.concatenate([speech, np.zeros(int(_TAIL_S * 16000), np.float32)])
                audio += rng.standard_normal(len(audio)).astype(np.float32) * 1e-4
                soundfile.write(path, audio, 16000, subtype="PCM_16")
                path.with_suffix(".end").write_text(f"{len(speech) / 16000:.3f}\n")
            made.append((tier, text, path, float(path.with_suffix(".end").read_text())))
    return made


def _voice_to_voice(turn_class: type[Turn], settings: Settings) -> dict:
    stages = load_stages(settings)
    by_tier: dict[str, list[float]] = {}
    stage_ms: dict[str, list[float]] = {}
    for tier, text, path, true_end_s in request_wavs():
        events = _replay(stages, settings, path, turn_class)
        measured = voice_to_voice_from_truth(events, [true_end_s])
        if len(measured) != 1:
            raise RuntimeError(f"{text!r}: expected one answered turn, got {[e.name for e in events]}")
        by_tier.setdefault(tier, []).append(measured[0])
        for turn in (e for e in events if e.name == "turn"):
            for stage, ms in turn.stages_ms.items():
                stage_ms.setdefault(stage, []).append(ms)
    return {
        "voice_to_voice_ms": {tier: _spread(values) for tier, values in by_tier.items()},
        "stage_ms_median": {k: round(statistics.median(v), 1) for k, v in sorted(stage_ms.items())},
        "requests": {tier: len(texts) for tier, texts in REQUESTS.items()},
        "peak_rss_mb": peak_rss_mb(),
    }


def first_token_ms(llm, texts: list[str]) -> dict[str, list[float]]:
    """The LLM's time to its first token for each text, with the system prompt's evaluated
    state kept ("kept", as the assistant runs) and dropped before each request ("dropped")."""
    measured: dict[str, list[float]] = {"kept": [], "dropped": []}
    for text in texts:
        for state in ("dropped", "kept"):
            if state == "dropped":
                llm.forget()
            else:
                llm.warm()
            started = time.perf_counter()
            list(llm.tokens(text, threading.Event(), max_tokens=1))
            measured[state].append((time.perf_counter() - started) * 1000)
    return measured


def voice_to_voice_from_truth(events: list, true_ends_s: list[float]) -> list[float]:
    """Each spoken turn's voice-to-voice time, counted from the generator's true end of speech.

    The turn's own figure counts from the last speech the VAD heard; the commands heard
    (speech_end with speech) pair in order with the true ends.
    """
    measured, true_ends, heard_end_s = [], iter(true_ends_s), None
    for event in events:
        if event.name == "speech_end" and event.speech_end_s is not None:
            heard_end_s, true_end_s = event.speech_end_s, next(true_ends)
        elif event.name == "turn" and heard_end_s is not None:
            if event.voice_to_voice_ms is not None:
                measured.append(event.voice_to_voice_ms + (heard_end_s - true_end_s) * 1000)
            heard_end_s = None
    return measured


def _replay(stages: Stages, settings: Settings, path: Path, turn_class: type[Turn],
            echo_db: float | None = None) -> list:
    recorder = Recorder()
    fresh = for_a_run(stages, settings)  # no wake state carried over; the guard as these settings say
    pipeline = replay_pipeline(fresh, settings, recorder, NullSink(), turn_class=turn_class, echo_db=echo_db)
    asyncio.run(pipeline.run(as_stream(file_chunks(path))))
    return recorder.events


def _own_voice() -> dict:
    """False barge-ins from the assistant's own voice, with the guard and without, by echo level;
    and whether a person's wake word during a reply still cuts it with that echo in the room."""
    settings = local_answers()
    stages = load_stages(settings)
    unguarded = dataclasses.replace(settings, conversation=dataclasses.replace(
        settings.conversation, own_voice_guard=False))
    fixtures = ROOT / "fixtures"
    results: dict[str, dict] = {"false_wakes": {}, "barge_ins": {}}
    for echo_db in ECHO_DB:
        for label, these in (("guarded", settings), ("unguarded", unguarded)):
            events = _replay(stages, these, fixtures / "wake_name_reply.wav", Turn, echo_db)
            results["false_wakes"].setdefault(label, {})[str(echo_db)] = sum(e.name == "wake" for e in events) - 1
            cut = 0
            for name in ("wake_interrupts_reply.wav", "wake_interrupts_llm_reply.wav"):
                events = _replay(stages, these, fixtures / name, Turn, echo_db)
                cut += any(e.name == "turn" and e.outcome == "interrupted" for e in events)
            results["barge_ins"].setdefault(label, {})[str(echo_db)] = f"{cut} of 2"
    return results


def _spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 1), "worst": round(max(values), 1), "n": len(values)}


def _prompt_cache() -> dict:
    """Time to the first token of each LLM request, with and without the kept system prompt."""
    settings = local_answers()
    stages = load_stages(settings)
    llm = stages.llm
    assert llm is not None
    first_token = first_token_ms(llm, REQUESTS["local_llm"])
    return {"first_token_ms": {state: _spread(v) for state, v in first_token.items()},
            "peak_rss_mb": peak_rss_mb()}


def _live() -> dict:
    """The daemon on a real sound server, three times over: barge-in, input lag, SIGTERM."""
    from .live import Daemon, missing_tools, private_pulseaudio, with_trailing_silence

    if missing_tools():
        return {"skipped": f"needs {', '.join(missing_tools())}"}
    stop_ms, input_lag_ms, exit_s = [], [], []
    fixture = ROOT / "fixtures" / "wake_interrupts_llm_reply.wav"
    with tempfile.TemporaryDirectory() as tmp, private_pulseaudio(Path(tmp)) as env:
        played = with_trailing_silence(fixture, 8.0, Path(tmp) / "played.wav")
        for _ in range(3):
            with Daemon(env) as daemon:
                player = _hear(daemon, env, played)
                events = daemon.events_until(lambda e: e["event"] == "turn" and e["outcome"] == "answered", 90)
                daemon.terminate(timeout_s=10)
                player.wait(timeout=60)
            cuts = [e for e in events if e["event"] == "tts_end" and e["interrupted"]]
            if not cuts:
                raise RuntimeError(f"the wake word did not cut the reply: {events}")
            stop_ms.append(cuts[0]["stop_ms"])
            input_lag_ms += [e["input_lag_ms"] for e in events if e["event"] == "turn" and e["input_lag_ms"]]
            with Daemon(env) as daemon:
                player = _hear(daemon, env, played)
                daemon.events_until(lambda e: e["event"] == "tts_start", 60)
                status, seconds = daemon.terminate(timeout_s=10)
                player.kill()
            exit_s.append(seconds if status == 0 else float("inf"))
    return {"barge_in_stop_ms": _spread(stop_ms), "input_lag_ms": _spread(input_lag_ms),
            "sigterm_exit_s": _spread(exit_s), "runs": 3}


def _hear(daemon, env: dict, played: Path):
    """Once the daemon listens, play a file into its room."""
    from .live import play_into_room

    daemon.wait_until_listening()
    return play_into_room(env, played)


def table(results: dict[str, dict]) -> str:
    streaming, sequential = results["streaming"], results["sequential"]
    rows = ["| voice to voice, from the true end of speech | streaming (shipped) | sequential (HA-like) | ratio |",
            "|---|---|---|---|"]
    for tier in REQUESTS:
        ours, theirs = streaming["voice_to_voice_ms"][tier], sequential["voice_to_voice_ms"][tier]
        rows.append(f"| {tier}, median / worst ({ours['n']} requests) | {ours['median']:.0f} / {ours['worst']:.0f} ms "
                    f"| {theirs['median']:.0f} / {theirs['worst']:.0f} ms | {ours['median'] / theirs['median']:.2f} |")
    gap = streaming["voice_to_voice_ms"]["local_llm"]["median"] - streaming["voice_to_voice_ms"]["fast_path"]["median"]
    rows.append(f"| local LLM median minus fast path median | {gap:.0f} ms | | |")
    cache = results["llm_prompt_cache"]["first_token_ms"]
    rows += ["", "| measure | median | worst |", "|---|---|---|",
             f"| LLM first token, system prompt kept | {cache['kept']['median']:.0f} ms | {cache['kept']['worst']:.0f} ms |",
             f"| LLM first token, system prompt evaluated again | {cache['dropped']['median']:.0f} ms "
             f"| {cache['dropped']['worst']:.0f} ms |"]
    live = results["live"]
    if "skipped" in live:
        rows.append(f"| live figures | skipped: {live['skipped']} | |")
    else:
        rows += [f"| barge-in: stop to the last frame heard, live | {live['barge_in_stop_ms']['median']:.0f} ms "
                 f"| {live['barge_in_stop_ms']['worst']:.0f} ms |",
                 f"| input lag while a turn thinks and speaks, live (per turn, worst block) "
                 f"| {live['input_lag_ms']['median']:.0f} ms | {live['input_lag_ms']['worst']:.0f} ms |",
                 f"| exit after SIGTERM mid-reply, live | {live['sigterm_exit_s']['median']:.2f} s "
                 f"| {live['sigterm_exit_s']['worst']:.2f} s |"]
    rows.append(f"| peak RSS, whole pipeline | {streaming['peak_rss_mb']} MB | |")
    own = results["own_voice"]
    rows += ["", "| reply echo at the microphone | " + " | ".join(f"{db:+.0f} dB" for db in ECHO_DB) + " |",
             "|---" * (len(ECHO_DB) + 1) + "|"]
    for label in ("guarded", "unguarded"):
        rows.append(f"| false wakes from \"...just say: Hey Jarvis!\", {label} | "
                    + " | ".join(str(own["false_wakes"][label][str(db)]) for db in ECHO_DB) + " |")
    for label in ("guarded", "unguarded"):
        rows.append(f"| a person's wake word during a reply cuts it, {label} | "
                    + " | ".join(own["barge_ins"][label][str(db)] for db in ECHO_DB) + " |")
    return "\n".join(rows)
