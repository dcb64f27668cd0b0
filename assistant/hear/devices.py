"""The microphone and the speakers, through sounddevice (PortAudio).

The only module that imports sounddevice: replay and the tests run without PortAudio.
The sound card's callback only copies bytes onto the event loop; no model runs there.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import soxr

from assistant.config import AudioSettings
from assistant.errors import DeviceError
from assistant.hear.audio import (
    RATE_HZ,
    AudioChunk,
    Framer,
    apply_gain,
    float_to_int16,
    int16_to_float,
)
from assistant.speak.player import Stopped

log = logging.getLogger(__name__)


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as err:  # the Python package is there but not the PortAudio library
        raise DeviceError(f"no sound system: PortAudio is not installed ({err}); "
                          "on Debian: apt-get install libportaudio2", code="no_portaudio") from None
    return sounddevice


def _why(err: Exception) -> str:
    """PortAudio's reason, in words: "device -1" is its way of saying there is no such default."""
    text = str(err)
    return "the system has no default device (no sound card or sound server)" if "device -1" in text else text


def _device(name: str) -> str | int | None:
    if name == "default":
        return None
    return int(name) if name.isdigit() else name


_STALL_S = 2.0
"""A microphone that delivers nothing for this long has failed, whatever PortAudio says."""
_FIRST_BLOCK_S = 10.0
_RETRY_FIRST_S = 1.0
_RETRY_MAX_S = 30.0


class Microphone:
    """16 kHz mono chunks from an input device, stamped with their stream time."""

    def __init__(self, settings: AudioSettings) -> None:
        self.settings = settings
        self.sd = _sounddevice()
        self.framer = Framer()
        """Kept across reopenings, so the input clock never goes back."""

    def check(self) -> None:
        """Open the device and close it again: DeviceError now rather than later."""
        self._open(callback=None).close()

    def _open(self, callback: Callable | None) -> Any:
        try:
            return self.sd.InputStream(samplerate=RATE_HZ, channels=1, dtype="float32",
                                       blocksize=RATE_HZ * self.settings.block_ms // 1000,
                                       device=_device(self.settings.input_device), callback=callback)
        except (self.sd.PortAudioError, ValueError) as err:
            raise DeviceError(f"cannot open the microphone '{self.settings.input_device}' "
                              f"(audio.input_device): {_why(err)}", code="no_input") from None

    async def chunks(self, on_open: Callable[[], None] = lambda: None) -> AsyncIterator[AudioChunk]:
        """The stream of chunks; `on_open` is called once the device delivers its first block.
        Raises DeviceError when the device cannot be opened, fails, or stops delivering audio."""
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[tuple[np.ndarray, float]] = asyncio.Queue()

        def on_audio(data: np.ndarray, _frames: int, _time: Any, status: Any) -> None:
            if status:
                log.debug("microphone: %s", status)
            loop.call_soon_threadsafe(blocks.put_nowait, (data[:, 0].copy(), time.perf_counter()))

        stream = self._open(on_audio)
        with stream:
            waited_s = _FIRST_BLOCK_S  # the first block may take a while (seen: 2 s from PulseAudio)
            while True:
                try:
                    # Not wait_for: before Python 3.12 it drops a cancel that comes as a block
                    # arrives, and the stream then runs on after Ctrl-C or a stop.
                    async with asyncio.timeout(waited_s):
                        block, received_wall = await blocks.get()
                except TimeoutError:
                    raise DeviceError(f"the microphone '{self.settings.input_device}' stopped delivering audio",
                                      code="input_stalled") from None
                if waited_s == _FIRST_BLOCK_S:
                    waited_s = _STALL_S
                    on_open()
                for chunk in self.framer.push(apply_gain(block, self.settings.input_gain_db), received_wall):
                    yield chunk

    async def chunks_forever(self, on_state: Callable[[str], None], on_waiting: Callable[[], None]
                             ) -> AsyncIterator[AudioChunk]:
        """Chunks for as long as the caller wants them: a missing, busy, failed or silent device
        is reopened with capped backoff. `on_state` hears "listening" or why not and when the
        next try is; `on_waiting` is called about every second while backing off."""
        delay_s = _RETRY_FIRST_S
        last_problem = None

        def listening() -> None:
            nonlocal delay_s
            delay_s = _RETRY_FIRST_S  # it worked: a later fault starts the backoff afresh
            on_state("listening")

        while True:
            try:
                async for chunk in self.chunks(on_open=listening):
                    yield chunk
            except DeviceError as err:
                if err.message != last_problem:  # logged once, not at every retry
                    log.warning("%s; retrying", err.message)
                    last_problem = err.message
                on_state(f"no microphone ({err.code}), retrying in {delay_s:g} s")
                await _wait(delay_s, on_waiting)
                delay_s = min(delay_s * 2, _RETRY_MAX_S)


