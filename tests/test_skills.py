"""Every skill, reached through the router's templates with several phrasings."""

from __future__ import annotations

from datetime import datetime

import pytest

from assistant.understand.router import Router
from assistant.understand.skills import SkillRequest, load_skills

NOW = datetime(2026, 11, 25, 19, 5)


class Speaker:
    """Stands in for the player's volume control: a plain attribute, as on the real players."""

    volume = 0.5
    volume_before_mute = None


def reply(router: Router, text: str, speaker: Speaker | None = None, last_reply: str | None = None) -> str:
    decision = router.route(text)
    assert decision.tier == "fast_path", text
    return router.whole_reply(decision, SkillRequest(now=NOW, volume=speaker, last_reply=last_reply))


def test_times_and_dates_are_written_in_digits(router):
    assert reply(router, "What time is it?") == "It's 7:05 PM."
    assert reply(router, "What's the date today?") == "Today is Wednesday, November 25, 2026."


@pytest.mark.parametrize("text, answer", [
    ("What is seventeen times three?", "17 times 3 is 51."),
    ("What's a hundred and forty-four divided by twelve?", "144 divided by 12 is 12."),
    ("What's 12 plus 30?", "12 plus 30 is 42."),
    ("How much is one hundred minus seven?", "100 minus 7 is 93."),
    ("What is 7 divided by 2?", "7 divided by 2 is 3.5."),
    ("Calculate 10 divided by 3.", "10 divided by 3 is 3.33."),
    ("What is five divided by zero?", "You can't divide by zero."),
])
def test_sums_in_words_or_digits(router, text, answer):
    assert reply(router, text) == answer


def test_sum_slots_are_reported_as_numbers(router):
    decision = router.route("What is seventeen times three?")
    assert (decision.intent, decision.slots) == ("Calculate", {"a": 17, "operator": "*", "b": 3})


@pytest.mark.parametrize("text, level, answer", [
    ("Set the volume to 80 percent.", 0.8, "Volume 80 percent."),
    ("Set the volume to twenty percent.", 0.2, "Volume 20 percent."),
    ("Turn it up.", 0.6, "Volume 60 percent."),
    ("Louder, please.", 0.6, "Volume 60 percent."),
    ("Volume down.", 0.4, "Volume 40 percent."),
    ("Mute.", 0.0, ""),
])
def test_volume_changes_the_players_level(router, text, level, answer):
    speaker = Speaker()
    assert reply(router, text, speaker) == answer
    assert speaker.volume == pytest.approx(level)


def test_volume_stays_between_silence_and_full(router):
    speaker = Speaker()
    speaker.volume = 1.0
    assert reply(router, "Turn it up.", speaker) == "The volume is already at its loudest." and speaker.volume == 1.0


def test_a_new_skill_module_is_found_without_changes_elsewhere():
    intents, handlers = load_skills()
    assert {"GetTime", "GetDate", "Stop", "Repeat", "GetName", "GetHelp", "Calculate", "SetVolume", "VolumeUp",
            "VolumeDown", "Mute"} <= set(handlers)
    assert set(handlers) == set(intents.intents)


@pytest.mark.parametrize("text", ["Repeat that.", "Say that again, please.", "What did you say?"])
def test_repeat_says_the_last_reply_again(router, text):
    assert reply(router, text, last_reply="It's 7:05 PM.") == "It's 7:05 PM."


def test_repeat_with_nothing_said_yet_says_so(router):
    assert reply(router, "Repeat that.") == "I haven't said anything yet."


@pytest.mark.parametrize("text, level", [
    ("Turn the volume up a little.", 0.6), ("A bit louder, please.", 0.6), ("Turn it up a lot.", 0.8),
    ("Much louder!", 0.8), ("Turn the volume down a little.", 0.4), ("Turn it down a lot.", 0.2),
    ("Volume to half.", 0.5), ("Set the volume to maximum.", 1.0), ("Full volume.", 1.0),
])
def test_volume_changes_by_the_degree_asked(router, text, level):
    speaker = Speaker()
    reply(router, text, speaker)
    assert speaker.volume == pytest.approx(level)


def test_quieter_never_mutes():
    speaker = Speaker()
    speaker.volume = 0.1
    assert reply(Router(*load_skills(), llm=None), "Turn it down a lot.", speaker) == "Volume 5 percent."


def test_unmute_comes_back_to_the_level_before_the_mute(router):
    speaker = Speaker()
    speaker.volume = 0.7
    assert reply(router, "Mute the speaker.", speaker) == "" and speaker.volume == 0.0
    assert reply(router, "Unmute.", speaker) == "Volume 70 percent." and speaker.volume == pytest.approx(0.7)


