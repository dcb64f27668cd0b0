"""Timers and alarms are kept in SQLite: they survive a restart and a `kill -9`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta

from assistant.store.reminders import ALARM, TIMER, ReminderStore

NOW = datetime(2026, 11, 27, 19, 5).astimezone()


def test_a_timer_is_due_once_its_length_has_passed():
    store = ReminderStore(":memory:")
    timer = store.add_timer(NOW, 300, "pasta")
    assert store.due(NOW + timedelta(seconds=299)) == []
    assert store.due(NOW + timedelta(seconds=300)) == [timer]
    assert timer.left_s(NOW + timedelta(seconds=60)) == 240


def test_pending_lists_each_kind_soonest_first():
    store = ReminderStore(":memory:")
    late = store.add_timer(NOW, 600)
    soon = store.add_timer(NOW, 60, "tea")
    alarm = store.add_alarm(NOW, NOW + timedelta(hours=10))
    assert store.pending(TIMER) == [soon, late]
    assert store.pending(ALARM) == [alarm]
    assert store.next_due() == soon.due


def test_removed_reminders_are_gone_and_counted():
    store = ReminderStore(":memory:")
    timer = store.add_timer(NOW, 60)
    assert store.remove(timer) == 1
    assert store.remove(timer) == 0
    assert store.pending(TIMER) == []


def test_reminders_survive_closing_and_reopening(tmp_path):
    store = ReminderStore.in_state_dir(tmp_path / "state")
    timer = store.add_timer(NOW, 300, "pasta")
    alarm = store.add_alarm(NOW, NOW + timedelta(days=1))
    store.close()
    reopened = ReminderStore.in_state_dir(tmp_path / "state")
    assert reopened.pending(TIMER) == [timer]
    assert reopened.pending(ALARM) == [alarm]


def test_a_reminder_set_just_before_kill_9_is_kept(tmp_path):
    path = tmp_path / "reminders.sqlite3"
    code = f"""
import os, signal
from datetime import datetime
from assistant.store.reminders import ReminderStore
store = ReminderStore({str(path)!r})
store.add_timer(datetime.fromtimestamp({NOW.timestamp()}).astimezone(), 300, "pasta")
os.kill(os.getpid(), signal.SIGKILL)
"""
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    [timer] = ReminderStore(path).pending(TIMER)
    assert (timer.name, timer.due) == ("pasta", NOW + timedelta(seconds=300))


def test_the_state_directory_is_private(tmp_path):
    ReminderStore.in_state_dir(tmp_path / "state")
    assert os.stat(tmp_path / "state").st_mode & 0o077 == 0