async def _wait(seconds: float, on_waiting: Callable[[], None]) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        on_waiting()
        await asyncio.sleep(min(left, 1.0))


class DevicePlayer:
    """Plays replies on an output device through a callback stream that counts what it plays.

    `play` only queues; the sound card's callback takes frames from the queue, so `stop`
    takes effect at the next callback (a few ms) plus the device's own latency, and
    `played_s` counts the frames really handed to the device. The stream is opened at the
    voice's rate, or at the device's own rate with the speech resampled when it refuses.
    """

    def __init__(self, settings: AudioSettings, rate_hz: int, must_open: bool = False) -> None:
        self.sd = _sounddevice()
        self.volume = settings.output_volume
        """Loudness, 0 to 1, applied as frames are played, so a change is heard at once."""
        self.volume_before_mute: float | None = None
        self.voice_rate_hz = rate_hz
        self._lock = threading.Lock()
        self._queue: deque[tuple[np.ndarray, bool]] = deque()
        """Float samples at the device's rate, each marked wake-like or not."""
        self._offset = 0
        self._played = 0
        self._wake_like_wall = -math.inf
        self._last_heard_wall = 0.0
        self._called_wall = 0.0
        self._on_empty: list[Callable[[], None]] = []
        """Told (from whatever thread empties it) when the queue runs empty: `drained` waits on it."""
        self.output_device = settings.output_device
        self.stream: Any | None = None
        """None while there are no speakers: replies then go unheard, and each new one tries again."""
        self.rate_hz = rate_hz
        self._retry_wall = 0.0
        self._retry_s = _RETRY_FIRST_S
        self._problem: str | None = None
        if must_open:  # replay's playback: no speakers is the caller's to report
            self._started(self._open(self.output_device))
        else:
            self._reopen()

    def _reopen(self) -> None:
        """Open the speakers, unless the last try was too recent (capped backoff)."""
        now = time.perf_counter()
        if self.stream is not None or now < self._retry_wall:
            return
        try:
            stream = self._open(self.output_device)
        except DeviceError as err:
            if err.message != self._problem:
                log.warning("%s; replies are not heard until it is back", err.message)
                self._problem = err.message
            self._retry_wall = now + self._retry_s
            self._retry_s = min(self._retry_s * 2, _RETRY_MAX_S)
            return
        self._started(stream)
        log.info("speakers open at %d Hz", self.rate_hz)

    def _started(self, stream: Any) -> None:
        with self._lock:
            self.stream, self.rate_hz = stream, int(stream.samplerate)
            self._called_wall = time.perf_counter()
        self._retry_s, self._problem = _RETRY_FIRST_S, None

    def _lost(self, why: str) -> None:
        """The speakers failed while playing: drop them and what was queued; a later reply reopens them."""
        log.warning("the speakers '%s' %s; replies are not heard until they are back", self.output_device, why)
        stream, self.stream = self.stream, None
        with self._lock:
            self._emptied()
        self._problem = why
        try:
            stream.abort()
            stream.close()
        except Exception as err:  # a dead device may fail in any way on the way out
            log.debug("closing the failed speakers: %s", err)

    def _open(self, name: str) -> Any:
        device = _device(name)
        for rate_hz in (self.voice_rate_hz, None):
            try:
                if rate_hz is None:
                    rate_hz = int(self.sd.query_devices(device, "output")["default_samplerate"])
                stream = self.sd.OutputStream(samplerate=rate_hz, channels=1, dtype="int16", device=device,
                                              latency="low", callback=self._callback)
                stream.start()
                return stream
            except (self.sd.PortAudioError, ValueError) as err:
                failure = err
        raise DeviceError(f"cannot open the speakers '{name}' (audio.output_device): {_why(failure)}",
                          code="no_output") from None

    def begin(self) -> None:
        self._reopen()
        with self._lock:
            self._emptied()
            self._played = 0

    def play(self, chunk: AudioChunk, wake_like: bool = False) -> None:
        if self.stream is None:
            return
        audio = int16_to_float(chunk.as_int16())
        if chunk.rate_hz != self.rate_hz:
            audio = soxr.resample(audio, chunk.rate_hz, self.rate_hz)
        with self._lock:
            self._queue.append((audio, wake_like))

    def write(self, chunk: AudioChunk) -> None:
        """As a replay's sink: play what the replay's clock says was heard."""
        self.play(chunk)

    def stop(self) -> Stopped:
        with self._lock:
            self._emptied()
            stop_ms = max(0.0, self._last_heard_wall - time.perf_counter()) * 1000
            return Stopped(self._played / self.rate_hz, round(stop_ms, 1))

    @property
    def played_s(self) -> float:
        return self._played / self.rate_hz

    async def drained(self) -> None:
        """Returns once the sound card has played the last frame queued, or the speakers failed."""
        loop = asyncio.get_running_loop()
        emptied = asyncio.Event()

        def tell() -> None:
            loop.call_soon_threadsafe(emptied.set)

        with self._lock:
            waiting = bool(self._queue)
            if waiting:
                self._on_empty.append(tell)
        try:
            while waiting:
                try:
                    async with asyncio.timeout(_STALL_S):
                        await emptied.wait()
                    waiting = False
                except TimeoutError:
                    waiting = not self.finished()  # speakers that stopped taking audio are dropped there
        finally:
            with self._lock:
                if tell in self._on_empty:  # cancelled: the card must not call into a loop that may be gone
                    self._on_empty.remove(tell)
        await asyncio.sleep(max(0.0, self._last_heard_wall - time.perf_counter()))

    def play_out(self) -> None:
        pass  # the sound card plays on its own

    def finished(self) -> bool:
        with self._lock:
            waiting = bool(self._queue)
            silent_s = time.perf_counter() - self._called_wall
        if waiting and self.stream is not None and silent_s > _STALL_S:
            self._lost(f"stopped taking audio for {silent_s:.1f} s")
            return True
        return not waiting and time.perf_counter() >= self._last_heard_wall

    def wake_like_within(self, tail_s: float) -> bool:
        return time.perf_counter() - self._wake_like_wall < tail_s

    def advance(self, t: float) -> None:
        pass

    def _callback(self, out: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        """The sound card's thread: copy queued frames at the current volume, count them."""
        out.fill(0)
        filled = 0
        with self._lock:
            self._called_wall = time.perf_counter()
            while filled < frames and self._queue:
                audio, wake_like = self._queue[0]
                take = min(frames - filled, len(audio) - self._offset)
                out[filled:filled + take, 0] = float_to_int16(audio[self._offset:self._offset + take] * self.volume)
                filled += take
                self._offset += take
                if wake_like:
                    self._wake_like_wall = time.perf_counter()
                if self._offset == len(audio):
                    self._queue.popleft()
                    self._offset = 0
            self._played += filled
            if filled and (stream := self.stream) is not None:
                # The last frame written here is heard after the device's latency.
                self._last_heard_wall = time.perf_counter() + stream.latency + filled / self.rate_hz
            if not self._queue:
                self._emptied()

    def _emptied(self) -> None:
        """The queue is empty (played, stopped or dropped): tell whoever waits for it. Holding the lock."""
        self._queue.clear()
        self._offset = 0
        on_empty, self._on_empty = self._on_empty, []
        for tell in on_empty:
            tell()

    def close(self, drain: bool = True) -> None:
        """Let what is queued play out (unless told not to), then release the device."""
        while drain and not self.finished():
            time.sleep(0.02)
        if self.stream is None:
            return
        if drain:
            self.stream.stop()
        else:  # drop what the device still holds: a stop is a stop
            self.stream.abort()
        self.stream.close()
