"""Kitchen timers: several at once, each with an optional name; how long is left; more time;
cancel one or all. A timer asked for with no length gets "For how long?", answered in the
follow-up window; a cancel that could mean several asks which one.

The timers themselves live in the reminder store (SQLite), so they survive a restart;
the pipeline rings them when they are due.
"""

from __future__ import annotations

import re

from rapidfuzz import fuzz

from assistant.store.reminders import TIMER, Reminder
from assistant.understand.skills import (
    Awaiting,
    SkillReply,
    SkillRequest,
    mentioned,
    saying_why_not,
)

_SAME_NAME = 80
"""rapidfuzz ratio at which a said name is a timer's ("egg" and "eggs", "pasta" and "pastor")."""


def set_timer(request: SkillRequest) -> str | SkillReply:
    if " timer " in f" {request.slots.get('name') or ''} ":  # "a rice timer for 18 minutes and a fish timer ..."
        return "I can set one timer at a time. Say the first, then the next."
    if (refusal := length_refusal(request, "set a timer for {}")) is not None:
        return refusal
    total_s = length_s(request.slots) + _length_in_name_s(request)
    name = _name(request)
    if total_s <= 0:
        return SkillReply("For how long?", Awaiting("timer_duration", {"name": name} if name else {}))
    if total_s > longest_timer_s(request):
        return _too_long(request)
    request.reminder_store().add_timer(request.local_time(), total_s, name)
    return f"{_titled(name)} set for {duration_text(total_s)}."


def add_time(request: SkillRequest) -> str | SkillReply:
    if (refusal := length_refusal(request, "add {} to a timer")) is not None:
        return refusal
    more_s = length_s(request.slots)
    if more_s <= 0:  # nothing said to add: nothing added, and nothing claimed
        return "How much time should I add? Say, for example, add two minutes to the timer."
    timers = _matching(request)
    if not timers:
        return _none_reply(request)
    if len(timers) > 1:
        return _which_one(timers, "add time to")
    if timers[0].left_s(request.local_time()) + more_s > longest_timer_s(request):
        return _too_long(request)
    extended = request.reminder_store().extend(timers[0], more_s)
    if extended is None:
        return _none_reply(request)
    left = duration_text(extended.left_s(request.local_time()))
    return f"I added {duration_text(more_s)} to {_label(timers[0])}. It has {left} left."


def timer_status(request: SkillRequest) -> str:
    timers = _matching(request)
    now = request.local_time()
    if not timers:
        return _none_reply(request)
    if len(timers) == 1:
        return f"{_the(timers[0])} has {duration_text(timers[0].left_s(now))} left."
    listed = ", ".join(f"{_label(t)} with {duration_text(t.left_s(now))} left" for t in timers)
    return f"You have {len(timers)} timers: {listed}."


def cancel_timer(request: SkillRequest) -> str | SkillReply:
    timers = _matching(request)
    if not timers:
        return _none_reply(request)
    if len(timers) > 1:
        return _which_one(timers, "cancel")
    if not request.reminder_store().remove(timers[0]):
        return _none_reply(request)
    return f"{_the(timers[0])} is cancelled."


def _which_one(timers: list[Reminder], doing: str) -> SkillReply:
    names = " and ".join(_label(t) for t in timers)
    question = f"You have {len(timers)} timers, {names}. Which one should I {doing}?"
    return SkillReply(question, Awaiting("timer_which") if doing == "cancel" else None)


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


_NUMBER_WORDS = {word: n for n, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty".split())} | {"thirty": 30, "forty": 40, "forty-five": 45, "fifty": 50, "sixty": 60,
                                           "an": 1, "a": 1}
_LENGTH_IN_NAME = re.compile(r"\b(\d+|" + "|".join(_NUMBER_WORDS) + r")\s*(hour|minute|second)s?\b", re.IGNORECASE)
_UNIT_S = {"hour": 3600, "minute": 60, "second": 1}


def _length_in_name_s(request: SkillRequest) -> float:
    """A length the name slot took in ("a timer for 1 hour in 10 minutes": Whisper's "in" for "and";
    "a timer for three minutes for brushing my teeth")."""
    found = _LENGTH_IN_NAME.findall(str(request.slots.get("name") or ""))
    return sum(_number(n) * _UNIT_S[unit.lower()] for n, unit in found)


def longest_timer_s(request: SkillRequest) -> float:
    return request.limits.longest_timer_h * 3600


def _too_long(request: SkillRequest) -> str:
    return f"I can't set a timer longer than {duration_text(longest_timer_s(request))}; for longer, set an alarm."