@pytest.mark.parametrize("text, says", [
    ("Play some music.", "I can't play music"), ("Play the Beatles.", "I can't play music"),
    ("Turn on the kitchen light.", "I can't control lights"), ("Switch the heating off.", "I can't control lights"),
    ("Lock the front door.", "I can't control lights"),
    ("Order a pizza.", "I can't order or buy things. I can put a pizza on your shopping list"),
    ("Buy more milk online.", "I can't order or buy things"),
    ("Call mum.", "I can't make calls or send messages. I can remind you to call mum"),
    ("Send a text to Dad.", "I can't make calls"), ("Read my email.", "I can't read email"),
])
def test_an_action_no_skill_can_take_is_refused_plainly(router, text, says):
    decision = router.route(text)
    assert (decision.tier, decision.intent) == ("fast_path", "CannotDo")
    assert reply(router, text).startswith(says)


@pytest.mark.parametrize("text, intent", [
    ("Turn off the timer.", "CancelTimer"), ("Turn the volume up.", "VolumeUp"), ("Turn off the alarm.", "CancelAlarm"),
    ("Turn off the sound.", "Mute"),
])
def test_a_skill_that_can_do_it_wins_over_the_refusal(router, text, intent):
    assert router.route(text).intent == intent


def test_what_it_can_do_is_said_from_the_skills_loaded():
    only_clock = {name: handler for name, handler in load_skills()[1].items() if name in ("GetTime", "GetHelp")}
    router = Router(load_skills()[0], only_clock, llm=None)
    assert reply(router, "What can you do?") == "I can tell the time. What would you like?"
    full = reply(Router(*load_skills(), llm=None), "What can you do?")
    assert full.startswith("I can set timers, reminders and alarms, keep lists") and full.endswith("?")


@pytest.mark.parametrize("text, intent", [
    ("What is seventeen times three?", "Calculate"), ("Set a timer for 10 minutes.", "SetTimer"),
    ("Set the volume to 50 percent.", "SetVolume"), ("Add 2 cups of flour to the shopping list.", "AddToList"),
    ("What time is it?", "GetTime"), ("Say that again, please.", "Repeat"), ("Stop.", "Stop"),
    ("How many grams in a pound?", "ConvertUnits"), ("Tell me a joke.", "TellJoke"),
    ("Remind me to call mum in an hour.", "SetReminder"), ("Wake me up at seven.", "SetAlarm"),
])
def test_each_skill_keeps_its_own_requests(router, text, intent):
    assert router.route(text).intent == intent


@pytest.mark.parametrize("text, intent, slots", [
    ("Okay, so I've just put the rice on. Can you set a timer for 20 minutes for me?", "SetTimer", {"minutes": 20}),
    ("I've got the chicken in, so a chicken timer for 45 minutes, please.", "SetTimer",
     {"name": "chicken", "minutes": 45}),
    ("I don't need the 630-alarm anymore, cancel it.", "CancelAlarm", {"hour": 6, "minute": 30}),
    ("We need more toilet paper, but put it on the list.", "AddToList", {"item": "more toilet paper",
                                                                         "list": "shopping"}),
    ("Please would you cancel the laundry timer.", "CancelTimer", {"name": "laundry"}),
    ("I'd like to add tea bags to my shopping list, please.", "AddToList", {"item": "tea bags", "list": "shopping"}),
    ("I'm new to this what sort of things can you do?", "GetHelp", {}),
    ("I always forget, so remind me to move the washing in 45 minutes, would you...", "SetReminder",
     {"message": "move the washing", "minutes": 45}),
])
def test_a_request_inside_a_longer_sentence_is_found(router, text, intent, slots):
    decision = router.route(text)
    assert (decision.intent, decision.slots) == (intent, slots)


@pytest.mark.parametrize("text, hour, minute", [
    ("Set an alarm for half past 7 tomorrow.", 7, 30), ("Set an alarm for a quarter past seven.", 7, 15),
    ("Wake me up at quarter to eight.", 7, 45), ("Set an alarm for 6.30 tomorrow morning.", 6, 30),
])
def test_times_said_the_everyday_way_are_understood(router, text, hour, minute):
    decision = router.route(text)
    assert decision.intent == "SetAlarm" and (decision.slots["hour"], decision.slots.get("minute")) == (hour, minute)


def test_a_number_with_and_in_it_is_never_cut_in_two(router):
    decision = router.route("What is a hundred and forty-four divided by twelve?")
    assert decision.intent is None or decision.slots.get("a") != 44
