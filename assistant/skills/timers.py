"""Kitchen timers: several at once, each with an optional name; how long is left; cancel one or all.

The timers themselves live in the reminder store (SQLite), so they survive a restart;
the pipeline rings them when they are due.
"""

from __future__ import annotations

from ..reminders import TIMER, Reminder
from . import SkillRequest

LONGEST_S = 24 * 3600


def set_timer(request: SkillRequest) -> str:
    slots = request.slots
    length_s = slots.get("hours", 0) * 3600 + slots.get("minutes", 0) * 60 + slots.get("seconds", 0)
    if length_s <= 0:
        return "A timer needs a length, like 5 minutes."
    if length_s > LONGEST_S:
        return "Timers can be up to 24 hours long; for longer, set an alarm."
    name = _name(request)
    request.reminder_store().add_timer(request.local_time(), length_s, name)
    return f"{_titled(name)} set for {duration_text(length_s)}."


def timer_status(request: SkillRequest) -> str:
    timers = _matching(request)
    now = request.local_time()
    if not timers:
        return _none_reply(request)
    if len(timers) == 1:
        return f"{_the(timers[0])} has {duration_text(timers[0].left_s(now))} left."
    listed = ", ".join(f"{_label(t)} with {duration_text(t.left_s(now))} left" for t in timers)
    return f"You have {len(timers)} timers: {listed}."


def cancel_timer(request: SkillRequest) -> str:
    timers = _matching(request)
    if not timers:
        return _none_reply(request)
    if len(timers) > 1:
        names = " and ".join(_label(t) for t in timers)
        return f"You have {len(timers)} timers, {names}. Say which one to cancel, or say cancel all timers."
    request.reminder_store().remove(timers[0])
    return f"{_the(timers[0])} is cancelled."


def cancel_all_timers(request: SkillRequest) -> str:
    count = request.reminder_store().remove(*request.reminder_store().pending(TIMER))
    if count == 0:
        return "You have no timers."
    return "Your timer is cancelled." if count == 1 else f"All {count} timers are cancelled."


def duration_text(seconds: float, plural: bool = True) -> str:
    """ "1 hour and 10 minutes", "4 minutes and 5 seconds": the two largest units, rounded;
    `plural=False` for use before a noun ("a 5 minute timer")."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        parts = [(hours, "hour"), (minutes, "minute")]
    elif minutes:
        parts = [(minutes, "minute"), (secs, "second")]
    else:
        parts = [(secs, "second")]
    said = [f"{n} {unit}{'s' if plural and n != 1 else ''}" for n, unit in parts if n]
    return " and ".join(said) or ("0 seconds" if plural else "0 second")


def _matching(request: SkillRequest) -> list[Reminder]:
    timers = request.reminder_store().pending(TIMER)
    name = _name(request)
    return timers if name is None else [t for t in timers if t.name == name]


def _none_reply(request: SkillRequest) -> str:
    name = _name(request)
    return "You have no timers." if name is None else f"You have no {name} timer."


def _label(timer: Reminder) -> str:
    """What a person calls it: "the pasta timer", or "the 5 minute timer"."""
    if timer.name:
        return f"the {timer.name} timer"
    return f"the {duration_text(timer.duration_s or 0, plural=False)} timer"


def _the(timer: Reminder) -> str:
    return _label(timer)[0].upper() + _label(timer)[1:]


def _titled(name: str | None) -> str:
    return f"{name.capitalize()} timer" if name else "Timer"


def _name(request: SkillRequest) -> str | None:
    name = request.slots.get("name")
    return " ".join(str(name).lower().split()) or None if name else None


INTENTS = {"SetTimer": set_timer, "TimerStatus": timer_status, "CancelTimer": cancel_timer,
           "CancelAllTimers": cancel_all_timers}