def length_s(slots: dict) -> float:
    """The length the hours, minutes and seconds slots say, in s."""
    return slots.get("hours", 0) * 3600 + slots.get("minutes", 0) * 60 + slots.get("seconds", 0)


_SAID_LENGTH = re.compile(r"(?<![\w.])(?:(minus|negative)\s+|([-\u2212])\s?)?(\d+|" + "|".join(_NUMBER_WORDS)
                          + r")[\s-]*(hour|minute|second|day)s?\b", re.IGNORECASE)
_LENGTH_INTENTS = (("remind", "SetReminder"), ("add", "AddTimeToTimer"), ("timer", "SetTimer"),
                   ("count ?down", "SetTimer"))
"""The words that say which skill a length belongs to, most telling first."""


def senseless_length(said: str) -> str | None:
    """A length said that nothing can last, as it was said: below zero ("minus five minutes",
    "-5 minutes"), or zero in all ("zero seconds"); None when there is none."""
    found = list(_SAID_LENGTH.finditer(said))
    signed = [m for m in found if m.group(1) or m.group(2)]
    if signed:
        return "minus " + " ".join(signed[0].group(0).lstrip("-\u2212").split()[-2:]).lower()
    if found and all(_number(m.group(3)) == 0 for m in found):
        return found[0].group(0).lower()
    return None


def senseless_length_intent(text: str) -> str | None:
    """The skill a request with a senseless length is for ("remind me in minus 10 minutes"),
    which no template matches (their numbers start at 1): that skill says it can't."""
    if senseless_length(text) is None:
        return None
    return next((intent for words, intent in _LENGTH_INTENTS if re.search(rf"\b{words}", text, re.IGNORECASE)), None)


def length_refusal(request: SkillRequest, doing: str) -> str | None:
    """ "I can't set a timer for minus five minutes.": a length below zero or zero, said in the
    request or in its slots (a model that mapped it may have dropped the minus), is never confirmed."""
    said = senseless_length(request.said)
    if said is None and length_s(request.slots) < 0:
        said = f"minus {duration_text(-length_s(request.slots))}"
    return None if said is None else f"I can't {doing.format(said)}."


def _number(said: str) -> int:
    return int(said) if said.isdigit() else _NUMBER_WORDS[said.lower()]


def _matching(request: SkillRequest) -> list[Reminder]:
    """The timers the request names: by name, tolerating a misheard or plural name; all when it names none."""
    timers = request.reminder_store().pending(TIMER)
    name = _name(request)
    if name is None:  # "the eggs are done, cancel that timer"
        pointed = mentioned(request.said, [t.name or "" for t in timers]) if len(timers) > 1 else None
        return timers if pointed is None else [timers[pointed]]
    exact = [t for t in timers if t.name == name]
    return exact or [t for t in timers if t.name and _same_name(t.name, name)]


def _same_name(kept: str, said: str) -> bool:
    """Whether a name said is the timer's, misheard: "egg" for "eggs", "pastor" for "pasta", or
    split and run into the words before it ("cancel solve the past a timer")."""
    kept, said = _singular(kept), _singular(said)
    if fuzz.ratio(kept, said) >= _SAME_NAME:
        return True
    joined_kept, joined_said = kept.replace(" ", ""), said.replace(" ", "")
    return len(joined_said) > len(joined_kept) >= 4 and fuzz.ratio(joined_said[-len(joined_kept):], joined_kept) >= _SAME_NAME


def _singular(name: str) -> str:
    return " ".join(word[:-1] if len(word) > 3 and word.endswith("s") else word for word in name.split())


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


_NOT_NAMES = frozenset({"a", "an", "the", "my", "new", "another", "kitchen timer", "me", "us", "you", "it", "that",
                        "this", "them", "him", "her"})


def _name(request: SkillRequest) -> str | None:
    """The timer's name as said, without an article or a trailing "timer"; None when none was given."""
    name = request.slots.get("name")
    words = str(name or "").lower().replace(",", " ").split()
    while words and words[0] in ("a", "an", "the", "my"):
        words = words[1:]
    if words and words[-1] == "timer":
        words = words[:-1]
    said = " ".join(words)
    if _LENGTH_IN_NAME.search(said):
        return None  # a length, not a name
    return said if said and said not in _NOT_NAMES else None


ABILITY = "set timers"
RANK = 10
INTENTS = {
    "SetTimer": saying_why_not("save that timer", set_timer),
    "TimerStatus": saying_why_not("read your timers", timer_status),
    "CancelTimer": saying_why_not("cancel that timer", cancel_timer),
    "CancelAllTimers": saying_why_not("cancel your timers", cancel_all_timers),
    "AddTimeToTimer": saying_why_not("add time to that timer", add_time),
}
