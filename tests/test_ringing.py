"""Timers and alarms ring through the pipeline: a chime and an announcement, on the input clock.

A file replays as if it began at `started_at`, so a reminder due some seconds in rings
that many seconds into the audio; nothing here sleeps.
"""

from __future__ import annotations

import threading
import wave
from datetime import datetime, timedelta

import numpy as np
import pytest
from conftest import FIXTURES

from assistant.speak.announce import chime
from assistant.store.reminders import ALARM, TIMER, ReminderStore

STARTED = datetime(2026, 11, 27, 6, 59, 58).astimezone()


def chimes_heard(reply_wav) -> int:
    """How many times the chime is in what the speaker played (it plays unchanged at full volume)."""
    with wave.open(str(reply_wav)) as w:
        played = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
        tone = chime(w.getframerate()).as_int16().astype(np.float64)
    if len(played) < len(tone):
        return 0
    windows = np.lib.stride_tricks.sliding_window_view(played, len(tone))[::8]
    match = windows @ tone / (np.linalg.norm(windows, axis=1) * np.linalg.norm(tone) + 1e-9)
    at = np.flatnonzero(match > 0.95) * 8
    return int(len(at) > 0) + int(np.sum(np.diff(at) > len(tone)))  # matches farther apart than a chime are two chimes


@pytest.fixture(scope="module")
def timer_rang(replay):
    store = ReminderStore(":memory:")
    return replay(FIXTURES / "wake_timer_rings.wav", started_at=STARTED, reminders=store), store


def test_a_timer_rings_once_its_time_has_passed(timer_rang):
    replayed, _ = timer_rang
    [reply] = replayed.named("reply")
    [announcement] = replayed.named("announcement")
    assert (announcement.kind, announcement.missed, announcement.text) == \
        ("timer", False, "Your 3 second timer is done.")
    assert reply.t + 3.0 <= announcement.t <= max(reply.t + 3.0, replayed.named("tts_end")[0].t) + 0.6


def test_a_ringing_timer_chimes_and_speaks_ring_times_over(timer_rang, settings):
    replayed, _ = timer_rang
    assert chimes_heard(replayed.reply_wav) == settings.reminders.ring_times
    ring_end = replayed.named("tts_end")[-1]
    assert not ring_end.interrupted


def test_a_timer_that_has_rung_is_gone(timer_rang):
    _, store = timer_rang
    assert store.pending(TIMER) == []


def test_an_announcement_is_not_a_turn(timer_rang):
    replayed, _ = timer_rang
    assert [e.outcome for e in replayed.named("turn")] == ["answered"]
    assert replayed.named("follow_up") == []


def test_the_wake_word_stops_a_ringing_timer(replay):
    store = ReminderStore(":memory:")
    replayed = replay(FIXTURES / "wake_timer_stopped.wav", started_at=STARTED, reminders=store)
    announcement, wake = replayed.named("announcement")[0], replayed.named("wake")[1]
    ring_end = [e for e in replayed.named("tts_end") if e.t > announcement.t][0]
    stop_heard = replayed.named("speech_end")[1]
    assert ring_end.interrupted and wake.t <= ring_end.t <= stop_heard.t  # cut by the wake, not played out
    assert chimes_heard(replayed.reply_wav) < 3
    assert [r.intent for r in replayed.named("route")] == ["SetTimer", "Stop"]
    assert store.pending(TIMER) == []


def test_an_alarm_rings_at_its_time_of_day(replay):
    store = ReminderStore(":memory:")
    store.add_alarm(STARTED - timedelta(days=1), datetime(2026, 11, 27, 7, 0).astimezone())
    replayed = replay(FIXTURES / "silence_long.wav", started_at=STARTED, reminders=store)
    [announcement] = replayed.named("announcement")
    assert (announcement.kind, announcement.missed, announcement.text) == \
        (ALARM, False, "It's 7:00 AM. This is your alarm.")
    assert 2.0 <= announcement.t <= 2.6
    assert store.pending(ALARM) == []


def test_an_alarm_that_fell_due_while_off_is_announced_as_missed_once(replay):
    store = ReminderStore(":memory:")
    store.add_alarm(STARTED - timedelta(days=1), datetime(2026, 11, 27, 6, 30).astimezone())
    replayed = replay(FIXTURES / "silence_long.wav", started_at=STARTED, reminders=store)
    [announcement] = replayed.named("announcement")
    assert (announcement.missed, announcement.text) == (True, "While I was off, your alarm for 6:30 AM went off.")
    assert announcement.t <= 0.6
    assert chimes_heard(replayed.reply_wav) == 1


class _WatchedStore(ReminderStore):
    """A reminder store that notes the threads the pipeline reads and changes it on."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.threads: set[str] = set()

    def due(self, now):
        self.threads.add(threading.current_thread().name)
        return super().due(now)

    def announced(self, *reminders):
        self.threads.add(threading.current_thread().name)
        super().announced(*reminders)


def test_the_reminder_store_is_asked_and_changed_off_the_event_loop(replay):
    store = _WatchedStore()
    store.add_alarm(STARTED - timedelta(days=1), datetime(2026, 11, 27, 7, 0).astimezone())
    replayed = replay(FIXTURES / "silence_long.wav", started_at=STARTED, reminders=store)
    assert len(replayed.named("announcement")) == 1 and store.pending(ALARM) == []
    assert store.threads and threading.main_thread().name not in store.threads  # replay's loop runs on it
