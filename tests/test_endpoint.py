"""The endpointer as a pure state machine over per-chunk speech decisions."""

from assistant.endpoint import Endpointer, EndReason

CHUNK_S = 0.032


def feed(endpointer: Endpointer, pattern: list[bool]):
    return [endpointer.process(CHUNK_S, is_speech) for is_speech in pattern]


def test_speech_then_enough_silence_ends_the_command():
    progress = feed(Endpointer(0.5, 5.0, 10.0), [True] * 20 + [False] * 16)
    assert progress[0].speech_started
    assert progress[-1].ended is EndReason.SILENCE
    assert all(p.ended is None for p in progress[:-1])


def test_a_short_pause_does_not_end_the_command():
    progress = feed(Endpointer(0.5, 5.0, 10.0), [True] * 10 + [False] * 10 + [True] * 10)
    assert all(p.ended is None for p in progress)
    assert sum(p.speech_started for p in progress) == 1


def test_no_speech_after_the_wake_word_gives_up():
    endpointer = Endpointer(0.5, 1.0, 10.0)
    progress = feed(endpointer, [False] * 40)
    assert progress[-1].ended is EndReason.NO_SPEECH and not endpointer.speech_heard


def test_endless_speech_stops_at_the_maximum_length():
    progress = feed(Endpointer(0.5, 5.0, 2.0), [True] * 100)
    ends = [p.ended for p in progress if p.ended]
    assert ends[0] is EndReason.MAX_LENGTH


def test_the_last_speech_time_is_the_end_of_the_last_speech_chunk():
    endpointer = Endpointer(0.5, 5.0, 10.0)
    feed(endpointer, [False] * 5 + [True] * 10 + [False] * 3)
    assert abs(endpointer.last_speech_end_s - 15 * CHUNK_S) < 1e-9
