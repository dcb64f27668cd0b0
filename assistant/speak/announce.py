"""Timers, alarms and reminders ringing: a chime and a spoken announcement, repeated until heard.

An announcement speaks as a turn's reply does (`turn.Speech`) but answers no request, so
no `turn` event closes it: the pipeline starts it when the assistant is idle and something
in the reminder store is due, and the wake word ends it like any reply ("hey jarvis, stop"). What it announced leaves the store only when it ends, so a
ring cut short by a crash is announced again, as missed, at the next start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

import numpy as np

from assistant.config import RemindersSettings
from assistant.events import Announcement as AnnouncementEvent
from assistant.events import EventSink
from assistant.hear.audio import AudioChunk, float_to_int16
from assistant.run.stages import Stages
from assistant.run.turn import Speech
from assistant.speak.player import Player
from assistant.store.reminders import REMINDER, TIMER, Reminder, ReminderStore
from assistant.understand.skills.clock import clock_text
from assistant.understand.skills.timers import duration_text

_CHIME_TONES_HZ = (880.0, 1318.5)  # A5 then E6: a rising fifth, heard over a room's noise
_CHIME_TONE_S = 0.18
_CHIME_LEVEL = 0.35


def chime(rate_hz: int) -> AudioChunk:
    """Two soft tones, each faded in and out so they do not click."""
    t = np.arange(int(rate_hz * _CHIME_TONE_S)) / rate_hz
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.02)
    tones = [np.sin(2 * np.pi * hz * t) * fade * np.exp(-3.0 * t) for hz in _CHIME_TONES_HZ]
    return AudioChunk(float_to_int16(np.concatenate(tones) * _CHIME_LEVEL).tobytes(), rate_hz=rate_hz)


def silence(rate_hz: int, seconds: float) -> AudioChunk:
    return AudioChunk(bytes(2 * int(rate_hz * seconds)), rate_hz=rate_hz)


def announcement_text(reminder: Reminder, missed: bool) -> str:
    """What is said: "Your pasta timer is done.", or for one missed while the assistant was
    off, "While I was off, your alarm for 6:00 AM went off."."""
    if reminder.kind == REMINDER:
        if missed:
            return f"While I was off, a reminder was due at {clock_text(reminder.due)}: {reminder.message}."
        return f"This is your reminder to {reminder.message}."
    if reminder.kind == TIMER:
        what = f"{reminder.name} timer" if reminder.name else f"{duration_text(reminder.duration_s or 0, plural=False)} timer"
        return f"While I was off, your {what} ended." if missed else f"Your {what} is done."
    if missed:
        return f"While I was off, your alarm for {clock_text(reminder.due)} went off."
    return f"It's {clock_text(reminder.due)}. This is your alarm."


class Announcement(Speech):
    """The due reminders said, with a chime before each repetition; they leave `store` once heard."""

    def __init__(self, due: list[Reminder], missed: set[int], settings: RemindersSettings, store: ReminderStore,
                 t: float, stages: Stages, events: EventSink, player: Player,
                 input_time: Callable[[], float], now: Callable[[], datetime]) -> None:
        super().__init__(t, stages, events, player, input_time, now)
        self.due = due
        self.missed = missed
        self.settings = settings
        self.store = store

    async def _compute(self) -> None:
        texts = [announcement_text(r, r.id in self.missed) for r in self.due]
        for reminder, text in zip(self.due, texts):
            self.events.emit(AnnouncementEvent(t=self.input_time(), kind=reminder.kind, label=reminder.name or reminder.message,
                                               due=reminder.due.isoformat(timespec="seconds"),
                                               missed=reminder.id in self.missed, text=text))
        self.reply_text = " ".join(texts)
        rate_hz = self.stages.tts.rate_hz
        # A missed reminder is news, not an alarm: said once.
        times = 1 if all(r.id in self.missed for r in self.due) else self.settings.ring_times
        for ring in range(times):
            if ring:
                self._play(silence(rate_hz, self.settings.ring_pause_s))
            self._play(chime(rate_hz))
            for text in texts:
                await self._say(text)

    def ended(self, outcome: str) -> Callable[[], object]:
        """Heard (in full, or until the wake word): the reminders are done with."""
        return functools.partial(self.store.announced, *self.due)
