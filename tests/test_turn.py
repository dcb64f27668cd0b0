"""A skill runs behind a firm boundary: one that fails or hangs costs its own turn, never the session."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from conftest import FIXTURES

from assistant.config import with_changes
from assistant.events import Recorder
from assistant.hear.audio import NullSink, as_stream, file_chunks
from assistant.run.pipeline import replay_pipeline
from assistant.run.stages import for_a_run, load_router

TWO_TURNS = FIXTURES / "wake_two_turns_noisy.wav"
""""What time is it?", then "What day is it today?"."""


def _replay_with_clock_skill(stages, settings, skill, changed=None):
    """The two turns replayed with `skill` answering "what time is it"; the events, by name."""
    these = with_changes(settings, changed or {})
    fresh = for_a_run(stages, these)
    router = fresh.router
    skills = {**router.skills, "GetTime": skill}
    fresh = replace(fresh, router=load_router((router.intents, skills), fresh.llm, fresh.cloud, router.mapper,
                                              fresh.home, router.own))
    recorder = Recorder()
    pipeline = replay_pipeline(fresh, these, recorder, NullSink())
    asyncio.run(pipeline.run(as_stream(file_chunks(TWO_TURNS))))
    return recorder.events


def _named(events, name):
    return [event for event in events if event.name == name]


def test_a_skill_that_raises_ends_its_turn_in_an_error_and_the_next_turn_is_answered(stages, settings):
    def broken(request):
        raise RuntimeError("a bug in the clock skill")

    events = _replay_with_clock_skill(stages, settings, broken)
    (error,) = _named(events, "error")
    assert (error.stage, error.code) == ("skill", "skill_failed") and "a bug in the clock skill" in error.message
    assert [turn.outcome for turn in _named(events, "turn")] == ["error", "answered"]
    first, second = _named(events, "reply")
    assert first.text.startswith("Sorry")  # the failure is said, not left silent
    assert second.text.startswith("Today is")


def test_a_skill_past_its_deadline_is_given_up_and_the_next_turn_is_answered(stages, settings):
    released = threading.Event()

    def stuck(request):
        released.wait(timeout=30)  # far past the deadline; released once the test has its events
        return "It's too late."

    try:
        events = _replay_with_clock_skill(stages, settings, stuck, {"conversation": {"skill_timeout_s": 3.0}})
    finally:
        released.set()
    (error,) = _named(events, "error")
    assert (error.stage, error.code) == ("skill", "skill_timeout")
    assert [turn.outcome for turn in _named(events, "turn")] == ["error", "answered"]
    assert "took too long" in _named(events, "reply")[0].text
