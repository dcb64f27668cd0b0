"""The home benchmark (issue 25): home requests heard as audio, judged by what Home Assistant then shows.

    .venv/bin/python -m bench home                        # the whole set; bench/results/home.json
    .venv/bin/python -m bench.home --only area-01,ask-04  # a few, one line each per voice
    .venv/bin/python -m bench.home --need brightness. --voice piper --text

A real Home Assistant (tests/home_assistant.py's house, on loopback) is started, and the
stages are loaded once with `[home_assistant]` pointing at it, the speaker in the Kitchen
(`area`), and a state directory of the bench's own, so the audit log holds only the
bench's requests. Then for each voice (`VOICES`: the bundled piper voice and three
espeak-ng voices, unlike the fixtures') and each request of `fixtures/home_set.json`: the
house is put in the request's "given" states (on top of `DEFAULTS`), "Hey Jarvis" and the
request are replayed end to end in-process (bench/household.py's `ConversationRun`), and
the outcome judged from the states read back, the audit log and the reply. Every
`TIME_EVERY` requests, "What time is it?" in the same voice: the fast-path time question
whose voice to voice the home commands are measured against, in the same run.

The request's text is also routed directly (router and Home Assistant, no audio), to tell
recognition errors from understanding errors.

The set's schema (one JSON list, hand-labelled with what a demanding user expects):

    {"id": "area-01",                      unique
     "need": "area.lights_off",            group.need; the group is reported apart
     "style": "terse",                     terse | polite | chatty | indirect
     "say": "Kill the lights in the lounge.",
     "given": {ENTITY: STATE, ...},        optional: the states before, on top of DEFAULTS
     "expect": {"kind": ..., ...}}

    STATE: "on" | "off" | "open" | "closed" | "locked" | ..., or
           {"state", "brightness_pct", "color", "position", "temperature"} (each optional)

    expect kinds:
      "action":   "states": {ENTITY: STATE} after the request; every other entity of the
                  house unchanged. Service calls may name only those entities (or
                  "acts_on": [ENTITY], e.g. a scene whose effect is the states).
      "answer":   the reply has one of "reply_has" (and all of "reply_has_all"), as whole
                  words, case ignored; no service call, nothing changed.
      "refuse":   nothing sent to Home Assistant over REST but reads (no POST), nothing
                  changed, the reply has one of "reply_has".
      "not_home": nothing at all sent to Home Assistant over REST; optional "reply_has".

In every kind: a service call naming an entity the label does not expect to act on is a
wrong-entity action (from the audit log's `POST /api/services/...` records), reported
each; a state that changed without being expected is reported too (Home Assistant's own
conversation agent acts without a service call the audit log would show); a reply that
claims a device action (bench/household.py's claim detector) when nothing was done (no
service call, no state changed) is a false claim (not judged in answers to questions,
where a state told reads as one).
"""

from __future__ import annotations

import argparse
import colorsys
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .household import (
    MISHEARD_WER,
    START,
    _spread,
    claims,
    label_problems,
    read_set,
    voice_to_voice,
    word_error_rate,
)
from .household_voices import VOICES as HOUSEHOLD_VOICES
from .household_voices import family
from .wake_set import piper_voice

ROOT = Path(__file__).resolve().parent.parent
SET_PATH = ROOT / "fixtures" / "home_set.json"
CONFIGURATIONS = ("defaults",)
KINDS = ("action", "answer", "refuse", "not_home")
STYLES = ("terse", "polite", "chatty", "indirect")
SPEAKER_AREA = "Kitchen"
"""home_assistant.area: the speaker is in the kitchen, so "lights off" means the kitchen's."""
TIME_QUESTION = "What time is it?"
TIME_EVERY = 8
"""A time question after every this many requests, per voice."""
VOICES = [piper_voice("piper")] + [v for v in HOUSEHOLD_VOICES
                                   if v.name in ("espeak-en-us-s160-p50", "espeak-en-gb-s165-p50",
                                                 "espeak-en-us+f2-s165-p60")]
SETTLE_S = 10.0
"""How long the house may take to show the given states (a template entity follows its helper)."""

