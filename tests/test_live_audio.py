"""The microphone and the speakers, on a real sound server: a private PulseAudio with null sinks.

`room` stands for the air: the test plays a fixture into it and the assistant records
`room.monitor`. The assistant plays into `speaker`, which the test records.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import soundfile
from conftest import FIXTURES, JFK, MANIFEST, ROOT, heard_most_of_the_reply
from mqtt_broker import free_port
from prometheus_client.parser import text_string_to_metric_families

from bench.live import (
    Daemon,
    loud_seconds,
    play_into_room,
    record_speaker,
    speaker_heard_in_room,
    stop_recording,
    with_trailing_silence,
)


def test_replay_without_out_plays_the_reply_on_the_speakers(pulse, tmp_path):
    recording = tmp_path / "heard.wav"
    recorder = record_speaker(pulse, recording)
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "replay", str(FIXTURES / "ptt_time.wav"),
                             "--ptt", "--json"], env=pulse, cwd=ROOT, capture_output=True, text=True, timeout=120)
    time.sleep(0.5)
    stop_recording(recorder)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert any(e["event"] == "tts_start" for e in events)
    assert heard_most_of_the_reply(recording, events)


@pytest.fixture
def daemon(pulse, tmp_path):
    """The daemon, with the local LLM trying what belongs in the cloud (the long story these tests cut)."""
    config = tmp_path / "config.toml"
    config.write_text('[cloud]\nfallback = "local_llm"\n')
    with Daemon(pulse, "--config", str(config)) as running:
        yield running


def _hearing(daemon: Daemon, pulse, tmp_path, fixture: str, silence_s: float):
    """Once the daemon listens, play the fixture (then silence) into its room."""
    played = with_trailing_silence(FIXTURES / fixture, silence_s, tmp_path / "played.wav")
    daemon.wait_until_listening()
    return play_into_room(pulse, played)


def test_the_daemon_hears_the_room_and_answers_on_the_speakers(pulse, daemon, tmp_path):
    recording = tmp_path / "heard.wav"
    recorder = record_speaker(pulse, recording)
    player = _hearing(daemon, pulse, tmp_path, "wake_time.wav", 10.0)
    try:
        events = daemon.events_until(lambda e: e["event"] == "turn", timeout_s=60)
        player.wait(timeout=60)
    finally:
        stopped, _ = daemon.terminate(timeout_s=10)
        stop_recording(recorder)
    assert stopped == 0, "SIGTERM stops the daemon cleanly"
    names = [e["event"] for e in events]
    assert names[:2] == ["wake_candidate", "wake"]
    transcript = next(e for e in events if e["event"] == "transcript")
    assert "time" in transcript["text"].lower()
    assert events[-1]["outcome"] == "answered"
    assert heard_most_of_the_reply(recording, events)


def _story_request(tmp_path) -> Path:
    """Only the first request of wake_interrupts_llm_reply.wav ("hey jarvis, tell me a long
    story"), then silence that keeps the room's monitor running while the story plays."""
    audio, rate_hz = soundfile.read(FIXTURES / "wake_interrupts_llm_reply.wav", dtype="int16")
    request_end_s = MANIFEST["wake_interrupts_llm_reply.wav"]["turns"][0]["speech_end_s"] + 0.5
    cut = tmp_path / "story_request.wav"
    soundfile.write(cut, audio[:int(request_end_s * rate_hz)], rate_hz)
    return with_trailing_silence(cut, 40.0, tmp_path / "story_request_then_silence.wav")


def test_a_wake_word_in_the_room_cuts_the_reply_on_the_speakers(pulse, daemon, tmp_path):
    recording = tmp_path / "heard.wav"
    recorder = record_speaker(pulse, recording)
    daemon.wait_until_listening()
    story = play_into_room(pulse, _story_request(tmp_path))
    try:
        daemon.events_until(lambda e: e["event"] == "tts_start", timeout_s=90)
        time.sleep(1.0)  # the story is playing: now someone says the wake word and asks the time
        asking = play_into_room(pulse, with_trailing_silence(FIXTURES / "wake_time.wav", 2.0, tmp_path / "ask.wav"))
        events = daemon.events_until(lambda e: e["event"] == "turn" and e["outcome"] == "answered", timeout_s=90)
        asking.wait(timeout=60)
    finally:
        story.kill()
        daemon.terminate(timeout_s=10)
        stop_recording(recorder)
    cut, answered = [e for e in events if e["event"] == "tts_end"]
    assert cut["interrupted"] and cut["played_s"] < cut["duration_s"]
    # The speakers fell silent at the cut: they played the story up to it and the new answer, no more.
    played_s = cut["played_s"] + answered["played_s"]
    assert played_s - 1.5 < loud_seconds(recording) < played_s + 1.0


def test_the_daemon_keeps_scoring_the_microphone_while_it_speaks(pulse, daemon, tmp_path):
    player = _hearing(daemon, pulse, tmp_path, "wake_interrupts_llm_reply.wav", 8.0)
    try:
        events = daemon.events_until(lambda e: e["event"] == "turn", timeout_s=90)
    finally:
        daemon.terminate(timeout_s=10)
        player.wait(timeout=60)
    names = [e["event"] for e in events]
    # The second wake word was heard while the first turn thought or spoke, not after it.
    assert names.index("transcript") < names.index("wake", 2) < names.index("turn")
    assert events[-1]["outcome"] == "interrupted" and events[-1]["input_lag_ms"] is not None


def test_sigterm_during_a_reply_exits_cleanly_within_two_seconds(pulse, daemon, tmp_path):
    player = _hearing(daemon, pulse, tmp_path, "wake_interrupts_llm_reply.wav", 8.0)
    try:
        daemon.events_until(lambda e: e["event"] == "tts_start", timeout_s=60)
        status, seconds = daemon.terminate(timeout_s=2.0)
    finally:
        player.kill()
    assert status == 0 and seconds < 2.0
    last = daemon.rest_of_events()[-1]
    assert last["event"] == "turn" and last["outcome"] == "interrupted"


def test_the_assistant_saying_hey_jarvis_into_the_room_does_not_wake_it(pulse, daemon, tmp_path):
    with speaker_heard_in_room(pulse):
        player = _hearing(daemon, pulse, tmp_path, "wake_name_reply.wav", 8.0)
        try:
            daemon.events_until(lambda e: e["event"] == "tts_end", timeout_s=60)
            events = daemon.events_for(3.0)
        finally:
            daemon.terminate(timeout_s=10)
            player.wait(timeout=60)
    reply = next(e for e in events if e["event"] == "reply")
    assert "hey jarvis" in reply["text"].lower()
    assert [e["event"] for e in events].count("wake") == 1
    assert next(e for e in events if e["event"] == "turn")["outcome"] == "answered"


def test_a_timer_outlives_kill_9_and_is_announced_as_missed_after_restart(pulse, tmp_path):
    env = {**pulse, "STATE_DIRECTORY": str(tmp_path / "state")}  # its own: no timers from other tests
    with Daemon(env) as first:
        player = _hearing(first, env, tmp_path, "wake_timer_rings.wav", 0.0)
        try:
            first.events_until(lambda e: e["event"] == "reply", timeout_s=60)
        finally:
            first.process.kill()  # kill -9: no chance to save anything
            player.kill()
    time.sleep(3.5)  # the 3 s timer falls due while nothing runs
    with Daemon(env) as second:
        try:
            events = second.events_until(lambda e: e["event"] == "announcement", timeout_s=120)
        finally:
            second.terminate(timeout_s=10)
    announcement = events[-1]
    assert (announcement["kind"], announcement["missed"]) == ("timer", True)
    assert announcement["text"] == "While I was off, your 3 second timer ended."


def test_after_a_turn_in_the_room_the_daemon_serves_its_stages_histograms_on_metrics(pulse, tmp_path):
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
    with Daemon(pulse, "--config", str(config)) as daemon:
        player = _hearing(daemon, pulse, tmp_path, "wake_time.wav", 3.0)
        try:
            turn = daemon.events_until(lambda e: e["event"] == "turn", timeout_s=60)[-1]
            player.wait(timeout=60)
            scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        finally:
            stopped, _ = daemon.terminate(timeout_s=10)
    assert stopped == 0
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(scraped) for s in family.samples}
    assert samples[("assistant_turns_total", (("outcome", turn["outcome"]),))] == 1
    for stage in turn["stages_ms"]:
        assert samples[("assistant_stage_seconds_count", (("stage", stage),))] == 1
    assert samples[("assistant_voice_to_voice_seconds_count", ())] == 1
    assert samples[("assistant_sessions_open", ())] == 1
    assert samples[("process_resident_memory_bytes", ())] > 0


