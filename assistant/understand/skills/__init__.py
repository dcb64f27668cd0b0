"""Deterministic skills: one module each, answering a recognised intent without a model.

A skill module has `INTENTS`, a map from intent name to a handler, a templates file of
the same name (`clock.py` beside `clock.yaml`), and `ABILITY`, what it does in a few words
("set timers"), for "what can you do?". A handler gets the matched slots and returns the
reply text. A new skill is a new pair of files here and nothing else.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from hassil import Intents
from hassil.util import merge_dict
from rapidfuzz import fuzz

from assistant.config import RemindersSettings
from assistant.hear.asr import words_of
from assistant.store.state import StateConnection, why_not

if TYPE_CHECKING:
    from assistant.store.lists import ListStore
    from assistant.store.reminders import ReminderStore


class VolumeControl(Protocol):
    """The player's loudness, 0 to 1; a change is heard at once."""

    volume: float
    volume_before_mute: float | None
    """The loudness to come back to on "unmute"; None when not muted."""


@dataclass(frozen=True)
class SkillRequest:
    slots: dict[str, Any] = field(default_factory=dict)
    """Slot values from the template that matched ("percent": 50)."""
    now: datetime | None = None
    """The current local time (injectable, so tests never depend on the clock)."""
    volume: VolumeControl | None = None
    last_reply: str | None = None
    """What the assistant said last, for "repeat that"."""
    reminders: ReminderStore | None = None
    """The timers, alarms and reminders."""
    lists: ListStore | None = None
    """The shopping and to-do lists (in the same SQLite database as the reminders)."""
    abilities: tuple[str, ...] = ()
    """What the loaded skills can do, in words ("set timers")."""
    said: str = ""
    """The whole transcript, for a "that" that points into it ("I've rung the dentist, so
    forget that reminder")."""
    wake_phrase: str = ""
    """The main wake phrase as its loaded model names it ("Hey Jarvis"); empty: none known."""
    limits: RemindersSettings = field(default_factory=RemindersSettings)
    """How long a timer and how far ahead a reminder may be ([reminders])."""

    def local_time(self) -> datetime:
        """`now`, or else the clock's time, in the local time zone."""
        return (self.now or datetime.now()).astimezone()

    def reminder_store(self) -> ReminderStore:
        assert self.reminders is not None, "timers and alarms need the reminder store"
        return self.reminders

    def list_store(self) -> ListStore:
        assert self.lists is not None, "lists need the list store"
        return self.lists


@dataclass(frozen=True)
class Awaiting:
    """A question a skill asked ("For how long?"), whose answer comes in the follow-up window
    without the wake word. Only then do the templates that require this context match: in a
    templates file, `requires_context: {awaiting: CONTEXT}` on a data block."""

    context: str
    """The value of `awaiting` that the answer's templates require ("timer_duration")."""
    slots: dict[str, Any] = field(default_factory=dict)
    """What the question already knows, merged under the answer's slots ({"name": "pasta"})."""


@dataclass(frozen=True)
class SkillReply:
    """What a handler did, in words made from its result; and the question it asks, if any."""

    text: str
    awaiting: Awaiting | None = None


Skill = Callable[[SkillRequest], "str | SkillReply"]
"""A handler: the reply, as text or as a SkillReply when it asks a question. It says that
something was done only after doing it (the SQLite write returned)."""


def saying_why_not(doing: str, handler: Skill) -> Skill:
    """`handler`, answering "I couldn't {doing}: the disk is full." when its database fails, so
    the turn is answered and the assistant keeps listening."""
    @functools.wraps(handler)
    def answered(request: SkillRequest) -> str | SkillReply:
        try:
            return handler(request)
        except sqlite3.Error as err:
            return f"I couldn't {doing}: {why_not_saved(request, err)}."
    return answered


def why_not_saved(request: SkillRequest, err: sqlite3.Error) -> str:
    """Why the database refused, in words ("the disk is full")."""
    store = request.reminders or request.lists
    db = store.db if store else None
    return db.why_not(err) if isinstance(db, StateConnection) else why_not(err)


def as_reply(result: str | SkillReply) -> SkillReply:
    return result if isinstance(result, SkillReply) else SkillReply(result)


POINTING_WORDS = frozenset({"it", "that", "this", "them", "him", "her", "em", "that one", "this one", "the one"})
"""Words that name no timer, reminder or item themselves, but point at one."""
_NOT_TELLING = frozenset("a an the my our your to of for on in at and or it that this some".split())
_SAME_WORD = 75
"""rapidfuzz ratio at which a word said is a word of the thing ("picked" and "pick", "rang" and "ring")."""


def mentioned(said: str, things: Sequence[str]) -> int | None:
    """Which of `things` the sentence talks about ("I picked up the dry cleaning, so cross that
    off" -> "pick up the dry cleaning"): the one with the most of its words in the sentence, as
    said or nearly, and at least half of them; None when none is, or two are equally."""
    heard = words_of(said)
    scores = []
    for thing in things:
        words = [word for word in words_of(thing) if word not in _NOT_TELLING] or words_of(thing)
        found = sum(any(fuzz.ratio(word, other) >= _SAME_WORD for other in heard) for word in words)
        scores.append(found / len(words) if words else 0.0)
    best = max(scores, default=0.0)
    return scores.index(best) if best >= 0.5 and scores.count(best) == 1 else None


_NUMBER_HYPHEN = re.compile(r"(\d)-(?=[a-z])", re.IGNORECASE)
_DOTTED_TIME = re.compile(r"\b(\d{1,2})\.(\d{2})(?=\s*(?:[ap]\.?\s?m\b|o'clock))", re.IGNORECASE)
_RUN_TOGETHER_TIME = re.compile(r"\b(at|for|until|to)\s+([1-9]|1[0-2])([0-5]\d)\b(?!\s*(?:%|percent|sec|min|hour|day|time))", re.IGNORECASE)
"""Whisper writes "six thirty" as "630" ("wake me up at 630")."""


