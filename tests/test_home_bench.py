"""The home benchmark's pure parts: the set and its labels, reading Home Assistant's states and
the audit log, and the judging. No Home Assistant and no models here; `python -m bench home`
runs the real thing."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.home import (
    DEFAULTS,
    KINDS,
    STYLES,
    VOICES,
    describe_state,
    group_of,
    judge,
    load_set,
    normal,
    observe,
    reply_has,
    rest_requests,
    service_calls,
    starting_states,
    validate_set,
)
from bench.household_voices import family

SET = load_set()
BY_ID = {item["id"]: item for item in SET}


# ---------------------------------------------------------------- the set

def test_the_set_is_valid_and_big_enough():
    assert validate_set(SET) == []
    assert len(SET) >= 60
    assert len({item["id"] for item in SET}) == len(SET)


def test_the_set_covers_every_kind_of_request_in_varied_phrasing():
    groups = Counter(group_of(item["need"]) for item in SET)
    for group, least in {"switch": 12, "area": 10, "brightness": 6, "colour": 3, "cover": 3, "scene": 2,
                         "climate": 3, "question": 8, "temperature": 4, "refuse": 4, "not_home": 4}.items():
        assert groups[group] >= least, group
    kinds = Counter(item["expect"]["kind"] for item in SET)
    assert set(kinds) == set(KINDS)
    assert {item["style"] for item in SET} == set(STYLES)
    said = " ".join(item["say"].lower() for item in SET)
    for phrase in ("switch", "kill the lights", "lights out in the lounge", "percent", "lounge", "hall ",
                   "standing lamp", "reading lamp", "ceiling light", "guest mode", "is the coffee machine on",
                   "are any lights on in the kitchen", "temperature", "what time is it", "timer"):
        assert phrase in said, phrase


def test_numbers_are_spoken_as_words():
    assert not [item["id"] for item in SET if any(ch.isdigit() for ch in item["say"])]
    assert any("forty percent" in item["say"] for item in SET)


def test_every_action_changes_something_and_names_only_things_of_the_house():
    for item in SET:
        expect = item["expect"]
        if expect["kind"] != "action":
            continue
        before = starting_states(item.get("given", {}))
        after = normal(expect["states"])
        assert set(after) <= set(DEFAULTS), item["id"]
        assert "acts_on" in expect or any(before[e] != {**before[e], **want} for e, want in after.items()), item["id"]


def test_area_commands_are_labelled_with_every_light_of_the_area_and_leave_the_rest():
    """A demanding user's "kill the lights in the lounge": both living-room lights, nothing else."""
    assert normal(BY_ID["area-01"]["expect"]["states"]) == {"light.living_room_lamp": {"state": "off"},
                                                            "light.floor_lamp": {"state": "off"}}
    assert BY_ID["area-01"]["given"]["light.hallway_light"] == "on"  # must stay on
    assert BY_ID["area-10"]["given"]["switch.coffee_machine"] == "on"  # "the kitchen lights" are not the coffee machine


def test_refusals_and_requests_not_about_the_home():
    refusals = [item for item in SET if item["expect"]["kind"] == "refuse"]
    assert {"Turn on guest mode.", "Unlock the front door."} <= {item["say"] for item in refusals}
    assert all(item["expect"]["reply_has"] for item in refusals)
    not_home = {item["say"] for item in SET if item["expect"]["kind"] == "not_home"}
    assert "What time is it?" in not_home and any("timer" in text for text in not_home)


def test_a_broken_set_is_refused_with_reasons():
    broken = [
        {"id": "a", "need": "switch", "style": "grumpy", "say": "Turn on the light 2.", "expect": {"kind": "action"}},
        {"id": "a", "need": "x.y", "style": "terse", "say": "Hi.", "expect": {"kind": "answer"}},
        {"id": "b", "need": "x.y", "style": "terse", "say": "Garage on.", "expect": {"kind": "action",
                                                                                  "states": {"light.garage": "on"}}},
        {"id": "c", "need": "x.y", "style": "terse", "say": "Lamp on.",
         "given": {"light.floor_lamp": "on"}, "expect": {"kind": "action", "states": {"light.floor_lamp": "on"}}},
        {"id": "d", "need": "x.y", "style": "terse", "say": "Fan purple.",
         "expect": {"kind": "action", "states": {"fan.bedroom_fan": {"state": "on", "color": "purple"}}}},
        {"id": "e", "need": "x.y", "style": "terse", "say": "Hi.", "expect": {"kind": "chat"}},
    ]
    problems = " | ".join(validate_set(broken))
    for part in ("duplicate id", "need must be group.need", "style 'grumpy'", "numbers are said as words",
                 "an action names the states", "answer needs reply_has", "light.garage is not in the house",
                 "nothing to do", "['color'] not labelled for a fan", "expect.kind 'chat'"):
        assert part in problems, part


