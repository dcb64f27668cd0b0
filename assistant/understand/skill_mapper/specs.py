"""From the loaded hassil templates to the allow-list: each intent's slots, their kinds and
ranges, its distinctive words and one example request."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hassil import Intents
from hassil.expression import (Alternative, Expression, Group, ListReference, Permutation, RuleReference,
                               Sentence, TextChunk)
from hassil.intents import IntentData, RangeSlotList, SlotList, TextSlotList, WildcardSlotList

log = logging.getLogger(__name__)

NONE = "none"
"""The model's answer when the request is not a skill."""
MAX_TEXT_CHARS = 200
"""Longer requests are cut: a spoken command is short, and this bounds the mapping time."""
MAX_WILDCARD_CHARS = 40
_RULE_DEPTH = 16
_WORD = re.compile(r"[a-z0-9']+")
# Words that say nothing about which skill is meant (courtesy, grammar; and the wake phrase's names, given).
_FILLER = frozenset("""
a about am an and any are at be by can could did do does for from get got had has have hey how i i'd i'll
i'm in is it it's let me my of oh ok okay on or our please so some that that's the then there this
to up us was what what's whats when where which who will with would you your
tell make give let know now right all much just need want
""".split())
# Few-shot examples that are no skill, shown after the skills' own examples.
# Example values for the skills' slots: numbers as Whisper writes them, a word for a wildcard.
_EXAMPLE_NUMBERS = (30, 5, 12, 45, 8, 20, 3)
_EXAMPLE_WORD = "pasta"


@dataclass(frozen=True)
class SlotSpec:
    """One slot an intent's templates fill, and the values it may take."""

    name: str
    kind: str
    """`integer` (a range list), `number` (a range with fractions or a multiplier), `enum`
    (a values list: its `out` values) or `text` (a wildcard)."""
    required: bool
    """Every template of the intent fills it."""
    minimum: float | None = None
    maximum: float | None = None
    step: int = 1
    values: tuple[Any, ...] = ()
    """An enum's allowed values."""
    words: dict[Any, str] = field(default_factory=dict)
    """An enum value's first spoken form ("+": "plus"), for the example."""
    said_as: dict[Any, frozenset[str]] = field(default_factory=dict)
    """An enum value's words in its list ("+": plus, add); one of them, or the value, must be said."""

    def describe(self) -> str:
        if self.kind in ("integer", "number"):
            shown = f"{number_text(self.minimum)}-{number_text(self.maximum)}"
        elif self.kind == "enum":
            shown = "|".join(json.dumps(v) for v in self.values)
        else:
            shown = "words from the request"
        return f"{self.name}{'' if self.required else '?'}: {shown}"

    def json_schema(self) -> dict[str, Any]:
        if self.kind == "integer":
            return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        if self.kind == "number":
            return {"type": "number", "minimum": self.minimum, "maximum": self.maximum}
        if self.kind == "enum":
            return {"enum": list(self.values)}
        return {"type": "string", "minLength": 1, "maxLength": MAX_WILDCARD_CHARS}


@dataclass(frozen=True)
class IntentSpec:
    """What the model may say for one intent, derived from its templates."""

    name: str
    slots: tuple[SlotSpec, ...]
    keywords: frozenset[str]
    """Its templates' words less filler, with its required slots' list words; the request must share one."""
    example: str
    """One request its first template accepts, with example slot values."""
    example_slots: dict[str, Any]
    needs_a_slot: bool = False
    """Every template fills some slot, though none in particular (a length in hours, minutes or
    seconds): an answer with no slot is not one of its requests."""

    def json_schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {"intent": {"const": self.name}}
        properties.update({slot.name: slot.json_schema() for slot in self.slots})
        return {"type": "object", "properties": properties, "additionalProperties": False,
                "required": ["intent"] + [slot.name for slot in self.slots if slot.required]}


def intent_specs(intents: Intents, handlers: Mapping[str, Any], names: frozenset[str] = frozenset()) -> list[IntentSpec]:
    """The allow-list: every intent that has templates and a handler, with its slots; `names`:
    the assistant's, from its wake phrases, which say nothing about the skill either."""
    specs = []
    for name, intent in intents.intents.items():
        if name not in handlers:
            continue
        spec = _intent_spec(intents, name, intent.data, _FILLER | names)
        if spec is not None:
            specs.append(spec)
    return specs


def json_schema(specs: Iterable[IntentSpec]) -> dict[str, Any]:
    """The answers allowed, as a JSON Schema (for readers and tests; `Answers` and `check_answer` enforce it)."""
    none = {"type": "object", "properties": {"intent": {"const": NONE}}, "required": ["intent"],
            "additionalProperties": False}
    return {"oneOf": [spec.json_schema() for spec in specs] + [none]}