DEFAULTS: dict[str, dict[str, Any]] = {
    "light.kitchen_light": {"state": "off", "brightness_pct": 100},
    "light.living_room_lamp": {"state": "off"},
    "light.floor_lamp": {"state": "off"},
    "light.hallway_light": {"state": "off"},
    "light.bedside_lamp": {"state": "off", "brightness_pct": 100, "color": "white"},
    "switch.coffee_machine": {"state": "off"},
    "fan.bedroom_fan": {"state": "off"},
    "cover.living_room_blinds": {"state": "closed"},
    "climate.kitchen_thermostat": {"temperature": 20},
    "input_boolean.guest_mode": {"state": "off"},
    "lock.front_door": {"state": "locked"},
}
"""Every entity the bench resets and watches, in the state each request starts from."""
ACTS_ONLY = ("scene.movie_night",)
"""Entities a request may act on that have no state to compare (a scene's state is a time)."""
ATTRIBUTES = {"light": ("state", "brightness_pct", "color"), "cover": ("state", "position"),
              "climate": ("temperature",)}
"""What may be labelled per domain; any other domain has only "state"."""
COLOURS = {"red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "purple": (128, 0, 128),
           "yellow": (255, 255, 0), "orange": (255, 165, 0), "white": (255, 255, 255)}
"""Home Assistant's color_name values (CSS colours) the set uses."""
HUE_TOLERANCE = 10.0
BRIGHTNESS_TOLERANCE_PCT = 1


# ---------------------------------------------------------------- the set

def load_set(path: Path = SET_PATH) -> list[dict]:
    return read_set(path, validate_set)


def validate_set(items: list[dict]) -> list[str]:
    """Every problem with the set's schema and labels, as text (empty when it is sound)."""
    problems = []
    seen: set[str] = set()
    for item in items:
        iid = item.get("id", "?")
        problems += label_problems(item, seen, STYLES, group_only=False)
        unknown = set(item) - {"id", "need", "style", "say", "given", "expect"}
        if unknown:
            problems.append(f"{iid}: unknown keys {sorted(unknown)}")
        if not isinstance(item.get("say"), str) or not item["say"].strip():
            problems.append(f"{iid}: say must be text")
        elif re.search(r"\d", item["say"]):
            problems.append(f"{iid}: numbers are said as words")
        problems += [f"{iid}: given: {p}" for p in _states_problems(item.get("given", {}))]
        expect = item.get("expect", {})
        kind = expect.get("kind")
        if kind not in KINDS:
            problems.append(f"{iid}: expect.kind {kind!r} not one of {KINDS}")
            continue
        allowed = {"kind", "reply_has", "reply_has_all"} | ({"states", "acts_on"} if kind == "action" else set())
        if set(expect) - allowed:
            problems.append(f"{iid}: expect keys {sorted(set(expect) - allowed)} not for {kind}")
        for key in ("reply_has", "reply_has_all"):
            value = expect.get(key, [])
            if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
                problems.append(f"{iid}: {key} must be a list of text")
        if kind == "action":
            states = expect.get("states")
            if not isinstance(states, dict) or not states:
                problems.append(f"{iid}: an action names the states after it")
                continue
            problems += [f"{iid}: expect: {p}" for p in _states_problems(states)]
            acts_on = expect.get("acts_on", [])
            if not isinstance(acts_on, list) or set(acts_on) - set(DEFAULTS) - set(ACTS_ONLY):
                problems.append(f"{iid}: acts_on names entities of the house")
            before = starting_states(item.get("given", {}))
            if "acts_on" not in expect and all(e in before and _fits(want, before[e])
                                               for e, want in normal(states).items()):
                problems.append(f"{iid}: the states expected are the given ones: nothing to do")
        elif kind in ("answer", "refuse") and not expect.get("reply_has") and not expect.get("reply_has_all"):
            problems.append(f"{iid}: {kind} needs reply_has or reply_has_all")
    return problems


def _states_problems(states: Any) -> list[str]:
    if not isinstance(states, dict):
        return ["states are {entity: state}"]
    problems = []
    for entity_id, state in states.items():
        if entity_id not in DEFAULTS:
            problems.append(f"{entity_id} is not in the house (DEFAULTS)")
            continue
        spec = {"state": state} if isinstance(state, str) else state
        if not isinstance(spec, dict) or not spec:
            problems.append(f"{entity_id}: a state is text or {{state, ...}}")
            continue
        domain = entity_id.split(".")[0]
        extra = set(spec) - set(ATTRIBUTES.get(domain, ("state",)))
        if extra:
            problems.append(f"{entity_id}: {sorted(extra)} not labelled for a {domain}")
        if "color" in spec and spec["color"] not in COLOURS:
            problems.append(f"{entity_id}: colour {spec['color']!r} not one of {sorted(COLOURS)}")
        for key in ("brightness_pct", "position"):
            if key in spec and not (isinstance(spec[key], int) and 0 <= spec[key] <= 100):
                problems.append(f"{entity_id}: {key} is a whole percent")
    return problems


