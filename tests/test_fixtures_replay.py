"""Every fixture, replayed through the real pipeline, matches its manifest entry."""

from __future__ import annotations

import re
import wave
from datetime import datetime, timedelta

import numpy as np
import pytest
from conftest import FIXTURES, MANIFEST

from assistant.store.reminders import TIMER, ReminderStore

NAMES = sorted(MANIFEST)
WITH_TURNS = [n for n in NAMES if MANIFEST[n]["turns"]]
WITHOUT_TURNS = [n for n in NAMES if not MANIFEST[n]["turns"]]
WITH_REQUESTS = [n for n in WITH_TURNS if any(t["text"] for t in MANIFEST[n]["turns"])]


def replayed(replay, name):
    """The fixture replayed as its manifest says: push-to-talk or not, and with its settings."""
    return replay(FIXTURES / name, ptt=MANIFEST[name]["ptt"], changed=MANIFEST[name]["settings"] or None)


def requests(name):
    """The turns in which something was asked (not a wake word followed by silence)."""
    return [t for t in MANIFEST[name]["turns"] if t["text"]]


@pytest.mark.parametrize("name", NAMES)
def test_wake_count_matches_manifest(replay, name):
    assert len(replayed(replay, name).named("wake")) == MANIFEST[name]["wake_count"]


# These describe a moment already past when they are reported: where the wake phrase
# was heard (the verifier decides up to verifier_hold_s later), and where speech began
# (or, on a slow machine, ended) in the audio heard meanwhile.
LOOKING_BACK = ("wake", "wake_rejected", "speech_start", "speech_end")


@pytest.mark.parametrize("name", NAMES)
def test_event_times_never_go_backwards(replay, name):
    events = replayed(replay, name).events
    times = [e.t for e in events if e.name not in LOOKING_BACK]
    assert times == sorted(times)
    candidate_t = 0.0
    for before, event in zip(events, events[1:]):
        candidate_t = event.t if event.name == "wake_candidate" else candidate_t
        if event.name in LOOKING_BACK:  # never before the wake candidate it follows
            assert event.t >= min(before.t, candidate_t), (before, event)


@pytest.mark.parametrize("name", [n for n in NAMES if MANIFEST[n]["wake_count"]])
def test_wake_is_heard_at_the_end_of_the_phrase(replay, name):
    wakes = replayed(replay, name).named("wake")
    for wake, turn in zip(wakes, [t for t in MANIFEST[name]["turns"] if t["wake_end_s"]], strict=True):
        assert turn["wake_end_s"] - 0.1 <= wake.t <= turn["wake_end_s"] + 0.5
        assert wake.verifier >= 0.5


@pytest.mark.parametrize("name", WITH_REQUESTS)
def test_transcripts_hold_the_command_words_and_not_the_wake_phrase(replay, name):
    transcripts = replayed(replay, name).named("transcript")
    assert len(transcripts) == len(requests(name))
    for transcript, turn in zip(transcripts, requests(name), strict=True):
        words = re.findall(r"[a-z']+", transcript.text.lower())
        for word in turn["words"]:
            assert any(w.startswith(word) for w in words), (word, transcript.text)
        assert "jarvis" not in words


@pytest.mark.parametrize("name", WITH_REQUESTS)
def test_routes_match_manifest(replay, name):
    routes = replayed(replay, name).named("route")
    assert [(r.tier, r.intent) for r in routes] == [(t["tier"], t["intent"]) for t in requests(name)]


@pytest.mark.parametrize("name", WITH_TURNS)
def test_every_turn_ends_as_the_manifest_says_with_speech_of_plausible_length(replay, name):
    result = replayed(replay, name)
    turns = result.named("turn")
    assert [t.outcome for t in turns] == [t["outcome"] for t in MANIFEST[name]["turns"]]
    spoken = [t for t in turns if t.voice_to_voice_ms is not None]
    assert all(t.voice_to_voice_ms > 0 for t in spoken)
    answered = [t for t in spoken if t.outcome == "answered"]
    assert 0.8 * len(answered) <= result.reply_seconds() <= 30.0 * len(spoken)