# --- from templates to specs ------------------------------------------------------------


@dataclass
class _Template:
    slots: dict[str, set[str]]
    """slot name -> list names that fill it"""
    required: set[str]
    words: set[str]
    fills_a_slot: bool = False
    """Every way through it fills at least one slot."""


def _intent_spec(intents: Intents, name: str, data: list[IntentData], filler: frozenset[str]) -> IntentSpec | None:
    slot_sources: dict[str, list[SlotList | Any]] = {}
    required: set[str] | None = None
    words: set[str] = set()
    list_words: dict[str, set[str]] = {}
    first: tuple[Sentence, IntentData] | None = None
    needs_a_slot = True
    for block in data:
        if block.requires_context or (block.metadata or {}).get("not_mapped"):
            continue  # an answer to a skill's question, or a refusal: nothing to map a free request onto
        rules = {**intents.expansion_rules, **block.expansion_rules}
        lists = {**intents.slot_lists, **block.slot_lists}
        for sentence in block.sentences:
            first = first or (sentence, block)
            template = _walk(sentence.expression, rules, 0)
            for slot, list_names in template.slots.items():
                slot_sources.setdefault(slot, []).extend(lists.get(n) for n in list_names)
            for slot, value in block.slots.items():
                slot_sources.setdefault(slot, []).append(_Fixed(value))
            these = template.required | set(block.slots)
            required = these if required is None else required & these
            needs_a_slot = needs_a_slot and (template.fills_a_slot or bool(block.slots))
            words |= template.words
            for slot, list_names in template.slots.items():
                for list_name in list_names:
                    if isinstance(lists.get(list_name), TextSlotList):
                        list_words.setdefault(slot, set()).update(_list_words(lists[list_name], rules))
    if first is None:
        return None
    # A required slot's list words ("plus", "times") point at the intent; an optional one's
    # ("tomorrow", "morning") are everyday words that would let small talk through.
    for slot in required or set():
        words |= list_words.get(slot, set())
    slots = []
    for slot_name, sources in slot_sources.items():
        slot = _slot_spec(slot_name, sources, slot_name in (required or set()))
        if slot is None:
            if slot_name in (required or set()):
                log.warning("intent %s: slot %s has no list the model can fill; left out", name, slot_name)
                return None
            continue
        if slot.kind == "text" and slot.required:
            return None  # free words the whole request turns on (a list's item, a reminder's message): templates only
        slots.append(slot)
    specs = {slot.name: slot for slot in slots}
    example, example_slots = _example(first[0].expression, {**intents.expansion_rules, **first[1].expansion_rules},
                                      specs)
    example_slots.update({k: v for k, v in first[1].slots.items() if k in specs})
    keywords = frozenset(_stem(w) for w in words - filler if len(w) > 1 and not w.isdigit())
    return IntentSpec(name=name, slots=tuple(slots), keywords=keywords, example=example,
                      example_slots=example_slots, needs_a_slot=needs_a_slot and bool(slots))


@dataclass(frozen=True)
class _Fixed:
    """A value an intent's data block sets without a template slot."""

    value: Any


def _walk(expression: Expression, rules: Mapping[str, Sentence], depth: int) -> _Template:
    if isinstance(expression, TextChunk):
        return _Template({}, set(), set(words_of(expression.text)))
    if isinstance(expression, ListReference):
        return _Template({expression.slot_name: {expression.list_name}}, {expression.slot_name}, set(), True)
    if isinstance(expression, RuleReference):
        rule = rules.get(expression.rule_name)
        if rule is None or depth > _RULE_DEPTH:
            return _Template({}, set(), set())
        return _walk(rule.expression, rules, depth + 1)
    if isinstance(expression, Group):
        parts = [_walk(item, rules, depth + 1) for item in expression.items]
        slots: dict[str, set[str]] = {}
        for part in parts:
            for slot, list_names in part.slots.items():
                slots.setdefault(slot, set()).update(list_names)
        words = set().union(*(part.words for part in parts)) if parts else set()
        if isinstance(expression, Alternative):
            required = set() if expression.is_optional or not parts else set.intersection(
                *(part.required for part in parts))
            fills = bool(parts) and not expression.is_optional and all(part.fills_a_slot for part in parts)
        else:
            required = set().union(*(part.required for part in parts)) if parts else set()
            fills = any(part.fills_a_slot for part in parts)
        return _Template(slots, required, words, fills)
    return _Template({}, set(), set())


