"""Home commands carried out, and answered from what Home Assistant then reports.

A command names its targets (an entity, or the exposed entities of an area and domain),
calls one service for them, then reads their states back: the reply says what the
states show ("The kitchen light is on."), or that they did not change, never what was
merely asked for. Only entities exposed to Assist are ever acted on. Home Assistant
down, slow or refusing the token: one sentence that says so, within the deadline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.config import HomeAssistantSettings
from assistant.home.home_assistant import HomeAssistantClient, HomeAssistantError
from assistant.home.house import EMPTY_HOUSE, Area, HomeEntity, House
from assistant.home.sentences import HomeCommand, HomeSentences

log = logging.getLogger(__name__)

_ON_OFF = {"HassTurnOn": "turn_on", "HassTurnOff": "turn_off"}
_SERVICES: dict[str, dict[str, tuple[str, str | None]]] = {
    # domain: {intent: (service, the state it leads to, or None when it has no lasting state)}
    "cover": {"HassTurnOn": ("open_cover", "open"), "HassTurnOff": ("close_cover", "closed")},
    "valve": {"HassTurnOn": ("open_valve", "open"), "HassTurnOff": ("close_valve", "closed")},
    "lock": {"HassTurnOn": ("lock", "locked"), "HassTurnOff": ("unlock", "unlocked")},
    "scene": {"HassTurnOn": ("turn_on", None)},
    "script": {"HassTurnOn": ("turn_on", None), "HassTurnOff": ("turn_off", None)},
    "button": {"HassTurnOn": ("press", None)},
    "input_button": {"HassTurnOn": ("press", None)},
    "vacuum": {"HassTurnOn": ("start", None), "HassTurnOff": ("return_to_base", None)},
}
_SWITCHABLE = ("light", "switch", "fan", "input_boolean", "automation", "media_player", "humidifier", "siren",
               "climate", "water_heater", "remote")
_STATE_WAIT_S = 1.0
"""How long the states may take to show a service's effect (a radio device's report) before
the reply says they have not changed."""

UNREACHABLE_REPLY = "Sorry, Home Assistant isn't answering, so I couldn't do that."


@dataclass(frozen=True)
class HomeReply:
    text: str
    done: bool
    """Whether Home Assistant did something (the states show it)."""


class HomeControl:
    """The house as last learnt, the sentences that match against it, and the client that acts.
    The house is replaced whole by the watcher thread; turns read it without a lock."""

    def __init__(self, client: HomeAssistantClient, sentences: HomeSentences, area: str = "",
                 conversation: bool = True, on_problem: Callable[[str | None], None] | None = None) -> None:
        self.client = client
        self.conversation = conversation
        """Whether requests the templates miss that name an entity go to Home Assistant's agent."""
        self.sentences = sentences
        self.house: House = EMPTY_HOUSE
        self.problem: str | None = "not connected yet"
        """Why Home Assistant cannot be used now, or None when it can."""
        self._area_setting = area
        self.on_problem = on_problem
        """Called (from the watcher's thread) when `problem` changes: the daemon's status."""
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def settings(self) -> HomeAssistantSettings:
        return self.client.settings

    # what the router asks

    def match(self, text: str, here: Area | bool = True) -> HomeCommand | None:
        """The home command `text` is; `here`: the area "the lights" may mean (True: the
        speaker's own, False: none)."""
        area = self.here if here is True else here or None
        return self.sentences.match(text, self.house, area)

    def mentioned_area(self, text: str) -> Area | None:
        """The one area the text names ("in the hallway"), if it names exactly one."""
        return self.house.mentioned_area(text)

    @property
    def here(self) -> Area | None:
        """The area the speaker is in (home_assistant.area), once the house knows it."""
        return self.house.area_named(self._area_setting) if self._area_setting else None

    def closest_name(self, what: str) -> str | None:
        """The exposed entity's name (or alias) that a misheard one ("kitchen lite") surely
        means: similar enough, and clearly more similar than any other; else None."""
        return self.house.closest_name(what)

    def mentioned_entity(self, text: str) -> HomeEntity | None:
        """An exposed entity the text names (for Home Assistant's conversation agent)."""
        return self.house.mentioned_entity(text)

    # what a turn does (worker thread)

    def carry_out(self, command: HomeCommand) -> HomeReply:
        deadline = time.monotonic() + self.client.settings.timeout_s
        if command.unexposed is not None:
            return HomeReply(f"{_the(command.unexposed.name, capital=True)} isn't exposed to me in Home Assistant, so I "
                             "won't touch it. You can expose it under Settings, Voice assistants, Expose.", False)
        try:
            if command.intent in ("HassTurnOn", "HassTurnOff"):
                return self._switch(command, deadline)
            if command.intent == "HassLightSet":
                return self._light_set(command, deadline)
            if command.intent == "HassGetState":
                return HomeReply(self._state_answer(command, deadline), False)
            if command.intent == "HassClimateGetTemperature":
                return HomeReply(self._temperature_answer(command, deadline), False)
            if command.intent == "HassClimateSetTemperature":
                return self._set_temperature(command, deadline)
            if command.intent == "HassSetPosition":
                return self._set_position(command, deadline)
        except HomeAssistantError as err:
            log.warning("%s", err.message)
            return HomeReply(_failure_reply(err), False)
        return HomeReply("Sorry, I can't do that with Home Assistant yet.", False)

    def converse(self, text: str) -> str:
        """Home Assistant's own conversation agent's answer (it acts itself, and its words say what it did)."""
        deadline = time.monotonic() + self.client.settings.timeout_s
        try:
            return self.client.converse(text, self.house.language, deadline) or "Home Assistant had no answer."
        except HomeAssistantError as err:
            log.warning("%s", err.message)
            return _failure_reply(err).replace("couldn't do that", "couldn't ask it")

    def not_found_reply(self, what: str) -> str:
        """For a device command the home templates did not match: Home Assistant unknown yet, or
        nothing exposed by that name."""
        if self.house is EMPTY_HOUSE:
            return "Sorry, I can't reach Home Assistant right now, so I couldn't do that."
        what = what.strip(" .?!")
        if what.lower() in ("light", "lights", "the lights", "all the lights", "all lights") and self.here is None:
            return "Which room? Say, for example, turn off the lights in the kitchen."
        if not what:
            return "I didn't catch which device."
        return f"I don't see {_the(what)} among the things exposed to me in Home Assistant."

    # the targets, and the service call

    def _targets(self, command: HomeCommand) -> list[HomeEntity]:
        slots = command.slots
        if (entity_id := slots.get("name")) is not None:
            entity = self.house.entity(str(entity_id))
            return [entity] if entity is not None and entity.exposed else []
        return self.house.exposed(area_id=slots.get("area"), domain=slots.get("domain"),
                                  device_class=slots.get("device_class"))

    def _switch(self, command: HomeCommand, deadline: float) -> HomeReply:
        targets = self._targets(command)
        if not targets:
            return HomeReply(self._nothing_there(command), False)
        by_service: dict[tuple[str, str], list[HomeEntity]] = {}
        for entity in targets:
            if (service := _service_for(entity.domain, command.intent)) is not None:
                by_service.setdefault((entity.domain, service[0]), []).append(entity)
        if not by_service:
            return HomeReply(f"I can't turn {_the(targets[0].name)} {_on_off(command.intent)}.", False)
        for (domain, service), entities in by_service.items():
            self.client.call_service(domain, service, {"entity_id": [e.entity_id for e in entities]}, deadline)
        acted = [entity for entities in by_service.values() for entity in entities]
        wanted = {entity.entity_id: _service_for(entity.domain, command.intent)[1] for entity in acted}  # type: ignore[index]
        states = self._states_after(wanted, deadline)
        return _switch_reply(command, acted, wanted, states, self.house)

    def _light_set(self, command: HomeCommand, deadline: float) -> HomeReply:
        targets = [entity for entity in self._targets(command) if entity.domain == "light"]
        if not targets:
            return HomeReply(self._nothing_there(command), False)
        data: dict[str, Any] = {"entity_id": [entity.entity_id for entity in targets]}
        if "brightness" in command.slots:
            data["brightness_pct"] = int(command.slots["brightness"])
        if "color" in command.slots:
            data["color_name"] = str(command.slots["color"])
        if "temperature" in command.slots:
            data["color_temp_kelvin"] = int(command.slots["temperature"])
        self.client.call_service("light", "turn_on", data, deadline)
        states = self._states_after({entity.entity_id: "on" for entity in targets}, deadline)
        if "brightness" in command.slots:
            return _brightness_reply(targets, int(command.slots["brightness"]), states)
        on = [entity for entity in targets if states.get(entity.entity_id, {}).get("state") == "on"]
        what = _names(targets)
        if len(on) == len(targets):
            return HomeReply(f"Done: {what} {_is(len(targets), targets)} on, "
                             f"set to {_setting_words(command.slots)}.", True)
        return HomeReply(f"I asked Home Assistant, but {what} still {'shows' if len(targets) == 1 else 'show'} off.",
                         False)

    def _set_temperature(self, command: HomeCommand, deadline: float) -> HomeReply:
        if "name" in command.slots:
            targets = [entity for entity in self._targets(command) if entity.domain == "climate"]
        else:
            area_id = command.slots.get("area") or (self.here.area_id if self.here else None)
            targets = self.house.exposed(area_id=area_id, domain="climate")
        if not targets:
            return HomeReply("There's no thermostat exposed to me in Home Assistant.", False)
        temperature = command.slots.get("temperature")
        self.client.call_service("climate", "set_temperature",
                                 {"entity_id": [e.entity_id for e in targets], "temperature": temperature}, deadline)
        state = self.client.state(targets[0].entity_id, deadline)
        target = (state.get("attributes") or {}).get("temperature")
        if target is not None and float(target) == float(temperature):
            return HomeReply(f"{_the(targets[0].name, capital=True)} {_is(1, targets)} set to {_number(target)} degrees.",
                             True)
        return HomeReply(f"I asked Home Assistant, but {_the(targets[0].name)} still shows "
                         f"{_number(target) if target is not None else 'no'} degrees.", False)

    def _set_position(self, command: HomeCommand, deadline: float) -> HomeReply:
        targets = [e for e in self._targets(command) if e.domain in ("cover", "valve")]
        if not targets:
            return HomeReply(self._nothing_there(command), False)
        position = int(command.slots.get("position", 0))
        for domain in sorted({e.domain for e in targets}):
            service = "set_cover_position" if domain == "cover" else "set_valve_position"
            self.client.call_service(domain, service, {"entity_id": [e.entity_id for e in targets if e.domain == domain],
                                                       "position": position}, deadline)
        state = self.client.state(targets[0].entity_id, deadline)
        now = (state.get("attributes") or {}).get("current_position")
        if now is not None and int(now) == position:
            return HomeReply(f"{_the(targets[0].name, capital=True)} {_is(1, targets)} at {position} percent.", True)
        return HomeReply(f"I asked Home Assistant to move {_the(targets[0].name)} to {position} percent.", False)

    def _states_after(self, wanted: dict[str, str | None], deadline: float) -> dict[str, dict]:
        """The targets' states once they show what the service leads to, or as they are when
        `_STATE_WAIT_S` (or the deadline) has passed."""
        until = min(deadline, time.monotonic() + _STATE_WAIT_S)
        while True:
            states = {entity_id: self.client.state(entity_id, deadline) for entity_id in wanted}
            settled = all(want is None or states[entity_id].get("state") == want for entity_id, want in wanted.items())
            if settled or time.monotonic() + 0.1 >= until:
                return states
            time.sleep(0.1)

    def _state_answer(self, command: HomeCommand, deadline: float) -> str:
        targets = self._targets(command)
        if not targets:
            return self._nothing_there(command)
        states = {entity.entity_id: self.client.state(entity.entity_id, deadline) for entity in targets}
        asked = command.slots.get("state")
        if command.question is None and len(targets) == 1:
            return _one_state_answer(targets[0], states[targets[0].entity_id], asked)
        matching = [entity for entity in targets if asked is None or states[entity.entity_id].get("state") == asked]
        kind = _kind(command)
        if command.question == "how_many":
            return f"{len(matching)} {kind if len(matching) != 1 else kind.rstrip('s')} {_is(len(matching))} {asked}."
        if command.question == "all":
            others = [entity for entity in targets if entity not in matching]
            return (f"Yes, all the {kind} are {asked}." if not others
                    else f"No, {_names(others)} {_is(len(others), others)} "
                         f"{_state_words(states[others[0].entity_id].get('state'))}.")
        if not matching:
            return f"No, no {kind} {_is(2)} {asked}." if asked else f"I don't see any {kind}."
        answer = f"{_names(matching)} {_is(len(matching), matching)} {asked}."
        return f"Yes, {answer}" if command.question == "any" else answer[0].upper() + answer[1:]

    def _temperature_answer(self, command: HomeCommand, deadline: float) -> str:
        area_id = command.slots.get("area") or (self.here.area_id if self.here else None)
        if command.slots.get("setting") == "target":
            return self._target_answer(command, area_id, deadline)
        if (entity_id := command.slots.get("name")) is not None:
            candidates = [e for e in [self.house.entity(str(entity_id))] if e is not None and e.exposed]
        else:
            candidates = (self.house.exposed(area_id=area_id, domain="climate")
                          + self.house.exposed(area_id=area_id, domain="sensor", device_class="temperature"))
        for entity in candidates:
            state = self.client.state(entity.entity_id, deadline)
            attributes = state.get("attributes") or {}
            value = attributes.get("current_temperature") if entity.domain == "climate" else state.get("state")
            unit = attributes.get("unit_of_measurement") or ""
            try:
                degrees = float(value)
            except (TypeError, ValueError):
                continue
            where = self.house.area(entity.area_id)
            place = f"in the {where.name.lower()}" if where is not None else f"at {_the(entity.name)}"
            scale = " Fahrenheit" if unit.endswith("F") else ""
            return f"It's {_number(degrees)} degrees{scale} {place}."
        area = self.house.area(area_id)
        return (f"I don't have a temperature for the {area.name.lower()}." if area is not None
                else "I don't have a temperature reading; say which room.")

    def _target_answer(self, command: HomeCommand, area_id: str | None, deadline: float) -> str:
        """What a thermostat is set to: the one named, else the area's, else the only one."""
        if (entity_id := command.slots.get("name")) is not None:
            thermostats = [e for e in [self.house.entity(str(entity_id))] if e is not None and e.exposed]
        else:
            thermostats = self.house.exposed(area_id=area_id, domain="climate") or self.house.exposed(domain="climate")
        thermostats = [entity for entity in thermostats if entity.domain == "climate"]
        if not thermostats:
            return "There's no thermostat exposed to me in Home Assistant."
        if len(thermostats) > 1 and area_id is None:
            return "Which room's thermostat? Say, for example, what is the kitchen thermostat set to."
        entity = thermostats[0]
        target = (self.client.state(entity.entity_id, deadline).get("attributes") or {}).get("temperature")
        if target is None:
            return f"{_the(entity.name, capital=True)} has no temperature set."
        return f"{_the(entity.name, capital=True)} {_is(1, [entity])} set to {_number(target)} degrees."

    def _nothing_there(self, command: HomeCommand) -> str:
        kind = _kind(command)
        area = self.house.area(command.slots.get("area"))
        where = f" in the {area.name.lower()}" if area is not None else ""
        return f"There are no {kind}{where} exposed to me in Home Assistant."

    # learning the house, in the background

    def start(self) -> None:
        """Learn the house and follow its changes in a daemon thread, reconnecting after a failure."""
        self._watcher = threading.Thread(target=self._watch, name="home-assistant", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=3.0)
        self.client.close()

    def _watch(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self.client.watch(self._learnt, self._stop.is_set)
            except HomeAssistantError as err:
                self._set_problem(err.message)
            except Exception as err:  # a bug must not end home control for good
                log.exception("following Home Assistant failed")
                self._set_problem(str(err))
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)  # a restarted Home Assistant is noticed within 10 s
            if self.problem is None:
                backoff = 1.0

    def _learnt(self, house: House) -> None:
        self.house = house
        exposed = sum(entity.exposed for entity in house.entities)
        log.info("Home Assistant: %d entities exposed to Assist in %d areas", exposed, len(house.areas))
        self._set_problem(None)

    def _set_problem(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        if problem is None:
            log.warning("Home Assistant: connected to %s", self.client.host)
        else:
            log.warning("Home Assistant: %s (trying again in the background)", problem)
        self.problem = problem
        if self.on_problem is not None:
            self.on_problem(problem)

    def wait_until_learnt(self, timeout_s: float) -> bool:
        """For start-up and tests: True once the house has been read."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.house is not EMPTY_HOUSE:
                return True
            time.sleep(0.05)
        return self.house is not EMPTY_HOUSE


def _service_for(domain: str, intent: str) -> tuple[str, str | None] | None:
    if domain in _SERVICES:
        return _SERVICES[domain].get(intent)
    if domain in _SWITCHABLE:
        return _ON_OFF[intent], "on" if intent == "HassTurnOn" else "off"
    return None


def _switch_reply(command: HomeCommand, acted: list[HomeEntity], wanted: dict[str, str | None],
                  states: dict[str, dict], house: House) -> HomeReply:
    reached = [e for e in acted if wanted[e.entity_id] is None or states[e.entity_id].get("state") == wanted[e.entity_id]]
    missed = [e for e in acted if e not in reached]
    if len(acted) == 1:
        entity = acted[0]
        if missed:
            shown = states[entity.entity_id].get("state", "unknown")
            return HomeReply(f"I asked Home Assistant, but {_the(entity.name)} still shows {_state_words(shown)}.",
                             False)
        if wanted[entity.entity_id] is None:
            if entity.domain == "scene":
                return HomeReply(f"I've set the {entity.name.lower().removesuffix(' scene')} scene.", True)
            verb = {"script": "ran" if command.intent == "HassTurnOn" else "stopped",
                    "vacuum": "started" if command.intent == "HassTurnOn" else "sent home"}.get(entity.domain, "pressed")
            return HomeReply(f"I {verb} {_the(entity.name)}.", True)
        return HomeReply(f"{_the(entity.name, capital=True)} {_is(1, [entity])} "
                         f"{_state_words(wanted[entity.entity_id])}.", True)
    area = house.area(command.slots.get("area"))
    where = f" in the {area.name.lower()}" if area is not None else ""
    kind = _kind(command)
    done = f"{_on_off(command.intent)}" if not missed else ""
    if not missed:
        return HomeReply(f"The {len(reached)} {kind}{where} are {done}.", True)
    if reached:
        return HomeReply(f"{_names(reached, capital=True)} {_is(len(reached), reached)} {_on_off(command.intent)}, "
                         f"but {_names(missed)} still {'shows' if len(missed) == 1 else 'show'} otherwise.", True)
    return HomeReply(f"I asked Home Assistant, but the {kind}{where} still show otherwise.", False)


def _brightness_reply(targets: list[HomeEntity], percent: int, states: dict[str, dict]) -> HomeReply:
    def shown(entity: HomeEntity) -> int | None:
        state = states.get(entity.entity_id, {})
        value = (state.get("attributes") or {}).get("brightness")
        return None if value is None or state.get("state") != "on" else round(int(value) * 100 / 255)

    at = [entity for entity in targets if shown(entity) is not None and abs(shown(entity) - percent) <= 1]
    if percent == 0 and all(states.get(e.entity_id, {}).get("state") == "off" for e in targets):
        return HomeReply(f"{_names(targets, capital=True)} {_is(len(targets), targets)} off.", True)
    if len(at) == len(targets):
        return HomeReply(f"{_names(targets, capital=True)} {_is(len(targets), targets)} at {percent} percent.", True)
    first = targets[0]
    now = shown(first)
    return HomeReply(f"I asked Home Assistant, but {_the(first.name)} shows "
                     f"{'off' if now is None else f'{now} percent'}.", False)


def _one_state_answer(entity: HomeEntity, state: dict, asked: str | None) -> str:
    shown = str(state.get("state", "unknown"))
    be = _is(1, [entity])
    if asked is None:
        return f"{_the(entity.name, capital=True)} {be} {_state_words(shown)}."
    if shown == asked:
        return f"Yes, {_the(entity.name)} {be} {_state_words(shown)}."
    return f"No, {_the(entity.name)} {be} {_state_words(shown)}."


def _failure_reply(err: HomeAssistantError) -> str:
    if err.code == "unauthorized":
        return "Sorry, Home Assistant refused my access token, so I couldn't do that."
    if err.code == "timeout":
        return "Sorry, Home Assistant didn't answer in time, so I couldn't do that."
    if err.code == "refused":
        return "Sorry, Home Assistant refused that request."
    if err.code == "not_in_home":
        return "Sorry, Home Assistant's address is outside the home network over plain http, so I won't use it."
    return UNREACHABLE_REPLY


_DOMAIN_WORDS = {"light": "lights", "switch": "switches", "fan": "fans", "cover": "covers", "lock": "locks",
                 "climate": "thermostats", "media_player": "media players", "input_boolean": "switches",
                 "scene": "scenes", "script": "scripts", "valve": "valves", "vacuum": "vacuums"}


def _kind(command: HomeCommand) -> str:
    if command.slots.get("device_class"):
        return f"{command.slots['device_class']}s"
    return _DOMAIN_WORDS.get(str(command.slots.get("domain")), "devices")


def _state_words(state: str | None) -> str:
    return {"unavailable": "unavailable", "unknown": "in an unknown state"}.get(str(state), str(state).replace("_", " "))


def _on_off(intent: str) -> str:
    return "on" if intent == "HassTurnOn" else "off"


def _is(count: int, entities: list[HomeEntity] | tuple = ()) -> str:
    """"is" or "are" for `count` things; one thing with a plural name ("the blinds") is "are"."""
    return "is" if count == 1 and not (entities and _plural(entities[0].name)) else "are"


def _plural(name: str) -> bool:
    last = name.strip().lower().split()[-1] if name.strip() else ""
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


def _the(name: str, capital: bool = False) -> str:
    """"Kitchen Light" -> "the kitchen light"; a name that is a proper name stays as it is."""
    words = name.strip()
    spoken = words if any(w[:1].isupper() for w in words.split()[1:]) and not words.istitle() else words.lower()
    text = spoken if spoken.lower().startswith(("the ", "my ", "our ")) else f"the {spoken}"
    return text[0].upper() + text[1:] if capital else text


def _names(entities: list[HomeEntity], capital: bool = False) -> str:
    names = [_the(entity.name) for entity in entities]
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return text[0].upper() + text[1:] if capital and text else text


def _setting_words(slots: dict[str, Any]) -> str:
    if "color" in slots:
        return str(slots["color"])
    if "temperature" in slots:
        return f"{slots['temperature']} kelvin"
    return "that"


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:.1f}"
