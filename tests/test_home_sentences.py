"""Which home command a sentence is: Home Assistant's own templates plus ours, matched
against the names, aliases and areas a house exposes (no server needed: the house is given)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import HomeAssistantSettings
from assistant.home.control import HomeControl
from assistant.home.home_assistant import HomeAssistantClient
from assistant.home.house import Area, HomeEntity, House
from assistant.home.sentences import HomeSentences
from assistant.understand.audit import AuditLog
from assistant.understand.router import Router
from assistant.understand.skills import load_skills

HOUSE = House(
    (HomeEntity("light.kitchen_light", "Kitchen Light", ("ceiling light",), "kitchen"),
     HomeEntity("light.living_room_lamp", "Living Room Lamp", (), "living_room"),
     HomeEntity("switch.coffee_machine", "Coffee Machine", (), "kitchen"),
     HomeEntity("sensor.kitchen_temperature", "Kitchen Temperature", (), "kitchen", device_class="temperature"),
     HomeEntity("input_boolean.guest_mode", "Guest Mode", (), None, exposed=False),
     HomeEntity("light.desk_lamp", "Desk Lamp", (), "study"),
     HomeEntity("fan.desk_fan", "Desk Fan", (), "living_room"),
     HomeEntity("cover.living_room_blinds", "Living Room Blinds", (), "living_room", device_class="blind"),
     HomeEntity("climate.kitchen_thermostat", "Kitchen Thermostat", (), "kitchen")),
    (Area("kitchen", "Kitchen"), Area("living_room", "Living Room", ("lounge",)), Area("study", "Study")))


@pytest.fixture(scope="module")
def sentences() -> HomeSentences:
    return HomeSentences()


@pytest.mark.parametrize("text, intent, slots", [
    ("Turn on the kitchen light.", "HassTurnOn", {"name": "light.kitchen_light"}),
    ("switch the coffee machine on please", "HassTurnOn", {"name": "switch.coffee_machine"}),
    ("coffee machine off", "HassTurnOff", {"name": "switch.coffee_machine"}),
    ("kill the lights in the kitchen", "HassTurnOff", {"area": "kitchen", "domain": "light"}),
    ("lights off in the lounge", "HassTurnOff", {"area": "living_room", "domain": "light"}),
    ("dim the ceiling light to twenty percent", "HassLightSet", {"name": "light.kitchen_light", "brightness": 20}),
    ("make the kitchen light red", "HassLightSet", {"name": "light.kitchen_light", "color": "red"}),
    ("is the coffee machine on?", "HassGetState", {"name": "switch.coffee_machine", "state": "on"}),
    ("what's the temperature in the kitchen", "HassClimateGetTemperature", {"area": "kitchen"}),
])
def test_home_phrasings_match_the_exposed_entity_or_area(sentences, text, intent, slots):
    command = sentences.match(text, HOUSE)
    assert command is not None and command.intent == intent
    assert {k: v for k, v in command.slots.items() if k in slots} == slots
    assert command.unexposed is None


# Ours (sentences.yaml), found missing by `bench home`: said to a speaker, missed by Home Assistant's.
@pytest.mark.parametrize("text, intent, slots", [
    ("switch the fan off in the lounge", "HassTurnOff", {"area": "living_room", "domain": "fan"}),
    ("put the fan on in the living room", "HassTurnOn", {"area": "living_room", "domain": "fan"}),
    ("switch the light off in the study", "HassTurnOff", {"area": "study", "domain": "light"}),
    ("put the coffee machine on", "HassTurnOn", {"name": "switch.coffee_machine"}),
    ("start the coffee machine", "HassTurnOn", {"name": "switch.coffee_machine"}),
    ("turn the kitchen light down to twenty percent", "HassLightSet",
     {"name": "light.kitchen_light", "brightness": 20}),
    ("set the study lamp to fifty percent", "HassLightSet", {"area": "study", "brightness": 50}),
    ("set the study light to purple", "HassLightSet", {"area": "study", "color": "purple"}),
    ("set the living room blinds to fifty percent", "HassSetPosition",
     {"name": "cover.living_room_blinds", "position": 50}),
    ("did I leave the coffee machine on", "HassGetState", {"name": "switch.coffee_machine", "state": "on"}),
    ("can you tell me if the desk fan is on", "HassGetState", {"name": "fan.desk_fan", "state": "on"}),
    ("is the kitchen light on or off", "HassGetState", {"name": "light.kitchen_light"}),
    ("set the heating in the kitchen to twenty one degrees", "HassClimateSetTemperature",
     {"area": "kitchen", "temperature": 21}),
])
def test_our_phrasings_match(sentences, text, intent, slots):
    command = sentences.match(text, HOUSE)
    assert command is not None and command.intent == intent
    assert {k: v for k, v in command.slots.items() if k in slots} == slots


def test_the_thermostat_without_a_room_is_the_speakers(sentences):
    assert sentences.match("turn the thermostat up to twenty three", HOUSE) is None
    command = sentences.match("turn the thermostat up to twenty three", HOUSE, here=HOUSE.area_named("kitchen"))
    assert (command.intent, command.slots) == ("HassClimateSetTemperature", {"area": "kitchen", "temperature": 23})


def test_a_brightness_is_never_set_on_something_that_is_not_a_light(sentences):
    assert sentences.match("set the living room blinds to fifty percent", HOUSE).intent == "HassSetPosition"


def test_put_the_light_on_said_alone_means_the_speakers_own_room(sentences):
    command = sentences.match("put the light on", HOUSE, here=HOUSE.area_named("kitchen"))
    assert command.slots == {"domain": "light", "area": "kitchen"}


def test_an_entity_that_is_not_exposed_is_recognised_but_marked(sentences):
    command = sentences.match("turn on guest mode", HOUSE)
    assert command.unexposed is not None and command.unexposed.entity_id == "input_boolean.guest_mode"


def test_the_lights_with_no_room_mean_the_speakers_own_area(sentences):
    assert sentences.match("turn off the lights", HOUSE) is None
    command = sentences.match("turn off the lights", HOUSE, here=HOUSE.area_named("kitchen"))
    assert command.slots == {"area": "kitchen", "domain": "light"}


@pytest.mark.parametrize("text", ["set a timer for five minutes", "turn off the timer", "what time is it",
                                  "turn on the bedroom fan", "turn up the volume"])
def test_what_names_nothing_in_the_house_is_no_home_command(sentences, text):
    assert sentences.match(text, HOUSE) is None


def test_an_empty_house_matches_nothing(sentences):
    assert sentences.match("turn on the kitchen light", House()) is None


def home_control(sentences: HomeSentences, area: str = "") -> HomeControl:
    """The real HomeControl over the given house; routing never calls Home Assistant (nothing listens there)."""
    client = HomeAssistantClient(HomeAssistantSettings(url="http://127.0.0.1:9"), "token", AuditLog(Path("/nonexistent")))
    control = HomeControl(client, sentences, area)
    control.house = HOUSE
    return control


@pytest.fixture(scope="module")
def router(sentences) -> Router:
    return Router(*load_skills(), llm=None, home=home_control(sentences))


def test_skills_keep_their_requests_when_home_assistant_is_connected(router):
    assert router.route("turn off the timer").intent == "CancelTimer"
    assert router.route("set the volume to fifty percent").intent == "SetVolume"


def test_a_home_command_wins_over_the_refusal_of_device_control(router):
    decision = router.route("could you turn on the kitchen light for me")
    assert (decision.tier, decision.intent, decision.slots) == ("fast_path", "HassTurnOn",
                                                                {"name": "light.kitchen_light"})


def test_a_request_the_templates_miss_that_names_an_entity_goes_to_home_assistants_agent(router):
    decision = router.route("toggle the coffee machine twice and then leave it")
    assert decision.tier == "home" and decision.slots == {"entity": "switch.coffee_machine"}


def test_small_talk_naming_nothing_in_the_house_never_goes_to_home_assistant(router):
    assert router.route("good morning").tier == "local_llm"


@pytest.mark.parametrize("text, entity_id", [("turn on the kitchen lite", "light.kitchen_light"),
                                             ("switch off the coffee machines", "switch.coffee_machine")])
def test_a_slightly_misheard_name_is_taken_for_the_exposed_one_it_surely_means(router, text, entity_id):
    decision = router.route(text)
    assert decision.slots.get("name") == entity_id and "as \"" in decision.reason


def test_a_name_near_two_entities_is_not_guessed():
    house = House((HomeEntity("light.lamp_one", "Desk Lamp"), HomeEntity("light.lamp_two", "Desk Lamb")))
    assert house.closest_name("desk lamm") is None


@pytest.mark.parametrize("text", ["What is the thermostat set to?", "what's the heating set to in the kitchen",
                                  "what temperature is the heating set to"])
def test_what_a_thermostat_is_set_to_is_asked_apart_from_the_rooms_temperature(sentences, text):
    command = sentences.match(text, HOUSE)
    assert command.intent == "HassClimateGetTemperature" and command.slots.get("setting") == "target"


def test_a_clause_of_a_longer_sentence_never_means_the_speakers_own_room(sentences):
    in_the_kitchen = Router(*load_skills(), llm=None, home=home_control(sentences, area="Kitchen"))
    assert in_the_kitchen.route("make the lights green").slots == {"color": "green", "domain": "light", "area": "kitchen"}
    assert in_the_kitchen.route("change the website, lamp, to green").intent != "HassLightSet"


def test_a_clause_means_the_room_the_rest_of_the_sentence_names(router):
    decision = router.route("It's too dark in the living room, can you put the light on?")
    assert decision.slots == {"area": "living_room", "domain": "light"}


@pytest.mark.parametrize("heard, name", [("the bedroom fire", None), ("the kitchen lite", "kitchen light"),
                                         ("the coffee machines", "coffee machine"), ("the living room lap",
                                                                                      "living room lamp")])
def test_a_misheard_name_is_corrected_only_to_a_clearly_closest_exposed_name(heard, name):
    assert HOUSE.closest_name(heard) == name


@pytest.mark.parametrize("text, first, second", [
    ("turn on the kitchen light and turn off the coffee machine",
     ("HassTurnOn", "light.kitchen_light"), ("HassTurnOff", "switch.coffee_machine")),
    ("turn on the kitchen light and the coffee machine",
     ("HassTurnOn", "light.kitchen_light"), ("HassTurnOn", "switch.coffee_machine")),
])
def test_two_home_commands_joined_by_and_are_both_done(router, text, first, second):
    decision = router.route(text)
    [then] = decision.then
    assert (decision.intent, decision.slots.get("name")) == first
    assert (then.intent, then.slots.get("name")) == second
