"""Push-to-talk at a desk, driven through a pseudo-terminal: a key, a command played into the
room, the answer on the speakers; a key during the answer stops it; `q` quits; Ctrl-C ends it,
in a terminal or through a pipe."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from bench.live import EventReader, play_into_room, record_speaker, stop_recording, with_trailing_silence
from conftest import FIXTURES, ROOT, heard_most_of_the_reply

_STOPPED_S = 5.0
"""Liveness deadline from Ctrl-C to the exit (the issue asks for a second; this is not a speed test)."""


def _controlled_by_stdin() -> None:
    """In the child, in its own session: its stdin becomes its controlling terminal, as in a
    terminal window, so the ^C typed there is SIGINT."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PushToTalk:
    """`assistant ptt --json`, its keys and prompts on a pseudo-terminal (its controlling
    terminal) or on pipes; events on a pipe."""

    def __init__(self, env: dict, piped: bool = False) -> None:
        command = [sys.executable, "-m", "assistant.cli", "ptt", "--json"]
        self.master = None
        if piped:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=subprocess.PIPE,
                                            stderr=subprocess.PIPE, stdout=subprocess.PIPE)
            self.keys, self.prompts = self.process.stdin.fileno(), self.process.stderr.fileno()
        else:
            self.master, slave = os.openpty()
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdin=slave, stderr=slave,
                                            stdout=subprocess.PIPE, start_new_session=True,
                                            preexec_fn=_controlled_by_stdin)  # noqa: PLW1509 (no threads here)
            os.close(slave)
            self.keys = self.prompts = self.master
        self.screen = ""
        self.reader = EventReader(self.process.stdout.fileno())
        self.events = self.reader.events

    def press(self, key: str) -> None:
        os.write(self.keys, key.encode())

    def ctrl_c(self) -> None:
        """What Ctrl-C does: in a terminal the ^C byte, which the terminal turns into SIGINT;
        through a pipe, the shell's SIGINT to the job."""
        if self.master is None:
            self.process.send_signal(signal.SIGINT)
        else:
            self.press("\x03")

    def echoes(self) -> bool:
        """The terminal as a shell wants it: typing echoed, and read a line at a time."""
        flags = termios.tcgetattr(self.master)[3]
        return bool(flags & termios.ECHO) and bool(flags & termios.ICANON)

    def shows(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.screen:
            if not select.select([self.prompts], [], [], max(deadline - time.monotonic(), 0))[0]:
                raise AssertionError(f"the terminal never showed {text!r}: {self.screen!r}")
            self.screen += os.read(self.prompts, 4096).decode(errors="replace")

    def event(self, done, timeout_s: float) -> dict:
        return self.reader.until(done, timeout_s)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.master is not None:
            os.close(self.master)


@pytest.fixture
def terminal(pulse):
    running = PushToTalk(pulse)
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


def _a_turn(ptt: PushToTalk, pulse: dict, played: Path) -> None:
    """A key, a question played into the room, and the turn to its end (the answer played)."""
    ptt.shows("press Enter to talk", timeout_s=120)
    ptt.press("\n")
    ptt.shows("listening", timeout_s=10)
    player = play_into_room(pulse, played)
    try:
        ptt.event(lambda e: e["event"] == "turn", timeout_s=60)
    finally:
        player.kill()
        player.wait(timeout=10)


@pytest.mark.parametrize("piped", [False, True], ids=["terminal", "pipe"])
def test_one_ctrl_c_after_a_turn_always_exits_and_gives_the_terminal_back(pulse, tmp_path, piped):
    played = with_trailing_silence(FIXTURES / "ptt_time.wav", 5.0, tmp_path / "played.wav")
    for _ in range(3):  # it used to hang twice in seven tries
        ptt = PushToTalk(pulse, piped=piped)
        try:
            _a_turn(ptt, pulse, played)
            assert piped or not ptt.echoes()  # keys act at once while it runs
            ptt.ctrl_c()
            assert ptt.process.wait(timeout=_STOPPED_S) == 130
            assert piped or ptt.echoes()
        finally:
            ptt.close()
