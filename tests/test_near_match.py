"""A transcript that misses the templates by a misheard word still reaches its skill, and
nothing that is not a skill's request is turned into one."""

from __future__ import annotations

import json

import pytest

from conftest import FIXTURES


@pytest.mark.parametrize("heard, intent, slots", [
    ("Cancelled the timer.", "CancelTimer", {}),
    ("Set the value to 4.", "SetVolume", {"percent": 4}),
    ("Turn the volume don.", "VolumeDown", {}),
    ("Turn it up a lit.", "VolumeUp", {}),
    ("Clear in the shopping list.", "ClearList", {"list": "shopping"}),
    ("Council the reminder about calling mum.", "CancelReminder", {"message": "calling mum"}),
    ("But renew the car insurance on the to-do list.", "AddToList", {"item": "renew the car insurance",
                                                                      "list": "todo"}),
])
def test_a_misheard_word_is_corrected_to_the_nearest_template(router, heard, intent, slots):
    decision = router.route(heard)
    assert (decision.tier, decision.intent, decision.slots) == ("fast_path", intent, slots)
    assert decision.reason.startswith("matched an intent template as ")


def test_whisper_writing_in_for_and_still_sets_the_whole_length(router):
    decision = router.route("Set a timer for 1 hour in 10 minutes.")
    assert decision.intent == "SetTimer"


def test_a_number_is_never_guessed(router):
    assert router.near.correct("set a timer for minutes") is None


ROUTING_SET = json.loads((FIXTURES / "routing_set.json").read_text())


@pytest.mark.parametrize("item", [i for i in ROUTING_SET if i["kind"] in ("knowledge", "small_talk", "creative",
                                                                          "injection")], ids=lambda i: i["text"])
def test_no_question_or_small_talk_of_the_routing_set_is_corrected_into_a_skill(router, item):
    if not router.matches_template(item["text"]):  # "tell me a joke" is a skill's request now
        assert router.near.correct(item["text"]) is None
        assert not router.route(item["text"]).reason.startswith("matched an intent template as")


def test_a_misheard_first_word_is_never_corrected_into_a_refusal(router):
    decision = router.route("Bye renew the car insurance.")
    assert decision.intent != "CannotDo"
