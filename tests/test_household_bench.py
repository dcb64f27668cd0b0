"""The household benchmark's pure parts: the set, the claim detector, the state comparison, the
judging. No models load here; `python -m bench household` runs the real thing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from assistant.events import Reply, SpeechEnd, Turn
from bench.household import (START, at_time, changes, claims, compare_state, false_claims, group_of, item_key,
                             judge, load_set, message_matches, validate_set, voice_to_voice)
from bench.household_voices import STYLE_VOICES, VOICES, utterances, voice_for

SET = load_set()


# ---------------------------------------------------------------- the set

def test_the_set_is_valid_and_big_enough():
    assert validate_set(SET) == []
    assert len(SET) >= 160
    assert len({c["id"] for c in SET}) == len(SET)


def test_the_set_covers_every_need_with_many_phrasings():
    groups = Counter(group_of(c["need"]) for c in SET)
    for group, least in {"timer": 30, "reminder": 10, "list": 20, "todo": 0, "convert": 12, "volume": 10,
                         "joke": 3, "clock": 6, "arithmetic": 4, "alarm": 5, "assistant": 5, "chat": 15,
                         "refuse": 20}.items():
        assert groups[group] >= least, group
    needs = Counter(c["need"] for c in SET)
    for need in ("timer.set", "timer.set_named", "timer.several", "timer.status", "timer.cancel_named",
                 "timer.cancel_all", "timer.add_time", "timer.ask_duration", "reminder.set", "reminder.list",
                 "reminder.cancel", "list.add", "list.remove", "list.read", "list.clear", "volume.degree",
                 "volume.mute", "volume.set"):
        assert needs[need] >= 2, need
    kinds = Counter(c["expect"]["kind"] for c in SET)
    refusals = [c for c in SET if c["expect"]["kind"] == "refuse"]
    assert {c["expect"]["why"] for c in refusals} == {"cannot_do", "live_data", "offline"}
    assert kinds["refuse"] >= 0.12 * len(SET)
    assert kinds["chat"] >= 0.08 * len(SET)
    assert len({c["style"] for c in SET}) >= 6
    for style in ("terse", "polite", "chatty", "child", "elderly", "indirect"):
        assert sum(c["style"] == style for c in SET) >= 10, style


def test_multi_turn_conversations_answer_questions_and_clear_asks_first():
    asks = [c for c in SET if c["need"] == "timer.ask_duration"]
    assert all(len(c["turns"]) == 2 and isinstance(c["turns"][1], str) for c in asks)
    clears = [c for c in SET if c["need"] == "list.clear"]
    answers = {c["turns"][1].split(",")[0].strip(".").lower() for c in clears}
    assert {"yes", "no"} <= answers
    # a "no" leaves the list as it was
    for c in clears:
        if c["turns"][1].lower().startswith("no"):
            assert c["expect"]["lists"] == c["given"]["lists"]


def test_a_broken_set_is_refused_with_reasons():
    broken = [{"id": "a", "need": "timer.set", "style": "grumpy", "turns": [], "expect": {"kind": "state"}},
              {"id": "a", "need": "x", "style": "terse", "turns": ["Hi."], "expect": {"kind": "refuse"}},
              {"id": "b", "need": "x", "style": "terse", "turns": ["Hi."],
               "given": {"alarms": [{"at": "6 am"}]}, "expect": {"kind": "answer", "reply_has": "hi"}}]
    problems = " | ".join(validate_set(broken))
    for part in ("style 'grumpy'", "turns must be", "duplicate id", "refuse needs why", "time '6 am'",
                 "reply_has must be"):
        assert part in problems


def test_voices_rotate_and_styles_have_their_own():
    assert voice_for(0, "terse") == VOICES[0] and voice_for(1, "terse") == VOICES[1]
    assert voice_for(7, "child") in STYLE_VOICES["child"]
    assert voice_for(3, "elderly") in STYLE_VOICES["elderly"]
    assert {v.engine for v in VOICES} == {"piper", "espeak-ng"}
    assert utterances({"turns": ["Mute.", {"say": "Unmute.", "wake": True}]}) == ["Mute.", "Unmute."]


def test_times_are_read_against_the_fixed_start():
    assert START.strftime("%A %H:%M") == "Friday 19:05"
    assert at_time("20:00") == datetime(2025, 3, 14, 20, 0)
    assert at_time("tomorrow 06:30") == datetime(2025, 3, 15, 6, 30)
    with pytest.raises(ValueError):
        at_time("half six")


# ---------------------------------------------------------------- claims

@pytest.mark.parametrize("reply, kinds", [
    ("Timer set for 10 minutes.", ["timer_set"]),
    ("Pasta timer set for 8 minutes.", ["timer_set"]),
    ("OK, I'll start a timer for the eggs.", ["timer_set"]),
    ("Your timer is cancelled.", ["timer_cancelled"]),
    ("All 3 timers are cancelled.", ["timer_cancelled"]),
    ("Added 2 minutes to the pasta timer.", ["timer_extended"]),
    ("I'll remind you to call mum at 8:00 PM.", ["reminder_set"]),
    ("Reminder set: take the bread out at 7:25 PM.", ["reminder_set"]),
    ("I've deleted the reminder about the dentist.", ["reminder_cancelled"]),
    ("Alarm set for 6:30 AM tomorrow.", ["alarm_set"]),
    ("Your 6:30 AM alarm is cancelled.", ["alarm_cancelled"]),
    ("Added milk to your shopping list.", ["item_added"]),
    ("Added milk.", ["item_added"]),
    ("Removed eggs from the shopping list.", ["item_removed"]),
    ("Your shopping list is cleared.", ["list_cleared"]),
    ("Volume 60 percent.", ["volume_changed"]),
    ("Okay, turning on the kitchen light.", ["device_action"]),
    ("The kitchen light is now on.", ["device_action"]),
    ("Sure! Playing some music for you.", ["device_action"]),
    ("Calling mum now.", ["device_action"]),
    ("I have ordered a pizza for you.", ["device_action"]),
    ("Done, the front door is locked.", ["device_action"]),
    ("Message sent to Dad.", ["device_action"]),
])
def test_claims_are_found(reply, kinds):
    assert [kind for kind, _ in claims(reply)] == kinds


@pytest.mark.parametrize("reply", [
    "Sorry, I can't answer that on this device.",
    "I can't turn on lights, I can only set timers.",
    "I can tell you the time and the date, and answer simple questions. What would you like to know?",
    "I can set timers and reminders, keep your shopping list, and convert kitchen units.",
    "You have 2 timers, the pasta timer and the eggs timer. Say which one to cancel, or say cancel all timers.",
    "The pasta timer has 9 minutes and 55 seconds left.",
    "You have one alarm, at 6:30 AM tomorrow.",
    "Shall I clear the shopping list?",
    "For how long?",
    "You have no pasta timer.",
    "I can't check the weather without an internet connection, and the cloud is turned off.",
    "Hello! How can I help you today?",
    "It's 7:05 PM.",
    "Your shopping list has milk, eggs and bread.",
])
def test_what_is_not_a_claim(reply):
    assert claims(reply) == []


def _state(timers=(), volume=0.5, shopping=(), todo=(), alarms=(), reminders=()):
    return {"timers": [dict(t) for t in timers], "alarms": list(alarms), "reminders": list(reminders),
            "lists": {"shopping": list(shopping), "todo": list(todo)}, "volume": volume}


PASTA = {"id": 1, "name": "pasta", "duration_s": 600.0, "due_s": 600.0}


def test_a_claim_is_false_when_the_state_does_not_show_it():
    before = _state()
    assert false_claims("Timer set for 10 minutes.", before, _state([PASTA])) == []
    assert [k for k, _ in false_claims("Timer set for 10 minutes.", before, before)] == ["timer_set"]
    assert [k for k, _ in false_claims("Turning on the light.", before, before)] == ["device_action"]
    assert false_claims("Added milk to your list.", before, _state(shopping=["milk"])) == []
    assert [k for k, _ in false_claims("Added milk to your list.", before, _state(todo=["milk"]).copy()
                                       | {"lists": {"shopping": [], "todo": []}})] == ["item_added"]
    # a volume that is already where the reply says is no false claim
    assert false_claims("Volume 50 percent.", before, before) == []
    assert [k for k, _ in false_claims("Volume 60 percent.", before, before)] == ["volume_changed"]
    assert false_claims("Volume 60 percent.", before, _state(volume=0.6)) == []
    extended = dict(PASTA, due_s=720.0)
    assert false_claims("Added 2 minutes to the pasta timer.", _state([PASTA]), _state([extended])) == []
    assert [k for k, _ in false_claims("Added 2 minutes to the pasta timer.", _state([PASTA]),
                                       _state([PASTA]))] == ["timer_extended"]


def test_changes_between_snapshots():
    eggs = {"id": 2, "name": "eggs", "duration_s": 300.0, "due_s": 300.0}
    assert changes(_state([PASTA, eggs]), _state([eggs])) == {"timer_cancelled"}
    assert changes(_state(shopping=["milk", "eggs"]), _state(shopping=[])) == {"item_removed", "list_cleared"}
    assert changes(_state(shopping=["Eggs"]), _state(shopping=["egg"])) == set()
    assert changes(_state(volume=0.5), _state(volume=0.0)) == {"volume_changed"}
    unavailable = dict(_state(), lists="unavailable: the pipeline has no lists")
    assert changes(unavailable, unavailable) == set()


# ---------------------------------------------------------------- state

def test_items_and_messages_compare_loosely():
    assert item_key("The Eggs") == item_key("egg")
    assert item_key("washing-up liquid") == item_key("washing up liquid")
    assert item_key("pasta timer") == "pasta"
    assert message_matches("take the bread out", "Take the bread out of the oven")
    assert message_matches("call mum", "calling mum")
    assert not message_matches("call mum", "call dad")
    assert not message_matches("call mum", None)


def test_state_comparison():
    started = _state()
    done = _state([dict(PASTA, duration_s=480.0, due_s=484.0)])
    expect = {"kind": "state", "timers": [{"name": "pasta", "duration_s": 480}]}
    assert compare_state(expect, {}, started, done, START, 4.0) == []
    assert compare_state({"timers": [{"name": "eggs", "duration_s": 480}]}, {}, started, done, START, 4.0)
    assert compare_state({"timers": [{"name": None, "duration_s": 480}]}, {}, started, done, START, 4.0)
    assert compare_state({"timers": [{"duration_s": 480}]}, {}, started, done, START, 4.0) == []
    # a part the expectation leaves out must not change
    assert compare_state({"volume": 0.5}, {}, started, done, START, 4.0) == \
        ["timers changed, none expected: [{'name': 'pasta', 'duration_s': 480.0, 'due_s': 484.0}]"]
    # an extension is read from the due time
    assert compare_state({"timers": [{"name": "pasta", "due_s": 720}]}, {}, _state([PASTA]),
                         _state([dict(PASTA, due_s=720.0)]), START, 4.0) == []
    assert compare_state({"timers": [{"name": "pasta", "due_s": 720}]}, {}, _state([PASTA]),
                         _state([PASTA]), START, 4.0)
    # lists as multisets; a list not expected stays as given
    given = {"lists": {"shopping": ["milk", "eggs"]}}
    before = _state(shopping=["milk", "eggs"], todo=["call the plumber"])
    after = _state(shopping=["milk"], todo=["call the plumber"])
    assert compare_state({"lists": {"shopping": ["milk"]}}, given, before, after, START, 4.0) == []
    assert compare_state({"lists": {"shopping": ["milk", "eggs"]}}, given, before, after, START, 4.0)
    # volume by degree
    assert compare_state({"volume": {"min": 0.52, "max": 0.7}}, {}, _state(), _state(volume=0.6), START, 4.0) == []
    assert compare_state({"volume": {"min": 0.52, "max": 0.7}}, {}, _state(), _state(volume=1.0), START, 4.0)
    # reminders: the message's words and when, absolute or from the request
    at_eight = {"id": 3, "message": "call mum", "due_s": 3300.0}
    assert compare_state({"reminders": [{"message": "call mum", "at": "20:00"}]}, {}, _state(),
                         _state(reminders=[at_eight]), START, 4.0) == []
    in_twenty = {"id": 4, "message": "take the bread out", "due_s": 1206.0}
    assert compare_state({"reminders": [{"message": "take the bread out", "in_s": 1200}]}, {}, _state(),
                         _state(reminders=[in_twenty]), START, 5.0) == []
    unavailable = dict(_state(), lists="unavailable: the pipeline has no lists")
    assert compare_state({"lists": {"shopping": ["milk"]}}, {}, unavailable, unavailable, START, 4.0) == \
        ["lists unavailable: the pipeline has no lists"]


# ---------------------------------------------------------------- judging

def _run(replies, initial=None, final=None, requests=1, routes=None, notes=()):
    spoken = [{"text": f"request {k}", "wake": True, "start_s": 2.0 + 10 * k, "end_s": 4.0 + 10 * k}
              for k in range(requests)]
    return {"notes": list(notes), "replies": replies, "turns_closed": requests, "requests": requests,
            "wakes": requests, "wake_requests": requests, "initial_state": initial or _state(),
            "final_state": final or initial or _state(), "start": START, "last_request_s": 4.5,
            "routes": routes or [{"tier": "fast_path"}], "spoken": spoken}


def _reply(text, tier="fast_path", t=5.0, false=(), changed=()):
    return {"text": text, "tier": tier, "t": t, "false_claims": list(false), "changes": list(changed)}


def test_judging_each_kind():
    refuse = {"id": "r", "expect": {"kind": "refuse", "why": "live_data"}}
    assert judge(refuse, _run([_reply("I can't check that without the internet.", "offline")])) == []
    assert judge(refuse, _run([_reply("Sorry, I can't answer that on this device.", "offline")])) == \
        ["does not say it needs the internet / the cloud"]
    assert "answered by the local LLM, not refused" in judge(refuse, _run([_reply("It's sunny, online.", "local_llm")]))
    cannot = {"id": "c", "expect": {"kind": "refuse", "why": "cannot_do"}}
    said = judge(cannot, _run([_reply("Turning on the light.", "local_llm",
                                      false=[("device_action", "Turning on the light.")])]))
    assert "false claim (device_action): 'Turning on the light.'" in said and "does not say it can't" in said
    chat = {"id": "h", "expect": {"kind": "chat"}}
    assert judge(chat, _run([_reply("Hello! Nice to meet you.", "local_llm")])) == []
    assert judge(chat, _run([_reply("One. Two. Three.", "local_llm")])) == ["3 sentences, at most 2 expected"]
    assert judge(chat, _run([_reply("Hello.", "offline")])) == ["answered by offline, not the local LLM"]
    answer = {"id": "a", "expect": {"kind": "answer", "reply_has": ["7:05"]}}
    assert judge(answer, _run([_reply("It's 7:05 PM.")])) == []
    assert judge(answer, _run([_reply("It's 7:06 PM.")])) == ["reply lacks any of ['7:05']"]
    assert judge(answer, _run([])) == ["1 of 1 requests got no reply (not heard)", "no reply",
                                       "reply lacks any of ['7:05']"]
    silent = {"id": "s", "expect": {"kind": "silent"}}
    assert judge(silent, _run([_reply("")])) == []
    assert judge(silent, _run([_reply("", "local_llm")], routes=[{"tier": "local_llm"}])) == \
        ["routed to local_llm, not a skill"]


def test_a_state_that_ends_where_it_began_needs_each_turn_to_change_it():
    mute = {"id": "m", "given": {"volume": 0.6},
            "expect": {"kind": "state", "volume": 0.6, "turn_changes": [["volume_changed"], ["volume_changed"]]}}
    both = [_reply("", t=5.0, changed=["volume_changed"]), _reply("Volume 60 percent.", t=15.0,
                                                                   changed=["volume_changed"])]
    assert judge(mute, _run(both, _state(volume=0.6), requests=2)) == []
    neither = [_reply("Sorry, I can't help with that.", t=5.0), _reply("Sorry, I can't help with that.", t=15.0)]
    assert judge(mute, _run(neither, _state(volume=0.6), requests=2)) == [
        "turn 1 made no change, expected ['volume_changed']", "turn 2 made no change, expected ['volume_changed']"]


def test_voice_to_voice_counts_from_the_true_end_of_speech():
    events = [SpeechEnd(t=4.6, reason="silence", speech_end_s=4.1), Reply(t=4.7, text="It's 7:05 PM.",
                                                                          tier="fast_path", think_ms=0.1),
              Turn(t=6.0, outcome="answered", voice_to_voice_ms=700.0)]
    spoken = [{"text": "What time is it?", "wake": True, "start_s": 2.5, "end_s": 4.0}]
    assert voice_to_voice(events, spoken) == [{"tier": "fast_path", "ms": 800.0}]


def test_a_capability_is_no_claim_to_the_end_of_its_sentence():
    assert claims("I can set timers, set reminders, set alarms, and tell jokes. What would you like?") == []
    assert [k for k, _ in claims("Timer set for 5 minutes, I can tell you how long is left.")] == ["timer_set"]


def test_what_was_heard_is_scored_against_what_was_said():
    from bench.household import misheard, word_error_rate

    assert word_error_rate("Set a pasta timer for eight minutes.", "Set a pasta timer for 8 minutes.") == 0
    assert word_error_rate("What's fifteen percent of eighty?", "What's 15% of 80?") == 0
    assert word_error_rate("Set an alarm for six thirty.", "Set an alarm for 6.30.") == 0
    assert word_error_rate("Add milk to the shopping list.", "and nope to the shopping list.") > 0.25
    run = {"spoken": [{"text": "Set a timer."}, {"text": "Five minutes."}], "heard": ["Set a timer."]}
    assert misheard(run) == ["'Five minutes.' heard as ''"]
