"""`assistant serve` under load: 1, 2, 4 and 8 Wyoming clients transcribing real speech at once.

    .venv/bin/python -m bench serve

Each configuration starts its own `assistant serve` process on a free loopback port (so its
memory is its own), waits until it serves, and then has N clients, each on its own
connection, transcribe the same set of real speech clips: `../shared/audio/jfk.flac` (when
it is there) and the fixtures' push-to-talk requests. `sequential` runs one client at a
time through the same N x clips, so 4 at once compare with the same 4 one after another.
Each runs 3 rounds and reports the fastest (the machine is shared: a round can be slowed
from outside; all rounds' wall times are in the JSON). Reported: per-request latency
(median, worst), total wall time and throughput (requests a second, and against one
client), the server's RSS after the models loaded, its peak with one transcription at a
time and with N sessions, what each session beyond the first added to the peak, the RSS
each open wake stream adds (its own detectors), and whether the transcripts agree with the
one-client ones (no crosstalk); and the machine's load average at the end (other work
on the same cores slows every figure).

`tests/test_serve.py` uses `ServeProcess` and the client helpers below.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import soundfile
import soxr
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

ROOT = Path(__file__).resolve().parent.parent
JFK = ROOT.parent / "shared" / "audio" / "jfk.flac"
RATE_HZ = 16000
CHUNK_BYTES = 2048
CONFIGURATIONS = ("1", "2", "4", "8", "4_sequential")
ROUNDS = 3
"""Each configuration's requests run this many times; the fastest round is reported."""
CLIPS = ("ptt_time.wav", "ptt_llm.wav")
"""The fixtures' spoken requests (beside jfk.flac) each client transcribes."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pcm16k(path: Path) -> bytes:
    """A file's audio as 16 kHz mono 16-bit PCM (channels averaged, resampled with soxr)."""
    audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != RATE_HZ:
        audio = soxr.resample(audio, rate, RATE_HZ)
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()


