"""What Home Assistant lets the assistant see: its areas and entities, by name and alias,
each marked exposed to Assist or not. A snapshot, replaced whole when Home Assistant's
registries change; the sentence lists the templates match against are built from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from hassil.expression import TextChunk
from hassil.intents import SlotList, TextSlotList, TextSlotValue
from rapidfuzz import fuzz


@dataclass(frozen=True)
class Area:
    area_id: str
    name: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class HomeEntity:
    entity_id: str
    name: str
    """What Home Assistant calls it ("Kitchen Light")."""
    aliases: tuple[str, ...] = ()
    area_id: str | None = None
    exposed: bool = True
    """Exposed to Assist: the assistant acts on it. An entity that is not is refused by name."""
    device_class: str | None = None

    @property
    def domain(self) -> str:
        return self.entity_id.split(".", 1)[0]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class House:
    entities: tuple[HomeEntity, ...] = ()
    areas: tuple[Area, ...] = ()
    language: str = "en"

    def entity(self, entity_id: str) -> HomeEntity | None:
        return self._by_id.get(entity_id)

    def area(self, area_id: str | None) -> Area | None:
        return next((area for area in self.areas if area.area_id == area_id), None)

    def area_named(self, name: str) -> Area | None:
        wanted = _plain(name)
        return next((area for area in self.areas if wanted in map(_plain, (area.name, *area.aliases))), None)

    def exposed(self, *, area_id: str | None = None, domain: str | None = None,
                device_class: str | None = None) -> list[HomeEntity]:
        """The exposed entities in an area, of a domain and device class (each when given)."""
        return [entity for entity in self.entities if entity.exposed
                and (area_id is None or entity.area_id == area_id)
                and (domain is None or entity.domain == domain)
                and (device_class is None or entity.device_class == device_class)]

    @cached_property
    def exposed_lists(self) -> dict[str, SlotList]:
        """hassil's `name`, `area` and `floor` lists of what the assistant may control."""
        return self._slot_lists([entity for entity in self.entities if entity.exposed])

    @cached_property
    def all_lists(self) -> dict[str, SlotList]:
        """The same lists with every entity, to recognise one that is named but not exposed."""
        return self._slot_lists(list(self.entities))

    def _slot_lists(self, entities: list[HomeEntity]) -> dict[str, SlotList]:
        """A name's value is its entity id, with its domain as context (so "turn on" a cover's
        template does not take a light)."""
        names = [TextSlotValue(TextChunk(_spoken(name)), entity.entity_id,
                               context={"domain": entity.domain, **({"device_class": entity.device_class}
                                                                     if entity.device_class else {})})
                 for entity in entities for name in entity.names if _spoken(name)]
        areas = [TextSlotValue(TextChunk(_spoken(name)), area.area_id)
                 for area in self.areas for name in (area.name, *area.aliases) if _spoken(name)]
        return {"name": TextSlotList(name="name", values=names), "area": TextSlotList(name="area", values=areas),
                "floor": TextSlotList(name="floor", values=[])}

    def mentioned_entity(self, text: str) -> HomeEntity | None:
        """The exposed entity whose name or alias the text says as whole words (the longest such name)."""
        exposed = sorted((entity for entity in self.entities if entity.exposed),
                         key=lambda entity: -max(len(name) for name in entity.names))
        return next((entity for entity in exposed if _says(text, entity.names)), None)

    def mentioned_area(self, text: str) -> Area | None:
        """The area whose name or alias the text says as whole words, when it says exactly one."""
        named = [area for area in self.areas if _says(text, (area.name, *area.aliases))]
        return named[0] if len(named) == 1 else None

    def closest_name(self, heard: str, least: float = 75.0, margin: float = 8.0) -> str | None:
        """The exposed name (or alias) closest to `heard` by edit distance, if at least `least`
        similar (0-100) and `margin` ahead of the next entity's, so a slip never picks a neighbour
        ("the bedroom fire": the bedroom fan, 78, the bedside lamp far behind)."""
        wanted = _ARTICLE.sub("", _spoken(heard))
        if not wanted:
            return None
        best: dict[str, tuple[float, str]] = {}
        for entity in self.entities:
            if entity.exposed:
                for name in entity.names:
                    score = fuzz.ratio(wanted, _spoken(name))
                    if score > best.get(entity.entity_id, (-1.0, ""))[0]:
                        best[entity.entity_id] = (score, _spoken(name))
        ranked = sorted(best.values(), reverse=True)
        if not ranked or ranked[0][0] < least or (len(ranked) > 1 and ranked[0][0] - ranked[1][0] < margin):
            return None
        return ranked[0][1]

    @cached_property
    def _by_id(self) -> dict[str, HomeEntity]:
        return {entity.entity_id: entity for entity in self.entities}


EMPTY_HOUSE = House()

_NOT_SPOKEN = re.compile(r"[^\w' ]+")
_ARTICLE = re.compile(r"^(?:the|my|our|a|an) ")


def _spoken(name: str) -> str:
    """A name as Whisper would write it, lower case, without symbols ("Lamp (desk)" -> "lamp desk")."""
    return " ".join(_NOT_SPOKEN.sub(" ", name).lower().split())


def _says(text: str, names: tuple[str, ...]) -> bool:
    """Whether `text` holds one of `names` as whole words (case, symbols and apostrophes aside)."""
    said = f" {_plain(text)} "
    return any(f" {_plain(name)} " in said for name in names if _plain(name))


def _plain(text: str) -> str:
    return _spoken(text).replace("'", "")


__all__ = ["EMPTY_HOUSE", "Area", "HomeEntity", "House"]