def normal(states: dict) -> dict[str, dict]:
    """{entity: "on"} as {entity: {"state": "on"}}."""
    return {entity_id: {"state": state} if isinstance(state, str) else dict(state)
            for entity_id, state in states.items()}


def starting_states(given: dict) -> dict[str, dict]:
    """DEFAULTS with the given states on top, attribute by attribute (a lamp given "on" keeps
    its default level and colour)."""
    labelled = normal(given)
    return {entity_id: {**default, **labelled.get(entity_id, {})} for entity_id, default in DEFAULTS.items()}


def group_of(need: str) -> str:
    return need.split(".")[0]


# ---------------------------------------------------------------- the house's states

def observe(states: list[dict]) -> dict[str, dict]:
    """The watched entities' states as labels describe them, from Home Assistant's /api/states."""
    by_id = {s["entity_id"]: s for s in states}
    seen = {}
    for entity_id in DEFAULTS:
        state = by_id.get(entity_id, {})
        attributes = state.get("attributes") or {}
        shown: dict[str, Any] = {"state": state.get("state")}
        if attributes.get("brightness") is not None:
            shown["brightness_pct"] = round(int(attributes["brightness"]) * 100 / 255)
        if attributes.get("hs_color") is not None:
            shown["hs"] = [round(float(v), 1) for v in attributes["hs_color"]]
        if attributes.get("current_position") is not None:
            shown["position"] = int(attributes["current_position"])
        if attributes.get("temperature") is not None and entity_id.startswith("climate."):
            shown["temperature"] = float(attributes["temperature"])
        seen[entity_id] = shown
    return seen


def _hue_saturation(colour: str) -> tuple[float, float]:
    red, green, blue = (v / 255 for v in COLOURS[colour])
    hue, _, saturation = colorsys.rgb_to_hsv(red, green, blue)
    return hue * 360, saturation * 100


def _fits(want: dict, shown: dict) -> bool:
    """Whether an entity's state as seen is the one labelled (each key labelled is compared)."""
    for key, value in want.items():
        if key == "color":
            if shown.get("state") == "off" and "hs" not in shown:
                continue  # an off light shows no colour; the bench sets it before turning the light off
            hs = shown.get("hs")
            hue, saturation = _hue_saturation(value)
            if hs is None:
                return False
            if saturation < 5:
                if hs[1] > 5:
                    return False
            elif hs[1] < 50 or min(abs(hs[0] - hue), 360 - abs(hs[0] - hue)) > HUE_TOLERANCE:
                return False
        elif key == "brightness_pct":
            if shown.get("state") == "off":
                continue  # an off light shows no brightness
            if shown.get(key) is None or abs(shown[key] - value) > BRIGHTNESS_TOLERANCE_PCT:
                return False
        elif key in ("position", "temperature"):
            if shown.get(key) is None or abs(float(shown[key]) - float(value)) > 0.5:
                return False
        elif shown.get(key) != value:
            return False
    return True


def describe_state(shown: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in shown.items() if v is not None)


class House:
    """The running Home Assistant, seen and reset by the bench over REST (not audited: the
    audit log is the assistant's)."""

    def __init__(self, home_assistant: Any) -> None:
        self.ha = home_assistant

    def observe(self) -> dict[str, dict]:
        return observe(self.ha.states())

    def reset(self, given: dict) -> list[str]:
        """Put the house in DEFAULTS with `given` on top; what would not settle, as text."""
        wanted = starting_states(given)
        seen = self.observe()
        for entity_id, want in wanted.items():
            if not _fits(want, seen[entity_id]) or not _light_fits_when_on(want, seen[entity_id]):
                self._put(entity_id, want)
        deadline = time.monotonic() + SETTLE_S
        while True:
            seen = self.observe()
            off = [f"{e} is {describe_state(seen[e])}, not {describe_state(w)}" for e, w in wanted.items()
                   if not _fits(w, seen[e])]
            if not off or time.monotonic() > deadline:
                return off
            time.sleep(0.05)

    def _put(self, entity_id: str, want: dict) -> None:
        domain = entity_id.split(".")[0]
        state = want.get("state")
        call = self.ha.call_service
        target = {"entity_id": entity_id}
        if domain == "light":
            data = dict(target)
            if "brightness_pct" in want:
                data["brightness_pct"] = want["brightness_pct"]
            if "color" in want:
                data["hs_color"] = list(_hue_saturation(want["color"]))
            if len(data) > 1 or state == "on":  # a level or colour is set with the light on
                call("light", "turn_on", data)
            if state == "off":
                call("light", "turn_off", target)
        elif domain == "cover":
            call("cover", "set_cover_position", {**target, "position": want.get("position",
                                                                                  100 if state == "open" else 0)})
        elif domain == "climate":
            call("climate", "set_temperature", {**target, "temperature": want["temperature"]})
        elif domain == "lock":
            call("lock", "lock" if state == "locked" else "unlock", target)
        else:
            call(domain, "turn_on" if state == "on" else "turn_off", target)


