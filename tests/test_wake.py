"""Two-pass wake detection on real audio."""

from __future__ import annotations

import dataclasses

import pytest

from assistant.audio import file_chunks
from assistant.config import Settings
from assistant.events import Wake
from assistant.stages import load_wake
from conftest import FIXTURES, JFK


def wakes(settings: Settings, path) -> list:
    detector = load_wake(settings)
    events = []
    for chunk in file_chunks(path):
        events += detector.process(chunk).events
        detector.catch_up()
    return events + detector.verdict().events


def test_real_speech_without_the_wake_word_does_not_wake(settings):
    if not JFK.exists():
        pytest.skip(f"{JFK} is not beside this repository")
    assert not any(isinstance(e, Wake) for e in wakes(settings, JFK))


def test_without_the_verifier_a_first_pass_candidate_wakes_with_no_verifier_score(settings):
    alone = dataclasses.replace(settings, wake=dataclasses.replace(settings.wake, mode="first_pass_only"))
    found = [e for e in wakes(alone, FIXTURES / "wake_time.wav") if isinstance(e, Wake)]
    assert len(found) == 1 and found[0].verifier is None


def test_one_phrase_gives_one_candidate_within_the_refractory_time(settings):
    events = wakes(settings, FIXTURES / "wake_two_turns_noisy.wav")
    candidates = [e.t for e in events if e.name == "wake_candidate"]
    assert len(candidates) == 2 and candidates[1] - candidates[0] > settings.wake.refractory_s


def test_a_disarmed_detector_starts_no_candidate(settings):
    detector = load_wake(settings)
    assert all(detector.process(chunk, armed=False).events == [] for chunk in file_chunks(FIXTURES / "wake_time.wav"))


def test_while_the_assistant_says_something_wake_like_a_candidate_is_turned_down_unverified(settings):
    detector = load_wake(settings)
    events = [e for chunk in file_chunks(FIXTURES / "wake_time.wav") for e in detector.process(chunk, own_voice=True).events]
    assert [e.name for e in events] == ["wake_candidate", "wake_rejected"]
    assert events[1].reason == "own_voice" and events[1].verifier is None


def test_the_verifier_decides_in_its_own_thread_while_chunks_keep_coming(settings):
    detector = load_wake(settings)
    chunks = iter(file_chunks(FIXTURES / "wake_time.wav"))
    for chunk in chunks:
        update = detector.process(chunk)
        if update.events:
            break
    # The candidate chunk returns at once; the verdict comes with a later chunk.
    assert [e.name for e in update.events] == ["wake_candidate"] and detector.verifying_since() is not None
    later = []
    for chunk in chunks:
        detector.catch_up()  # as if each chunk came 32 ms after the last, not at once
        later += detector.process(chunk).events
    assert [e.name for e in later] == ["wake"] and later[0].t == update.events[0].t
