"""Shared fixtures: the real models loaded once, and a helper that replays a fixture file."""

from __future__ import annotations

import asyncio
import json
import os
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from assistant.config import Settings, with_changes
from assistant.events import Event, Recorder
from assistant.hear.audio import WavSink, as_stream, file_chunks
from assistant.run.engine import Engine
from assistant.run.pipeline import replay_pipeline
from assistant.run.stages import Stages, for_a_run
from assistant.store.reminders import ReminderStore
from assistant.understand.router import Router
from assistant.understand.skills import SkillRequest, load_skills
from bench.live import missing_tools, private_pulseaudio

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
JFK = ROOT.parent / "shared" / "audio" / "jfk.flac"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())


@dataclass
class Replayed:
    events: list[Event]
    reply_wav: Path

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]

    def reply_seconds(self) -> float:
        with wave.open(str(self.reply_wav)) as w:
            return w.getnframes() / w.getframerate()


def heard_most_of_the_reply(recording: Path, events: list[dict]) -> bool:
    """The speaker recording holds most of what the reply played. "It's 3:05 PM." is about a
    second long and its length follows the clock, so no fixed length will do."""
    from bench.live import loud_seconds

    played_s = next(e for e in events if e["event"] == "tts_end")["played_s"]
    return played_s > 0.5 and loud_seconds(recording) > 0.7 * played_s


def skill_answer(router: Router, text: str, intent: str) -> str:
    """The reply of the skill `text` must reach on the fast path."""
    decision = router.route(text)
    assert (decision.tier, decision.intent) == ("fast_path", intent), text
    reply = router.whole_reply(decision, SkillRequest())
    assert reply is not None
    return reply


@pytest.fixture(scope="session")
def router() -> Router:
    """The skills' router alone: templates and handlers, no model; named as by default."""
    return Router(*load_skills(), llm=None, wake_words=("Hey Jarvis",))


@pytest.fixture
def store() -> ReminderStore:
    """A fresh reminder store in memory."""
    return ReminderStore(":memory:")


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    """Every model, loaded once for the whole test run."""
    return Engine.load(settings)


@pytest.fixture(scope="session")
def stages(engine: Engine) -> Stages:
    """One stream's stages on the engine, as the daemon's microphone has."""
    return engine.stream_stages()


@pytest.fixture(scope="session")
def replay(stages: Stages, settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    """Replay a file through the real pipeline, as `assistant replay` does; results cached per file.

    `echo_db`: the replies are mixed into the input (`replay --echo`); `changed`: settings
    that differ from the defaults, as {section: {key: value}}; `started_at`: the time of day
    the file begins at; `reminders`: timers and alarms set before it begins."""
    done: dict[tuple, Replayed] = {}

    def run(path: Path, ptt: bool = False, echo_db: float | None = None, changed: dict | None = None,
            started_at: datetime | None = None, reminders: ReminderStore | None = None) -> Replayed:
        key = (path, ptt, echo_db, repr(changed), started_at, id(reminders))
        if key not in done:
            these = with_changes(settings, changed or {})
            fresh = for_a_run(stages, these)
            recorder = Recorder()
            out = tmp_path_factory.mktemp("replay") / "reply.wav"
            sink = WavSink(out, fresh.tts.rate_hz)
            pipeline = replay_pipeline(fresh, these, recorder, sink, echo_db=echo_db, started_at=started_at,
                                       reminders=reminders)
            try:
                asyncio.run(pipeline.run(as_stream(file_chunks(path)), ptt=ptt))
            finally:
                if fresh.home is not stages.home:
                    fresh.close()
            sink.close()
            done[key] = Replayed(recorder.events, out)
        return done[key]

    return run


@pytest.fixture(scope="session")
def pulse(tmp_path_factory):
    """Environment variables that point a process at a fresh PulseAudio server (and a private state directory)."""
    missing = missing_tools()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"live-audio tests need {', '.join(missing)} (scripts/test installs them as root)")
        pytest.skip(f"needs {', '.join(missing)}")
    with private_pulseaudio(tmp_path_factory.mktemp("pulse-runtime")) as env:
        yield {**env, "STATE_DIRECTORY": str(tmp_path_factory.mktemp("state"))}


@pytest.fixture(scope="session")
def home_assistant(tmp_path_factory):
    """A real Home Assistant core serving the test house (tests/home_assistant.py), on loopback,
    onboarded, with a long-lived token; started once per session and stopped at its end.

    Its first use installs Home Assistant into ~/.cache/assistant (about 3 minutes, once).
    A test that stops it starts it again itself; or a test asks for `home_assistant_up`,
    which starts it again if an earlier test left it stopped."""
    from home_assistant import HomeAssistant, missing

    needs = missing()
    if needs:
        if os.environ.get("CI"):
            pytest.fail(f"Home Assistant tests need {', '.join(needs)}")
        pytest.skip(f"needs {', '.join(needs)}")
    server = HomeAssistant(tmp_path_factory.mktemp("home-assistant"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def home_assistant_up(home_assistant):
    """The session's Home Assistant, running: started again if an earlier test stopped it."""
    home_assistant.ensure_running()
    return home_assistant
