"""A real sound server for live-audio tests and benchmarks: a private PulseAudio with null sinks.

`room` stands for the air: a fixture played into it is what the assistant's microphone
(`room.monitor`) hears. The assistant plays into `speaker`, whose monitor can be recorded.
Every wait has a deadline, so a caller can fail but never hang.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
_TOOLS = ("pulseaudio", "pactl", "paplay", "parecord")


def missing_tools() -> list[str]:
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    libs = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    return missing + ([] if "libportaudio.so.2" in libs else ["libportaudio2"])


@contextlib.contextmanager
def private_pulseaudio(runtime: Path) -> Iterator[dict[str, str]]:
    """Start PulseAudio in `runtime`; yields the environment that points a process at it."""
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime),
           "PULSE_SOURCE": "room.monitor", "PULSE_SINK": "speaker"}
    env.pop("PULSE_SERVER", None)
    subprocess.run(["pulseaudio", "-D", "-n", "--exit-idle-time=-1", "--load=module-native-protocol-unix",
                    "--load=module-null-sink sink_name=room", "--load=module-null-sink sink_name=speaker"],
                   env=env, check=True, capture_output=True, timeout=30)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("PulseAudio did not start")
            time.sleep(0.1)
        yield env
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True, timeout=30)


@contextlib.contextmanager
def speaker_heard_in_room(env: dict, latency_ms: int = 60) -> Iterator[None]:
    """Loop the speaker back into the room, so the assistant's microphone hears its own voice."""
    loaded = subprocess.run(["pactl", "load-module", "module-loopback", "source=speaker.monitor", "sink=room",
                             f"latency_msec={latency_ms}"], env=env, check=True, capture_output=True, text=True)
    try:
        yield
    finally:
        subprocess.run(["pactl", "unload-module", loaded.stdout.strip()], env=env, capture_output=True)


def record_speaker(env: dict, path: Path) -> subprocess.Popen:
    return subprocess.Popen(["parecord", "--device=speaker.monitor", "--file-format=wav", "--channels=1",
                             "--rate=16000", str(path)], env=env)


def stop_recording(recorder: subprocess.Popen) -> None:
    recorder.send_signal(signal.SIGINT)
    recorder.wait(timeout=10)


def play_into_room(env: dict, path: Path) -> subprocess.Popen:
    return subprocess.Popen(["paplay", "--device=room", str(path)], env=env)


def with_trailing_silence(source: Path, seconds: float, out: Path) -> Path:
    """The fixture, then silence: a null sink's monitor only runs while something plays,
    and the assistant closes a turn when it hears the room past the end of its reply."""
    audio, rate_hz = soundfile.read(source, dtype="int16")
    silence = np.zeros((int(seconds * rate_hz),) + audio.shape[1:], dtype=np.int16)
    soundfile.write(out, np.concatenate([audio, silence]), rate_hz)
    return out


def loud_seconds(path: Path, level: int = 500) -> float:
    """How long the recording is audible, counted in 20 ms windows."""
    with wave.open(str(path)) as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        window = w.getframerate() // 50
    windows = samples[:len(samples) // window * window].reshape(-1, window)
    return float((np.abs(windows).max(axis=1) > level).sum() / 50)


class Daemon:
    """`assistant daemon --json` on the private sound server, its events read with deadlines."""

    def __init__(self, env: dict, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "assistant.cli", "daemon", "--json", *args],
                                        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL)
        self.reader = EventReader(self.process.stdout.fileno())
        self.events = self.reader.events
        self.log = ""
        """What the daemon logged (stderr), as far as it was read."""

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *_exc) -> None:
        """Whatever happened, no daemon outlives its caller."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def wait_until_listening(self, timeout_s: float = 120) -> None:
        self.wait_for_log("listening", timeout_s)

    def wait_for_log(self, text: str, timeout_s: float = 120) -> str:
        """Read the daemon's log (stderr) until `text` is in it; the whole log read so far."""
        deadline = time.monotonic() + timeout_s
        while text not in self.log:
            data = _read(self.process.stderr.fileno(), deadline)
            if data is None:
                raise AssertionError(f"the daemon never logged {text!r}: {self.log}")
            self.log += data.decode(errors="replace")
        return self.log

    def events_until(self, done, timeout_s: float) -> list[dict]:
        """Events until `done(event)` is true for one; all of them so far."""
        self.reader.until(done, timeout_s)
        return self.events

    def events_for(self, seconds: float) -> list[dict]:
        """Every event printed within the next `seconds`."""
        try:
            self.events_until(lambda e: False, seconds)
        except AssertionError:
            pass
        return self.events

    def terminate(self, timeout_s: float) -> tuple[int, float]:
        """SIGTERM; the exit status and the seconds it took (a still-running daemon is killed)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            return -1, time.monotonic() - started
        return status, time.monotonic() - started

    def rest_of_events(self) -> list[dict]:
        """Once the daemon has exited: the events it printed last."""
        self.reader.pending += self.process.stdout.read()
        self.reader.take(lambda _e: False)
        return self.events


class EventReader:
    """JSON events, one per line, read from a pipe with deadlines."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.events: list[dict] = []
        self.pending = b""

    def until(self, done, timeout_s: float) -> dict:
        """Read until `done(event)` is true for one, and return it."""
        deadline = time.monotonic() + timeout_s
        while (found := self.take(done)) is None:
            data = _read(self.fd, deadline)
            if data is None:
                raise AssertionError(f"no such event within {timeout_s} s; events: {self.events}")
            self.pending += data
        return found

    def take(self, done) -> dict | None:
        """The complete lines read so far, up to the first event `done` accepts."""
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            if line.strip():
                self.events.append(json.loads(line))
                if done(self.events[-1]):
                    return self.events[-1]
        return None


def _read(fd: int, deadline: float) -> bytes | None:
    """Whatever the pipe holds, or None at the deadline or at its end; reads the raw
    descriptor, since a buffered reader may hold data the selector cannot see."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
        return None
    return os.read(fd, 65536) or None


class NotifySocket:
    """Stands in for systemd's notify socket: a datagram socket whose messages a test reads.
    A thread drains it at once, as systemd does, so the sender's queue never fills."""

    def __init__(self, path: Path) -> None:
        import queue
        import socket
        import threading

        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.messages: list[str] = []
        self._arrived: queue.Queue[str] = queue.Queue()
        self._empty = queue.Empty
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        while True:
            try:
                self._arrived.put(self.socket.recv(4096).decode())
            except OSError:  # closed
                return

    def env(self, watchdog_s: float | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": str(self.path)}
        if watchdog_s is not None:
            env["WATCHDOG_USEC"] = str(int(watchdog_s * 1_000_000))
        return env

    def until(self, done, timeout_s: float) -> list[str]:
        """Messages until `done(message)` is true for one; all of them so far."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.messages.append(self._arrived.get(timeout=max(deadline - time.monotonic(), 0.0)))
            except self._empty:
                raise AssertionError(f"no such notify message within {timeout_s} s; got {self.messages}") from None
            if done(self.messages[-1]):
                return self.messages

    def during(self, seconds: float) -> list[str]:
        """Every message within the next `seconds`."""
        with contextlib.suppress(AssertionError):
            self.until(lambda _m: False, seconds)
        return self.messages

    def close(self) -> None:
        self.socket.close()