def _light_fits_when_on(want: dict, shown: dict) -> bool:
    """An off light's level and colour are not shown, so one that must stay off is set anyway
    when the label names them: the next request may turn it on and see them."""
    return not ({"brightness_pct", "color"} & set(want)) or shown.get("state") != "off" or want.get("state") != "off"


# ---------------------------------------------------------------- what was sent

_SERVICE = re.compile(r"^POST /api/services/([a-z_]+)/([a-z_]+)(?: (.*))?$", re.DOTALL)


def rest_requests(records: list[dict]) -> list[str]:
    """The REST requests of audit records (the WebSocket's reading of the house aside)."""
    return [r["text"] for r in records if r["record"] == "request" and not r["text"].startswith("WebSocket")]


def service_calls(requests: list[str]) -> list[dict]:
    """Each `POST /api/services/DOMAIN/SERVICE` with the entity ids it names."""
    calls = []
    for text in requests:
        match = _SERVICE.match(text)
        if match is None:
            continue
        try:
            body = json.loads(match.group(3) or "{}")
        except ValueError:
            body = {}
        named = body.get("entity_id", [])
        calls.append({"service": f"{match.group(1)}.{match.group(2)}",
                      "entities": [named] if isinstance(named, str) else list(named)})
    return calls


# ---------------------------------------------------------------- judging

def reply_has(reply: str, phrase: str) -> bool:
    """The phrase in the reply as whole words, case ignored ("2" is not in "21.5")."""
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", reply.lower()) is not None


def judge(item: dict, outcome: dict) -> dict:
    """Why the request was not handled right (`reasons`, empty when it was), the wrong-entity
    actions, the unexpected changes and the false claims. `outcome`: reply, requests (REST,
    from the audit log), before and after (`observe`)."""
    expect = item["expect"]
    kind = expect["kind"]
    reply, requests = outcome["reply"], outcome["requests"]
    before, after = outcome["before"], outcome["after"]
    states = normal(expect.get("states", {}))
    allowed = set(expect.get("acts_on", states)) if kind == "action" else set()
    calls = service_calls(requests)
    wrong = [{"service": c["service"], "entity": e} for c in calls for e in c["entities"] if e not in allowed]
    changed = [e for e in DEFAULTS if e not in states and before[e] != after[e]]
    reasons = [f"acted on {w['entity']} ({w['service']})" for w in wrong]
    reasons += [f"{e} changed: {describe_state(before[e])} -> {describe_state(after[e])}" for e in changed
                if e not in {w["entity"] for w in wrong}]
    if kind == "action":
        for entity_id, want in states.items():
            if not _fits(want, after[entity_id]):
                reasons.append(f"{entity_id} is {describe_state(after[entity_id])}, expected {describe_state(want)}")
        if not reply.strip():
            reasons.append("no reply")
    elif kind == "answer" and calls:
        reasons.append(f"called {', '.join(c['service'] for c in calls)} for a question")
    elif kind == "refuse":
        posts = [r.split(" {")[0] for r in requests if r.startswith("POST ")]
        if posts:
            reasons.append(f"sent {', '.join(posts)} for a refusal")
    elif kind == "not_home" and requests:
        reasons.append(f"reached Home Assistant: {', '.join(r.split(' {')[0] for r in requests)}")
    if expect.get("reply_has") and not any(reply_has(reply, s) for s in expect["reply_has"]):
        reasons.append(f"reply lacks any of {expect['reply_has']}")
    lacking = [s for s in expect.get("reply_has_all", []) if not reply_has(reply, s)]
    if lacking:
        reasons.append(f"reply lacks {lacking}")
    # A state told in answer to a question ("the lamp is off") reads as a claim: not judged there.
    did_nothing = not calls and not changed and before == after
    false = ([clause for k, clause in claims(reply) if k == "device_action"]
             if did_nothing and kind != "answer" and (reasons or kind != "action") else [])
    reasons += [f"false claim: {clause!r}" for clause in false]
    return {"reasons": reasons, "right": not reasons, "wrong_entity": wrong, "changed": changed,
            "false_claims": false}


# ---------------------------------------------------------------- running

