"""Timers, alarms and reminders, kept in SQLite so they survive a restart and a `kill -9`.

Every change is one SQLite transaction (WAL journal, synchronous=FULL): after a crash a
reminder is either wholly there or not at all. A reminder leaves the store only once it
has been announced, so one that was ringing when the process died is announced again,
as missed, at the next start. Times are absolute (seconds since the epoch), and every
method takes the current time from the caller: the clock is injectable and tests never
sleep.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from assistant.store.lists import make_tables as make_list_tables
from assistant.store.state import open_database

TIMER = "timer"
ALARM = "alarm"
REMINDER = "reminder"
"""A reminder with a message ("take the bread out"), due at a time or after a while."""

_SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS reminders (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('timer', 'alarm', 'reminder')),
    name TEXT,
    due REAL NOT NULL,
    duration_s REAL,
    created REAL NOT NULL,
    message TEXT
)
"""
# Version 1 allowed only timers and alarms, and had no message: SQLite cannot change a
# CHECK constraint in place, so the table is copied into the new shape in one transaction.
_FROM_VERSION_1 = """
ALTER TABLE reminders RENAME TO reminders_v1;
""" + _SCHEMA + """;
INSERT INTO reminders (id, kind, name, due, duration_s, created)
    SELECT id, kind, name, due, duration_s, created FROM reminders_v1;
DROP TABLE reminders_v1;
"""


@dataclass(frozen=True)
class Reminder:
    id: int
    kind: str
    """TIMER or ALARM."""
    name: str | None
    """A timer's name ("pasta"), if it was given one."""
    due: datetime
    """When it rings, in the local time zone."""
    duration_s: float | None
    """A timer's length as set (a reminder's, when it was set for a while rather than a time)."""
    message: str | None = None
    """What a reminder is about ("take the bread out")."""

    def left_s(self, now: datetime) -> float:
        return max((self.due - now).total_seconds(), 0.0)


class ReminderStore:
    """The timers and alarms, in the database at `path` (":memory:" keeps them in this process only)."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self.db = open_database(path, _make_tables)
        self._announced: set[int] = set()
        """Announced, but still in a database that could not be changed: not announced again."""

    def announced(self, *reminders: Reminder) -> None:
        """Forget these once heard; when the database cannot change, they are at least not said again."""
        try:
            self.remove(*reminders)
        except sqlite3.Error:
            self._announced.update(r.id for r in reminders)

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> ReminderStore:
        return cls(state_dir / "reminders.sqlite3")

    def close(self) -> None:
        self.db.close()

    def add_timer(self, now: datetime, duration_s: float, name: str | None = None) -> Reminder:
        return self._add(TIMER, name, now.timestamp() + duration_s, duration_s, now)

    def add_alarm(self, now: datetime, due: datetime) -> Reminder:
        return self._add(ALARM, None, due.timestamp(), None, now)

    def add_reminder(self, now: datetime, due: datetime, message: str, duration_s: float | None = None) -> Reminder:
        return self._add(REMINDER, None, due.timestamp(), duration_s, now, message)

    def extend(self, reminder: Reminder, seconds: float) -> Reminder | None:
        """The timer with `seconds` more (its length too); None when it is no longer there."""
        with self.db:
            changed = self.db.execute(
                "UPDATE reminders SET due = due + ?, duration_s = coalesce(duration_s, 0) + ? WHERE id = ?",
                (seconds, seconds, reminder.id)).rowcount
        return self._get(reminder.id) if changed else None

    def _add(self, kind: str, name: str | None, due: float, duration_s: float | None, now: datetime,
             message: str | None = None) -> Reminder:
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO reminders (kind, name, due, duration_s, created, message) VALUES (?, ?, ?, ?, ?, ?)",
                (kind, name, due, duration_s, now.timestamp(), message))
        return self._get(cursor.lastrowid)

    def pending(self, kind: str) -> list[Reminder]:
        """Every timer or alarm not yet announced, soonest first."""
        rows = self.db.execute("SELECT * FROM reminders WHERE kind = ? ORDER BY due, id", (kind,))
        return [_reminder(row) for row in rows]

    def due(self, now: datetime) -> list[Reminder]:
        """Everything that has rung by `now` and is still to be announced, oldest first."""
        rows = self.db.execute("SELECT * FROM reminders WHERE due <= ? ORDER BY due, id", (now.timestamp(),))
        return [r for r in map(_reminder, rows) if r.id not in self._announced]

    def next_due(self) -> datetime | None:
        (due,) = self.db.execute("SELECT min(due) FROM reminders").fetchone()
        return None if due is None else _local(due)

    def remove(self, *reminders: Reminder) -> int:
        """Forget these (cancelled, or announced); returns how many were still there."""
        with self.db:
            return sum(self.db.execute("DELETE FROM reminders WHERE id = ?", (r.id,)).rowcount for r in reminders)

    def _get(self, reminder_id: int | None) -> Reminder:
        return _reminder(self.db.execute("SELECT * FROM reminders WHERE id = ?", (reminder_id,)).fetchone())


def _make_tables(db: sqlite3.Connection) -> None:
    """The reminders' table in its current shape, and the lists' beside it."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    has_table = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'reminders'").fetchone()
    if version < _SCHEMA_VERSION:
        script = _FROM_VERSION_1 if has_table else _SCHEMA + ";"
        db.executescript(f"BEGIN; {script} PRAGMA user_version = {_SCHEMA_VERSION}; COMMIT;")
    make_list_tables(db)


def _reminder(row: tuple) -> Reminder:
    reminder_id, kind, name, due, duration_s, _created, message = row
    return Reminder(reminder_id, kind, name, _local(due), duration_s, message)


def _local(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s).astimezone()

