"""The answers the model may write, checked as it writes them (`Answers`) and once
written (`check_answer`): allowed intents, their own slots, values the request holds."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from assistant.understand.skill_mapper.specs import (
    MAX_WILDCARD_CHARS,
    NONE,
    IntentSpec,
    SlotSpec,
    number_text,
    words_of,
)


class Answers:
    """The answers allowed after `{"intent": "`, as text: an intent's name and `"`, its slots in
    the spec's order (`, "name": value`; an optional one may be left out), then `}`.

    Numbers are confined to digits of the range's width, not to the range itself: confining
    them to 0-100 would turn "500" into "50", where `check_answer` turns it into None.
    """

    def __init__(self, specs: Iterable[IntentSpec]) -> None:
        self.slots = {spec.name + '"': spec.slots for spec in specs}
        self.slots[NONE + '"'] = ()
        chars = set(_TEXT_CHARS) | set('0123456789-.,:"{} ')
        for name, slots in self.slots.items():
            chars |= set(name) | {c for slot in slots for c in slot.name + "".join(map(json.dumps, slot.values))}
        self._alphabet = "".join(sorted(chars))

    def allows(self, text: str) -> bool:
        """`text` begins an allowed answer, or is one."""
        return self._read(text) != _INVALID

    def complete(self, text: str) -> bool:
        return self._read(text) == _COMPLETE

    def forced(self, text: str) -> str:
        """What every allowed answer that begins with `text` writes next ("" at a choice)."""
        forced = ""
        while self._read(text + forced) == _PREFIX:
            following = [c for c in self._alphabet if self._read(text + forced + c) != _INVALID]
            if len(following) != 1:
                break
            forced += following[0]
        return forced

    def _read(self, text: str) -> int:
        best = _INVALID
        for name, slots in self.slots.items():
            if name.startswith(text) and len(text) < len(name):
                best = max(best, _PREFIX)
            elif text.startswith(name):
                best = max(best, _read_slots(text[len(name):], slots, 0))
        return best


_INVALID, _PREFIX, _COMPLETE = 0, 1, 2
_TEXT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' -"
"""What a wildcard's value may hold: words, never quotes, braces or backslashes."""


def _read_slots(rest: str, slots: tuple[SlotSpec, ...], index: int) -> int:
    if rest == "":
        return _PREFIX
    if rest[0] == "}":
        missing = any(slot.required for slot in slots[index:])
        return _COMPLETE if rest == "}" and not missing else _INVALID
    best = _INVALID
    for position in range(index, len(slots)):
        key = f", {json.dumps(slots[position].name)}: "
        if key.startswith(rest) and len(rest) < len(key):
            best = max(best, _PREFIX)
        elif rest.startswith(key):
            value = rest[len(key):]
            for length in _value_lengths(slots[position], value):
                best = max(best, _PREFIX if length is None else _read_slots(value[length:], slots, position + 1))
        if slots[position].required:
            break  # a required slot cannot be skipped
    return best


def _value_lengths(slot: SlotSpec, text: str) -> list[int | None]:
    """Lengths of the whole values `text` begins with; None when all of `text` may begin one."""
    if slot.kind in ("integer", "number"):
        pattern = _INTEGER if slot.kind == "integer" else _NUMBER
        width = len(str(int(max(abs(slot.minimum), abs(slot.maximum)))))
        match = pattern.match(text)
        digits = match.group(0) if match else ""
        if len(digits.lstrip("-").split(".")[0]) > width or (digits.startswith("-") and slot.minimum >= 0):
            return []
        if len(digits) == len(text):
            return [None]
        whole = digits not in ("", "-") and not digits.endswith(".")
        return [len(digits)] if whole else []
    if slot.kind == "enum":
        literals = [json.dumps(value) for value in slot.values]
        return ([None] if any(lit.startswith(text) and len(text) < len(lit) for lit in literals) else []) + [
            len(lit) for lit in literals if text.startswith(lit)]
    match = _TEXT_VALUE.match(text)
    if match is None:
        return []
    if match.group(2) is None:
        return [None] if len(match.group(0)) == len(text) and len(match.group(1)) <= MAX_WILDCARD_CHARS else []
    return [len(match.group(0))] if 0 < len(match.group(1)) <= MAX_WILDCARD_CHARS else []


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)?")
_NUMBER = re.compile(r"-?((0|[1-9][0-9]*)(\.[0-9]{0,2})?)?")
_TEXT_VALUE = re.compile(r'"([a-zA-Z0-9\' -]*)(")?')


def check_answer(answer: str, specs: Mapping[str, IntentSpec], text: str) -> tuple[str, dict[str, Any]] | None:
    """The (intent, slots) an answer names, if every part is allowed; None for "none" or anything else."""
    try:
        found = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("intent"), str):
        return None
    spec = specs.get(found.pop("intent"))
    if spec is None:
        return None
    allowed = {slot.name: slot for slot in spec.slots}
    if not set(found) <= set(allowed):
        return None
    if any(slot.required and slot.name not in found for slot in spec.slots) or (spec.needs_a_slot and not found):
        return None
    words = " ".join(words_of(text))
    for name, value in found.items():
        if not _valid(allowed[name], value, words) or not _said(allowed[name], value, words):
            return None
    return spec.name, found


# --- checks ---------------------------------------------------------------------------


def _valid(slot: SlotSpec, value: Any, request_words: str) -> bool:
    if slot.kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if slot.kind == "integer" and not isinstance(value, int):
            return False
        return slot.minimum <= value <= slot.maximum and (slot.kind == "number" or
                                                          (value - int(slot.minimum)) % slot.step == 0)
    if slot.kind == "enum":
        return any(value == allowed and type(value) is type(allowed) for allowed in slot.values)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_WILDCARD_CHARS:
        return False
    said = " ".join(words_of(value))
    return bool(said) and f" {said} " in f" {request_words} "


def _said(slot: SlotSpec, value: Any, request_words: str) -> bool:
    """The request holds the value: a number in digits or words, one of an enum value's words.
    A value the request does not hold was made up (at the price of "half past six": 6:30)."""
    padded = f" {request_words} "
    if slot.kind in ("integer", "number"):
        from num2words import num2words

        return f" {number_text(value)} " in padded or f" {' '.join(words_of(num2words(value)))} " in padded
    if slot.kind == "enum":
        return any(f" {word} " in padded for word in slot.said_as.get(value, frozenset()) | {str(value).lower()})
    return True  # a wildcard's words were checked by _valid

