"""The shopping list and the to-do list: add, take off, read out, clear (after asking).

The lists live in the list store (SQLite, beside the timers and alarms), so they survive a
restart. Every reply is made from what the store did: "I added milk" only once the write
returned, "already on your list" only when the store said so. When the database fails, the
reply says so and claims nothing that was not done.

A shopping item said with "and" is several items ("add bread and butter to the shopping list"
adds bread and butter): on a shopping list that is nearly always what is meant, and the rare
dish ("mac and cheese") reads fine split. Commas would split too, but hassil drops them from a
wildcard's value ("milk, eggs and bread" arrives as "milk eggs and bread": two items, "milk
eggs" and "bread"). A to-do item is kept whole ("call the plumber and the electrician" is one
task).
"""

from __future__ import annotations

import logging
import re
import sqlite3

from assistant.store.lists import SHOPPING, TODO, clean_item
from assistant.understand.skills import (
    POINTING_WORDS,
    Awaiting,
    SkillReply,
    SkillRequest,
    mentioned,
    why_not_saved,
)

log = logging.getLogger(__name__)

CLEAR_CONTEXT = "list_clear"
"""The `awaiting` context of "Shall I clear it?": the answer's templates require it."""
READ_IN_FULL = 6
"""A list up to this long is read out whole; a longer one as its count and first items."""
READ_FIRST = 5

_LABELS = {SHOPPING: "shopping list", TODO: "to-do list"}
_LEADING_WORDS = re.compile(r"^(?:(?:a|an|the|some|more|any|another|also|to (?:buy|get|pick up))\s+)+")
_TRAILING_WORDS = re.compile(r"(?:\s+(?:please|thanks|thank you|too|as well))+$")
_SPLIT = re.compile(r"\s*(?:,|;|&|\band\b|\bplus\b)\s*")
_EVERYTHING = {"everything", "all", "it all", "all of it", "all items", "all the items", "all of the items",
               "every item", "the lot"}
_NOT_AN_ITEM = {"it", "that", "this", "them", "him", "her", "em", "something", "anything", "stuff", "things",
                "a", "an", "the", "some", "more", "any", "to", "of", "um", "uh", "er", "erm",
                "time", "luck", "ideas", "options", "patience", "space", "here", "there", "help"}
"""Words that are no item: a pronoun, the start of one cut off at a hesitation ("we need some..."),
or what "we need ..." and "we're out of ..." say when no shopping is meant ("we're out of time")."""


def add_to_list(request: SkillRequest) -> str:
    name = _list_name(request)
    items = _items(request, name)
    if not items or (name == SHOPPING and items[0].startswith("to ")):
        return f"I didn't catch what to add, so your {_label(name)} is unchanged."
    store = request.list_store()
    added: list[str] = []
    already: list[str] = []
    try:
        for item in items:
            (added if store.add(name, item) else already).append(item)
    except sqlite3.Error as err:
        log.error("could not add to the %s list: %s", name, err)
        if added:
            return f"I added {_joined(added)} to your {_label(name)}, but I couldn't save the rest: {why_not_saved(request, err)}."
        return f"Sorry, I couldn't save that to your {_label(name)}: {why_not_saved(request, err)}."
    replies = []
    if added:
        replies.append(f"I added {_joined(added)} to your {_label(name)}.")
    if already:
        where = "on it" if added else f"on your {_label(name)}"
        replies.append(f"{_capital(_joined(already))} {'is' if len(already) == 1 else 'are'} already {where}.")
    return " ".join(replies)


def remove_from_list(request: SkillRequest) -> str | SkillReply:
    name = _list_name(request)
    raw = _spoken_item(request)
    if raw in _EVERYTHING:
        return clear_list(request)
    items = _items(request, name) or _pointed_at(request, name)
    if not items:
        return f"I didn't catch what to take off, so your {_label(name)} is unchanged."
    store = request.list_store()
    removed: list[str] = []
    missing: list[str] = []
    try:
        for item in items:
            stored = store.remove(name, item)
            if stored is None:
                missing.append(item)
            else:
                removed.append(stored)
    except sqlite3.Error as err:
        log.error("could not take an item off the %s list: %s", name, err)
        if removed:
            return f"I took {_joined(removed)} off your {_label(name)}, but I couldn't change the rest: {why_not_saved(request, err)}."
        return f"Sorry, I couldn't change your {_label(name)}: {why_not_saved(request, err)}."
    replies = []
    if removed:
        replies.append(f"I took {_joined(removed)} off your {_label(name)}.")
    if missing:
        verb = "isn't" if len(missing) == 1 else "aren't"
        replies.append(f"{_capital(_joined(missing))} {verb} on {'it' if removed else f'your {_label(name)}'}.")
    return " ".join(replies)


