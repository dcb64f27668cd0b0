"""A turn is an explicit state machine with one owner, and the player says when a reply has drained."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
from conftest import FIXTURES, ROOT

from assistant.events import Recorder
from assistant.hear.audio import AudioChunk, NullSink, as_stream, file_chunks
from assistant.run.input_clock import InputClock, ReplayClock
from assistant.run.pipeline import ImpossibleTransition, State, replay_pipeline
from assistant.run.stages import for_a_run
from assistant.run.turn import Speech, Turn
from assistant.speak.announce import Announcement
from assistant.speak.player import ReplayPlayer


def _states_told(stages, settings, fixture: str) -> list[State]:
    """The states a replay of `fixture` tells its observer, in order."""
    told: list[State] = []
    pipeline = replay_pipeline(for_a_run(stages, settings), settings, Recorder(), NullSink())
    pipeline.on_state = told.append
    asyncio.run(pipeline.run(as_stream(file_chunks(FIXTURES / fixture))))
    return told


def test_a_turn_goes_from_idle_through_listening_thinking_and_speaking_back_to_idle(stages, settings):
    assert _states_told(stages, settings, "wake_time.wav") == \
        [State.IDLE, State.LISTENING, State.THINKING, State.SPEAKING, State.IDLE]


def test_a_wake_word_during_a_reply_interrupts_it_and_listens_again(stages, settings):
    told = _states_told(stages, settings, "wake_interrupts_reply.wav")
    assert told[:6] == [State.IDLE, State.LISTENING, State.THINKING, State.SPEAKING, State.LISTENING, State.THINKING]
    assert told[-1] is State.IDLE


def test_the_machine_refuses_a_change_it_does_not_allow(stages, settings):
    pipeline = replay_pipeline(for_a_run(stages, settings), settings, Recorder(), NullSink())
    with pytest.raises(ImpossibleTransition):
        pipeline._go(State.SPEAKING)  # idle, with nothing to say


def test_an_announcement_speaks_as_a_turn_does_but_is_no_request():
    assert issubclass(Announcement, Speech) and not issubclass(Announcement, Turn)


def _chunk_ending_at(end_s: float) -> AudioChunk:
    return AudioChunk(bytes(2 * 512), timestamp_s=end_s - 0.032)


def test_live_input_time_is_the_end_of_the_last_chunk_heard():
    clock = InputClock()
    clock.reach(1.024)
    assert clock.now() == 1.024
    assert asyncio.run(clock.hold(chunk := _chunk_ending_at(2.0))) is chunk  # a microphone's chunk is due as it comes


def test_a_replayed_chunk_arrives_when_the_clock_of_the_work_computing_reaches_its_end():
    began_wall = time.perf_counter()
    clock = ReplayClock()
    clock.keep_pace_with(computing=lambda: (3.0, began_wall), running=lambda: None)
    held = asyncio.run(clock.hold(_chunk_ending_at(3.064)))
    assert held.received_wall == pytest.approx(began_wall + 0.064)


def test_past_the_end_of_the_input_replay_time_goes_on_on_the_clock_of_the_running_turn():
    clock = ReplayClock()
    clock.keep_pace_with(computing=lambda: None, running=lambda: (2.0, time.perf_counter() - 1.0))
    clock.reach(2.5)
    assert clock.now() == 2.5
    clock.end_input()
    assert clock.now() >= 3.0


class _Kept:
    """A sink that keeps what was played."""

    def __init__(self) -> None:
        self.samples = 0

    def write(self, chunk: AudioChunk) -> None:
        self.samples += chunk.samples

    def close(self) -> None:
        pass


def _one_second_reply(at_t: float = 0.0) -> tuple[ReplayPlayer, _Kept]:
    sink = _Kept()
    player = ReplayPlayer(sink, clock=lambda: at_t)
    player.begin()
    player.play(AudioChunk(bytes(2 * 22050), rate_hz=22050))
    return player, sink


def test_a_replayed_reply_drains_once_the_input_clock_passes_its_end():
    async def main():
        player, _ = _one_second_reply()
        drained = player.drained()
        player.advance(0.992)
        assert not drained.done()
        player.advance(1.024)
        assert drained.done() and drained.result() == 1.0

    asyncio.run(main())


def test_a_replayed_reply_that_is_cut_drains_where_it_was_cut():
    async def main():
        player, _ = _one_second_reply()
        drained = player.drained()
        player.clock = lambda: 0.4
        player.stop()
        assert drained.done() and drained.result() == 0.4 and player.played_s == pytest.approx(0.4)

    asyncio.run(main())


def test_once_the_input_has_ended_a_replayed_reply_plays_out_whole():
    async def main():
        player, sink = _one_second_reply()
        drained = player.drained()
        player.play_out()
        assert drained.done() and drained.result() == 1.0
        assert sink.samples == 22050 and player.played_s == pytest.approx(1.0)

    asyncio.run(main())


_PLAY_HALF_A_SECOND = """
import asyncio, json, time
from assistant.hear.audio import AudioChunk
from assistant.config import AudioSettings
from assistant.hear.devices import DevicePlayer

async def main():
    player = DevicePlayer(AudioSettings(), 22050, must_open=True)
    player.begin()
    player.play(AudioChunk(bytes(2 * 11025), rate_hz=22050))
    started = time.perf_counter()
    await player.drained()
    print(json.dumps({"waited_s": time.perf_counter() - started, "played_s": player.played_s}))
    player.close(drain=False)

asyncio.run(main())
"""


def test_the_speakers_drain_once_the_sound_card_has_played_the_last_frame(pulse):
    # In its own process: tests that replay never import sounddevice.
    done = subprocess.run([sys.executable, "-c", _PLAY_HALF_A_SECOND], env=pulse, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # Not an upper bound: a fresh PulseAudio stream may take its first frames a second or two late.
    assert result["played_s"] >= 0.5 and result["waited_s"] >= 0.45