def served_words(port: int, path: Path, timeout_s: float = 60) -> list[str]:
    """What `assistant serve`'s asr makes of a file, asked once the port accepts connections."""
    import asyncio

    from assistant.hear.asr import words_of
    from bench.serve import pcm16k, transcribe

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return words_of(asyncio.run(transcribe(port, pcm16k(path))))
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_with_serve_with_daemon_a_satellite_and_the_room_share_the_daemons_models(pulse, tmp_path):
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[serve]\nwith_daemon = true\nuri = "tcp://127.0.0.1:{port}"\n')
    with Daemon(pulse, "--config", str(config)) as daemon:
        daemon.wait_for_log(f"serving asr, tts, wake and handle on tcp://127.0.0.1:{port}")
        player = _hearing(daemon, pulse, tmp_path, "wake_time.wav", 3.0)
        try:
            words = served_words(port, JFK)
            turn = daemon.events_until(lambda e: e["event"] == "turn", timeout_s=60)[-1]
            player.wait(timeout=60)
        finally:
            stopped, _ = daemon.terminate(timeout_s=10)
    assert "ask not what your country can do for you" in " ".join(words)
    assert turn["outcome"] == "answered" and stopped == 0


def test_a_serve_address_in_use_leaves_the_daemon_listening_and_says_why(pulse, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "config.toml"
        config.write_text(f'[serve]\nwith_daemon = true\nuri = "tcp://127.0.0.1:{port}"\n')
        with Daemon(pulse, "--config", str(config)) as daemon:
            log = daemon.wait_for_log("(serve.with_daemon): Address already in use")
            daemon.wait_until_listening()
            player = _hearing(daemon, pulse, tmp_path, "wake_time.wav", 3.0)
            try:
                turn = daemon.events_until(lambda e: e["event"] == "turn", timeout_s=60)[-1]
                player.wait(timeout=60)
            finally:
                stopped, _ = daemon.terminate(timeout_s=10)
    assert f"cannot serve Wyoming at tcp://127.0.0.1:{port} (serve.with_daemon)" in log
    assert turn["outcome"] == "answered" and stopped == 0