def test_the_given_states_go_on_top_of_the_defaults_attribute_by_attribute():
    start = starting_states({"light.bedside_lamp": "on", "cover.living_room_blinds": {"state": "open", "position": 30}})
    assert start["light.bedside_lamp"] == {"state": "on", "brightness_pct": 100, "color": "white"}
    assert start["cover.living_room_blinds"] == {"state": "open", "position": 30}
    assert start["light.kitchen_light"] == {"state": "off", "brightness_pct": 100}


def test_voices_are_the_bundled_piper_voice_and_espeak_ng():
    assert VOICES[0].name == "piper"
    assert Counter(family(v) for v in VOICES) == {"piper": 1, "espeak": 3}


# ---------------------------------------------------------------- states and the audit log

def _state(entity_id, state, **attributes):
    return {"entity_id": entity_id, "state": state, "attributes": attributes}


def _house(**changes):
    """The observed default house, with some entities' observations replaced."""
    seen = observe([_state(e, spec.get("state", "heat"), **({"temperature": spec["temperature"]}
                                                              if "temperature" in spec else {}))
                    for e, spec in DEFAULTS.items()])
    return seen | {entity_id.replace("__", "."): value for entity_id, value in changes.items()}


def test_states_are_read_as_labels_describe_them():
    seen = observe([_state("light.kitchen_light", "on", brightness=102),
                    _state("light.bedside_lamp", "on", brightness=255, hs_color=[0.0, 100.0]),
                    _state("cover.living_room_blinds", "open", current_position=50),
                    _state("climate.kitchen_thermostat", "heat", temperature=22.0)])
    assert seen["light.kitchen_light"] == {"state": "on", "brightness_pct": 40}
    assert seen["light.bedside_lamp"] == {"state": "on", "brightness_pct": 100, "hs": [0.0, 100.0]}
    assert seen["cover.living_room_blinds"] == {"state": "open", "position": 50}
    assert seen["climate.kitchen_thermostat"] == {"state": "heat", "temperature": 22.0}
    assert seen["fan.bedroom_fan"] == {"state": None}  # missing: no state
    assert describe_state(seen["light.kitchen_light"]) == "state on, brightness_pct 40"


def test_service_calls_are_read_from_the_audit_log():
    records = [{"record": "request", "text": 'WebSocket {"type": "get_states"}'},
               {"record": "request", "text": 'POST /api/services/light/turn_off {"entity_id": ["light.a", "light.b"]}'},
               {"record": "outcome", "text": ""},
               {"record": "request", "text": "GET /api/states/light.a"},
               {"record": "request", "text": 'POST /api/services/switch/turn_on {"entity_id": "switch.c"}'}]
    requests = rest_requests(records)
    assert len(requests) == 3
    assert service_calls(requests) == [{"service": "light.turn_off", "entities": ["light.a", "light.b"]},
                                       {"service": "switch.turn_on", "entities": ["switch.c"]}]


def test_a_reply_has_whole_words_only():
    assert reply_has("It's 21.5 degrees in the kitchen.", "21.5")
    assert not reply_has("It's 21.5 degrees in the kitchen.", "2")
    assert reply_has("Yes, the kitchen light is on.", "yes")
    assert not reply_has("Sorry, I couldn't understand that.", "on")


# ---------------------------------------------------------------- judging

def _outcome(reply, requests=(), before=None, after=None):
    before = before or _house()
    return {"reply": reply, "requests": list(requests), "before": before, "after": after or before}


OFF_LOUNGE = 'POST /api/services/light/turn_off {"entity_id": ["light.living_room_lamp", "light.floor_lamp"]}'


def test_an_area_command_done_right():
    item = BY_ID["area-01"]
    before = _house(light__living_room_lamp={"state": "on"}, light__floor_lamp={"state": "on"},
                    light__hallway_light={"state": "on"})
    after = before | {"light.living_room_lamp": {"state": "off"}, "light.floor_lamp": {"state": "off"}}
    verdict = judge(item, _outcome("The 2 lights in the living room are off.", [OFF_LOUNGE], before, after))
    assert verdict == {"reasons": [], "right": True, "wrong_entity": [], "changed": [], "false_claims": []}


def test_a_call_on_an_entity_the_label_does_not_name_is_a_wrong_entity_action():
    item = BY_ID["area-10"]  # "Turn the kitchen lights off.", the coffee machine on
    before = _house(light__kitchen_light={"state": "on", "brightness_pct": 100},
                    switch__coffee_machine={"state": "on"})
    after = before | {"light.kitchen_light": {"state": "off"}, "switch.coffee_machine": {"state": "off"}}
    calls = ['POST /api/services/light/turn_off {"entity_id": ["light.kitchen_light"]}',
             'POST /api/services/switch/turn_off {"entity_id": ["switch.coffee_machine"]}']
    verdict = judge(item, _outcome("The kitchen light and the coffee machine are off.", calls, before, after))
    assert verdict["wrong_entity"] == [{"service": "switch.turn_off", "entity": "switch.coffee_machine"}]
    assert verdict["reasons"] == ["acted on switch.coffee_machine (switch.turn_off)"]


