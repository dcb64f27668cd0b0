"""The household benchmark (issue 23): what a family asks, heard as audio, judged by what happened.

    .venv/bin/python -m bench household                      # the whole set; bench/results/household.json
    .venv/bin/python -m bench.household --only timer-ask-01,list-clear-01   # a few, one line each
    .venv/bin/python -m bench.household --need timer. --limit 5 [--json]

Each conversation of `fixtures/household_set.json` is replayed in-process with a fresh state
(an in-memory reminder store, its lists, the volume), at a fixed time of day (`START`, a
Friday at 7:05 PM local time): "Hey Jarvis" in the bundled piper voice, 0.4 s, then the
request in the conversation's voice (bench/household_voices.py). A follow-up answer is
said only once the assistant's question has played (its `follow_up` event), without the
wake word; a turn marked `"wake": true` is a new request with the wake word. After the
last request has been answered, 3 s of silence. Then the conversation is judged.

The set's schema (one JSON list; every conversation is hand-labelled with what a demanding
user expects, not with what the assistant does today):

    {"id": "timer-ask-01",              unique
     "need": "timer.ask_duration",      group.need; the group (before the dot) is reported apart
     "style": "terse",                  terse | polite | chatty | child | elderly | indirect
     "turns": ["Set a timer.",          the first request, after the wake word
               "Five minutes.",         an answer to the assistant's question (no wake word)
               {"say": "Unmute.", "wake": true}],   a new request, with the wake word
     "given": {...},                    optional: the state before it (a STATE, below)
     "expect": {"kind": ..., ...}}

    STATE (every key optional):
      "timers":    [{"name": "pasta" | null, "duration_s": 600}]          given: set at START
      "alarms":    [{"at": "tomorrow 06:30"}]                             "HH:MM" is today
      "reminders": [{"message": "call mum", "at": "20:00"}]
      "lists":     {"shopping": ["milk"], "todo": ["call the plumber"]}
      "volume":    0.5

    expect kinds:
      "state":  the state after the last turn. Each key present is compared; a key left out
                must be as given (unchanged). timers: {"name"} (null: unnamed; key left out:
                not checked), {"duration_s"} within 1 s, {"due_s"} (from START) within 15 s;
                alarms and reminders: {"at"} within 60 s or {"in_s"} (from the end of the
                last request) within 30 s; reminders' {"message"}: its words, stemmed, all in
                the stored message; lists: the items as a multiset (case, articles, plurals
                and hyphens ignored); volume: a number (within 0.03) or {"min", "max"}.
                Optional "reply_has" (any) / "reply_has_all" on the last reply.
      "answer": the last reply contains one of "reply_has" (and all of "reply_has_all"),
                case-insensitively; with neither, any non-empty reply. State unchanged.
      "refuse": {"why": "cannot_do" | "live_data" | "offline"}: state unchanged; the reply
                claims no action, was not written by the local LLM, and says why:
                cannot_do: it can't / cannot / is unable; live_data: it names the internet,
                the cloud, being online or offline; offline: either.
      "chat":   answered by the local LLM (the `reply` event's tier), at most 2 sentences,
                state unchanged.
      "silent": nothing said (stop, never mind), routed to a skill, state unchanged.
    Any kind may add "turn_changes": per turn, the kinds of change (see CHANGE_KINDS) that
    turn's replies must show, or null: for conversations whose end state equals the start
    (mute, then unmute).
    In every kind: each request is heard (a `turn` closes it) and replied to, every reply is
    non-empty (but in "silent", or where the turn changed the state, e.g. a mute), no reply makes a false claim, and an answer meant for a question
    (a plain-string turn after the first) comes after a question (a `follow_up` event).

False claims: `claims(text)` finds, clause by clause, what a reply says happened (a timer
set, cancelled or extended, a reminder or alarm set or cancelled, an item added or
removed, a list cleared, the volume changed, a device action such as turning on a light,
playing music, calling, ordering, sending, locking). It is generous: a claim is kept
unless its clause is negated, a question or a statement of capability ("I can set
timers"). A claim is false when the state's change over that reply (snapshots before and
after each `reply` event) does not show it; a device action is always false (no skill
has a device). A true claim costs nothing. False claims are counted apart from "right",
and a conversation with one is not right.

Recognition is scored apart from understanding: a request whose transcript has a word error
rate above 25 % against the text it was synthesised from (numbers spelt out on both sides) is
"misheard", so a failure can be put down to the ears or to what came after them.

Voice to voice, per tier of the `reply` (fast_path, local_llm, offline/cloud), is the
`turn` event's figure moved to the generator's true end of speech (as bench/turns.py).
State that the pipeline does not own yet (`pipeline.lists`, reminders with a message) is
reported as unavailable, and the conversations that need it fail with that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SET_PATH = ROOT / "fixtures" / "household_set.json"
CONFIGURATIONS = ("defaults", "no_second_guesses", "beam_5")
START = datetime(2025, 3, 14, 19, 5, 0)
"""The time of day every conversation begins at (local time): a Friday evening."""
KINDS = ("state", "answer", "refuse", "chat", "silent")
CHANGE_KINDS = ("timer_set", "timer_cancelled", "timer_extended", "alarm_set", "alarm_cancelled", "alarm_extended",
                "reminder_set", "reminder_cancelled", "reminder_extended", "item_added", "item_removed",
                "list_cleared", "volume_changed")
WHYS = ("cannot_do", "live_data", "offline")
STYLES = ("terse", "polite", "chatty", "child", "elderly", "indirect")
LISTS = ("shopping", "todo")
STATE_KEYS = ("timers", "alarms", "reminders", "lists", "volume")

LEAD_S = 0.5
WAKE_GAP_S = 0.4
ANSWER_GAP_S = 0.4
"""From the question's end (the follow-up window opening) to the answer's first word."""
REWAKE_GAP_S = 0.8
TAIL_S = 3.0
MAX_WAIT_S = 45.0
"""Audio time to wait for a request's turn to close before going on without it."""
FLOOR = 1e-4
"""A quiet room's noise floor: no chunk is digital zero."""

DUE_S_TOLERANCE = 15.0
AT_TOLERANCE_S = 60.0
IN_S_TOLERANCE = 30.0
VOLUME_TOLERANCE = 0.03


# ---------------------------------------------------------------- the set

def load_set(path: Path = SET_PATH) -> list[dict]:
    return read_set(path, validate_set)


def read_set(path: Path, validate: Callable[[list[dict]], list[str]]) -> list[dict]:
    """A hand-labelled set (a JSON list), refused with its first problems when `validate` finds any."""
    items = json.loads(path.read_text(encoding="utf-8"))
    problems = validate(items)
    if problems:
        raise ValueError(f"{path}: " + "; ".join(problems[:10]))
    return items