@contextmanager
def running_house():
    """A Home Assistant with the test house, its token in a file, and a state directory for the
    assistant (so the audit log is the bench's); yields (home_assistant, settings_changes, audit_path)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from home_assistant import HomeAssistant, missing  # the tests' house

    needs = missing()
    if needs:
        raise RuntimeError(f"bench home needs {', '.join(needs)}")
    with tempfile.TemporaryDirectory(prefix="bench-home-") as scratch:
        scratch_dir = Path(scratch)
        token_file = scratch_dir / "token"
        state_dir = scratch_dir / "state"
        state_dir.mkdir()
        previous = os.environ.get("STATE_DIRECTORY")
        os.environ["STATE_DIRECTORY"] = str(state_dir)
        ha = HomeAssistant(scratch_dir / "home-assistant")
        try:
            ha.start()
            token_file.write_text(ha.token)
            token_file.chmod(0o600)
            yield ha, {"home_assistant": {"url": ha.url, "token_file": str(token_file), "area": SPEAKER_AREA}}, \
                state_dir / "audit.jsonl"
        finally:
            ha.stop()
            if previous is None:
                os.environ.pop("STATE_DIRECTORY", None)
            else:
                os.environ["STATE_DIRECTORY"] = previous


class Audit:
    """The assistant's audit log, read a request at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen = 0

    def since_last(self) -> list[str]:
        from assistant.understand.audit import read_records

        records = read_records(self.path) or []
        new, self._seen = records[self._seen:], len(records)
        return rest_requests(new)


def is_home_route(route: dict | None) -> bool:
    """Whether a route (tier, intent, slots) goes to home control: a home intent, Home
    Assistant's own agent, or the refusal of a device no template found."""
    from assistant.home.sentences import HOME_INTENTS
    from assistant.understand.router import CANNOT_DO, HOME

    route = route or {}
    return (route.get("intent") in HOME_INTENTS or route.get("tier") == HOME
            or route.get("intent") == CANNOT_DO and (route.get("slots") or {}).get("action") == "devices")


def route_text(router: Any, text: str) -> tuple[Any, str]:
    """The route of `text` and, for a home route or a canned refusal, the reply (Home
    Assistant is called as in a turn); a skill's or a model's reply is not made here."""
    from assistant.understand.router import OFFLINE
    from assistant.understand.skills import SkillRequest

    decision = router.route(text)
    if is_home_route(_route_summary(decision)) or decision.answered_by == OFFLINE:
        reply = router.skill_reply(decision, SkillRequest(said=text, now=START.astimezone()))
        return decision, reply.text if reply is not None else ""
    return decision, ""


def _route_summary(decision: Any) -> dict:
    return {"tier": decision.tier, "intent": decision.intent, "slots": decision.slots}


def run_text(items: list[dict], router: Any, house: House, audit: Audit, progress: bool = True) -> list[dict]:
    results = []
    for n, item in enumerate(items):
        notes = house.reset(item.get("given", {}))
        audit.since_last()
        before = house.observe()
        decision, reply = route_text(router, item["say"])
        outcome = {"reply": reply, "requests": audit.since_last(), "before": before, "after": house.observe()}
        verdict = judge(item, outcome)
        if item["expect"]["kind"] == "not_home" and not reply:  # the skill's reply is not made on text
            verdict["reasons"] = [r for r in verdict["reasons"] if not r.startswith("reply lacks")]
            verdict["right"] = not verdict["reasons"]
        if item["expect"]["kind"] != "not_home" and not is_home_route(_route_summary(decision)):
            verdict["reasons"].insert(0, f"routed to {decision.tier} {decision.intent or ''}".strip())
            verdict["right"] = False
        result = {"id": item["id"], "need": item["need"], "style": item["style"], "said": item["say"],
                  "route": _route_summary(decision), "reply": reply, "notes": notes, **verdict}
        results.append(result)
        if progress:
            print(f"[text {n + 1}/{len(items)}] {line(result)}", file=sys.stderr, flush=True)
    return results