class ServeProcess(AbstractContextManager):
    """A real `assistant serve` on a free loopback port, started and waited for; SIGTERM at exit."""

    def __init__(self, *args: str, env: dict | None = None, timeout_s: float = 300, uri_host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.uri = f"tcp://{uri_host}:{self.port}"
        environ = {**os.environ, **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--uri", self.uri, *args],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, cwd=ROOT, env=environ)
        self.first_line = self._wait_until_serving(timeout_s)

    def _wait_until_serving(self, timeout_s: float) -> str:
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                self.stop()
                raise RuntimeError(f"assistant serve did not serve within {timeout_s} s")
        line = self.process.stdout.readline()
        if not line.startswith("serving"):
            try:
                self.process.wait(timeout=30)  # it is ending: its own status, not our SIGTERM's
            except subprocess.TimeoutExpired:
                self.stop()
            raise RuntimeError(f"assistant serve failed ({self.process.returncode}): {self.process.stderr.read()[-3000:]}")
        return line

    def rss_mb(self) -> dict[str, float]:
        """The server's resident memory now and at its peak."""
        fields = {line.split(":")[0]: int(line.split()[1]) for line in
                  Path(f"/proc/{self.process.pid}/status").read_text().splitlines() if line.endswith(" kB")}
        return {"rss_mb": round(fields["VmRSS"] / 1024, 1), "peak_mb": round(fields["VmHWM"] / 1024, 1)}

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 10) -> int:
        """SIGTERM, and the exit status (SIGKILL at the deadline)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def __exit__(self, *_) -> None:
        self.stop()


async def exchange(port: int, events: list[Event], until: tuple[str, ...], timeout_s: float = 120) -> list[Event]:
    """Send `events` on a new connection, then read until an event of a type in `until`
    (included), or the connection closes; every read has the deadline."""
    got = []
    async with asyncio.timeout(timeout_s), AsyncTcpClient("127.0.0.1", port) as client:
        for event in events:
            await client.write_event(event)
        while (event := await client.read_event()) is not None:
            got.append(event)
            if event.type in until:
                break
    return got


def audio_events(pcm: bytes, rate: int = RATE_HZ, width: int = 2, channels: int = 1,
                 chunk_bytes: int = CHUNK_BYTES, stop: bool = True) -> list[Event]:
    return [AudioStart(rate, width, channels).event(),
            *(AudioChunk(rate, width, channels, pcm[i:i + chunk_bytes]).event() for i in range(0, len(pcm), chunk_bytes)),
            *([AudioStop().event()] if stop else [])]


async def transcribe(port: int, pcm: bytes, timeout_s: float = 120) -> str:
    """What the server hears in 16 kHz mono PCM, as Home Assistant asks."""
    got = await exchange(port, [Transcribe(language="en").event(), *audio_events(pcm)], ("transcript", "error"),
                         timeout_s)
    assert got and got[-1].type == "transcript", got[-1:] or "closed"
    return got[-1].data["text"]


def clips() -> list[tuple[str, bytes]]:
    paths = ([JFK] if JFK.exists() else []) + [ROOT / "fixtures" / name for name in CLIPS]
    return [(path.name, pcm16k(path)) for path in paths]


def measure(configuration: str) -> dict:
    sessions = int(configuration.split("_")[0])
    sequential = configuration.endswith("_sequential")
    speech = clips()
    with ServeProcess() as server:
        loaded = server.rss_mb()
        alone = {name: asyncio.run(transcribe(server.port, pcm)) for name, pcm in speech}  # also warms every path
        one_session = server.rss_mb()  # its peak: one transcription at a time
        latencies: list[float] = []
        same = True

        async def client(number: int) -> None:
            nonlocal same
            for name, pcm in speech[number % len(speech):] + speech[:number % len(speech)]:
                started = time.perf_counter()
                text = await transcribe(server.port, pcm)
                latencies.append(time.perf_counter() - started)
                same = same and text == alone[name]

        async def run() -> None:
            if sequential:
                for number in range(sessions):
                    await client(number)
            else:
                await asyncio.gather(*(client(number) for number in range(sessions)))

        walls = []
        for _ in range(ROUNDS):  # the best of a few: the machine is shared, and a round can be slowed from outside
            latencies.clear()
            started = time.perf_counter()
            asyncio.run(run())
            walls.append(time.perf_counter() - started)
            round_latencies = list(latencies)
            if walls[-1] == min(walls):
                best = round_latencies
        wall_s, latencies = min(walls), best
        after = server.rss_mb()
        wake_mb = asyncio.run(wake_sessions_rss(server, sessions, speech[0][1][:2 * RATE_HZ * 2]))
    audio_s = sum(len(pcm) / 2 / RATE_HZ for _, pcm in speech) * sessions
    return {"sessions": sessions, "sequential": sequential, "requests": len(latencies),
            "audio_s": round(audio_s, 1), "wall_s": round(wall_s, 2),
            "requests_per_s": round(len(latencies) / wall_s, 2),
            "latency_median_s": round(statistics.median(latencies), 2), "latency_max_s": round(max(latencies), 2),
            "loaded_rss_mb": loaded["rss_mb"], "peak_rss_mb": after["peak_mb"],
            "one_session_peak_mb": one_session["peak_mb"],
            "per_extra_session_mb": round((after["peak_mb"] - one_session["peak_mb"]) / (sessions - 1), 1)
            if sessions > 1 and not sequential else None,
            "wall_s_rounds": [round(w, 2) for w in walls],
            "wake_sessions_rss_mb": wake_mb, "load_average_1min": round(os.getloadavg()[0], 2), "transcripts_as_alone": same, "jfk": JFK.exists()}


async def wake_sessions_rss(server: ServeProcess, sessions: int, pcm: bytes) -> dict[str, float]:
    """The server's RSS before and while `sessions` wake streams are open (each with its own
    detectors, fed 2 s of speech), and what each added."""
    from wyoming.wake import Detect

    before = server.rss_mb()["rss_mb"]
    clients = [AsyncTcpClient("127.0.0.1", server.port) for _ in range(sessions)]
    for client in clients:
        await client.connect()
        for event in [Detect(names=None).event(), *audio_events(pcm, stop=False)]:
            await client.write_event(event)
    await asyncio.sleep(3)  # every session has loaded its detector and heard its audio
    during = server.rss_mb()["rss_mb"]
    for client in clients:
        await client.disconnect()
    return {"before_mb": before, "open_mb": during, "per_session_mb": round((during - before) / sessions, 1)}


def table(results: dict) -> str:
    one = results.get("1", {}).get("requests_per_s")
    rows = [("| clients | requests | wall s | req/s | vs one | latency median s | worst s | RSS loaded MB | "
             "peak MB | MB per extra session | MB per wake session | transcripts as alone |"),
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        ratio = f"{r['requests_per_s'] / one:.2f}x" if one else "-"
        rows.append(f"| {name.replace('_', ' ')} | {r['requests']} | {r['wall_s']} | {r['requests_per_s']} | {ratio} | "
                    f"{r['latency_median_s']} | {r['latency_max_s']} | {r['loaded_rss_mb']} | {r['peak_rss_mb']} | "
                    f"{r['per_extra_session_mb'] if r['per_extra_session_mb'] is not None else '-'} | "
                    f"{r['wake_sessions_rss_mb']['per_session_mb']} | "
                    f"{'yes' if r['transcripts_as_alone'] else 'NO'} |")
    return "\n".join(rows)