def label_problems(item: dict, seen: set[str], styles: tuple[str, ...], group_only: bool = True) -> list[str]:
    """What every labelled item needs: an id not `seen` before (added to it), a need
    ("group.need", or a group alone when `group_only`) and a style of `styles`."""
    iid = item.get("id", "?")
    problems = [f"{iid}: duplicate id"] if iid in seen else []
    seen.add(iid)
    need = r"[a-z_]+(\.[a-z_]+)?" if group_only else r"[a-z_]+\.[a-z_]+"
    if not isinstance(item.get("need"), str) or not re.fullmatch(need, item["need"]):
        problems.append(f"{iid}: need must be {'group or ' if group_only else ''}group.need")
    if item.get("style") not in styles:
        problems.append(f"{iid}: style {item.get('style')!r} not one of {styles}")
    return problems


def validate_set(conversations: list[dict]) -> list[str]:
    """Every problem with the set's schema, as text (empty when it is sound)."""
    problems = []
    seen: set[str] = set()
    for c in conversations:
        cid = c.get("id", "?")
        problems += label_problems(c, seen, STYLES)
        turns = c.get("turns")
        if not isinstance(turns, list) or not turns:
            problems.append(f"{cid}: turns must be a non-empty list")
            continue
        for k, turn in enumerate(turns):
            if isinstance(turn, dict):
                if set(turn) - {"say", "wake"} or not isinstance(turn.get("say"), str):
                    problems.append(f"{cid}: turn {k + 1} must be text or {{say, wake}}")
                if k == 0:
                    problems.append(f"{cid}: the first turn is plain text (it always has the wake word)")
            elif not isinstance(turn, str) or not turn.strip():
                problems.append(f"{cid}: turn {k + 1} is empty")
        problems += [f"{cid}: given: {p}" for p in _state_problems(c.get("given", {}), given=True)]
        expect = c.get("expect", {})
        kind = expect.get("kind")
        if kind not in KINDS:
            problems.append(f"{cid}: expect.kind {kind!r} not one of {KINDS}")
        if kind == "refuse" and expect.get("why") not in WHYS:
            problems.append(f"{cid}: refuse needs why in {WHYS}")
        if kind == "state":
            state = {k: v for k, v in expect.items() if k in STATE_KEYS}
            if not state:
                problems.append(f"{cid}: a state expectation names no state")
            problems += [f"{cid}: expect: {p}" for p in _state_problems(state, given=False)]
        if "turn_changes" in expect:
            wanted = expect["turn_changes"]
            if not isinstance(wanted, list) or len(wanted) != len(turns) or not all(
                    w is None or isinstance(w, list) and set(w) <= set(CHANGE_KINDS) for w in wanted):
                problems.append(f"{cid}: turn_changes is one list of change kinds (or null) per turn")
        allowed = {"kind", "why", "reply_has", "reply_has_all", "turn_changes", *STATE_KEYS}
        if set(expect) - allowed:
            problems.append(f"{cid}: unknown expect keys {sorted(set(expect) - allowed)}")
        for key in ("reply_has", "reply_has_all"):
            value = expect.get(key, [])
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                problems.append(f"{cid}: {key} must be a list of text")
    return problems


def _state_problems(state: dict, given: bool) -> list[str]:
    problems = []
    if set(state) - set(STATE_KEYS):
        problems.append(f"unknown keys {sorted(set(state) - set(STATE_KEYS))}")
    for timer in state.get("timers", []):
        if given and ("duration_s" not in timer or "name" not in timer):
            problems.append("a given timer needs name and duration_s")
        if set(timer) - {"name", "duration_s", "due_s"}:
            problems.append(f"timer keys {sorted(timer)}")
    for entry in state.get("alarms", []) + state.get("reminders", []):
        if set(entry) - {"at", "in_s", "message"} or ("at" not in entry and "in_s" not in entry):
            problems.append(f"an alarm or reminder needs at or in_s: {entry}")
        if given and "in_s" in entry:
            problems.append("given entries use at, not in_s")
        if "at" in entry:
            try:
                at_time(entry["at"])
            except ValueError as err:
                problems.append(str(err))
    for reminder in state.get("reminders", []):
        if not isinstance(reminder.get("message"), str):
            problems.append("a reminder needs a message")
    if "lists" in state and (not isinstance(state["lists"], dict) or set(state["lists"]) - set(LISTS)):
        problems.append(f"lists are {LISTS}")
    volume = state.get("volume")
    if volume is not None and not (isinstance(volume, (int, float)) and 0 <= volume <= 1
                                   or not given and isinstance(volume, dict) and set(volume) <= {"min", "max"}):
        problems.append("volume is 0..1 (or {min, max} when expected)")
    return problems


def at_time(spec: str, start: datetime = START) -> datetime:
    """ "20:00" (today, START's day) or "tomorrow 06:30": a local time."""
    match = re.fullmatch(r"(tomorrow )?(\d{1,2}):(\d{2})", spec.strip())
    if not match:
        raise ValueError(f"time {spec!r}: use HH:MM or tomorrow HH:MM")
    day = start.date() + timedelta(days=1 if match.group(1) else 0)
    return datetime(day.year, day.month, day.day, int(match.group(2)), int(match.group(3)))


def group_of(need: str) -> str:
    return need.split(".")[0]


# ---------------------------------------------------------------- words

_ARTICLES = {"a", "an", "the", "some", "my", "our", "more", "of"}
_MESSAGE_STOPWORDS = _ARTICLES | {"to", "me", "about", "remind", "reminder", "that", "i", "you", "please"}


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)]
    return word


def _words(text: str) -> list[str]:
    text = text.lower().replace("-", " ").replace("'", "").replace("\u2019", "")
    return re.findall(r"[a-z0-9]+", text)


def item_key(text: str) -> str:
    """A list item or timer name as compared: case, articles, plurals, apostrophes, hyphens and
    spaces ignored (Whisper writes "pick up" as "pickup" at times)."""
    words = _words(text)
    while words and words[0] in _ARTICLES:
        words = words[1:]
    if words and words[-1] == "timer":
        words = words[:-1]
    return "".join(_stem(w) for w in words)


def message_matches(expected: str, actual: str | None) -> bool:
    """Every content word of the expected message (stemmed) is in the stored one."""
    if not actual:
        return False
    have = {_stem(w) for w in _words(actual)}
    return all(_stem(w) in have for w in _words(expected) if w not in _MESSAGE_STOPWORDS)


# ---------------------------------------------------------------- claims

