"""Alarms: set for a time, and optionally a day ("tomorrow", "on Monday"); list; cancel one or all.

An alarm rings once, at the next time that matches. "7" with no a.m. or p.m. is the
next 7 o'clock to come (7 a.m. when a day is named). Alarms live in the reminder store
(SQLite), so they survive a restart; one that fell due while the daemon was down is
announced as missed at the next start.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from assistant.store.reminders import ALARM, Reminder
from assistant.understand.skills import SkillRequest, saying_why_not
from assistant.understand.skills.clock import clock_text

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def set_alarm(request: SkillRequest) -> str:
    now = request.local_time()
    due = next_alarm_time(now, request.slots)
    if due is None:
        return "Sorry, that isn't a time I can set an alarm for."
    if due <= now:
        return f"{clock_text(due)} has already passed today."
    store = request.reminder_store()
    if any(alarm.due == due for alarm in store.pending(ALARM)):
        return f"You already have an alarm at {when_text(due, now)}."
    store.add_alarm(now, due)
    return f"Alarm set for {when_text(due, now)}."


def list_alarms(request: SkillRequest) -> str:
    now = request.local_time()
    alarms = request.reminder_store().pending(ALARM)
    if not alarms:
        return "You have no alarms."
    if len(alarms) == 1:
        return f"You have one alarm, at {when_text(alarms[0].due, now)}."
    return f"You have {len(alarms)} alarms: {_listed(alarms, now)}."


def cancel_alarm(request: SkillRequest) -> str:
    now = request.local_time()
    alarms = [a for a in request.reminder_store().pending(ALARM) if _matches(a, request.slots, now)]
    if not alarms:
        return "There is no such alarm." if request.slots else "You have no alarms."
    if len(alarms) > 1:
        return f"You have {len(alarms)} alarms: {_listed(alarms, now)}. Say which one to cancel, or say cancel all alarms."
    request.reminder_store().remove(alarms[0])
    return f"The alarm at {when_text(alarms[0].due, now)} is cancelled."


def cancel_all_alarms(request: SkillRequest) -> str:
    count = request.reminder_store().remove(*request.reminder_store().pending(ALARM))
    if count == 0:
        return "You have no alarms."
    return "Your alarm is cancelled." if count == 1 else f"All {count} alarms are cancelled."


def next_alarm_time(now: datetime, slots: dict) -> datetime | None:
    """The first moment after `now` matching the said hour, minute, a.m./p.m. and day; None
    when the words name no real time ("13 p.m.")."""
    hours = _hours(slots.get("hour"), slots.get("period"), day_named="day" in slots)
    minute = slots.get("minute", 0)
    if not hours or not 0 <= minute <= 59:
        return None
    days = _days(now.date(), slots.get("day"))
    moments = [datetime.combine(d, time(h, minute)).astimezone() for d in days for h in hours]
    upcoming = [m for m in moments if m > now]
    if slots.get("day") == "today" and not upcoming:
        return min(moments)  # in the past: the caller says so
    return min(upcoming, default=None)


def when_text(due: datetime, now: datetime) -> str:
    """ "7:00 AM today", "7:00 AM tomorrow", "7:00 AM on Monday", "7:00 AM on Monday, December 7"."""
    days_ahead = (due.date() - now.date()).days
    if days_ahead == 0:
        day = "today"
    elif days_ahead == 1:
        day = "tomorrow"
    elif days_ahead < 7:
        day = f"on {due.strftime('%A')}"
    else:
        day = f"on {due.strftime('%A, %B')} {due.day}"
    return f"{clock_text(due)} {day}"


def _hours(hour: int | None, period: str | None, day_named: bool) -> list[int]:
    """The 24-hour clock hours the words may mean."""
    if hour is None or not 0 <= hour <= 23:
        return []
    if period is not None:
        if not 1 <= hour <= 12:
            return []
        return [hour % 12 + (12 if period == "pm" else 0)]
    if hour == 0 or hour > 12:
        return [hour]
    return [hour % 12] if day_named else [hour % 12, hour % 12 + 12]


def _days(today: date, day: str | None) -> list[date]:
    """The dates the day words may mean, soonest first."""
    if day == "today":
        return [today]
    if day == "tomorrow":
        return [today + timedelta(days=1)]
    if day in WEEKDAYS:
        ahead = (WEEKDAYS.index(day) - today.weekday()) % 7
        return [today + timedelta(days=ahead), today + timedelta(days=ahead + 7)]
    return [today, today + timedelta(days=1)]


def _matches(alarm: Reminder, slots: dict, now: datetime) -> bool:
    due = alarm.due
    if "hour" in slots:
        hours = _hours(slots["hour"], slots.get("period"), day_named=False)
        if due.hour not in hours or due.minute != slots.get("minute", 0):
            return False
    day = slots.get("day")
    if day in WEEKDAYS:
        return WEEKDAYS[due.weekday()] == day
    return day is None or due.date() == _days(now.date(), day)[0]


def _listed(alarms: list[Reminder], now: datetime) -> str:
    whens = [f"at {when_text(a.due, now)}" for a in alarms]
    return ", ".join(whens[:-1]) + " and " + whens[-1]


ABILITY = "set alarms"
RANK = 16
INTENTS = {
    "SetAlarm": saying_why_not("save that alarm", set_alarm),
    "ListAlarms": saying_why_not("read your alarms", list_alarms),
    "CancelAlarm": saying_why_not("cancel that alarm", cancel_alarm),
    "CancelAllAlarms": saying_why_not("cancel your alarms", cancel_all_alarms),
}