def read_list(request: SkillRequest) -> str:
    name = _list_name(request)
    try:
        items = request.list_store().items(name)
    except sqlite3.Error as err:
        log.error("could not read the %s list: %s", name, err)
        return f"Sorry, I couldn't read your {_label(name)}: {why_not_saved(request, err)}."
    if not items:
        return f"Your {_label(name)} is empty."
    if len(items) <= READ_IN_FULL:
        return f"Your {_label(name)} has {_joined(items)}."
    return f"Your {_label(name)} has {len(items)} items. The first {READ_FIRST} are {_joined(items[:READ_FIRST])}."


def clear_list(request: SkillRequest) -> str | SkillReply:
    """Asks first: nothing is cleared until the answer (ConfirmClearList) comes."""
    name = _list_name(request)
    try:
        count = len(request.list_store().items(name))
    except sqlite3.Error as err:
        log.error("could not read the %s list: %s", name, err)
        return f"Sorry, I couldn't read your {_label(name)}: {why_not_saved(request, err)}. I left it as it is."
    if count == 0:
        return f"Your {_label(name)} is already empty."
    return SkillReply(f"Your {_label(name)} has {_count(count)}. Shall I clear it?",
                      awaiting=Awaiting(CLEAR_CONTEXT, {"list": name}))


def confirm_clear_list(request: SkillRequest) -> str:
    name = request.slots.get("list")
    if name not in _LABELS:
        return "I'm not sure which list to clear, so I left them all as they are."
    try:
        count = request.list_store().clear(name)
    except sqlite3.Error as err:
        log.error("could not clear the %s list: %s", name, err)
        return f"Sorry, I couldn't clear your {_label(name)}: {why_not_saved(request, err)}; it is as it was."
    if count == 0:
        return f"Your {_label(name)} was already empty."
    return f"I cleared your {_label(name)}."


def keep_list(request: SkillRequest) -> str:
    name = request.slots.get("list")
    if name not in _LABELS:
        return "Okay, I left your lists as they are."
    return f"Okay, I left your {_label(name)} as it is."


def split_items(spoken: str, list_name: str) -> list[str]:
    """The items in what was said, as kept: "Some milk, eggs and a loaf of bread" is "milk",
    "eggs", "loaf of bread" on the shopping list; a to-do item is one task, whatever its words."""
    text = clean_item(spoken)
    parts = _SPLIT.split(text) if list_name == SHOPPING else [text]
    items = []
    for part in parts:
        item = _TRAILING_WORDS.sub("", _LEADING_WORDS.sub("", clean_item(part)))
        item = clean_item(item)
        if item and item not in _NOT_AN_ITEM and item not in items:
            items.append(item)
    return items


def _items(request: SkillRequest, name: str) -> list[str]:
    return split_items(_spoken_item(request), name)


def _pointed_at(request: SkillRequest, name: str) -> list[str]:
    """The item a "that" points at, named earlier in the sentence ("I picked up the dry
    cleaning, so cross that off"); none when it names none of the list's items."""
    if _spoken_item(request) not in POINTING_WORDS:
        return []
    try:
        kept = request.list_store().items(name)
    except sqlite3.Error as err:
        log.error("could not read the %s list: %s", name, err)
        return []
    pointed = mentioned(request.said, kept)
    return [] if pointed is None else [kept[pointed]]


def _spoken_item(request: SkillRequest) -> str:
    return clean_item(str(request.slots.get("item") or ""))


def _list_name(request: SkillRequest) -> str:
    name = request.slots.get("list")
    return name if name in _LABELS else SHOPPING


def _label(name: str) -> str:
    return _LABELS.get(name, f"{name} list")


def _count(count: int) -> str:
    return "1 item" if count == 1 else f"{count} items"


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


INTENTS = {"AddToList": add_to_list, "RemoveFromList": remove_from_list, "ReadList": read_list,
           "ClearList": clear_list, "ConfirmClearList": confirm_clear_list, "KeepList": keep_list}
ABILITY = "keep lists"
RANK = 20
