"""The endpointer as a pure state machine over per-chunk speech decisions."""

from assistant.hear.endpoint import Endpointer, EndReason

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


def asking(pause_s: float = 0.2, silence_s: float = 1.2) -> Endpointer:
    return Endpointer(silence_s, 5.0, 10.0, pause_s)


def test_a_short_pause_asks_whether_the_command_is_complete_and_asks_again_while_it_lasts():
    progress = feed(asking(), [True] * 10 + [False] * 20)
    asked_at = [i - 10 for i, p in enumerate(progress) if p.paused is not None]
    assert [progress[10 + i].paused for i in asked_at] == [1] * len(asked_at)
    assert asked_at[0] == 6 and len(asked_at) >= 3  # 0.2 s of silence, then every 0.2 s


def test_a_complete_verdict_ends_the_command_at_once():
    endpointer = asking()
    feed(endpointer, [True] * 10 + [False] * 7)
    assert endpointer.decide(1, complete=True) is EndReason.SILENCE


def test_an_incomplete_verdict_waits_for_the_full_silence():
    endpointer = asking()
    progress = feed(endpointer, [True] * 10 + [False] * 7)
    assert endpointer.decide(1, complete=False) is None
    progress = feed(endpointer, [False] * 40)
    ended_after_s = (7 + next(i for i, p in enumerate(progress) if p.ended) + 1) * CHUNK_S
    assert abs(ended_after_s - 1.2) < CHUNK_S


def test_a_verdict_can_shorten_the_silence_that_ends_the_command():
    endpointer = asking()
    feed(endpointer, [True] * 10 + [False] * 7)
    endpointer.decide(1, complete=False, wait_s=0.5)
    progress = feed(endpointer, [False] * 30)
    ended_after_s = (7 + next(i for i, p in enumerate(progress) if p.ended) + 1) * CHUNK_S
    assert abs(ended_after_s - 0.5) < CHUNK_S


def test_a_verdict_on_a_pause_that_speech_has_ended_is_ignored():
    endpointer = asking()
    feed(endpointer, [True] * 10 + [False] * 7 + [True] * 3)
    assert endpointer.decide(1, complete=True) is None
    assert endpointer.ended is None


def test_speech_after_a_shortened_silence_restores_the_full_one():
    endpointer = asking()
    feed(endpointer, [True] * 10 + [False] * 7)
    endpointer.decide(1, complete=False, wait_s=0.3)
    progress = feed(endpointer, [True] * 3 + [False] * 20)
    assert all(p.ended is None for p in progress)


def test_without_a_pause_length_nothing_is_ever_asked():
    progress = feed(Endpointer(0.5, 5.0, 10.0), [True] * 10 + [False] * 15)
    assert all(p.paused is None for p in progress)