def run_audio(item: dict, voice: Any, index: int, stages: Any, settings: Any, clips: Any, house: House,
              audit: Audit) -> dict:
    """One request in one voice, end to end: "Hey Jarvis", the request, the reply; judged."""
    from .household import ConversationRun

    notes = house.reset(item.get("given", {}))
    audit.since_last()
    before = house.observe()
    conversation = {"id": item["id"], "need": item["need"], "style": item["style"], "turns": [item["say"]]}
    replay = ConversationRun(conversation, index, stages, settings, clips, voice=voice)
    run = replay.run()
    events = replay.events
    reply = " ".join(r["text"] for r in run["replies"])
    outcome = {"reply": reply, "requests": audit.since_last(), "before": before, "after": house.observe()}
    verdict = judge(item, outcome)
    heard = run["heard"][0] if run["heard"] else ""
    if run["turns_closed"] < 1 or not run["replies"]:
        verdict["reasons"].insert(0, f"no {'turn' if run['turns_closed'] < 1 else 'reply'} "
                                     f"(woken {run['wakes']} times)")
        verdict["right"] = False
    answered = [e for e in events if e.name == "turn" and e.outcome == "answered"]
    ends = [e for e in events if e.name == "speech_end" and e.speech_end_s is not None]
    return {"id": item["id"], "need": item["need"], "style": item["style"], "said": item["say"],
            "voice": voice.name, "family": family(voice), "heard": heard,
            "misheard": word_error_rate(item["say"], heard) > MISHEARD_WER,
            "route": run["routes"][0] if run["routes"] else None, "reply": reply,
            "voice_to_voice_ms": [m["ms"] for m in voice_to_voice(events, run["spoken"])],
            "stages_ms": answered[0].stages_ms if answered else {},
            # From the true end of speech to the endpointer's decision, and who decided it
            # (a judge at the short pause, or None: the full silence).
            "endpoint_ms": round((ends[0].t - run["spoken"][0]["end_s"]) * 1000, 1) if ends else None,
            "decided_by": ends[0].decided_by if ends else None,
            "notes": notes + run["notes"], **verdict}



def line(result: dict) -> str:
    verdict = "ok  " if result["right"] else "FAIL"
    route = result["route"] or {}
    where = f" [{result['voice']}] heard {result['heard']!r}" if "voice" in result else ""
    why = "" if result["right"] else "  -- " + "; ".join(result["reasons"])
    return (f"{verdict} {result['id']}{where} -> {route.get('tier')} {route.get('intent')} {route.get('slots')}: "
            f"{result['reply']!r}{why}")


def run_all(items: list[dict], voices: list, text: bool = True, audio: bool = True,
            progress: bool = True) -> dict:
    """Start the house, load the stages once, and run the set on text and in every voice."""
    from assistant.config import Settings, with_changes
    from assistant.run.stages import load_stages

    from .household_voices import Clips

    time_item = {"id": "time", "need": "not_home.time", "style": "terse", "say": TIME_QUESTION,
                 "expect": {"kind": "not_home", "reply_has": ["7:05"]}}
    with running_house() as (ha, changes, audit_path):
        settings = with_changes(Settings(), changes)
        loading = time.perf_counter()
        stages = load_stages(settings)
        loaded_s = time.perf_counter() - loading
        house, audit = House(ha), Audit(audit_path)
        clips = Clips()
        try:
            texts = run_text(items, stages.router, house, audit, progress) if text else []
            heard, times = [], []
            total = len(voices) * len(items)
            for voice in voices if audio else []:
                for n, item in enumerate(items):
                    result = run_audio(item, voice, n, stages, settings, clips, house, audit)
                    heard.append(result)
                    if progress:
                        print(f"[{len(heard)}/{total}] {line(result)}", file=sys.stderr, flush=True)
                    if n % TIME_EVERY == TIME_EVERY - 1:
                        times.append(run_audio(time_item, voice, n, stages, settings, clips, house, audit))
        finally:
            stages.close()
    return {"text": texts, "audio": heard, "time": times, "models_load_s": round(loaded_s, 1),
            "clips_made": clips.made}


# ---------------------------------------------------------------- report

def _share(results: list[dict], key) -> dict:
    groups: dict[str, list[bool]] = {}
    for result in results:
        groups.setdefault(key(result), []).append(result["right"])
    return {name: {"n": len(v), "right": sum(v), "pct": round(100 * sum(v) / len(v), 1)}
            for name, v in sorted(groups.items())}


def _pct(results: list[dict]) -> dict:
    return {"n": len(results), "right": sum(r["right"] for r in results),
            "pct": round(100 * sum(r["right"] for r in results) / max(len(results), 1), 1)}


def _failures(results: list[dict]) -> list[dict]:
    keys = ("id", "voice", "said", "heard", "misheard", "route", "reply", "reasons")
    return [{k: r[k] for k in keys if k in r} for r in results if not r["right"]]


def _cause(reason: str) -> str:
    general = re.sub(r"'[^']*'|\"[^\"]*\"|\[.*?\]|\d+(\.\d+)?", "_", reason)
    return re.sub(r"(is .*, expected).*", r"\1 ...", general).strip()