@pytest.mark.parametrize("name", WITH_TURNS)
def test_reply_wav_holds_exactly_what_was_played(replay, name):
    result = replayed(replay, name)
    ends = result.named("tts_end")
    assert result.reply_seconds() == pytest.approx(sum(e.played_s for e in ends), abs=0.01)
    for end in ends:
        assert end.played_s == pytest.approx(end.duration_s, abs=0.01) or end.interrupted


@pytest.mark.parametrize("name", ["wake_interrupts_reply.wav", "wake_interrupts_llm_reply.wav"])
def test_the_wake_word_during_a_reply_cuts_it_there_and_starts_a_new_turn(replay, name):
    result = replayed(replay, name)
    events = result.events
    names = [e.name for e in events]
    first_end = names.index("tts_end")
    assert names[first_end - 1:first_end + 3] == ["wake", "tts_end", "turn", "speech_start"]
    cut, start = events[first_end], result.named("tts_start")[0]
    wake = events[first_end - 1]
    assert cut.interrupted and cut.played_s < cut.duration_s
    # Cut where the wake was accepted, after the phrase was heard.
    assert start.t + cut.played_s == pytest.approx(cut.t, abs=0.05) and cut.t >= wake.t
    assert result.named("turn")[0].outcome == "interrupted"


def test_a_local_llm_answer_starts_to_speak_before_it_is_complete(replay):
    events = replayed(replay, "wake_interrupts_llm_reply.wav").events
    first = [e.name for e in events].index("tts_start")
    assert events[first + 1:].index(next(e for e in events if e.name == "reply")) >= 0
    assert [e.name for e in events].index("reply") > first


def test_hey_jarvis_stop_stops_the_reply_and_says_nothing_more(replay):
    result = replayed(replay, "wake_stop.wav")
    turns = result.named("turn")
    assert [t.outcome for t in turns] == ["interrupted", "answered"]
    assert result.named("route")[-1].intent == "Stop"
    assert len(result.named("tts_start")) == 1 and result.named("reply")[-1].text == ""
    assert result.reply_seconds() == pytest.approx(result.named("tts_end")[0].played_s, abs=0.01)


def test_a_reply_ending_in_a_question_hears_the_answer_without_the_wake_word(replay):
    result = replay(FIXTURES / "follow_up_question.wav")
    assert len(result.named("wake")) == 1
    follow_up = result.named("follow_up")
    assert len(follow_up) == 1 and follow_up[0].t == result.named("tts_end")[0].t
    assert [r.intent for r in result.named("route")] == ["GetHelp", "GetTime"]
    assert [t.outcome for t in result.named("turn")] == ["answered", "answered"]


def test_a_timer_with_no_length_asks_for_one_and_the_answer_sets_it(replay):
    reminders = ReminderStore(":memory:")
    result = replay(FIXTURES / "wake_timer_follow_up.wav", reminders=reminders)
    assert [r.text for r in result.named("reply")] == ["For how long?", "Timer set for 5 minutes."]
    assert len(result.named("wake")) == 1 and len(result.named("follow_up")) == 1
    assert [(r.intent, r.reason) for r in result.named("route")] == [
        ("SetTimer", "matched an intent template"), ("SetTimer", "answered the question asked")]
    assert [t.duration_s for t in reminders.pending(TIMER)] == [300]


def test_a_follow_up_window_that_hears_nothing_closes_quietly(replay):
    result = replay(FIXTURES / "follow_up_timeout.wav")
    names = [e.name for e in result.events]
    assert names[-2:] == ["turn", "follow_up"]
    assert names.count("speech_end") == 1 and names.count("turn") == 1


def test_a_follow_up_window_is_not_offered_when_set_to_zero(replay):
    result = replay(FIXTURES / "follow_up_question.wav", changed={"conversation": {"question_follow_up_s": 0.0}})
    assert result.named("follow_up") == [] and len(result.named("turn")) == 1


