"""The microphone and the speakers, on a real sound server: a private PulseAudio with null sinks.

`room` stands for the air: the test plays a fixture into it and the assistant records
`room.monitor`. The assistant plays into `speaker`, which the test records.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import FIXTURES, ROOT

_TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")


def _missing() -> list[str]:
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    libs = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    return missing + ([] if "libportaudio.so.2" in libs else ["libportaudio2"])


@pytest.fixture(scope="module")
def pulse(tmp_path_factory):
    """Environment variables that point a process at a fresh PulseAudio server."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"live-audio tests need {', '.join(missing)} (scripts/test installs them as root)")
        pytest.skip(f"needs {', '.join(missing)}")
    runtime = tmp_path_factory.mktemp("pulse-runtime")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime),
           "PULSE_SOURCE": "room.monitor", "PULSE_SINK": "speaker"}
    env.pop("PULSE_SERVER", None)
    subprocess.run(["pulseaudio", "-D", "-n", "--exit-idle-time=-1", "--load=module-native-protocol-unix",
                    "--load=module-null-sink sink_name=room", "--load=module-null-sink sink_name=speaker"],
                   env=env, check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + 10
    while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "PulseAudio did not start"
        time.sleep(0.1)
    yield env
    subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True, timeout=30)


def _record(env: dict, path: Path) -> subprocess.Popen:
    return subprocess.Popen(["parecord", "--device=speaker.monitor", "--file-format=wav", "--channels=1",
                             "--rate=16000", str(path)], env=env)


def _loudness(path: Path) -> float:
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return float(np.abs(samples).max()) if len(samples) else 0.0


def test_replay_without_out_plays_the_reply_on_the_speakers(pulse, tmp_path):
    recording = tmp_path / "heard.wav"
    recorder = _record(pulse, recording)
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "replay", str(FIXTURES / "ptt_time.wav"),
                             "--ptt", "--json"], env=pulse, cwd=ROOT, capture_output=True, text=True, timeout=120)
    time.sleep(0.5)
    recorder.send_signal(signal.SIGINT)
    recorder.wait(timeout=10)
    assert result.returncode == 0, result.stderr
    assert any(json.loads(line)["event"] == "tts_start" for line in result.stdout.splitlines())
    assert _loudness(recording) > 1000


def _with_trailing_silence(source: Path, seconds: float, out: Path) -> Path:
    """The fixture, then silence: a null sink's monitor only runs while something plays,
    and the assistant closes a turn when it hears the room past the end of its reply."""
    audio, rate_hz = soundfile.read(source, dtype="int16")
    soundfile.write(out, np.concatenate([audio, np.zeros(int(seconds * rate_hz), dtype=np.int16)]), rate_hz)
    return out


def test_the_daemon_hears_the_room_and_answers_on_the_speakers(pulse, tmp_path):
    recording = tmp_path / "heard.wav"
    recorder = _record(pulse, recording)
    played = _with_trailing_silence(FIXTURES / "wake_time.wav", 10.0, tmp_path / "played.wav")
    daemon = subprocess.Popen([sys.executable, "-m", "assistant.cli", "daemon", "--json"], env=pulse, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_line(daemon.stderr, "listening", timeout_s=120)
        player = subprocess.Popen(["paplay", "--device=room", str(played)], env=pulse)
        events = _events_until_turn(daemon.stdout, timeout_s=60)
        player.wait(timeout=60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        stopped = daemon.wait(timeout=10)
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=10)
    assert stopped == 0, "SIGTERM stops the daemon cleanly"
    names = [e["event"] for e in events]
    assert names[:2] == ["wake_candidate", "wake"]
    transcript = next(e for e in events if e["event"] == "transcript")
    assert "time" in transcript["text"].lower()
    assert events[-1]["outcome"] == "answered"
    assert _loudness(recording) > 1000


def _wait_for_line(stream, needle: str, timeout_s: float) -> None:
    for line in _lines(stream, timeout_s):
        if needle in line:
            return
    raise AssertionError(f"no line with {needle!r} within {timeout_s} s")


def _events_until_turn(stream, timeout_s: float) -> list[dict]:
    events = []
    for line in _lines(stream, timeout_s):
        events.append(json.loads(line))
        if events[-1]["event"] == "turn":
            return events
    raise AssertionError(f"no turn within {timeout_s} s; events: {events}")


def _lines(stream, timeout_s: float):
    """Lines from a pipe until the deadline: a test can fail but never hang.

    Reads the raw descriptor: a buffered readline may hold a line the selector cannot see.
    """
    deadline = time.monotonic() + timeout_s
    fd, pending = stream.fileno(), b""
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode()
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return
        data = os.read(fd, 65536)
        if not data:
            return
        pending += data
