"""Push-to-talk at a desk, driven through a pseudo-terminal: a key, a command played into the
room, the answer on the speakers; a key during the answer stops it; `q` quits."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest

from bench.live import EventReader, play_into_room, record_speaker, stop_recording, with_trailing_silence
from conftest import FIXTURES, ROOT, heard_most_of_the_reply


class Terminal:
    """`assistant ptt --json` with a pseudo-terminal for its keys and prompts; events on a pipe."""

    def __init__(self, env: dict) -> None:
        self.master, slave = os.openpty()
        self.process = subprocess.Popen([sys.executable, "-m", "assistant.cli", "ptt", "--json"], env=env, cwd=ROOT,
                                        stdin=slave, stderr=slave, stdout=subprocess.PIPE)
        os.close(slave)
        self.screen = ""
        self.reader = EventReader(self.process.stdout.fileno())
        self.events = self.reader.events

    def press(self, key: str) -> None:
        os.write(self.master, key.encode())

    def shows(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.screen:
            if not select.select([self.master], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise AssertionError(f"the terminal never showed {text!r}: {self.screen!r}")
            self.screen += os.read(self.master, 4096).decode(errors="replace")

    def event(self, done, timeout_s: float) -> dict:
        return self.reader.until(done, timeout_s)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.master)


@pytest.fixture
def terminal(pulse):
    running = Terminal(pulse)
    yield running
    running.close()


def test_a_key_then_a_question_is_answered_on_the_speakers(pulse, terminal, tmp_path):
    recording = tmp_path / "heard.wav"
    recorder = record_speaker(pulse, recording)
    terminal.shows("press Enter to talk", timeout_s=120)
    terminal.press("\n")
    terminal.shows("listening", timeout_s=10)
    player = play_into_room(pulse, with_trailing_silence(FIXTURES / "ptt_time.wav", 5.0, tmp_path / "played.wav"))
    try:
        turn = terminal.event(lambda e: e["event"] == "turn", timeout_s=60)
        route = next(e for e in terminal.events if e["event"] == "route")
    finally:
        player.wait(timeout=60)
        stop_recording(recorder)
    assert (route["tier"], route["intent"]) == ("fast_path", "GetTime")
    assert turn["outcome"] == "answered"
    assert [e["event"] for e in terminal.events].count("wake") == 0
    assert heard_most_of_the_reply(recording, terminal.events)
    terminal.press("q")
    assert terminal.process.wait(timeout=10) == 0


def test_a_key_during_the_answer_stops_it(pulse, terminal, tmp_path):
    terminal.shows("press Enter to talk", timeout_s=120)
    terminal.press("\n")
    terminal.shows("listening", timeout_s=10)
    player = play_into_room(pulse, with_trailing_silence(FIXTURES / "ptt_time.wav", 5.0, tmp_path / "played.wav"))
    try:
        terminal.event(lambda e: e["event"] == "tts_start", timeout_s=60)
        terminal.press(" ")
        ended = terminal.event(lambda e: e["event"] == "tts_end", timeout_s=10)
        turn = terminal.event(lambda e: e["event"] == "turn", timeout_s=10)
    finally:
        player.kill()
    assert ended["interrupted"] and ended["played_s"] < ended["duration_s"]
    assert turn["outcome"] == "interrupted"
    terminal.shows("stopped", timeout_s=5)


def test_without_a_microphone_push_to_talk_says_so_in_one_line(tmp_path):
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/no-such-server", "STATE_DIRECTORY": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "ptt"], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 69
    lines = [line for line in result.stderr.splitlines() if line.startswith("assistant:")]
    assert len(lines) == 1 and "microphone" in lines[0] and "audio.input_device" in lines[0]
    assert "Traceback" not in result.stderr
