"""SIGTERM and SIGINT stop `replay` and `transcribe` mid-file: what they wrote stays whole,
the status says which signal (143, 130), and nothing is printed as a failure."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import FIXTURES, ROOT

from assistant.hear.audio import read_file_audio

_STARTED_S = 180.0
"""Liveness deadline for the first line: models load first, on a shared machine."""
_STOPPED_S = 5.0
"""Liveness deadline from the signal to the exit (the issue asks for a second; this is not a speed test)."""
_STATUS = {signal.SIGTERM: 143, signal.SIGINT: 130}


def _write(path: Path, parts: list[np.ndarray]) -> Path:
    soundfile.write(path, np.concatenate(parts), 16000, subtype="PCM_16")
    return path


def _long_replay_input(tmp_path: Path) -> Path:
    """A request, then minutes of silence: replay is still reading when the turn has begun."""
    silence = read_file_audio(FIXTURES / "silence_long.wav")
    return _write(tmp_path / "long.wav", [read_file_audio(FIXTURES / "wake_time.wav"), *[silence] * 3])


def _long_speech(tmp_path: Path, minutes: float = 3.0) -> Path:
    """The fixtures' requests, 0.5 s apart, looped: speech in every transcription window."""
    gap = np.zeros(8000, np.float32)
    said = [part for path in sorted(FIXTURES.glob("wake_*.wav")) for part in (read_file_audio(path), gap)]
    one_pass = np.concatenate(said)
    return _write(tmp_path / "speech.wav", [one_pass] * int(np.ceil(minutes * 60 * 16000 / len(one_pass))))


def _stop_once_it_prints(args: list[str], signum: int) -> subprocess.CompletedProcess:
    """Start the command and send `signum` as soon as it has printed something on stdout."""
    process = subprocess.Popen([sys.executable, "-m", "assistant.cli", *args], cwd=ROOT,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([process.stdout], [], [], _STARTED_S)
        assert ready, f"nothing on stdout within {_STARTED_S} s"
        first = os.read(process.stdout.fileno(), 65536)
        assert process.poll() is None, "the command ended before it could be stopped"
        process.send_signal(signum)
        rest, stderr = process.communicate(timeout=_STOPPED_S)
    finally:
        process.kill()
        process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, (first + rest).decode(), stderr.decode())


def _assert_stopped_quietly(result: subprocess.CompletedProcess, signum: int) -> None:
    assert result.returncode == _STATUS[signum], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_replay_exits_with_the_signal_status_and_keeps_a_whole_reply_wav(tmp_path, signum):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "reply.wav"
    result = _stop_once_it_prints(["replay", str(_long_replay_input(tmp_path)), "--json", "--out", str(out)], signum)
    _assert_stopped_quietly(result, signum)
    assert all(json.loads(line)["event"] for line in result.stdout.splitlines())
    with wave.open(str(out)) as w:  # what was said so far, as a valid file
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
    assert [p.name for p in out_dir.iterdir()] == ["reply.wav"]


def test_a_stopped_transcribe_keeps_the_segments_it_printed_as_json_lines(tmp_path):
    result = _stop_once_it_prints(["transcribe", str(_long_speech(tmp_path)), "--json"], signal.SIGTERM)
    _assert_stopped_quietly(result, signal.SIGTERM)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and all(e["event"] == "segment" for e in events)  # no transcript: the file was not finished


def test_a_stopped_plain_transcribe_ends_its_one_line(tmp_path):
    result = _stop_once_it_prints(["transcribe", str(_long_speech(tmp_path))], signal.SIGINT)
    _assert_stopped_quietly(result, signal.SIGINT)
    assert result.stdout.endswith("\n") and len(result.stdout.splitlines()) == 1
    assert "jarvis" in result.stdout.lower()
