"""The test house itself, in a real Home Assistant 2025.4.4 (tests/home_assistant.py): what it
exposes to Assist, that its lights and switch obey REST service calls and Home Assistant's own
Assist, and that it survives a restart with its token. The project's Home Assistant tests stand on these."""

from __future__ import annotations

import httpx
import pytest

from home_assistant import HELPERS, HOUSE, HomeAssistant, HomeAssistantError


def speech(reply: dict) -> str:
    return reply["response"]["speech"]["plain"]["speech"]


def test_lights_switch_thermostat_and_temperature_are_exposed_to_assist_by_default_and_guest_mode_is_not(
        home_assistant_up: HomeAssistant):
    exposed = home_assistant_up.exposed()
    assert exposed == {t.entity_id for t in HOUSE if t.exposed}
    assert "input_boolean.guest_mode" not in exposed
    assert not exposed & set(HELPERS)


def test_every_thing_is_in_its_area_with_its_aliases_and_the_helpers_are_hidden(home_assistant_up: HomeAssistant):
    areas = {a["area_id"]: a["name"] for a in home_assistant_up.ws({"type": "config/area_registry/list"})}
    for thing in HOUSE:
        entry = home_assistant_up.entity(thing.entity_id)
        assert (entry["area_id"], tuple(entry["aliases"])) == (thing.area, thing.aliases), thing
        assert home_assistant_up.state(thing.entity_id)["attributes"]["friendly_name"] == thing.name
        assert thing.area is None or thing.area in areas
    assert {areas["kitchen"], areas["living_room"], areas["hallway"]} == {"Kitchen", "Living Room", "Hallway"}
    assert all(home_assistant_up.entity(helper)["hidden_by"] == "user" for helper in HELPERS)


def test_a_rest_service_call_turns_the_kitchen_light_on_and_off(home_assistant_up: HomeAssistant):
    home_assistant_up.call_service("light", "turn_off", {"entity_id": "light.kitchen_light"})
    home_assistant_up.wait_for_state("light.kitchen_light", "off")
    home_assistant_up.call_service("light", "turn_on", {"entity_id": "light.kitchen_light"})
    assert home_assistant_up.wait_for_state("light.kitchen_light", "on")["state"] == "on"
    home_assistant_up.call_service("light", "turn_off", {"entity_id": "light.kitchen_light"})
    home_assistant_up.wait_for_state("light.kitchen_light", "off")


def test_the_kitchen_light_takes_the_brightness_it_is_given_and_turns_on_with_it(home_assistant_up: HomeAssistant):
    home_assistant_up.call_service("light", "turn_off", {"entity_id": "light.kitchen_light"})
    home_assistant_up.wait_for_state("light.kitchen_light", "off")
    home_assistant_up.call_service("light", "turn_on", {"entity_id": "light.kitchen_light", "brightness_pct": 40})
    light = home_assistant_up.wait_for_state("light.kitchen_light", "on")
    assert light["attributes"]["brightness"] == round(255 * 0.4)
    assert float(home_assistant_up.state("input_number.kitchen_light_level")["state"]) == round(255 * 0.4)


def test_the_switch_is_switched_and_a_missing_entity_is_a_404(home_assistant_up: HomeAssistant):
    home_assistant_up.call_service("switch", "turn_on", {"entity_id": "switch.coffee_machine"})
    home_assistant_up.wait_for_state("switch.coffee_machine", "on")
    home_assistant_up.call_service("switch", "turn_off", {"entity_id": "switch.coffee_machine"})
    home_assistant_up.wait_for_state("switch.coffee_machine", "off")
    assert home_assistant_up.request("GET", "/api/states/light.garage").status_code == 404


def test_home_assistant_down_refuses_connections_and_back_up_keeps_token_states_and_exposure(
        home_assistant_up: HomeAssistant):
    ha = home_assistant_up
    token = ha.token
    ha.call_service("light", "turn_on", {"entity_id": "light.hallway_light"})
    ha.wait_for_state("light.hallway_light", "on")
    ha.expose("input_boolean.guest_mode", True)  # saved lazily by Home Assistant: a shutdown must save it
    try:
        ha.stop()
        assert not ha.running
        with pytest.raises(httpx.ConnectError):
            ha.state("light.hallway_light")
        with pytest.raises(OSError):  # no WebSocket either
            ha.exposed()
        ha.start()
        assert ha.token == token
        assert ha.state("light.hallway_light")["state"] == "on"  # the helper's state was restored
        assert "input_boolean.guest_mode" in ha.exposed()
    finally:
        ha.ensure_running()
        ha.expose("input_boolean.guest_mode", False)
        ha.call_service("light", "turn_off", {"entity_id": "light.hallway_light"})
    assert "input_boolean.guest_mode" not in ha.exposed()


def test_home_assistants_own_assist_turns_on_the_living_room_lamp(home_assistant_up: HomeAssistant):
    home_assistant_up.call_service("light", "turn_off", {"entity_id": "light.living_room_lamp"})
    home_assistant_up.wait_for_state("light.living_room_lamp", "off")
    reply = home_assistant_up.converse("turn on the living room lamp")
    assert reply["response"]["response_type"] == "action_done", reply
    assert [t["id"] for t in reply["response"]["data"]["success"]] == ["light.living_room_lamp"]
    home_assistant_up.wait_for_state("light.living_room_lamp", "on")
    home_assistant_up.call_service("light", "turn_off", {"entity_id": "light.living_room_lamp"})


def test_assist_knows_the_alias_the_kitchen_temperature_and_that_guest_mode_is_not_exposed(
        home_assistant_up: HomeAssistant):
    reply = home_assistant_up.converse("turn off the ceiling light")
    assert [t["id"] for t in reply["response"]["data"]["success"]] == ["light.kitchen_light"], reply
    assert speech(home_assistant_up.converse("what's the temperature in the kitchen")) == "21.5 degrees"
    reply = home_assistant_up.converse("turn on guest mode")
    assert reply["response"]["response_type"] == "error"
    assert speech(reply) == "Sorry, Guest Mode is not exposed"
    assert home_assistant_up.state("input_boolean.guest_mode")["state"] == "off"


def test_a_websocket_error_names_the_command(home_assistant_up: HomeAssistant):
    with pytest.raises(HomeAssistantError, match="config/entity_registry/get: not_found"):
        home_assistant_up.entity("light.garage")
