"""Deterministic skills: one module each, answering a recognised intent without a model.

A skill module has `INTENTS`, a map from intent name to a handler, and a templates file of
the same name (`clock.py` beside `clock.yaml`). A handler gets the matched slots and
returns the reply text. A new skill is a new pair of files here and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any, Protocol

import yaml
from hassil import Intents
from hassil.util import merge_dict


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


Skill = Callable[[SkillRequest], str]


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
