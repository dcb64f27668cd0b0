"""Timers and alarms by voice: several phrasings each, numbers in words or digits, replies in digits."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from assistant.config import RemindersSettings
from assistant.store.reminders import ALARM, TIMER, ReminderStore
from assistant.understand.router import RouteDecision, Router
from assistant.understand.skills import SkillRequest

NOW = datetime(2026, 11, 27, 19, 5).astimezone()  # a Friday evening


def say(router: Router, store: ReminderStore, text: str, now: datetime = NOW) -> str:
    decision = router.route(text)
    assert decision.tier == "fast_path", text
    return router.whole_reply(decision, SkillRequest(now=now, reminders=store, said=text))


@pytest.mark.parametrize("text, seconds, name", [
    ("Set a timer for 5 minutes.", 300, None),
    ("Set a timer for one hour and ten minutes.", 4200, None),
    ("Start a 10-minute timer.", 600, None),
    ("Could you set a timer for ninety seconds, please?", 90, None),
    ("Set a timer for two and a half minutes.", 150, None),
    ("Set a timer for an hour and a half.", 5400, None),
    ("Set a timer for half an hour.", 1800, None),
    ("Set a pasta timer for 8 minutes.", 480, "pasta"),
    ("Set a 4 minute egg timer.", 240, "egg"),
    ("Timer for 30 seconds.", 30, None),
    ("Give me two and a half minutes on the clock.", 150, None),
])
def test_a_timer_is_set_for_the_length_said(router, store, text, seconds, name):
    say(router, store, text)
    [timer] = store.pending(TIMER)
    assert (timer.due - NOW, timer.name) == (timedelta(seconds=seconds), name)


def test_setting_a_timer_says_its_length_and_name(router, store):
    assert say(router, store, "Set a timer for one hour and ten minutes.") == "Timer set for 1 hour and 10 minutes."
    assert say(router, store, "Set a pasta timer for 8 minutes.") == "Pasta timer set for 8 minutes."


def test_several_timers_run_at_once_and_each_says_what_is_left(router, store):
    say(router, store, "Set a pasta timer for 8 minutes.")
    say(router, store, "Set a timer for 5 minutes.")
    later = NOW + timedelta(minutes=2, seconds=30)
    assert say(router, store, "How much time is left on the pasta timer?", later) == \
        "The pasta timer has 5 minutes and 30 seconds left."
    assert say(router, store, "How much time is left?", later) == (
        "You have 2 timers: the 5 minute timer with 2 minutes and 30 seconds left, "
        "the pasta timer with 5 minutes and 30 seconds left.")


def test_cancelling_a_named_timer_keeps_the_others(router, store):
    say(router, store, "Set a pasta timer for 8 minutes.")
    say(router, store, "Set a tea timer for 3 minutes.")
    assert say(router, store, "Cancel the pasta timer.") == "The pasta timer is cancelled."
    assert [t.name for t in store.pending(TIMER)] == ["tea"]


def test_cancel_with_several_timers_asks_which_and_cancels_none(router, store):
    say(router, store, "Set a pasta timer for 8 minutes.")
    say(router, store, "Set a tea timer for 3 minutes.")
    assert "Which one should I cancel?" in say(router, store, "Cancel the timer.")
    assert len(store.pending(TIMER)) == 2


@pytest.mark.parametrize("text", ["Cancel all timers.", "Delete all of the timers.", "Stop my timers."])
def test_all_timers_can_be_cancelled_at_once(router, store, text):
    say(router, store, "Set a pasta timer for 8 minutes.")
    say(router, store, "Set a tea timer for 3 minutes.")
    assert say(router, store, text) == "All 2 timers are cancelled."
    assert store.pending(TIMER) == []


def test_asking_about_timers_when_there_are_none_says_so(router, store):
    assert say(router, store, "How much time is left?") == "You have no timers."
    assert say(router, store, "Cancel the pasta timer.") == "You have no pasta timer."


@pytest.mark.parametrize("text, due, reply", [
    ("Set an alarm for 6 a.m.", datetime(2026, 11, 28, 6, 0), "Alarm set for 6:00 AM tomorrow."),
    ("Wake me up at 6:45 AM.", datetime(2026, 11, 28, 6, 45), "Alarm set for 6:45 AM tomorrow."),
    ("Set an alarm for 7.30 pm.", datetime(2026, 11, 27, 19, 30), "Alarm set for 7:30 PM today."),
    ("Set an alarm for seven thirty.", datetime(2026, 11, 27, 19, 30), "Alarm set for 7:30 PM today."),
    ("Wake me up at 630", datetime(2026, 11, 28, 6, 30), "Alarm set for 6:30 AM tomorrow."),
    ("Set an alarm for 7 in the morning.", datetime(2026, 11, 28, 7, 0), "Alarm set for 7:00 AM tomorrow."),
    ("Set an alarm for Monday at 7.", datetime(2026, 11, 30, 7, 0), "Alarm set for 7:00 AM on Monday."),
    ("Set an alarm for 18:30 on Friday.", datetime(2026, 12, 4, 18, 30), "Alarm set for 6:30 PM on Friday, December 4."),
    ("Wake me up tomorrow at 5:15.", datetime(2026, 11, 28, 5, 15), "Alarm set for 5:15 AM tomorrow."),
])
def test_an_alarm_rings_at_the_next_time_that_matches(router, store, text, due, reply):
    assert say(router, store, text) == reply
    [alarm] = store.pending(ALARM)
    assert alarm.due == due.astimezone()


def test_an_alarm_for_a_time_already_past_today_is_refused(router, store):
    assert say(router, store, "Set an alarm for 6 p.m. today.") == "6:00 PM has already passed today."
    assert store.pending(ALARM) == []


def test_the_same_alarm_twice_is_kept_once(router, store):
    say(router, store, "Set an alarm for 6 a.m.")
    assert say(router, store, "Wake me up at 6 AM.") == "You already have an alarm at 6:00 AM tomorrow."
    assert len(store.pending(ALARM)) == 1


def test_alarms_are_listed_soonest_first(router, store):
    assert say(router, store, "What alarms do I have?") == "You have no alarms."
    say(router, store, "Set an alarm for Monday at 7.")
    say(router, store, "Set an alarm for 6 a.m.")
    assert say(router, store, "Do I have any alarms?") == \
        "You have 2 alarms: at 6:00 AM tomorrow and at 7:00 AM on Monday."


@pytest.mark.parametrize("text", ["Cancel the 6 a.m. alarm.", "Cancel the alarm for 6 AM.", "Delete my alarm for 6:00 tomorrow."])
def test_an_alarm_is_cancelled_by_its_time(router, store, text):
    say(router, store, "Set an alarm for 6 a.m.")
    say(router, store, "Set an alarm for Monday at 7.")
    assert say(router, store, text) == "The alarm at 6:00 AM tomorrow is cancelled."
    assert [a.due.hour for a in store.pending(ALARM)] == [7]


def test_an_alarm_is_cancelled_by_its_day(router, store):
    say(router, store, "Set an alarm for 6 a.m.")
    say(router, store, "Set an alarm for Monday at 7.")
    assert say(router, store, "Cancel my Monday alarm.") == "The alarm at 7:00 AM on Monday is cancelled."


def test_all_alarms_can_be_cancelled_at_once(router, store):
    say(router, store, "Set an alarm for 6 a.m.")
    say(router, store, "Set an alarm for Monday at 7.")
    assert say(router, store, "Cancel all alarms.") == "All 2 alarms are cancelled."
    assert store.pending(ALARM) == []


def ask(router: Router, store: ReminderStore, text: str, awaiting=None):
    decision = router.route(text, awaiting)
    assert decision.tier == "fast_path", text
    return router.skill_reply(decision, SkillRequest(now=NOW, reminders=store))


@pytest.mark.parametrize("text, name, seconds", [
    ("Set a timer for the eggs, five minutes.", "eggs", 300), ("A pasta timer, ten minutes.", "pasta", 600),
    ("Start a rice timer for twenty minutes.", "rice", 1200), ("Set a timer called bread for 45 minutes.", "bread", 2700),
])
def test_a_named_timer_in_many_phrasings(router, store, text, name, seconds):
    ask(router, store, text)
    assert [(t.name, t.duration_s) for t in store.pending(TIMER)] == [(name, seconds)]


@pytest.mark.parametrize("text", ["Set a timer.", "Start a timer, please.", "Set a pasta timer."])
def test_a_timer_with_no_length_asks_for_how_long_and_sets_none(router, store, text):
    asked = ask(router, store, text)
    assert asked.text == "For how long?" and asked.awaiting.context == "timer_duration"
    assert store.pending(TIMER) == []


@pytest.mark.parametrize("answer, seconds", [("Five minutes.", 300), ("For 90 seconds.", 90), ("An hour.", 3600),
                                             ("Make it ten minutes.", 600)])
def test_the_answer_to_for_how_long_sets_the_timer_with_its_name(router, store, answer, seconds):
    asked = ask(router, store, "Set a pasta timer.")
    done = ask(router, store, answer, asked.awaiting)
    assert [(t.name, t.duration_s) for t in store.pending(TIMER)] == [("pasta", seconds)]
    assert done.text.startswith("Pasta timer set for ")


def test_a_length_alone_sets_nothing_out_of_its_question(router):
    assert router.route("Five minutes.").intent is None


@pytest.mark.parametrize("text", ["Add two minutes to the pasta timer.", "Put another 2 minutes on the pasta timer.",
                                  "Give the pasta timer 2 more minutes."])
def test_time_is_added_to_a_timer_by_name(router, store, text):
    ask(router, store, "Set a pasta timer for 8 minutes.")
    reply = ask(router, store, text).text
    [timer] = store.pending(TIMER)
    assert timer.duration_s == 600 and (timer.due - NOW).total_seconds() == 600
    assert reply == "I added 2 minutes to the pasta timer. It has 10 minutes left."


def test_a_timer_is_found_by_a_name_said_a_little_differently(router, store):
    ask(router, store, "Set a timer for the eggs, five minutes.")
    assert ask(router, store, "Cancel the egg timer.").text == "The eggs timer is cancelled."
    assert store.pending(TIMER) == []


def test_which_one_is_answered_by_name_without_the_wake_word(router, store):
    ask(router, store, "Set a pasta timer for 8 minutes.")
    ask(router, store, "Set a tea timer for 3 minutes.")
    asked = ask(router, store, "Cancel the timer.")
    assert asked.text.endswith("Which one should I cancel?")
    assert ask(router, store, "The pasta one.", asked.awaiting).text == "The pasta timer is cancelled."
    assert [t.name for t in store.pending(TIMER)] == ["tea"]


def test_whisper_writing_in_for_and_still_gives_the_whole_length(router, store):
    ask(router, store, "Set a timer for 1 hour in 10 minutes.")
    assert [(t.name, t.duration_s) for t in store.pending(TIMER)] == [(None, 4200)]


def test_two_timers_said_in_one_sentence_are_both_set(router, store):
    reply = say(router, store, "Set a rice timer for 18 minutes and a fish timer for 12 minutes.")
    assert reply == "Rice timer set for 18 minutes. Fish timer set for 12 minutes."
    assert sorted((t.name, t.duration_s) for t in store.pending(TIMER)) == [("fish", 720), ("rice", 1080)]


def test_getting_rid_of_a_timer_cancels_it(router, store):
    say(router, store, "Set an egg timer for 5 minutes.")
    assert say(router, store, "Oh, I took the eggs off already, you can get rid of the egg timer.") == \
        "The egg timer is cancelled."
    assert store.pending(TIMER) == []


def test_a_name_misheard_into_the_words_before_it_still_finds_its_timer(router, store):
    say(router, store, "Set a pasta timer for 10 minutes.")
    assert say(router, store, "Cancel solve the past a timer.") == "The pasta timer is cancelled."


def test_that_timer_is_the_one_the_sentence_names(router, store):
    say(router, store, "Set a pasta timer for 10 minutes.")
    say(router, store, "Set an eggs timer for 5 minutes.")
    assert say(router, store, "The eggs are done, so cancel that timer.") == "The eggs timer is cancelled."
    assert [t.name for t in store.pending(TIMER)] == ["pasta"]


def test_that_timer_with_several_running_and_none_named_asks_which(router, store):
    say(router, store, "Set a pasta timer for 10 minutes.")
    say(router, store, "Set an eggs timer for 5 minutes.")
    assert say(router, store, "Cancel that timer.").endswith("Which one should I cancel?")


def test_adding_no_length_adds_nothing_and_claims_nothing(router, store):
    say(router, store, "Set a pasta timer for 8 minutes.")
    reply = router.skill_reply(RouteDecision("local_llm", "AddTimeToTimer", None, "mapped", {"name": "pasta"}),
                               SkillRequest(now=NOW, reminders=store))
    assert reply.text.startswith("How much time should I add?")
    assert [t.due - NOW for t in store.pending(TIMER)] == [timedelta(minutes=8)]


# Numbers that make no sense get no confirmation, whichever tier produced them.

@pytest.mark.parametrize("text, reply", [
    ("Set a timer for minus five minutes.", "I can't set a timer for minus five minutes."),
    ("Set a timer for -5 minutes.", "I can't set a timer for minus 5 minutes."),
    ("Set a timer for zero seconds.", "I can't set a timer for zero seconds."),
    ("Set a timer for 0 minutes.", "I can't set a timer for 0 minutes."),
    ("Set a timer for 900 hours.", "I can't set a timer longer than 24 hours; for longer, set an alarm."),
    ("Remind me in minus 10 minutes to call mum.", "I can't remind you in minus 10 minutes."),
    ("Remind me in -10 minutes to call mum.", "I can't remind you in minus 10 minutes."),
    ("Add minus five minutes to the timer.", "I can't add minus five minutes to a timer."),
])
def test_a_length_below_zero_zero_or_too_long_is_refused_in_words_and_nothing_is_set(router, store, text, reply):
    assert say(router, store, text) == reply
    assert store.pending(TIMER) == [] and store.pending("reminder") == []


def test_time_that_would_take_a_timer_past_24_hours_is_not_added(router, store):
    say(router, store, "Set a timer for 20 hours.")
    assert say(router, store, "Add 5 hours to the timer.") == \
        "I can't set a timer longer than 24 hours; for longer, set an alarm."
    [timer] = store.pending(TIMER)
    assert timer.due - NOW == timedelta(hours=20)


def test_a_zero_beside_a_real_length_is_no_refusal(router, store):
    assert say(router, store, "Set a timer for 1 hour and 0 minutes.") == "Timer set for 1 hour."


@pytest.mark.parametrize("slots, said, reply", [
    ({"minutes": 5}, "set a timer for minus five minutes", "I can't set a timer for minus five minutes."),
    ({"minutes": -5}, "set a timer for five minutes less than nothing", "I can't set a timer for minus 5 minutes."),
])
def test_a_skill_the_local_llm_mapped_refuses_a_senseless_length_it_lost_or_kept(router, store, slots, said, reply):
    mapped = RouteDecision("local_llm", "SetTimer", None, "the local LLM mapped it onto a skill", slots)
    assert router.whole_reply(mapped, SkillRequest(now=NOW, reminders=store, said=said)) == reply
    assert store.pending(TIMER) == []


def test_the_longest_timer_is_a_setting(router, store):
    request = SkillRequest(now=NOW, reminders=store, said="Set a timer for 3 hours.",
                           limits=RemindersSettings(longest_timer_h=2.0))
    route = router.route("Set a timer for 3 hours.")
    assert router.whole_reply(route, request) == "I can't set a timer longer than 2 hours; for longer, set an alarm."
    assert store.pending(TIMER) == []


def test_how_far_ahead_a_reminder_may_be_is_a_setting(router, store):
    text = "Remind me to call mum on Sunday at 9 am."
    request = SkillRequest(now=NOW, reminders=store, said=text, limits=RemindersSettings(longest_reminder_days=1.0))
    assert router.whole_reply(router.route(text), request) == "I can set reminders up to 1 day ahead."
    assert store.pending("reminder") == []
