"""Deterministic skills: one module each, answering a recognised intent without a model.

A skill module has `INTENTS`, a map from intent name to a handler, and a templates file of
the same name (`clock.py` beside `clock.yaml`). A handler gets the matched slots and
returns the reply text. A new skill is a new pair of files here and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from hassil import Intents
from hassil.util import merge_dict

if TYPE_CHECKING:
    from ..reminders import ReminderStore


class VolumeControl(Protocol):
    """The player's loudness, 0 to 1; a change is heard at once."""

    volume: float


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
    """The timers and alarms."""

    def local_time(self) -> datetime:
        """`now`, or else the clock's time, in the local time zone."""
        return (self.now or datetime.now()).astimezone()

    def reminder_store(self) -> ReminderStore:
        assert self.reminders is not None, "timers and alarms need the reminder store"
        return self.reminders


Skill = Callable[[SkillRequest], str]


_NUMBER_HYPHEN = re.compile(r"(\d)-(?=[a-z])", re.IGNORECASE)
_DOTTED_TIME = re.compile(r"\b(\d{1,2})\.(\d{2})(?=\s*(?:[ap]\.?\s?m\b|o'clock))", re.IGNORECASE)
_RUN_TOGETHER_TIME = re.compile(r"\b(at|for|until|to)\s+([1-9]|1[0-2])([0-5]\d)\b(?!\s*(?:%|percent|sec|min|hour|day|time))", re.IGNORECASE)
"""Whisper writes "six thirty" as "630" ("wake me up at 630")."""


def template_text(transcript: str) -> str:
    """The transcript in the forms the templates spell: Whisper writes "a 5-minute timer" and,
    at times, "7.30 pm" or "at 630"; the templates say "5 minute", "7:30" and "6:30"."""
    text = _DOTTED_TIME.sub(r"\1:\2", _NUMBER_HYPHEN.sub(r"\1 ", transcript))
    return _RUN_TOGETHER_TIME.sub(r"\1 \2:\3", text)


def load_skills() -> tuple[Intents, dict[str, Skill]]:
    """Every skill in this package: the templates, merged, and the handler of each intent."""
    templates: dict[str, Any] = {}
    handlers: dict[str, Skill] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        handlers.update(module.INTENTS)
        text = resources.files(__name__).joinpath(f"{module_info.name}.yaml").read_text(encoding="utf-8")
        merge_dict(templates, yaml.safe_load(text))
    return Intents.from_dict(templates), handlers