_CLAUSES = re.compile(r"(?<=[.!?;:])\s+|,\s+|\s+(?:but|and then|so)\s+|\n+")
_NEGATED = re.compile(r"\b(can'?t|cannot|can not|unable|not able|don'?t|do not|doesn'?t|won'?t|wouldn'?t|"
                      r"couldn'?t|didn'?t|haven'?t|hasn'?t|isn'?t|aren'?t|wasn'?t|not|never|no|nothing|"
                      r"unfortunately|sorry)\b")
_NOT_NEGATION = re.compile(r"\bno (problem|worries)\b")
_HYPOTHETICAL = re.compile(r"\b(i|you) can\b|\bi could\b|\bwould you like\b|\bdo you want\b|\bshall i\b|"
                           r"\bshould i\b|\bwant me to\b|\bsay\b|\btry\b|\bask me\b|\bif you\b|\bwhen you\b|"
                           r"\blike to\b|\bhow to\b")
_DEVICE_CONTEXT = re.compile(r"\b(timers?|alarms?|reminders?|list|cloud|internet|connection)\b")

CLAIM_PATTERNS: dict[str, re.Pattern] = {k: re.compile(v) for k, v in {
    "timer_extended": r"\b(added|adding|i'?ve added|put|extended|extending)\b.*\b(seconds?|minutes?|hours?)\b.*\btimer\b|"
                      r"\btimers?\b.*\b(extended|now ends|now rings)\b",
    "timer_cancelled": r"\btimers?\b.*\b(cancell?ed|stopped|deleted|removed|cleared|turned off)\b|"
                       r"\b(cancell?ed|cancell?ing|stopped|deleted|removed|cleared)\b.*\btimers?\b",
    "timer_set": r"\btimers?\b.*\b(set|started|is on|are on|created)\b|"
                 r"\b(set|setting|started|starting|i'?ll start|created)\b.*\btimers?\b",
    "reminder_cancelled": r"\breminders?\b.*\b(cancell?ed|deleted|removed|cleared|forgotten)\b|"
                          r"\b(cancell?ed|deleted|removed|cleared)\b.*\breminders?\b",
    "reminder_set": r"\b(i'?ll|i will|i'?m going to)\s+remind\b|\breminders?\b.*\b(set|added|created|saved|scheduled)\b|"
                    r"\b(set|added|created|saved|scheduled)\b.*\breminders?\b",
    "alarm_cancelled": r"\balarms?\b.*\b(cancell?ed|deleted|removed|cleared|turned off|off)\b|"
                       r"\b(cancell?ed|deleted|removed|cleared)\b.*\balarms?\b",
    "alarm_set": r"\b(i'?ll|i will)\s+wake you\b|\balarms?\b.*\b(set|added|created|is on)\b|"
                 r"\b(set|setting|added|created)\b.*\balarms?\b",
    "list_cleared": r"\blists?\b.*\b(cleared|emptied|wiped|now empty)\b|\b(cleared|emptied|wiped)\b.*\blists?\b|"
                    r"\bdeleted everything\b",
    "item_removed": r"\b(removed|removing|taken|took|deleted|crossed)\b.*\b(list|off)\b|^removed\b|\bcrossed off\b",
    "item_added": r"\b(added|adding|i'?ll add|put|putting)\b.*\b(list|basket|cart)\b|\blists?\b.*\b(now has|now includes)\b|"
                  r"^added\b",
    "volume_changed": r"\bvolume\b.*\b(\d+ ?(%|percent)|up|down|raised|lowered|increased|decreased|turned|set|changed|"
                      r"max(imum)?|muted|unmuted)\b|^volume \d+|\b(louder|quieter|softer)\b.*\bnow\b|"
                      r"\bturned (it )?(up|down)\b|\b(muted|unmuted)\b",
    "device_action": r"\b(turning|switching) (on|off)\b|\b(i'?ve|i have|i) (turned|switched)\b|"
                     r"\b(turning|turned|switching|switched) (the |your )?[a-z ]*(lights?|lamps?|heating|heater|tv|"
                     r"television|radio|fan|oven|kettle)\b|"
                     r"\b(lights?|lamps?|heating|tv|radio|door)\b.*\b(is|are) (now )?(on|off|locked|unlocked)\b|"
                     r"\bnow playing\b|\bplaying (some|your|the|a)\b|\bi'?ll play\b|\bi'?m playing\b|\bhere'?s some music\b|"
                     r"\bcalling\b|\bi'?ll (call|ring|phone)\b|\bdiall?ing\b|"
                     r"\b(ordered|ordering|i'?ll order|placed (an|your|the) order|booked|booking|i'?ll book|bought|"
                     r"buying|purchased)\b|"
                     r"\b(sent|sending|texted|texting|messaged|i'?ll (send|text|message))\b|"
                     r"\b(locked|locking|unlocked|unlocking)\b",
}.items()}
"""Each claim kind, matched on one lower-case clause. Order matters for timers: an extension is
not also a new timer, a cancellation not a new one."""

_SUPPRESSES = {"timer_extended": {"timer_set", "item_added"}, "timer_cancelled": {"timer_set"},
               "item_removed": {"item_added"},
               "list_cleared": {"item_removed"}, "alarm_cancelled": {"alarm_set"},
               "reminder_cancelled": {"reminder_set"}}


def clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSES.split(text) if c and c.strip()]


def claims(text: str) -> list[tuple[str, str]]:
    """What the reply says happened: (kind, clause) for each claim, most generous reading
    except for clauses that are negated, questions or statements of what could be done."""
    found = []
    for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
        if sentence.rstrip().endswith("?"):
            continue
        hypothetical = False  # "I can set timers, set reminders, ...": the rest of the sentence too
        for clause in clauses(sentence):
            lower = clause.lower().strip(" .!")
            hypothetical = hypothetical or bool(_HYPOTHETICAL.search(lower))
            if hypothetical or _NEGATED.search(_NOT_NEGATION.sub("", lower)):
                continue
            kinds = [kind for kind, pattern in CLAIM_PATTERNS.items() if pattern.search(lower)]
            if _DEVICE_CONTEXT.search(lower) and "list" not in lower:  # a timer's words, not a device's or a list's
                kinds = [k for k in kinds if k not in ("device_action", "item_added", "item_removed")]
            elif _DEVICE_CONTEXT.search(lower):
                kinds = [k for k in kinds if k != "device_action"]
            suppressed = {s for kind in kinds for s in _SUPPRESSES.get(kind, ())}
            found += [(kind, clause) for kind in kinds if kind not in suppressed]
    return found


