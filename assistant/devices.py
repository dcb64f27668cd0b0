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

from .audio import RATE_HZ, AudioChunk, Framer, apply_gain, float_to_int16, int16_to_float
from .config import AudioSettings
from .errors import DeviceError
from .player import Stopped

log = logging.getLogger(__name__)


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as err:  # the Python package is there but not the PortAudio library
        raise DeviceError(f"no sound system: PortAudio is not installed ({err}); "
                          "on Debian: apt-get install libportaudio2", code="no_portaudio") from None
    return sounddevice


def _device(name: str) -> str | int | None:
    if name == "default":
        return None
    return int(name) if name.isdigit() else name


class Microphone:
    """16 kHz mono chunks from an input device, stamped with their stream time."""

    def __init__(self, settings: AudioSettings) -> None:
        self.settings = settings
        self.sd = _sounddevice()

    async def chunks(self, on_open: Callable[[], None] = lambda: None) -> AsyncIterator[AudioChunk]:
        """The stream of chunks; `on_open` is called once the device is really recording."""
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[tuple[np.ndarray, float]] = asyncio.Queue()

        def on_audio(data: np.ndarray, _frames: int, _time: Any, status: Any) -> None:
            if status:
                log.warning("microphone: %s", status)
            loop.call_soon_threadsafe(blocks.put_nowait, (data[:, 0].copy(), time.perf_counter()))

        try:
            stream = self.sd.InputStream(samplerate=RATE_HZ, channels=1, dtype="float32",
                                         blocksize=RATE_HZ * self.settings.block_ms // 1000,
                                         device=_device(self.settings.input_device), callback=on_audio)
        except (self.sd.PortAudioError, ValueError) as err:
            raise DeviceError(f"cannot open the microphone '{self.settings.input_device}' "
                              f"(audio.input_device): {err}", code="no_input") from None
        framer = Framer()
        with stream:
            on_open()
            while True:
                block, received_wall = await blocks.get()
                for chunk in framer.push(apply_gain(block, self.settings.input_gain_db), received_wall):
                    yield chunk


class DevicePlayer:
    """Plays replies on an output device through a callback stream that counts what it plays.

    `play` only queues; the sound card's callback takes frames from the queue, so `stop`
    takes effect at the next callback (a few ms) plus the device's own latency, and
    `played_s` counts the frames really handed to the device. The stream is opened at the
    voice's rate, or at the device's own rate with the speech resampled when it refuses.
    """

    def __init__(self, settings: AudioSettings, rate_hz: int) -> None:
        self.sd = _sounddevice()
        self.volume = settings.output_volume
        """Loudness, 0 to 1, applied as frames are played, so a change is heard at once."""
        self.voice_rate_hz = rate_hz
        self._lock = threading.Lock()
        self._queue: deque[tuple[np.ndarray, bool]] = deque()
        """Float samples at the device's rate, each marked wake-like or not."""
        self._offset = 0
        self._played = 0
        self._wake_like_wall = -math.inf
        self._last_heard_wall = 0.0
        self.stream = self._open(settings.output_device)
        self.rate_hz = int(self.stream.samplerate)
        self.stream.start()

    def _open(self, name: str) -> Any:
        device = _device(name)
        for rate_hz in (self.voice_rate_hz, None):
            try:
                if rate_hz is None:
                    rate_hz = int(self.sd.query_devices(device, "output")["default_samplerate"])
                return self.sd.OutputStream(samplerate=rate_hz, channels=1, dtype="int16", device=device,
                                            latency="low", callback=self._callback)
            except (self.sd.PortAudioError, ValueError) as err:
                failure = err
        raise DeviceError(f"cannot open the speakers '{name}' (audio.output_device): {failure}",
                          code="no_output") from None

    def begin(self) -> None:
        with self._lock:
            self._queue.clear()
            self._offset = self._played = 0

    def play(self, chunk: AudioChunk, wake_like: bool = False) -> None:
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
            self._queue.clear()
            self._offset = 0
            stop_ms = max(0.0, self._last_heard_wall - time.perf_counter()) * 1000
            return Stopped(self._played / self.rate_hz, round(stop_ms, 1))

    @property
    def played_s(self) -> float:
        return self._played / self.rate_hz

    @property
    def end_t(self) -> None:
        return None

    def finished(self) -> bool:
        with self._lock:
            return not self._queue and time.perf_counter() >= self._last_heard_wall

    def wake_like_within(self, tail_s: float) -> bool:
        return time.perf_counter() - self._wake_like_wall < tail_s

    def advance(self, t: float) -> None:
        pass

    def _callback(self, out: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        """The sound card's thread: copy queued frames at the current volume, count them."""
        out.fill(0)
        filled = 0
        with self._lock:
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
            if filled:
                # The last frame written here is heard after the device's latency.
                self._last_heard_wall = time.perf_counter() + self.stream.latency + filled / self.rate_hz

    def close(self, drain: bool = True) -> None:
        """Let what is queued play out (unless told not to), then release the device."""
        while drain and not self.finished():
            time.sleep(0.02)
        if drain:
            self.stream.stop()
        else:  # drop what the device still holds: a stop is a stop
            self.stream.abort()
        self.stream.close()