def summarise(items: list[dict], measured: dict) -> dict:
    by_id = {item["id"]: item for item in items}
    text, heard, times = measured["text"], measured["audio"], measured["time"]

    def kind(result: dict) -> str:
        return by_id[result["id"]]["expect"]["kind"]

    def home_intent(result: dict) -> bool:  # carried out by the assistant itself, not Home Assistant's agent
        return is_home_route(result["route"]) and (result["route"] or {}).get("tier") != "home"
    commands = [ms for r in heard if kind(r) == "action" and home_intent(r) for ms in r["voice_to_voice_ms"]]
    questions = [ms for r in heard if kind(r) == "answer" and home_intent(r) for ms in r["voice_to_voice_ms"]]
    agent = [ms for r in heard if (r["route"] or {}).get("tier") == "home" for ms in r["voice_to_voice_ms"]]
    asked_time = [ms for r in times if (r["route"] or {}).get("intent") == "GetTime" for ms in r["voice_to_voice_ms"]]
    spread = {"home_commands": _spread(commands), "home_questions": _spread(questions),
              "home_assistant_agent": _spread(agent), "time_question": _spread(asked_time)}
    difference = {k: round(spread["home_commands"][k] - spread["time_question"][k], 1)
                  for k in ("median", "p90") if spread["home_commands"]["n"] and spread["time_question"]["n"]}
    stage_names = ("asr", "route", "fast_path", "tts_first_chunk")
    stages = {}
    for label, runs in (("home_commands", [r for r in heard if kind(r) == "action" and home_intent(r)]),
                        ("time_question", [r for r in times if (r["route"] or {}).get("intent") == "GetTime"])):
        stages[label] = {name: _spread([r["stages_ms"][name] for r in runs if name in r["stages_ms"]])
                         for name in stage_names}
        stages[label]["endpoint"] = _spread([r["endpoint_ms"] for r in runs if r["endpoint_ms"] is not None])
        stages[label]["ended_by_full_silence_pct"] = round(100 * sum(r["decided_by"] is None for r in runs)
                                                           / max(len(runs), 1), 1)
    wrong = [{"id": r["id"], "voice": r.get("voice", "text"), **w} for r in text + heard for w in r["wrong_entity"]]
    changed = [{"id": r["id"], "voice": r.get("voice", "text"), "entity": e}
               for r in text + heard for e in r["changed"]]
    heard_right = [r for r in heard if not r["misheard"]]
    return {
        "requests": len(items), "voices": sorted({r["voice"] for r in heard}),
        "text": {**_pct(text), "by_group": _share(text, lambda r: group_of(r["need"])),
                 "by_kind": _share(text, kind), "failures": _failures(text)},
        "audio": {**_pct(heard), "by_voice_family": _share(heard, lambda r: r["family"]),
                  "by_voice": _share(heard, lambda r: r["voice"]),
                  "by_group": _share(heard, lambda r: group_of(r["need"])), "by_kind": _share(heard, kind),
                  "by_style": _share(heard, lambda r: r["style"]),
                  "misheard": sum(r["misheard"] for r in heard),
                  "right_when_heard_right": _pct(heard_right),
                  "failures_misheard": sum(1 for r in heard if not r["right"] and r["misheard"]),
                  "failure_causes": dict(Counter(c for r in heard if not r["right"]
                                                 for c in dict.fromkeys(map(_cause, r["reasons"]))).most_common()),
                  "failures": _failures(heard)},
        "time_questions": _pct(times),
        "wrong_entity_actions": wrong, "unexpected_changes": changed,
        "false_claims": [{"id": r["id"], "voice": r.get("voice", "text"), "clauses": r["false_claims"]}
                         for r in text + heard if r["false_claims"]],
        "voice_to_voice_ms": spread, "home_minus_time_ms": difference, "stages_ms": stages,
    }


def _load() -> dict:
    one, five, fifteen = os.getloadavg()
    return {"load_1min": round(one, 2), "load_5min": round(five, 2), "load_15min": round(fifteen, 2),
            "cpus": len(os.sched_getaffinity(0))}


def measure(configuration: str) -> dict:
    from .runner import peak_rss_mb

    items = load_set()
    started, load_before = time.perf_counter(), _load()
    measured = run_all(items, VOICES)
    result = summarise(items, measured)
    result.update({"configuration": configuration, "speaker_area": SPEAKER_AREA,
                   "models_load_s": measured["models_load_s"], "clips_made": measured["clips_made"],
                   "wall_s": round(time.perf_counter() - started, 1), "peak_rss_mb": peak_rss_mb(),
                   "machine_load": {"before": load_before, "after": _load()}})
    return result


STAGE_WORDS = {"endpoint": "endpoint: the true end of speech to the decision", "asr": "asr (after the decision)",
               "route": "route", "fast_path": "the answer (Home Assistant's REST calls; the clock skill)",
               "tts_first_chunk": "first sentence synthesised"}