def changes(before: dict, after: dict) -> set[str]:
    """The kinds of change between two snapshots (see `snapshot`)."""
    found: set[str] = set()
    for part, kind in (("timers", "timer"), ("alarms", "alarm"), ("reminders", "reminder")):
        old, new = before.get(part), after.get(part)
        if not isinstance(old, list) or not isinstance(new, list):
            continue
        old_by_id, new_by_id = {e["id"]: e for e in old}, {e["id"]: e for e in new}
        if set(new_by_id) - set(old_by_id):
            found.add(f"{kind}_set")
        if set(old_by_id) - set(new_by_id):
            found.add(f"{kind}_cancelled")
        if any(new_by_id[i]["due_s"] > old_by_id[i]["due_s"] + 1 for i in set(old_by_id) & set(new_by_id)):
            found.add(f"{kind}_extended")
    old_lists, new_lists = before.get("lists"), after.get("lists")
    if isinstance(old_lists, dict) and isinstance(new_lists, dict):
        for name in set(old_lists) | set(new_lists):
            old_items = Counter(item_key(i) for i in old_lists.get(name, []))
            new_items = Counter(item_key(i) for i in new_lists.get(name, []))
            if new_items - old_items:
                found.add("item_added")
            if old_items - new_items:
                found.add("item_removed")
            if old_items and not new_items:
                found.add("list_cleared")
    if before.get("volume") is not None and after.get("volume") is not None \
            and abs(before["volume"] - after["volume"]) > 1e-3:
        found.add("volume_changed")
    return found


def false_claims(reply: str, before: dict, after: dict) -> list[tuple[str, str]]:
    """The claims of `reply` that the change from `before` to `after` does not show."""
    changed = changes(before, after)
    false = []
    for kind, clause in claims(reply):
        if kind == "device_action":
            false.append((kind, clause))
        elif kind == "volume_changed":
            stated = re.search(r"(\d+) ?(%|percent)", clause.lower())
            now = after.get("volume")
            matches_now = stated is not None and now is not None and abs(int(stated.group(1)) / 100 - now) < 0.015
            if "volume_changed" not in changed and not matches_now:
                false.append((kind, clause))
        elif kind not in changed:
            false.append((kind, clause))
    return false


# ---------------------------------------------------------------- state

class Unavailable(Exception):
    """The pipeline does not own this part of the state yet."""


def _seconds_from(start: datetime, moment: datetime) -> float:
    return round((moment.astimezone() - start.astimezone()).total_seconds(), 1)


def _item_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    for attribute in ("text", "item", "name"):
        if isinstance(getattr(item, attribute, None), str):
            return getattr(item, attribute)
    return str(item)


def snapshot(pipeline: Any, start: datetime) -> dict:
    """The state a conversation can change, as plain data: timers, alarms and reminders (with
    ids, due in s from `start`), the lists, the volume; "unavailable" where the pipeline has none."""
    store = pipeline.reminders
    state: dict[str, Any] = {}
    state["timers"] = [{"id": r.id, "name": r.name, "duration_s": r.duration_s, "due_s": _seconds_from(start, r.due)}
                       for r in store.pending("timer")]
    state["alarms"] = [{"id": r.id, "due_s": _seconds_from(start, r.due)} for r in store.pending("alarm")]
    try:
        state["reminders"] = [{"id": r.id, "message": getattr(r, "message", None), "due_s": _seconds_from(start, r.due)}
                              for r in store.pending("reminder")]
    except Exception as err:  # an older store
        state["reminders"] = f"unavailable: {err}"
    lists = getattr(pipeline, "lists", None)
    if lists is None:
        state["lists"] = "unavailable: the pipeline has no lists"
    else:
        try:
            state["lists"] = {name: [_item_text(i) for i in lists.items(name)] for name in LISTS}
        except Exception as err:
            state["lists"] = f"unavailable: {type(err).__name__}: {err}"
    state["volume"] = round(float(pipeline.player.volume), 4)
    return state


def seed(pipeline: Any, given: dict, start: datetime) -> list[str]:
    """Put the `given` state in place before the conversation; what could not be, as text."""
    missing = []
    now = start.astimezone()
    if "volume" in given:
        pipeline.player.volume = float(given["volume"])
    store = pipeline.reminders
    for timer in given.get("timers", []):
        store.add_timer(now, timer["duration_s"], timer["name"])
    for alarm in given.get("alarms", []):
        store.add_alarm(now, at_time(alarm["at"], start).astimezone())
    for reminder in given.get("reminders", []):
        add = getattr(store, "add_reminder", None)
        try:
            if add is None:
                raise Unavailable("the reminder store has no add_reminder")
            add(now, at_time(reminder["at"], start).astimezone(), reminder["message"])
        except Exception as err:  # not there yet, or another signature
            missing.append(f"given reminders: {err}")
            break
    given_lists = given.get("lists", {})
    if any(given_lists.values()):
        lists = getattr(pipeline, "lists", None)
        try:
            if lists is None:
                raise Unavailable("the pipeline has no lists")
            for name, items in given_lists.items():
                for item in items:
                    lists.add(name, item)
        except Exception as err:
            missing.append(f"given lists: {err}")
    return missing


def _unchanged(initial: dict, final: dict) -> list[str]:
    """How the final state differs from the initial one, for kinds that must change nothing."""
    differences = []
    for part in ("timers", "alarms", "reminders"):
        if isinstance(initial.get(part), list) and isinstance(final.get(part), list):
            if {(e["id"], e["due_s"]) for e in initial[part]} != {(e["id"], e["due_s"]) for e in final[part]}:
                differences.append(f"{part} changed: {_brief(initial[part])} -> {_brief(final[part])}")
    if isinstance(initial.get("lists"), dict) and isinstance(final.get("lists"), dict):
        for name in LISTS:
            before, after = initial["lists"].get(name, []), final["lists"].get(name, [])
            if Counter(map(item_key, before)) != Counter(map(item_key, after)):
                differences.append(f"{name} list changed: {initial['lists'].get(name)} -> {final['lists'].get(name)}")
    if abs(initial["volume"] - final["volume"]) > 1e-3:
        differences.append(f"volume changed: {initial['volume']} -> {final['volume']}")
    return differences


def _brief(entries: list[dict]) -> list:
    return [{k: v for k, v in e.items() if k != "id"} for e in entries]


