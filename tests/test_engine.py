"""One engine, many sessions: streams share the loaded models and keep their own state."""

from __future__ import annotations

import asyncio

from conftest import FIXTURES, MANIFEST

from assistant.events import Recorder
from assistant.hear.audio import NullSink, as_stream, file_chunks
from assistant.run.pipeline import replay_pipeline


def test_each_stream_shares_the_engines_models(engine):
    first, second = engine.stream_stages(), engine.stream_stages()
    shared = ("asr", "tts", "router", "llm", "cloud", "turn_judge", "own_voice")
    assert all(getattr(first, name) is getattr(second, name) is getattr(engine, name) for name in shared)


def test_each_stream_has_its_own_wake_detector_and_voice_activity(engine):
    first, second = engine.stream_stages(), engine.stream_stages()
    assert first.wake is not second.wake and first.vad is not second.vad


def test_two_files_replayed_at_once_on_one_engine_each_hear_only_their_own(engine, settings):
    names = ("wake_time.wav", "wake_sum_in_words.wav", "wake_timer_whole.wav")
    recorders = {name: Recorder() for name in names}

    async def all_at_once() -> None:
        pipelines = {name: replay_pipeline(engine.stream_stages(), settings, recorders[name], NullSink())
                     for name in names}
        await asyncio.gather(*(pipelines[name].run(as_stream(file_chunks(FIXTURES / name))) for name in names))

    asyncio.run(all_at_once())
    for name in names:
        [expected] = MANIFEST[name]["turns"]
        events = recorders[name].events
        [route] = [e for e in events if e.name == "route"]
        [turn] = [e for e in events if e.name == "turn"]
        assert (route.intent, turn.outcome) == (expected["intent"], "answered"), name
        transcript = next(e for e in events if e.name == "transcript").text.lower()
        assert all(word in transcript for word in expected["words"]), (name, transcript)