_THOUSANDS = re.compile(r"(\d),(\d{3})\b")
_DOTTED_AFTER = re.compile(r"\b(at|for|until|by|to)\s+(\d{1,2})\.(\d{2})\b", re.IGNORECASE)
_HOURS = {w: n for n, w in enumerate("twelve one two three four five six seven eight nine ten eleven".split())}
_HOUR = r"(\d{1,2}|" + "|".join(_HOURS) + ")"
_PAST = re.compile(r"\b(half|quarter|a quarter|twenty|ten|five|twenty-five|twenty five) past " + _HOUR + r"\b",
                   re.IGNORECASE)
_TO = re.compile(r"\b(quarter|a quarter|twenty|ten|five) to " + _HOUR + r"\b", re.IGNORECASE)
_MINUTES = {"half": 30, "quarter": 15, "a quarter": 15, "twenty": 20, "ten": 10, "five": 5, "twenty-five": 25,
            "twenty five": 25}
_ALARM_TIME = re.compile(r"\b([1-9]|1[0-2])([0-5]\d)(?=[ -]?(?:a\.?m\.?|p\.?m\.?)?[ -]?alarm\b)", re.IGNORECASE)
"""Whisper's "the 630-alarm": a time before the word alarm."""
_PERCENT = re.compile(r"(\d)\s?%")
_A_HUNDRED = re.compile(r"\ba (hundred|thousand)\b", re.IGNORECASE)
_HUNDRED_AND = re.compile(r"\b(hundred|thousand) and (?=(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                          r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
                          r"seventy|eighty|ninety)\b)", re.IGNORECASE)
"""British "a hundred and forty-four": the templates' number words say "one hundred forty-four"."""
_AND_A_HALF = re.compile(r"\b(?:(an?|one)\s+(hour|minute)\s+and\s+a\s+half|(\S+)\s+and\s+a\s+half\s+(hour|minute)s?"
                         r"|half\s+an?\s+(hour|minute))\b", re.IGNORECASE)
_HALF_OF = {"hour": "30 minutes", "minute": "30 seconds"}
_FRACTIONS = {"\u00bd": " 1/2", "\u00bc": " 1/4", "\u00be": " 3/4", "\u2153": " 1/3", "\u2154": " 2/3"}


def template_text(transcript: str) -> str:
    """The transcript in the forms the templates spell: Whisper writes "a 5-minute timer",
    "1,000 grams", "½ cup", "a hundred", "half past 7", "quarter to eight" and, at times,
    "7.30 pm", "at 6.30" or "at 630", "a hundred and five"; the templates say "5 minute", "1000", "1/2",
    "one hundred five",
    "7:30", "7:45" and "6:30". Half a minute or an hour is said in seconds or minutes."""
    text = _DOTTED_TIME.sub(r"\1:\2", _NUMBER_HYPHEN.sub(r"\1 ", transcript))
    text = _THOUSANDS.sub(r"\1\2", _THOUSANDS.sub(r"\1\2", text))
    text = _DOTTED_AFTER.sub(r"\1 \2:\3", text)
    text = _PAST.sub(lambda m: _clock(_hour(m.group(2)), _MINUTES[m.group(1).lower()]), text)
    text = _TO.sub(lambda m: _clock(_hour(m.group(2)) - 1 or 12, 60 - _MINUTES[m.group(1).lower()]), text)
    text = _PERCENT.sub(r"\1 percent", text)
    text = _ALARM_TIME.sub(r"\1:\2", text)
    text = _HUNDRED_AND.sub(r"\1 ", _A_HUNDRED.sub(r"one \1", text))
    text = _and_a_half(text)
    for fraction, written in _FRACTIONS.items():
        text = text.replace(fraction, written)
    return _RUN_TOGETHER_TIME.sub(r"\1 \2:\3", text)


def _and_a_half(text: str) -> str:
    """ "two and a half minutes", "an hour and a half", "half an hour" as the durations the
    templates know: "two minutes and 30 seconds", "1 hour and 30 minutes", "30 minutes"."""
    def said(m: re.Match) -> str:
        if m.group(5):
            return _HALF_OF[m.group(5).lower()]
        count, unit = ("1", m.group(2)) if m.group(2) else (m.group(3), m.group(4))
        return f"{count} {unit.lower()}s and {_HALF_OF[unit.lower()]}"
    return _AND_A_HALF.sub(said, text)


def _modules():
    for module_info in pkgutil.iter_modules(__path__):
        yield module_info.name, importlib.import_module(f"{__name__}.{module_info.name}")


def abilities(handlers: dict[str, Skill]) -> tuple[str, ...]:
    """What the skills among `handlers` can do, in words, in the modules' order of RANK."""
    found = [(getattr(module, "RANK", 50), module.ABILITY) for _, module in _modules()
             if getattr(module, "ABILITY", None) and set(module.INTENTS) & set(handlers)]
    return tuple(ability for _, ability in sorted(found))


def _hour(said: str) -> int:
    return int(said) if said.isdigit() else (_HOURS[said.lower()] or 12)


def _clock(hour: int, minute: int) -> str:
    return f"{hour}:{minute:02d}"


def load_skills() -> tuple[Intents, dict[str, Skill]]:
    """Every skill in this package: the templates, merged, and the handler of each intent."""
    templates: dict[str, Any] = {}
    handlers: dict[str, Skill] = {}
    for name, module in _modules():
        handlers.update(module.INTENTS)
        text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        merge_dict(templates, yaml.safe_load(text))
    return Intents.from_dict(templates), handlers