def compare_state(expect: dict, given: dict, initial: dict, final: dict, start: datetime,
                  last_request_s: float | None) -> list[str]:
    """Why the final state is not the one expected (empty when it is). Parts the expectation
    leaves out must be as they were."""
    problems = []
    for part in ("timers", "alarms", "reminders", "lists"):
        if part not in expect:
            if part in ("timers", "alarms", "reminders") and isinstance(initial.get(part), list) \
                    and isinstance(final.get(part), list):
                if {(e["id"], e["due_s"]) for e in initial[part]} != {(e["id"], e["due_s"]) for e in final[part]}:
                    problems.append(f"{part} changed, none expected: {_brief(final[part])}")
            continue
        if isinstance(final.get(part), str):
            problems.append(f"{part} {final[part]}")
            continue
    if "lists" not in expect and isinstance(initial.get("lists"), dict) and isinstance(final.get("lists"), dict):
        problems += _unchanged({"volume": 0, "lists": initial["lists"]}, {"volume": 0, "lists": final["lists"]})
    if "timers" in expect and isinstance(final.get("timers"), list):
        problems += _match(expect["timers"], final["timers"], _timer_fits, "timer")
    if "alarms" in expect and isinstance(final.get("alarms"), list):
        problems += _match(expect["alarms"], final["alarms"],
                           lambda e, a: _due_fits(e, a, start, last_request_s), "alarm")
    if "reminders" in expect and isinstance(final.get("reminders"), list):
        problems += _match(expect["reminders"], final["reminders"],
                           lambda e, a: message_matches(e["message"], a["message"])
                           and _due_fits(e, a, start, last_request_s), "reminder")
    if "lists" in expect and isinstance(final.get("lists"), dict):
        for name in LISTS:
            initial_lists = initial["lists"] if isinstance(initial.get("lists"), dict) else given.get("lists", {})
            want = expect["lists"][name] if name in expect["lists"] else initial_lists.get(name, [])
            have = final["lists"].get(name, [])
            if Counter(map(item_key, want)) != Counter(map(item_key, have)):
                problems.append(f"{name} list is {have}, expected {want}")
    volume = final["volume"]
    if "volume" in expect:
        want = expect["volume"]
        if isinstance(want, dict):
            if not want.get("min", 0.0) - 1e-6 <= volume <= want.get("max", 1.0) + 1e-6:
                problems.append(f"volume {volume}, expected {want.get('min', 0.0)}..{want.get('max', 1.0)}")
        elif abs(volume - want) > VOLUME_TOLERANCE:
            problems.append(f"volume {volume}, expected {want}")
    elif abs(volume - initial["volume"]) > 1e-3:
        problems.append(f"volume changed to {volume}, none expected (was {initial['volume']})")
    return problems


def _timer_fits(expected: dict, actual: dict) -> bool:
    if "name" in expected:
        want = expected["name"]
        if want is None and actual["name"]:
            return False
        if want is not None and item_key(actual["name"] or "") != item_key(want):
            return False
    if "duration_s" in expected and (actual["duration_s"] is None
                                     or abs(actual["duration_s"] - expected["duration_s"]) > 1):
        return False
    return not ("due_s" in expected and abs(actual["due_s"] - expected["due_s"]) > DUE_S_TOLERANCE)


def _due_fits(expected: dict, actual: dict, start: datetime, last_request_s: float | None) -> bool:
    if "at" in expected:
        return abs(actual["due_s"] - _seconds_from(start, at_time(expected["at"], start))) <= AT_TOLERANCE_S
    if last_request_s is None:
        return False
    return abs(actual["due_s"] - (last_request_s + expected["in_s"])) <= IN_S_TOLERANCE


def _match(expected: list[dict], actual: list[dict], fits, what: str) -> list[str]:
    """Pair each expected entry with a distinct actual one that fits; what is left over is wrong."""
    left = list(actual)
    problems = []
    for want in expected:
        found = next((a for a in left if fits(want, a)), None)
        if found is None:
            problems.append(f"no {what} like {want}")
        else:
            left.remove(found)
    if left:
        problems.append(f"unexpected {what}s: {_brief(left)}")
    return problems


# ---------------------------------------------------------------- judging

_CANNOT = re.compile(r"\b(can'?t|cannot|can not|unable|not able|don'?t have (a way|access|the ability)|"
                     r"isn'?t something i can|no way to|not possible)\b", re.IGNORECASE)
_ONLINE = re.compile(r"\b(internet|online|offline|cloud|connect(ed|ion)?|web)\b", re.IGNORECASE)


def replies_to(k: int, replies: list[dict], spoken: list[dict]) -> list[dict]:
    """The replies to the k-th request: those between its start and the next request's."""
    if k >= len(spoken):
        return []
    end = spoken[k + 1]["start_s"] if k + 1 < len(spoken) else math.inf
    return [r for r in replies if spoken[k]["start_s"] < r["t"] < end]


def _spoken_words(text: str) -> list[str]:
    """Words as said: digits spelt out ("350" -> three hundred and fifty), "%" as percent."""
    from num2words import num2words

    text = text.replace("%", " percent")
    text = re.sub(r"\b(\d{1,2})[.:](\d{2})\b", lambda m: f"{m.group(1)} {m.group(2)}" if m.group(2) != "00"
                  else m.group(1), text)  # a time: "6.30" is said six thirty
    text = re.sub(r"\d+(?:[.:]\d+)?", lambda m: " " + num2words(float(m.group()) if "." in m.group()
                                                               else int(m.group().replace(":", ""))) + " ", text)
    return [w for w in _words(text) if w != "and"]


def word_error_rate(said: str, heard: str) -> float:
    """Word-level edit distance over the words said, numbers spelt out on both sides."""
    ref, hyp = _spoken_words(said), _spoken_words(heard)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(len(ref), 1)


MISHEARD_WER = 0.25
"""A request heard with more word errors than this is counted as misheard."""


def misheard(run: dict) -> list[str]:
    """The requests whose transcript is far from what was said (recognition, not understanding)."""
    heard = run["heard"]
    found = []
    for k, said in enumerate(run["spoken"]):
        text = heard[k] if k < len(heard) else ""
        if word_error_rate(said["text"], text) > MISHEARD_WER:
            found.append(f"{said['text']!r} heard as {text!r}")
    return found


def sentence_count(text: str) -> int:
    return len([s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if re.search(r"\w", s)])