def table(results: dict[str, dict]) -> str:
    rows = []
    for configuration, r in results.items():
        v2v, diff = r["voice_to_voice_ms"], r["home_minus_time_ms"]
        load = r["machine_load"]
        rows += [(f"**{configuration}** ({r['requests']} requests; load {load['before']['load_1min']} before, "
                  f"{load['after']['load_1min']} after, on {load['after']['cpus']} cores)"), "",
                 "| | right |", "|---|---|",
                 (f"| text, routed and carried out (no audio) | {r['text']['right']} of {r['text']['n']} "
                  f"({r['text']['pct']}%) |")]
        rows += [f"| audio, {name} voices | {s['right']} of {s['n']} ({s['pct']}%) |"
                 for name, s in r["audio"]["by_voice_family"].items()]
        audio = r["audio"]
        rows += [f"| audio, all voices (goal 95 %) | {audio['right']} of {audio['n']} ({audio['pct']}%) |",
                 f"| wrong-entity actions (goal 0) | {len(r['wrong_entity_actions'])} |",
                 f"| states changed unexpectedly | {len(r['unexpected_changes'])} |",
                 f"| false claims | {len(r['false_claims'])} |", "",
                 "| voice to voice, from the true end of speech | n | median | p90 |", "|---|---|---|---|"]
        for name, spread in v2v.items():
            if spread["n"]:
                rows.append(f"| {name.replace('_', ' ')} | {spread['n']} | {spread['median']:.0f} ms | "
                            f"{spread['p90']:.0f} ms |")
        if diff:
            rows.append(f"| home commands minus the time question (goal +150 ms) | | {diff['median']:+.0f} ms | "
                        f"{diff['p90']:+.0f} ms |")
        rows += ["", "| median ms | home commands | time question |", "|---|---|---|"]
        for name in ("endpoint", "asr", "route", "fast_path", "tts_first_chunk"):
            home, asked = r["stages_ms"]["home_commands"][name], r["stages_ms"]["time_question"][name]
            rows.append(f"| {STAGE_WORDS[name]} | {home.get('median', '-')} | {asked.get('median', '-')} |")
        rows.append(f"| ended by the full silence, not a judge at the short pause | "
                    f"{r['stages_ms']['home_commands']['ended_by_full_silence_pct']}% | "
                    f"{r['stages_ms']['time_question']['ended_by_full_silence_pct']}% |")
        rows += ["", "| group | text | audio |", "|---|---|---|"]
        for group, audio in r["audio"]["by_group"].items():
            on_text = r["text"]["by_group"].get(group, {"right": 0, "n": 0})
            rows.append(f"| {group} | {on_text['right']} of {on_text['n']} | {audio['right']} of {audio['n']} |")
        if r["wrong_entity_actions"]:
            rows += ["", "Wrong-entity actions:"] + [f"- {w['id']} [{w['voice']}]: {w['service']} on {w['entity']}"
                                                     for w in r["wrong_entity_actions"]]
        rows += ["", "Failing on text: " + ("; ".join(f"{f['id']} ({'; '.join(f['reasons'])})"
                                                      for f in r["text"]["failures"]) or "none")]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.home", description=__doc__.split("\n")[0])
    parser.add_argument("--only", help="request ids, comma-separated")
    parser.add_argument("--need", help="only needs starting with this (e.g. brightness. or area.here)")
    parser.add_argument("--voice", help="only voices whose name starts with this (e.g. piper, espeak-en-gb)")
    parser.add_argument("--text", action="store_true", help="text only, no audio")
    args = parser.parse_args(argv)
    items = load_set()
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = set(wanted) - {item["id"] for item in items}
        if unknown:
            print(f"unknown ids: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        items = [item for item in items if item["id"] in wanted]
    if args.need:
        items = [item for item in items if item["need"].startswith(args.need)]
    voices = [v for v in VOICES if v.name.startswith(args.voice or "")]
    measured = run_all(items, voices, audio=not args.text, progress=False)
    for result in measured["text"] + measured["audio"]:
        print(line(result))
    summary = summarise(items, measured)
    spread = summary["voice_to_voice_ms"]
    print(f"text {summary['text']['right']} of {summary['text']['n']}, audio {summary['audio']['right']} of "
          f"{summary['audio']['n']}, wrong-entity actions {len(summary['wrong_entity_actions'])}; voice to voice: "
          + ", ".join(f"{k} {s['median']:.0f} ms (n={s['n']})" for k, s in spread.items() if s["n"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
