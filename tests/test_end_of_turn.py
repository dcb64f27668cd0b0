"""The end of a command: complete ones end at a short pause, hesitant ones are not cut."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, MANIFEST

from assistant.hear.asr import Recognition
from assistant.hear.end_of_turn import TranscriptJudge, ends_a_sentence

WHOLE = [n for n in MANIFEST if n.endswith("_whole.wav")] + ["wake_time.wav", "wake_name_reply.wav"]
HESITANT = [n for n in MANIFEST if any("pause_end_s" in t for t in MANIFEST[n]["turns"])]


def _replayed(replay, name):
    return replay(FIXTURES / name, changed=MANIFEST[name]["settings"] or None)


@pytest.mark.parametrize("name", WHOLE)
def test_a_complete_command_is_ended_by_the_judge_not_by_the_full_silence(replay, name):
    (end,) = _replayed(replay, name).named("speech_end")
    assert end.reason == "silence" and end.decided_by == "both"


@pytest.mark.parametrize("name", HESITANT)
def test_a_hesitation_mid_command_does_not_cut_it(replay, name):
    said = MANIFEST[name]["turns"][0]
    (end,) = _replayed(replay, name).named("speech_end")
    assert end.t > said["pause_end_s"] and end.speech_end_s > said["pause_end_s"]


@pytest.mark.parametrize("name", HESITANT)
def test_the_words_after_a_hesitation_are_in_the_transcript(replay, name):
    (transcript,) = _replayed(replay, name).named("transcript")
    last_word = MANIFEST[name]["turns"][0]["text"].rstrip(".?!").split()[-1].lower()
    assert last_word in transcript.text.lower() or any(c.isdigit() for c in transcript.text), transcript.text


def test_the_transcript_is_ready_when_the_command_ends(replay):
    """It was made at the pause, so the turn does not wait for recognition."""
    events = replay(FIXTURES / "wake_time.wav")
    (end,), (transcript,) = events.named("speech_end"), events.named("transcript")
    assert transcript.t == end.t and transcript.asr_ms < 50


def test_silence_after_the_wake_word_ends_the_turn_with_no_speech(replay):
    events = replay(FIXTURES / "wake_then_silence.wav")
    assert [e.reason for e in events.named("speech_end")] == ["no_speech"]
    assert [t.outcome for t in events.named("turn")] == ["no_speech"]
    assert not events.named("transcript")


def _heard(text: str) -> Recognition:
    return Recognition(text, no_speech_prob=0.1, avg_logprob=-0.2)


@pytest.mark.parametrize("text, finished", [
    ("What time is it?", True), ("Why is the sky blue?", True), ("Tell me a joke.", True),
    ("Set a timer for.", False), ("Set a timer for", False), ("Tell me about the.", False),
    ("Wake me up at...", False), ("Set the volume to, um.", False), ("", False),
])
def test_text_reads_finished_when_it_ends_a_sentence_on_a_word_a_request_can_end_on(text, finished):
    assert ends_a_sentence(text) is finished


def test_a_skill_template_makes_a_transcript_complete_even_without_punctuation(stages):
    judge = TranscriptJudge(stages.router.matches_template)
    assert judge.reading(_heard("set a timer for 5 minutes")) == "template"
    assert judge.reading(_heard("set a timer for")) is None
    assert judge.reading(_heard("Set an alarm for it.")) is None  # begins like a skill's command, matches none
    assert judge.reading(Recognition("You", no_speech_prob=0.9, avg_logprob=-2.0)) is None


def test_a_sentence_whisper_guessed_at_is_not_taken_as_finished(stages):
    judge = TranscriptJudge(stages.router.matches_template)
    assert judge.reading(Recognition("Wait to need that.", no_speech_prob=0.49, avg_logprob=-1.53)) is None
    assert judge.reading(Recognition("Wait to need that.", no_speech_prob=0.1, avg_logprob=-0.3)) == "sentence"


@pytest.mark.parametrize("text", ["Right.", "Okay, so.", "Um.", "Hey Jarvis."])
def test_an_opening_word_alone_is_someone_drawing_breath_not_a_request(stages, text):
    judge = TranscriptJudge(stages.router.matches_template, stages.router.wake_names)  # the name: Hey Jarvis's
    assert judge.reading(Recognition(text, no_speech_prob=0.1, avg_logprob=-0.2)) is None