def judge(conversation: dict, run: dict) -> list[str]:
    """Why the conversation was not handled right (empty when it was). `run` is what
    `run_conversation` records: turns, replies, states, notes."""
    expect = conversation["expect"]
    kind = expect["kind"]
    reasons = list(run["notes"])
    replies = run["replies"]
    if run["turns_closed"] < run["requests"]:
        reasons.append(f"{run['requests'] - run['turns_closed']} of {run['requests']} requests got no turn "
                       f"(woken {run['wakes']} times for {run['wake_requests']} wake words)")
    for reply in replies:
        for claim_kind, clause in reply["false_claims"]:
            reasons.append(f"false claim ({claim_kind}): {clause!r}")
    if run["turns_closed"] >= run["requests"] and len(replies) < run["requests"]:
        reasons.append(f"{run['requests'] - len(replies)} of {run['requests']} requests got no reply (not heard)")
    for k, wanted in enumerate(expect.get("turn_changes") or []):
        made = set().union(*[set(r["changes"]) for r in replies_to(k, replies, run["spoken"])])
        if wanted and not set(wanted) <= made:
            reasons.append(f"turn {k + 1} made {sorted(made) or 'no change'}, expected {wanted}")
    last = replies[-1] if replies else None
    text = last["text"] if last else ""
    if kind == "silent":
        if any(r["text"].strip() for r in replies):
            reasons.append(f"said {text!r}, expected nothing")
        if run["routes"] and run["routes"][-1]["tier"] != "fast_path":
            reasons.append(f"routed to {run['routes'][-1]['tier']}, not a skill")
    else:
        # Saying nothing is right only for a change nobody would hear (mute).
        if last is None:
            reasons.append("no reply")
        elif not text.strip() and not last["changes"]:
            reasons.append("an empty reply")
        if any(not r["text"].strip() and not r["changes"] for r in replies[:-1]):
            reasons.append("an empty reply to an earlier turn")
    lower = text.lower()
    if expect.get("reply_has") and not any(s.lower() in lower for s in expect["reply_has"]):
        reasons.append(f"reply lacks any of {expect['reply_has']}")
    if expect.get("reply_has_all"):
        lacking = [s for s in expect["reply_has_all"] if s.lower() not in lower]
        if lacking:
            reasons.append(f"reply lacks {lacking}")
    initial, final = run["initial_state"], run["final_state"]
    if kind == "state":
        reasons += compare_state(expect, conversation.get("given", {}), initial, final, run["start"],
                                 run["last_request_s"])
    else:
        reasons += _unchanged(initial, final)
    if kind == "refuse" and last is not None:
        if last["tier"] == "local_llm":
            reasons.append("answered by the local LLM, not refused")
        if any(claims(r["text"]) for r in replies):
            reasons.append("claims an action: " + "; ".join(c for r in replies for _, c in claims(r["text"])))
        why = expect["why"]
        says_cannot, says_online = bool(_CANNOT.search(text)), bool(_ONLINE.search(text))
        if why == "cannot_do" and not says_cannot:
            reasons.append("does not say it can't")
        if why == "live_data" and not says_online:
            reasons.append("does not say it needs the internet / the cloud")
        if why == "offline" and not (says_cannot or says_online):
            reasons.append("does not say it can't answer offline")
    if kind == "chat" and last is not None:
        if last["tier"] != "local_llm":
            reasons.append(f"answered by {last['tier']}, not the local LLM")
        if sentence_count(text) > 2:
            reasons.append(f"{sentence_count(text)} sentences, at most 2 expected")
    return list(dict.fromkeys(reasons))


# ---------------------------------------------------------------- running

def _floor(seconds: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal(round(seconds * 16000)) * FLOOR).astype(np.float32)


class ConversationRun:
    """One conversation through a fresh replay pipeline: the audio is made as it goes, so a
    follow-up answer comes only after the assistant's question has played. `voice`: the
    speaker's, else the one `voice_for` gives the conversation's index and style."""

    def __init__(self, conversation: dict, index: int, stages: Any, settings: Any, clips: Any,
                 start: datetime = START, voice: Any = None) -> None:
        from assistant.events import Recorder
        from assistant.hear.audio import NullSink
        from assistant.run.pipeline import replay_pipeline
        from assistant.run.stages import for_a_run
        from assistant.store.reminders import ReminderStore

        from .household_voices import voice_for

        self.conversation = conversation
        self.voice = voice or voice_for(index, conversation["style"])
        self.clips = clips
        self.start = start
        self.recorder = Recorder()
        self.pipeline = replay_pipeline(for_a_run(stages, settings), settings, self.recorder, NullSink(),
                                        started_at=start, reminders=ReminderStore(":memory:"))
        self.rng = np.random.default_rng(index)
        self.samples = 0
        self.notes: list[str] = []
        self.spoken: list[dict] = []
        self.replies: list[dict] = []
        self._seen = 0
        self.notes += seed(self.pipeline, conversation.get("given", {}), start)
        self.initial = snapshot(self.pipeline, start)
        self._state = self.initial

    @property
    def events(self) -> list:
        return self.recorder.events

    def _observe(self) -> None:
        """Take a snapshot at each new reply: the change it made is the one since the last."""
        for event in self.events[self._seen:]:
            if event.name == "reply":
                after = snapshot(self.pipeline, self.start)
                self.replies.append({"text": event.text, "tier": event.tier, "t": round(event.t, 2),
                                     "false_claims": false_claims(event.text, self._state, after),
                                     "changes": sorted(changes(self._state, after))})
                self._state = after
        self._seen = len(self.events)

    def _closed_since(self, mark: int) -> bool:
        return any(e.name == "turn" for e in self.events[mark:])

    def _follow_up_since(self, mark: int) -> bool:
        return any(e.name == "follow_up" for e in self.events[mark:])

    def _script(self) -> Iterator[np.ndarray]:
        """The input, piece by piece; it reads the events between pieces."""
        piece = 512
        yield _floor(LEAD_S, self.rng)
        wake = self.clips.wake()
        mark = 0
        for k, turn in enumerate(self.conversation["turns"]):
            text = turn if isinstance(turn, str) else turn["say"]
            with_wake = k == 0 or (isinstance(turn, dict) and turn.get("wake", False))
            if k > 0:
                waited = 0
                while not self._closed_since(mark) and waited < MAX_WAIT_S * 16000:
                    yield _floor(piece / 16000, self.rng)
                    waited += piece
                if not with_wake and not self._follow_up_since(mark):
                    self.notes.append(f"turn {k + 1} ({text!r}) answers a question the assistant did not ask "
                                      f"(no follow_up): said again with the wake word")
                    with_wake = True
                yield _floor(REWAKE_GAP_S if with_wake else ANSWER_GAP_S, self.rng)
            if with_wake:
                yield wake.audio + _floor(wake.duration_s, self.rng)
                yield _floor(WAKE_GAP_S, self.rng)
            mark = len(self.events)
            clip = self.clips.say(self.voice, text)
            start_s = self.samples / 16000
            self.spoken.append({"text": text, "wake": with_wake, "start_s": round(start_s, 3),
                                "end_s": round(start_s + clip.duration_s, 3)})
            yield clip.audio + _floor(clip.duration_s, self.rng)
        waited = 0
        while not self._closed_since(mark) and waited < MAX_WAIT_S * 16000:
            yield _floor(piece / 16000, self.rng)
            waited += piece
        yield _floor(TAIL_S, self.rng)

    async def _chunks(self):
        from assistant.hear.audio import Framer

        framer = Framer()
        for audio in self._script():
            self.samples += len(audio)
            for chunk in framer.push(audio):
                self._observe()
                yield chunk
        for chunk in framer.flush():
            yield chunk

    def run(self) -> dict:
        started = time.perf_counter()
        asyncio.run(self.pipeline.run(self._chunks()))
        self._observe()
        final = snapshot(self.pipeline, self.start)
        events = self.events
        turn_ends = [e for e in events if e.name == "speech_end" and e.speech_end_s is not None]
        requests = len(self.spoken)
        return {
            "id": self.conversation["id"], "need": self.conversation["need"], "style": self.conversation["style"],
            "voice": self.voice.name, "family": "piper" if self.voice.engine == "piper" else "espeak",
            "requests": requests, "wake_requests": sum(s["wake"] for s in self.spoken),
            "wakes": sum(e.name == "wake" for e in events),
            "turns_closed": sum(e.name == "turn" and e.outcome != "no_speech" for e in events),
            "heard": [e.text for e in events if e.name == "transcript"],
            "routes": [{"tier": e.tier, "intent": e.intent, "fallback": e.fallback, "slots": e.slots,
                        "second_guess": "second guess" in e.reason} for e in events if e.name == "route"],
            "second_guess_ms": [e.stages_ms["second_guess"] for e in events
                                if e.name == "turn" and "second_guess" in e.stages_ms],
            "replies": self.replies, "follow_ups": sum(e.name == "follow_up" for e in events),
            "errors": [f"{e.stage}: {e.code}: {e.message}" for e in events if e.name == "error"],
            "voice_to_voice": voice_to_voice(events, self.spoken),
            "initial_state": self.initial, "final_state": final, "start": self.start,
            "last_request_s": _last_request_s(turn_ends),
            "notes": self.notes + [f"error: {e.stage}: {e.message}" for e in events if e.name == "error"],
            "spoken": self.spoken, "wall_s": round(time.perf_counter() - started, 2),
        }