def test_a_change_without_a_service_call_is_caught_from_the_states():
    item = BY_ID["on-01"]  # Home Assistant's own agent acts without a service call in the audit log
    after = _house(light__kitchen_light={"state": "on", "brightness_pct": 100},
                   light__hallway_light={"state": "on"})
    verdict = judge(item, _outcome("Turned on the lights", ["POST /api/conversation/process {}"], None, after))
    assert verdict["changed"] == ["light.hallway_light"] and not verdict["right"]


def test_a_brightness_and_a_colour_are_compared_with_tolerance():
    after = _house(light__kitchen_light={"state": "on", "brightness_pct": 41})
    call = ['POST /api/services/light/turn_on {"entity_id": ["light.kitchen_light"], "brightness_pct": 40}']
    assert judge(BY_ID["bright-01"], _outcome("The kitchen light is at 40 percent.", call, None, after))["right"]
    purple = _house(light__bedside_lamp={"state": "on", "brightness_pct": 100, "hs": [300.0, 100.0]})
    red = _house(light__bedside_lamp={"state": "on", "brightness_pct": 100, "hs": [0.0, 100.0]})
    call = ['POST /api/services/light/turn_on {"entity_id": ["light.bedside_lamp"], "color_name": "purple"}']
    assert judge(BY_ID["colour-04"], _outcome("Done.", call, None, purple))["right"]
    assert judge(BY_ID["colour-04"], _outcome("Done.", call, None, red))["reasons"] == [
        "light.bedside_lamp is state on, brightness_pct 100, hs [0.0, 100.0], expected state on, color purple"]


def test_a_scene_may_act_on_itself_and_is_judged_by_its_effect():
    item = BY_ID["scene-01"]
    before = _house(light__living_room_lamp={"state": "on"},
                    cover__living_room_blinds={"state": "open", "position": 100})
    after = before | {"light.living_room_lamp": {"state": "off"}, "light.floor_lamp": {"state": "on"},
                      "cover.living_room_blinds": {"state": "closed", "position": 0}}
    call = ['POST /api/services/scene/turn_on {"entity_id": ["scene.movie_night"]}']
    assert judge(item, _outcome("I activated the movie night.", call, before, after))["right"]


def test_a_question_answered_without_acting():
    item = BY_ID["ask-01"]  # "Is the coffee machine on?", it is
    assert judge(item, _outcome("Yes, the coffee machine is on.", ["GET /api/states/switch.coffee_machine"]))["right"]
    assert judge(item, _outcome("No, the coffee machine is off."))["reasons"] == ["reply lacks any of ['yes']"]
    acted = judge(item, _outcome("Yes.", ['POST /api/services/switch/turn_on {"entity_id": "switch.coffee_machine"}']))
    assert acted["wrong_entity"] and "called switch.turn_on for a question" in acted["reasons"]


def test_a_refusal_sends_nothing_and_says_why():
    item = BY_ID["refuse-01"]  # "Turn on guest mode.", not exposed
    said = "The guest mode isn't exposed to me in Home Assistant, so I won't touch it."
    assert judge(item, _outcome(said))["right"]
    verdict = judge(item, _outcome("Sorry, I couldn't do that.", ["POST /api/conversation/process {}"]))
    assert verdict["reasons"] == ["sent POST /api/conversation/process for a refusal", "reply lacks any of ['exposed']"]


def test_what_is_not_about_the_home_never_reaches_it():
    item = BY_ID["other-01"]
    assert judge(item, _outcome("It's 7:05 PM."))["right"]
    assert judge(item, _outcome("It's 7:05 PM.", ["GET /api/states/light.kitchen_light"]))["reasons"] == [
        "reached Home Assistant: GET /api/states/light.kitchen_light"]


def test_a_claimed_action_that_did_not_happen_is_a_false_claim():
    item = BY_ID["area-14"]  # "It's too dark in the hallway, can you put the light on?"
    verdict = judge(item, _outcome("Sure, I've turned on the hallway light for you."))
    assert verdict["false_claims"] and not verdict["right"]
    assert any(reason.startswith("false claim") for reason in verdict["reasons"])


@pytest.mark.parametrize("item_id", sorted(BY_ID))
def test_every_label_is_judged_wrong_when_nothing_happens_unless_nothing_should(item_id):
    """No label is met by doing nothing and saying nothing: each request asks for something."""
    item = BY_ID[item_id]
    verdict = judge(item, _outcome(""))
    if item["expect"]["kind"] == "not_home" and not item["expect"].get("reply_has"):
        assert verdict["right"]
    else:
        assert not verdict["right"], item_id
