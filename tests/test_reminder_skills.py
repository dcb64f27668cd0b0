"""Reminders with a message: set for a while or a time of day, asked when, listed, cancelled by
what they are about, kept in SQLite across a restart, and announced with their message."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest
from conftest import FIXTURES

from assistant.store.reminders import REMINDER, TIMER, ReminderStore
from assistant.understand.router import Router
from assistant.understand.skills import Awaiting, SkillRequest

NOW = datetime(2026, 11, 27, 19, 5).astimezone()  # a Friday evening


def say(router: Router, store: ReminderStore, text: str, awaiting: Awaiting | None = None):
    decision = router.route(text, awaiting)
    assert decision.tier == "fast_path", text
    return router.skill_reply(decision, SkillRequest(now=NOW, reminders=store, said=text))


@pytest.mark.parametrize("text, message, in_s", [
    ("Remind me to take the bread out in 20 minutes.", "take the bread out", 1200),
    ("Remind me in twenty minutes to take the bread out.", "take the bread out", 1200),
    ("In 5 minutes, remind me to turn off the oven.", "turn off the oven", 300),
    ("Could you remind me to check the laundry in one hour?", "check the laundry", 3600),
    ("Set a reminder in 10 minutes to call the plumber.", "call the plumber", 600),
    ("Remind me to call my mum in an hour and a half.", "call your mum", 5400),
    ("I always forget, so remind me to move the washing in 45 minutes, would you...", "move the washing", 2700),
])
def test_a_reminder_for_a_while_is_stored_with_its_message(router, store, text, message, in_s):
    reply = say(router, store, text).text
    [reminder] = store.pending(REMINDER)
    assert reminder.message == message
    assert (reminder.due - NOW).total_seconds() == pytest.approx(in_s)
    assert reply.startswith(f"I'll remind you to {message} in ")


@pytest.mark.parametrize("text, due", [
    ("Remind me at 6 to call mum.", datetime(2026, 11, 28, 6, 0)),
    ("Remind me to call mum at 8 p.m.", datetime(2026, 11, 27, 20, 0)),
    ("Remind me tomorrow at 7:30 to take my pills.", datetime(2026, 11, 28, 7, 30)),
    ("Remind me to put the bins out on Monday at 7.", datetime(2026, 11, 30, 7, 0)),
])
def test_a_reminder_at_a_time_of_day_is_the_next_such_time(router, store, text, due):
    say(router, store, text)
    [reminder] = store.pending(REMINDER)
    assert reminder.due == due.astimezone()


def test_a_reminder_with_no_time_asks_when_and_the_answer_sets_it(router, store):
    asked = say(router, store, "Remind me to water the plants.")
    assert asked.text == "When should I remind you?" and store.pending(REMINDER) == []
    done = say(router, store, "In ten minutes.", asked.awaiting)
    assert done.text == "I'll remind you to water the plants in 10 minutes."
    assert [r.message for r in store.pending(REMINDER)] == ["water the plants"]


def test_an_answer_is_matched_only_as_the_answer_to_its_question(router):
    assert router.route("In ten minutes.").intent is None
    assert router.route("In ten minutes.", Awaiting("reminder_time", {"message": "x"})).intent == "SetReminder"


def test_reminders_are_listed_with_what_they_are_about(router, store):
    say(router, store, "Remind me to take the bread out in 20 minutes.")
    say(router, store, "Remind me at 6 to call mum.")
    assert say(router, store, "What reminders do I have?").text == (
        "You have 2 reminders: to take the bread out at 7:25 PM today and to call mum at 6:00 AM tomorrow.")


@pytest.mark.parametrize("text", ["Cancel the reminder about the bread.", "Delete my bread reminder.",
                                  "Don't remind me to take the bread out."])
def test_a_reminder_is_cancelled_by_what_it_is_about(router, store, text):
    say(router, store, "Remind me to take the bread out in 20 minutes.")
    say(router, store, "Remind me to call mum in an hour.")
    assert say(router, store, text).text == "I cancelled the reminder to take the bread out."
    assert [r.message for r in store.pending(REMINDER)] == ["call mum"]


def test_cancelling_a_reminder_that_is_not_there_claims_nothing(router, store):
    assert say(router, store, "Cancel the reminder about the bread.").text == "You have no reminders."


def test_reminders_survive_a_restart(router, tmp_path):
    store = ReminderStore(tmp_path / "reminders.sqlite3")
    say(router, store, "Remind me to take the bread out in 20 minutes.")
    store.close()
    again = ReminderStore(tmp_path / "reminders.sqlite3")
    assert [r.message for r in again.pending(REMINDER)] == ["take the bread out"]


def test_a_database_of_the_first_version_keeps_its_timers_and_takes_reminders(tmp_path):
    path = tmp_path / "reminders.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE reminders (id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN "
                    "('timer', 'alarm')), name TEXT, due REAL NOT NULL, duration_s REAL, created REAL NOT NULL)")
        old.execute("INSERT INTO reminders VALUES (1, 'timer', 'pasta', ?, 480, ?)",
                    (NOW.timestamp() + 480, NOW.timestamp()))
    store = ReminderStore(path)
    assert [(t.name, t.duration_s) for t in store.pending(TIMER)] == [("pasta", 480)]
    store.add_reminder(NOW, NOW + timedelta(minutes=5), "stir the sauce")
    assert [r.message for r in store.pending(REMINDER)] == ["stir the sauce"]


def test_a_reminder_rings_with_its_message_after_a_restart(replay, tmp_path):
    started = datetime(2026, 11, 27, 6, 59, 58).astimezone()
    path = tmp_path / "reminders.sqlite3"
    before = ReminderStore(path)
    before.add_reminder(started - timedelta(minutes=10), started + timedelta(seconds=2), "take the bread out")
    before.close()
    store = ReminderStore(path)  # the assistant started again
    replayed = replay(FIXTURES / "silence_long.wav", started_at=started, reminders=store)
    [announcement] = replayed.named("announcement")
    assert (announcement.kind, announcement.label, announcement.text) == (
        "reminder", "take the bread out", "This is your reminder to take the bread out.")
    assert store.pending(REMINDER) == []


def test_that_reminder_is_the_one_the_sentence_is_about(router, store):
    say(router, store, "Remind me to take my tablets at 9 pm.")
    say(router, store, "Remind me to ring the dentist tomorrow at 10 am.")
    reply = say(router, store, "I already rang the dentist, so you can forget that reminder.").text
    assert reply == "I cancelled the reminder to ring the dentist."
    assert [r.message for r in store.pending(REMINDER)] == ["take your tablets"]