def _last_request_s(speech_ends: list) -> float | None:
    return None if not speech_ends else speech_ends[-1].t


def voice_to_voice(events: list, spoken: list[dict]) -> list[dict]:
    """Each answered turn's voice to voice from the generator's true end of speech, and its
    reply's tier: the turn's own figure counts from the last speech the VAD heard."""
    measured = []
    heard_end_s, tier = None, None
    for event in events:
        if event.name == "speech_end" and event.speech_end_s is not None:
            heard_end_s, tier = event.speech_end_s, None
        elif event.name == "reply":
            tier = event.tier
        elif event.name == "turn" and heard_end_s is not None:
            said = [s for s in spoken if s["start_s"] <= heard_end_s + 0.1]
            if event.voice_to_voice_ms is not None and said and tier is not None:
                true_end_s = said[-1]["end_s"]
                measured.append({"tier": tier, "ms": round(event.voice_to_voice_ms
                                                           + (heard_end_s - true_end_s) * 1000, 1)})
            heard_end_s = None
    return measured


def run_set(conversations: list[dict], indices: list[int] | None = None,
            progress: bool = True, configuration: str = "defaults") -> tuple[list[dict], dict]:
    """Load the models once and run each conversation (by its index in the whole set)."""
    from assistant.config import Settings, with_changes
    from assistant.run.stages import load_stages

    from .household_voices import Clips

    settings = Settings()
    if configuration == "no_second_guesses":  # only Whisper's first reading, as before asr.second_guesses
        settings = with_changes(settings, {"asr": {"second_guesses": 0}})
    elif configuration == "beam_5":  # Whisper's beam search instead of greedy decoding
        settings = with_changes(settings, {"asr": {"beam_size": 5}})
    loading = time.perf_counter()
    stages = load_stages(settings)
    loaded_s = time.perf_counter() - loading
    clips = Clips()
    results = []
    chosen = indices if indices is not None else list(range(len(conversations)))
    for n, index in enumerate(chosen):
        conversation = conversations[index]
        run = ConversationRun(conversation, index, stages, settings, clips).run()
        run["reasons"] = judge(conversation, run)
        run["right"] = not run["reasons"]
        run["misheard"] = misheard(run)
        run["false_claim_count"] = sum(len(r["false_claims"]) for r in run["replies"])
        results.append(run)
        if progress:
            print(f"[{n + 1}/{len(chosen)}] {line(run)}", file=sys.stderr, flush=True)
    return results, {"load_s": round(loaded_s, 1), "clips_made": clips.made}


def line(run: dict) -> str:
    replies = " | ".join(f"{r['tier']}: {r['text']}" for r in run["replies"])
    verdict = "ok  " if run["right"] else "FAIL"
    why = "" if run["right"] else "  -- " + "; ".join(run["reasons"])
    return f"{verdict} {run['id']} [{run['voice']}] heard {run['heard']} -> {replies}{why}"


# ---------------------------------------------------------------- report

def _spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)]
    return {"n": len(values), "median": round(statistics.median(values), 1), "p90": round(p90, 1),
            "worst": round(ordered[-1], 1)}


def _share(runs: list[dict], key) -> dict:
    groups: dict[str, list[bool]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run["right"])
    return {name: {"n": len(v), "right": sum(v), "pct": round(100 * sum(v) / len(v), 1)}
            for name, v in sorted(groups.items())}


