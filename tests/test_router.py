"""Requests go to a deterministic skill when a template matches, else to the local LLM."""

from datetime import datetime

import pytest

from assistant.router import Router, load_intents


@pytest.fixture(scope="module")
def intents():
    return load_intents()


@pytest.mark.parametrize("text, intent", [
    ("What time is it?", "GetTime"), ("what's the time", "GetTime"), ("Tell me the time, please.", "GetTime"),
    ("What's the date today?", "GetDate"), ("What day is it today?", "GetDate"), ("what is today's date", "GetDate"),
])
def test_time_and_date_requests_take_the_fast_path(intents, text, intent):
    decision = Router(intents, llm_enabled=True).route(text)
    assert (decision.tier, decision.intent, decision.fallback) == ("fast_path", intent, None)


@pytest.mark.parametrize("text", ["Why is the sky blue?", "Tell me a joke", "What time does the shop open?"])
def test_everything_else_goes_to_the_local_llm(intents, text):
    decision = Router(intents, llm_enabled=True).route(text)
    assert (decision.tier, decision.intent, decision.fallback) == ("local_llm", None, None)


def test_with_the_llm_disabled_the_answer_falls_back_to_offline(intents):
    decision = Router(intents, llm_enabled=False).route("Why is the sky blue?")
    assert (decision.tier, decision.fallback, decision.answered_by) == ("local_llm", "offline", "offline")


def test_skills_write_times_in_digits():
    now = datetime(2026, 11, 25, 19, 5)
    assert Router.run_skill("GetTime", now) == "It's 7:05 PM."
    assert Router.run_skill("GetDate", now) == "Today is Wednesday, November 25, 2026."
