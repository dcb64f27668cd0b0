"""Reminders with a message: "remind me to take the bread out in 20 minutes", "remind me at 6
to call mum". Kept in the reminder store (SQLite) beside the timers and alarms, announced
with their message when due, listed, and cancelled by what they are about. One asked for
with no time gets "When should I remind you?", answered in the follow-up window.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rapidfuzz import fuzz

from assistant.store.reminders import REMINDER, Reminder
from assistant.understand.skills import (
    POINTING_WORDS,
    Awaiting,
    SkillReply,
    SkillRequest,
    mentioned,
    saying_why_not,
)
from assistant.understand.skills.alarms import next_alarm_time, when_text
from assistant.understand.skills.conversation import spoken_list
from assistant.understand.skills.timers import duration_text, length_refusal, length_s

_SAME_MESSAGE = 70
"""rapidfuzz token-set ratio at which what was said names a reminder ("the bread" and "take the bread out")."""
# Said to the assistant, repeated back to the person: "remind me to call my mum" -> "call your mum".
_PERSON = {"my": "your", "me": "you", "i": "you", "i'm": "you're", "myself": "yourself", "mine": "yours",
           "i've": "you've", "i'll": "you'll", "we": "you", "our": "your", "us": "you"}


def set_reminder(request: SkillRequest) -> str | SkillReply:
    if (refusal := length_refusal(request, "remind you in {}")) is not None:
        return refusal
    message = reminder_message(request.slots.get("message"))
    if not message:
        return "What should I remind you about? Say, for example, remind me to call mum in an hour."
    now = request.local_time()
    due = _due(request.slots, now)
    if due is None:
        return SkillReply("When should I remind you?", Awaiting("reminder_time", {"message": request.slots["message"]}))
    if due <= now:
        return "That time has already passed."
    if (due - now).total_seconds() > request.limits.longest_reminder_days * 86400:
        return f"I can set reminders up to {_days(request.limits.longest_reminder_days)} ahead."
    duration_s = (due - now).total_seconds() if "hour" not in request.slots else None
    request.reminder_store().add_reminder(now, due, message, duration_s)
    return f"I'll remind you to {message} {_when(due, now, duration_s)}."


def list_reminders(request: SkillRequest) -> str:
    now = request.local_time()
    reminders = request.reminder_store().pending(REMINDER)
    if not reminders:
        return "You have no reminders."
    said = [f"to {r.message} at {when_text(r.due, now)}" for r in reminders]
    if len(said) == 1:
        return f"You have one reminder, {said[0]}."
    return f"You have {len(said)} reminders: {spoken_list(said)}."


def cancel_reminder(request: SkillRequest) -> str:
    if not request.reminder_store().pending(REMINDER):
        return "You have no reminders."
    reminders = _matching(request)
    if not reminders:
        return "You have no reminder like that."
    if len(reminders) > 1:
        about = spoken_list([f"to {r.message}" for r in reminders])
        return f"You have {len(reminders)} reminders, {about}. Say which one to cancel."
    if not request.reminder_store().remove(reminders[0]):
        return "That reminder is no longer there."
    return f"I cancelled the reminder to {reminders[0].message}."


def cancel_all_reminders(request: SkillRequest) -> str:
    store = request.reminder_store()
    count = store.remove(*store.pending(REMINDER))
    if count == 0:
        return "You have no reminders."
    return "I cancelled your reminder." if count == 1 else f"I cancelled all {count} reminders."


def reminder_message(said: object) -> str:
    """What to be reminded of, as said back: "call my mum" -> "call your mum"."""
    words = str(said or "").replace(",", " ").rstrip(".?!").split()
    return " ".join(_PERSON.get(word.lower(), word.lower()) for word in words)


def _due(slots: dict, now: datetime) -> datetime | None:
    if seconds := length_s(slots):
        return now + timedelta(seconds=seconds)
    if "hour" in slots:
        return next_alarm_time(now, slots)
    return None


def _when(due: datetime, now: datetime, duration_s: float | None) -> str:
    if duration_s is not None and duration_s < 6 * 3600:
        return f"in {duration_text(duration_s)}"
    return f"at {when_text(due, now)}"


def _days(days: float) -> str:
    return "a week" if days == 7 else f"{days:g} day{'s' if days != 1 else ''}"


def _matching(request: SkillRequest) -> list[Reminder]:
    reminders = request.reminder_store().pending(REMINDER)
    said = reminder_message(request.slots.get("message"))
    if not said or said == "the" or said in POINTING_WORDS:  # "I've rung the dentist, so forget that reminder"
        pointed = mentioned(request.said, [r.message or "" for r in reminders])
        return reminders if pointed is None else [reminders[pointed]]
    scored = [(fuzz.token_set_ratio(said, r.message or ""), r) for r in reminders]
    best = max((score for score, _ in scored), default=0)
    return [r for score, r in scored if score >= _SAME_MESSAGE and score == best]


ABILITY = "set reminders"
RANK = 15
INTENTS = {
    "SetReminder": saying_why_not("save that reminder", set_reminder),
    "ListReminders": saying_why_not("read your reminders", list_reminders),
    "CancelReminder": saying_why_not("cancel that reminder", cancel_reminder),
    "CancelAllReminders": saying_why_not("cancel your reminders", cancel_all_reminders),
}