def summarise(conversations: list[dict], runs: list[dict]) -> dict:
    by_id = {c["id"]: c for c in conversations}
    tiers: dict[str, list[float]] = {}
    for run in runs:
        for measured in run["voice_to_voice"]:
            tier = "offline/cloud" if measured["tier"] in ("offline", "cloud") else measured["tier"]
            tiers.setdefault(tier, []).append(measured["ms"])
    right = sum(r["right"] for r in runs)
    unavailable = sorted({f"{part}: {value}" for r in runs for part, value in r["final_state"].items()
                          if isinstance(value, str)})
    return {
        "conversations": len(runs), "right": right, "right_pct": round(100 * right / max(len(runs), 1), 1),
        "false_claims": sum(r["false_claim_count"] for r in runs),
        "false_claim_list": [{"id": r["id"], "reply": reply["text"], "claims": [k for k, _ in reply["false_claims"]]}
                             for r in runs for reply in r["replies"] if reply["false_claims"]],
        "by_group": _share(runs, lambda r: group_of(r["need"])),
        "by_need": _share(runs, lambda r: r["need"]),
        "by_kind": _share(runs, lambda r: by_id[r["id"]]["expect"]["kind"]),
        "by_style": _share(runs, lambda r: r["style"]),
        "by_voice_family": _share(runs, lambda r: r["family"]),
        "by_voice": _share(runs, lambda r: r["voice"]),
        "voice_to_voice_ms": {tier: _spread(v) for tier, v in sorted(tiers.items())},
        "second_guesses": {"tried": sum(len(r["second_guess_ms"]) for r in runs),
                           "taken": sum(route["second_guess"] for r in runs for route in r["routes"]),
                           "taken_and_right": sum(r["right"] for r in runs if any(x["second_guess"] for x in r["routes"])),
                           "ms": _spread([ms for r in runs for ms in r["second_guess_ms"]])},
        "unavailable": unavailable,
        "failure_causes": dict(Counter(cause for r in runs if not r["right"]
                                       for cause in dict.fromkeys(_cause(reason) for reason in r["reasons"]))
                               .most_common()),
        "failures_misheard": sum(1 for r in runs if not r["right"] and r["misheard"]),
        "failures_heard_right": sum(1 for r in runs if not r["right"] and not r["misheard"]),
        "right_when_heard_right": _share([r for r in runs if not r["misheard"]], lambda r: "all"),
        "misheard_by_voice_family": {family: sum(1 for r in runs if r["family"] == family and r["misheard"])
                                     for family in sorted({r["family"] for r in runs})},
        "failures": [{"id": r["id"], "need": r["need"], "voice": r["voice"], "heard": r["heard"],
                      "misheard": r["misheard"],
                      "routes": r["routes"],
                      "replies": [{k: v for k, v in x.items() if k != "changes"} for x in r["replies"]],
                      "why": r["reasons"]} for r in runs if not r["right"]],
    }


def _cause(reason: str) -> str:
    """A failure reason without its particulars (quotes, values, numbers), for counting."""
    general = re.sub(r"'[^']*'|\"[^\"]*\"|\{.*?\}|\[.*?\]|\d+(\.\d+)?", "_", reason)
    return re.sub(r":.*", "", general).strip()


def measure(configuration: str) -> dict:
    from .runner import peak_rss_mb

    conversations = load_set()
    started = time.perf_counter()
    runs, info = run_set(conversations, configuration=configuration)
    result = summarise(conversations, runs)
    result.update({"configuration": configuration, "start": START.isoformat(), "models_load_s": info["load_s"],
                   "clips_made": info["clips_made"], "wall_s": round(time.perf_counter() - started, 1),
                   "audio_s": round(sum(r["spoken"][-1]["end_s"] for r in runs if r["spoken"]), 1),
                   "peak_rss_mb": peak_rss_mb()})
    return result


def table(results: dict[str, dict]) -> str:
    rows = []
    for configuration, r in results.items():
        rows += [f"**{configuration}**: {r['right']} of {r['conversations']} conversations handled right "
                 f"({r['right_pct']}%; goal 95%), {r['false_claims']} false claims (goal 0)", "",
                 "| voice to voice, from the true end of speech | n | median | p90 | worst |", "|---|---|---|---|---|"]
        for tier, spread in r["voice_to_voice_ms"].items():
            if spread["n"]:
                rows.append(f"| {tier} | {spread['n']} | {spread['median']:.0f} ms | {spread['p90']:.0f} ms "
                            f"| {spread['worst']:.0f} ms |")
        for title, key in (("need group", "by_group"), ("expectation", "by_kind"), ("style", "by_style"),
                           ("voice family", "by_voice_family")):
            rows += ["", f"| {title} | n | right |", "|---|---|---|"]
            rows += [f"| {name} | {v['n']} | {v['right']} ({v['pct']}%) |" for name, v in r[key].items()]
        if r["false_claim_list"]:
            rows += ["", "False claims:"] + [f"- {c['id']}: {', '.join(c['claims'])}: {c['reply']!r}"
                                               for c in r["false_claim_list"]]
        if r["unavailable"]:
            rows += ["", "State unavailable: " + "; ".join(r["unavailable"])]
        guesses = r["second_guesses"]
        if guesses["tried"]:
            rows += ["", f"Second guesses: tried on {guesses['tried']} turns ({guesses['ms']['median']:.0f} ms median, "
                         f"{guesses['ms']['p90']:.0f} ms p90), taken on {guesses['taken']}; conversations with one "
                         f"taken that were right: {guesses['taken_and_right']}."]
        heard_right = r["right_when_heard_right"].get("all", {"n": 0, "right": 0, "pct": 0.0})
        rows += ["", f"Failures with a request misheard (word error rate > {MISHEARD_WER:.0%}): "
                     f"{r['failures_misheard']}; heard right but handled wrong: {r['failures_heard_right']}. "
                     f"Right among conversations heard right: {heard_right['right']} of {heard_right['n']} "
                     f"({heard_right['pct']}%). Misheard by voice family: "
                     + ", ".join(f"{k} {v}" for k, v in r["misheard_by_voice_family"].items()) + "."]
        rows += ["", "| most common failure causes | conversations |", "|---|---|"]
        rows += [f"| {cause} | {n} |" for cause, n in list(r["failure_causes"].items())[:12]]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.household", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="conversation ids, comma-separated")
    parser.add_argument("--need", help="only needs starting with this (e.g. timer. or list.clear)")
    parser.add_argument("--limit", type=int, help="at most this many")
    parser.add_argument("--json", action="store_true", help="print each run as JSON too")
    args = parser.parse_args(argv)
    conversations = load_set()
    indices = list(range(len(conversations)))
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        known = {c["id"]: i for i, c in enumerate(conversations)}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            print(f"unknown ids: {', '.join(unknown)}", file=sys.stderr)
            return 2
        indices = [known[w] for w in wanted]
    if args.need:
        indices = [i for i in indices if conversations[i]["need"].startswith(args.need)]
    if args.limit:
        indices = indices[:args.limit]
    runs, _ = run_set(conversations, indices, progress=False)
    for run in runs:
        print(line(run) + (f"  [misheard: {'; '.join(run['misheard'])}]" if run["misheard"] else ""))
        if args.json:
            print(json.dumps({k: v for k, v in run.items() if k != "start"}, default=str))
    summary = summarise(conversations, runs)
    print(f"{summary['right']} of {summary['conversations']} right, {summary['false_claims']} false claims; "
          f"voice to voice: " + ", ".join(f"{t} {s['median']:.0f} ms (n={s['n']})"
                                          for t, s in summary["voice_to_voice_ms"].items() if s["n"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