def _slot_spec(name: str, sources: list[Any], required: bool) -> SlotSpec | None:
    kinds, low, high, values, words, said_as, steps = set(), [], [], [], {}, {}, set()
    for source in sources:
        if isinstance(source, RangeSlotList):
            scale = source.multiplier or 1
            kinds.add("number" if source.fraction_type or source.multiplier else "integer")
            low.append(source.start * scale)
            high.append(source.stop * scale)
            steps.add(source.step)
        elif isinstance(source, TextSlotList):
            kinds.add("enum")
            for value in source.values:
                if value.value_out not in values:
                    values.append(value.value_out)
                    words[value.value_out] = _first_text(value.text_in, {})
                    said_as[value.value_out] = frozenset(_walk(value.text_in, {}, 0).words)
        elif isinstance(source, WildcardSlotList):
            kinds.add("text")
        elif isinstance(source, _Fixed):
            if isinstance(source.value, bool) or not isinstance(source.value, (int, float, str)):
                return None
            if isinstance(source.value, str):
                kinds.add("enum")
                if source.value not in values:
                    values.append(source.value)
            else:
                kinds.add("integer" if isinstance(source.value, int) else "number")
                low.append(source.value)
                high.append(source.value)
        else:
            return None  # a list given only at run time: the model cannot know its values
    if kinds == {"integer"} or kinds == {"number"} or kinds == {"integer", "number"}:
        kind = "integer" if kinds == {"integer"} else "number"
        return SlotSpec(name, kind, required, minimum=min(low), maximum=max(high),
                        step=min(steps) if len(steps) == 1 else 1)
    if kinds == {"enum"}:
        return SlotSpec(name, "enum", required, values=tuple(values), words=words, said_as=said_as)
    if kinds == {"text"}:
        return SlotSpec(name, "text", required)
    return None  # one slot filled by lists of different kinds: too loose to check


def _example(expression: Expression, rules: Mapping[str, Sentence],
             specs: Mapping[str, SlotSpec]) -> tuple[str, dict[str, Any]]:
    """The template's shortest reading: optional parts left out, the first alternative taken,
    each slot filled with an example value."""
    filled: dict[str, Any] = {}
    numbers = iter(_EXAMPLE_NUMBERS * 4)

    def render(exp: Expression, depth: int) -> str:
        if isinstance(exp, TextChunk):
            return exp.original_text
        if isinstance(exp, ListReference):
            slot = specs.get(exp.slot_name)
            if slot is None:
                return ""
            if slot.kind in ("integer", "number"):
                value = next((n for n in numbers if slot.minimum <= n <= slot.maximum), slot.minimum)
                value = int(value) if float(value).is_integer() else value
                filled[slot.name] = value
                return str(value)
            if slot.kind == "enum":
                filled[slot.name] = slot.values[0]
                return slot.words.get(slot.values[0], str(slot.values[0]))
            filled[slot.name] = _EXAMPLE_WORD
            return _EXAMPLE_WORD
        if isinstance(exp, RuleReference):
            rule = rules.get(exp.rule_name)
            return "" if rule is None or depth > _RULE_DEPTH else render(rule.expression, depth + 1)
        if isinstance(exp, Alternative):
            if exp.is_optional or not exp.items:
                return ""
            return render(exp.items[0], depth + 1)
        if isinstance(exp, (Group, Permutation)):
            return "".join(render(item, depth + 1) for item in exp.items)
        return ""

    return " ".join(render(expression, 0).split()), filled


def _first_text(expression: Expression, rules: Mapping[str, Sentence]) -> str:
    if isinstance(expression, TextChunk):
        return expression.original_text
    if isinstance(expression, Alternative):
        return "" if expression.is_optional or not expression.items else _first_text(expression.items[0], rules)
    if isinstance(expression, Group):
        return " ".join(" ".join(_first_text(item, rules) for item in expression.items).split())
    return ""


def _list_words(slot_list: TextSlotList, rules: Mapping[str, Sentence]) -> set[str]:
    words: set[str] = set()
    for value in slot_list.values:
        words |= _walk(value.text_in, rules, 0).words
    return words


def shares_keyword(text: str, keywords: frozenset[str]) -> bool:
    return any(_stem(word) in keywords for word in words_of(text))


def _stem(word: str) -> str:
    """A word without a plural's "s", so "timers" meets "timer"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def words_of(text: str) -> list[str]:
    return [word for found in _WORD.findall(text.lower().replace("’", "'")) if (word := found.strip("'"))]


def number_text(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)

