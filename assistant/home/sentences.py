"""Which home command a sentence is, matched locally with hassil, as Home Assistant's own
Assist does: Home Assistant's sentence templates (the `home-assistant-intents` package,
the ones its default agent uses) for the intents the assistant carries out, plus a few
phrasings of ours (`sentences.yaml`), against the names and areas the house exposes."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml
from hassil import Intents, recognize_best
from hassil.util import merge_dict
from home_assistant_intents import get_intents

from assistant.home.house import Area, HomeEntity, House

HOME_INTENTS = ("HassTurnOn", "HassTurnOff", "HassLightSet", "HassGetState", "HassClimateGetTemperature",
                "HassClimateSetTemperature", "HassSetPosition")
"""The intents carried out here; Home Assistant's others (timers, lists, media, weather) are
the assistant's own skills' or not for a speaker to do."""


@dataclass(frozen=True)
class HomeCommand:
    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    """Slot values: `name` is an entity id, `area` an area id; `domain`, `device_class`,
    `state`, `brightness`, `color`, `temperature`, `position` as Home Assistant's templates give them."""
    question: str | None = None
    """For a state question, how it was asked: `any`, `all`, `which`, `how_many`, or None (one entity)."""
    unexposed: HomeEntity | None = None
    """The entity named, when it is not exposed to Assist (the command is refused, not done)."""

    @classmethod
    def from_slots(cls, intent: str, slots: dict[str, Any], house: House) -> HomeCommand:
        """The command a route's slots describe (`as_slots` reversed)."""
        plain = {name: value for name, value in slots.items() if name not in ("question", "unexposed")}
        unexposed = house.entity(str(slots["unexposed"])) if "unexposed" in slots else None
        return cls(intent, plain, slots.get("question"), unexposed)

    def as_slots(self) -> dict[str, Any]:
        """The slots as a route reports them."""
        extra = {"question": self.question} if self.question else {}
        return {**self.slots, **extra, **({"unexposed": self.unexposed.entity_id} if self.unexposed else {})}


class HomeSentences:
    """The templates, loaded once per language."""

    def __init__(self, language: str = "en") -> None:
        self.language = language
        self.intents = _intents(language)

    def warm(self) -> None:
        """hassil builds its number words at the first match (~80 ms): done at start-up, not in a turn."""
        house = House((HomeEntity("light.warm_up", "Warm Up Light", area_id="warm_up"),), (Area("warm_up", "Warm Up"),))
        for text in ("set the warm up light to fifty percent", "turn on the warm up light"):
            self.match(text, house)

    def match(self, text: str, house: House, here: Area | None = None) -> HomeCommand | None:
        """The command `text` is, against the exposed entities; else, if it names an entity that
        is not exposed, that command marked `unexposed`; else None."""
        if not house.entities:
            return None
        context = {"area": {"value": here.area_id, "text": here.name}} if here is not None else None
        found = self._recognize(text, house.exposed_lists, context)
        if found is not None:
            return _command(found)
        found = self._recognize(text, house.all_lists, context)
        named = found.entities.get("name") if found is not None else None
        if named is not None and (entity := house.entity(str(named.value))):
            return HomeCommand(found.intent.name, _slots(found), None, unexposed=entity)
        return None

    def _recognize(self, text: str, lists: dict, context: dict | None):
        return recognize_best(text, self.intents, slot_lists=lists, intent_context=context, language=self.language,
                              best_slot_name="name")


def _command(found) -> HomeCommand:
    response = found.response if found.intent.name == "HassGetState" else None
    return HomeCommand(found.intent.name, _slots(found), response if response in ("any", "all", "which", "how_many")
                       else None)


def _slots(found) -> dict[str, Any]:
    values = {name: entity.value for name, entity in found.entities.items()}
    return {name: int(value) if isinstance(value, float) and value.is_integer() else value
            for name, value in values.items()}


@functools.cache
def _intents(language: str) -> Intents:
    data = get_intents(language)
    if data is None:
        raise ValueError(f"Home Assistant's sentences have no language {language!r}")
    ours = yaml.safe_load(resources.files(__package__).joinpath("sentences.yaml").read_text(encoding="utf-8"))
    data = {**data, "intents": {name: data["intents"][name] for name in HOME_INTENTS if name in data["intents"]}}
    if ours.get("language") == language:
        merge_dict(data, {key: value for key, value in ours.items() if key != "language"})
    return Intents.from_dict(data)
