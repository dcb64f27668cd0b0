"""The assistant's name comes from the configured wake models, never from a hard-coded "jarvis"."""

from __future__ import annotations

import pytest

from assistant import models
from assistant.config import with_changes
from assistant.hear.asr import Recognition, strip_wake_remnant, wake_remnant
from assistant.hear.end_of_turn import TranscriptJudge
from assistant.hear.wake_phrase import wake_names
from assistant.run.stages import for_a_run
from assistant.understand.escalation import is_small_talk
from assistant.understand.router import request_clauses
from assistant.understand.skills import SkillRequest

NABU = {"wake": {"first_pass_model": "okay_nabu", "verifier_model": "okay_nabu"}}
"""Okay Nabu instead of Hey Jarvis."""


def test_the_names_are_the_wake_models_own(settings):
    assert models.wake_word_names(settings) == ["Hey Jarvis"]
    assert models.wake_word_names(with_changes(settings, NABU)) == ["Okay Nabu"]
    assert wake_names(["Okay Nabu"]) == {"nabu", "naboo", "nabo"}  # with Whisper's spellings of it
    assert wake_names([]) == set()


@pytest.mark.parametrize("jarvis, nabu", [
    ("hey jarvis what time is it", "okay nabu what time is it"),
    ("jarvis set a timer for five minutes", "nabu set a timer for five minutes"),
    ("please jarvis tell me a joke", "please naboo tell me a joke"),
])
def test_okay_nabu_is_cleaned_as_hey_jarvis_was(jarvis, nabu):
    as_jarvis, as_nabu = wake_names(["Hey Jarvis"]), wake_names(["Okay Nabu"])
    request = request_clauses(jarvis, as_jarvis)[0]
    assert request_clauses(nabu, as_nabu)[0] == request and "jarvis" not in request


def test_whisper_hears_the_configured_wake_phrase_off_the_command():
    assert strip_wake_remnant("Okay Nabu, what time is it?", wake_remnant(["Okay Nabu"])) == "what time is it?"
    assert strip_wake_remnant("Hey Jarvis, what time is it?", wake_remnant(["Hey Jarvis"])) == "what time is it?"


def test_jarvis_is_not_special_when_nabu_is_configured():
    as_nabu = wake_names(["Okay Nabu"])
    assert "set a timer for five minutes" not in request_clauses("jarvis set a timer for five minutes", as_nabu)
    assert strip_wake_remnant("Hey Jarvis, what time is it?", wake_remnant(["Okay Nabu"])) == (
        "Hey Jarvis, what time is it?")
    assert is_small_talk("Okay Nabu.", as_nabu) and not is_small_talk("Jarvis.", as_nabu)


def test_the_name_said_alone_only_opens_a_request():
    judge = TranscriptJudge(lambda text: False, wake_names(["Okay Nabu"]))
    heard = Recognition(text="Okay, Nabu.", no_speech_prob=0.0, avg_logprob=-0.1)
    assert judge.reading(heard) is None
    assert judge.reading(Recognition(text="Okay, Jarvis.", no_speech_prob=0.0, avg_logprob=-0.1)) == "sentence"


def test_a_run_with_okay_nabu_knows_its_name_everywhere(stages, settings):
    fresh = for_a_run(stages, with_changes(settings, NABU))
    assert fresh.router.wake_names == {"nabu", "naboo", "nabo"}
    assert fresh.asr.wake_words == ("Okay Nabu",)
    words = getattr(fresh.turn_judge, "words", fresh.turn_judge)  # the transcript's judge, alone or beside the model
    assert "nabu" in words.opening_words and "jarvis" not in words.opening_words
    assert stages.router.wake_names == {"jarvis", "jervis"}  # the session's own run is unchanged


def test_the_assistant_tells_its_own_wake_phrase(stages, settings):
    fresh = for_a_run(stages, with_changes(settings, NABU))
    for router, phrase in ((stages.router, "Hey Jarvis"), (fresh.router, "Okay Nabu")):
        reply = router.whole_reply(router.route("what's your name"), SkillRequest())
        assert reply == f"I am your assistant. To wake me, just say: {phrase}!"


def test_a_request_after_the_configured_name_reaches_its_skill(stages, settings):
    fresh = for_a_run(stages, with_changes(settings, NABU))
    for router, said in ((stages.router, "hey jarvis what time is it"), (fresh.router, "okay nabu what time is it")):
        decision = router.route(said)
        assert (decision.tier, decision.intent) == ("fast_path", "GetTime"), said


def test_no_skill_template_names_the_assistant(router):
    from assistant.understand.skill_mapper import intent_specs

    specs = intent_specs(router.intents, router.skills)
    assert not any("jarvis" in spec.keywords for spec in specs)  # so the mapper never takes it for a skill's word