def test_the_assistant_saying_hey_jarvis_does_not_wake_it(replay):
    result = replay(FIXTURES / "wake_name_reply.wav", echo_db=0.0)
    assert "hey jarvis" in result.named("reply")[0].text.lower()
    assert len(result.named("wake")) == 1
    assert [t.outcome for t in result.named("turn")] == ["answered"]
    assert any(r.reason == "own_voice" for r in result.named("wake_rejected"))


def test_without_the_own_voice_guard_the_echo_wakes_the_assistant(replay):
    """The check above is not vacuous: the echo alone wakes an unguarded assistant."""
    result = replay(FIXTURES / "wake_name_reply.wav", echo_db=0.0,
                    changed={"conversation": {"own_voice_guard": False}})
    wakes, start, end = result.named("wake"), result.named("tts_start")[0], result.named("tts_end")[0]
    assert len(wakes) == 2 and start.t <= wakes[1].t <= end.t


@pytest.mark.parametrize("name", WITH_TURNS)
def test_endpoint_follows_the_true_end_of_speech(replay, name):
    ends = replayed(replay, name).named("speech_end")
    for end, turn in zip(ends, MANIFEST[name]["turns"], strict=True):
        if end.reason == "silence":
            assert turn["speech_end_s"] - 0.1 <= end.speech_end_s <= turn["speech_end_s"] + 0.3
            assert end.t > end.speech_end_s


@pytest.mark.parametrize("name", WITHOUT_TURNS)
def test_negatives_never_start_a_turn_and_say_nothing(replay, name):
    result = replayed(replay, name)
    assert result.named("turn") == []
    assert result.named("speech_start") == []
    assert result.reply_seconds() == 0.0


def test_what_time_is_it_answers_the_current_local_time(replay):
    before = datetime.now().astimezone()
    reply = replay(FIXTURES / "wake_time.wav", changed={}).named("reply")[0]  # {}: a run of its own, not cached
    after = datetime.now().astimezone()
    match = re.fullmatch(r"It's (\d{1,2}):(\d{2}) (AM|PM)\.", reply.text)
    assert match, reply.text
    minutes = int((after - before).total_seconds() // 60) + 2
    candidates = [before + timedelta(minutes=m) for m in range(-1, minutes)]
    assert reply.text in {f"It's {c.strftime('%I:%M %p').lstrip('0')}." for c in candidates}


def test_a_wake_word_followed_by_silence_ends_the_turn_with_no_speech(replay):
    result = replay(FIXTURES / "wake_then_silence.wav")
    assert [e.reason for e in result.named("speech_end")] == ["no_speech"]
    assert result.named("transcript") == [] and result.reply_seconds() == 0.0


def test_the_verifier_rejects_a_first_pass_candidate_without_the_wake_word(replay):
    """'Hey Travis' fools the tiny first pass; the second pass turns it down."""
    result = replay(FIXTURES / "no_wake_speech.wav")
    rejected = result.named("wake_rejected")
    assert rejected and all(r.verifier < 0.5 for r in rejected)


def test_a_volume_change_is_heard_at_once_in_its_own_reply(replay, stages):
    result = replay(FIXTURES / "wake_volume.wav")
    assert result.named("route")[0].slots == {"percent": 50}
    with wave.open(str(result.reply_wav)) as w:
        heard = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
    full = np.concatenate([c.as_int16() for c in stages.tts.synthesize(result.named("reply")[0].text)])
    ratio = np.sqrt(np.mean(heard ** 2)) / np.sqrt(np.mean(full.astype(np.float32) ** 2))
    assert 0.4 < ratio < 0.6


def test_repeat_that_says_the_last_reply_again(replay):
    replies = [r.text for r in replay(FIXTURES / "wake_repeat.wav").named("reply")]
    assert len(replies) == 2 and replies[1] == replies[0] == "17 times 3 is 51."


def test_by_default_a_question_for_the_cloud_is_declined_plainly_offline(replay):
    result = replay(FIXTURES / "ptt_llm.wav", ptt=True)
    [route] = result.named("route")
    assert (route.tier, route.fallback) == ("cloud", "offline")
    assert result.named("reply")[0].text == "I can't answer that on this device, and the cloud is turned off."
