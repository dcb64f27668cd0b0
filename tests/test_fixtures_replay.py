"""Every fixture, replayed through the real pipeline, matches its manifest entry."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from conftest import FIXTURES, MANIFEST

NAMES = sorted(MANIFEST)
WITH_TURNS = [n for n in NAMES if MANIFEST[n]["turns"]]
WITHOUT_TURNS = [n for n in NAMES if not MANIFEST[n]["turns"]]
WITH_REQUESTS = [n for n in WITH_TURNS if any(t["text"] for t in MANIFEST[n]["turns"])]


def replayed(replay, name):
    return replay(FIXTURES / name, ptt=MANIFEST[name]["ptt"])


def requests(name):
    """The turns in which something was asked (not a wake word followed by silence)."""
    return [t for t in MANIFEST[name]["turns"] if t["text"]]


@pytest.mark.parametrize("name", NAMES)
def test_wake_count_matches_manifest(replay, name):
    assert len(replayed(replay, name).named("wake")) == MANIFEST[name]["wake_count"]


@pytest.mark.parametrize("name", NAMES)
def test_event_times_never_go_backwards(replay, name):
    times = [e.t for e in replayed(replay, name).events]
    assert times == sorted(times)


@pytest.mark.parametrize("name", [n for n in NAMES if MANIFEST[n]["wake_count"]])
def test_wake_is_heard_at_the_end_of_the_phrase(replay, name):
    wakes = replayed(replay, name).named("wake")
    for wake, turn in zip(wakes, MANIFEST[name]["turns"], strict=True):
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
    replied = [t for t in turns if t.outcome in ("answered", "interrupted")]
    assert all(t.voice_to_voice_ms > 0 for t in replied)
    assert 0.8 * len(replied) <= result.reply_seconds() <= 30.0 * len(replied)
    played = sum(e.duration_s for e in result.named("tts_end"))
    if any(e.interrupted for e in result.named("tts_end")):
        assert result.reply_seconds() > played + 0.5
    else:
        assert result.reply_seconds() == pytest.approx(played, abs=0.05)


def test_the_wake_word_during_a_reply_interrupts_it_and_starts_a_new_turn(replay):
    events = replay(FIXTURES / "wake_interrupts_reply.wav").events
    names = [e.name for e in events]
    first_end = names.index("tts_end")
    assert names[first_end - 2:first_end + 3] == ["wake_candidate", "wake", "tts_end", "turn", "speech_start"]
    assert events[first_end].interrupted and events[first_end].t == events[first_end - 1].t


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
    reply = replay(FIXTURES / "wake_time.wav").named("reply")[0]
    match = re.fullmatch(r"It's (\d{1,2}):(\d{2}) (AM|PM)\.", reply.text)
    assert match, reply.text
    now = datetime.now().astimezone()
    candidates = [now - timedelta(minutes=1), now, now + timedelta(minutes=1)]
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
