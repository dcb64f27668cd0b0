"""Where reply speech plays: what every player does, and the replay player on the input clock.

A player takes sentences of speech as they are synthesised (`play` never blocks), can be
stopped at once (`stop`), knows how much was really heard (`played_s`), and offers the
moment everything queued has played as something to await (`drained`). The live
player, on a sound card, is `devices.DevicePlayer`; `ReplayPlayer` plays on the input
clock, so replay hears and cuts replies exactly as a live run would.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import soxr

from assistant.hear.audio import RATE_HZ, AudioChunk, float_to_int16, int16_to_float


@dataclass(frozen=True)
class Stopped:
    played_s: float
    """How much of the reply was heard, in s."""
    stop_ms: float | None = None
    """On a sound card: wall time from the stop to the last frame heard, in ms."""


class Player(Protocol):
    volume: float
    """Loudness, 0 to 1; a change is heard at once."""
    volume_before_mute: float | None
    """The loudness to come back to on "unmute"; None when not muted."""

    def begin(self) -> None:
        """A new reply: forget what the last one played."""

    def play(self, chunk: AudioChunk, wake_like: bool = False) -> None:
        """Queue speech after what is queued; `wake_like` marks speech that sounds like the wake word."""

    def stop(self) -> Stopped:
        """Cut the reply now."""

    @property
    def played_s(self) -> float: ...

    def drained(self) -> Awaitable[float | None]:
        """Completes once everything queued has played (or was cut), with the input time the
        last sample played at when the player keeps the input clock (None on a sound card)."""

    def play_out(self) -> None:
        """The input has ended: what is queued plays to its end now (a sound card plays on its own)."""

    def wake_like_within(self, tail_s: float) -> bool:
        """Speech marked wake-like is playing, or stopped playing less than `tail_s` ago."""

    def advance(self, t: float) -> None:
        """The input clock has reached t (a sound card keeps its own time and ignores it)."""


class AudioSink(Protocol):
    """Where played audio ends up: a WAV file, the speakers, or nowhere."""

    def write(self, chunk: AudioChunk) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Scheduled:
    start_t: float
    chunk: AudioChunk
    wake_like: bool

    @property
    def end_t(self) -> float:
        return self.start_t + self.chunk.duration_s

    def heard_s(self, until_t: float) -> float:
        """How much of it has played by input time `until_t`."""
        return min(max(until_t - self.start_t, 0.0), self.chunk.duration_s)


class ReplayPlayer:
    """Plays replies on the input clock and hands what was heard, as it is heard, to a sink.

    A sentence starts when it is queued (input time `clock()`) or when the one before it
    ends, whichever is later. A stop at input time t cuts the reply there, so the sink
    gets exactly what a speaker would have played.
    """

    def __init__(self, sink: AudioSink, clock: Callable[[], float]) -> None:
        self.sink = sink
        self.clock = clock
        self._queue: list[_Scheduled] = []
        self._written = 0
        """Samples of the queue already handed to the sink."""
        self._cut_t = math.inf
        self._heard_t = -math.inf
        """Input time up to which the sink has been handed what played."""
        self._drained: list[asyncio.Future[float | None]] = []
        self._resampled: dict[int, np.ndarray] = {}
        self.volume = 1.0
        """Applied as audio is heard, so the sink gets what a speaker at this level would play."""
        self.volume_before_mute: float | None = None

    def begin(self) -> None:
        self._queue, self._written, self._cut_t, self._resampled = [], 0, math.inf, {}

    def play(self, chunk: AudioChunk, wake_like: bool = False) -> None:
        start_t = max(self.clock(), self._queue[-1].end_t if self._queue else -math.inf)
        self._queue.append(_Scheduled(start_t, chunk, wake_like))

    def stop(self) -> Stopped:
        now = self.clock()
        self._cut_t = min(self._cut_t, now)
        self.advance(now)
        return Stopped(self.played_s)

    @property
    def played_s(self) -> float:
        until = min(self._heard_t, self._cut_t)
        return sum(s.heard_s(until) for s in self._queue)

    @property
    def end_t(self) -> float | None:
        """Input time at which the queued speech ends (or was cut), None before any."""
        if not self._queue:
            return None
        return min(self._queue[-1].end_t, self._cut_t)

    def drained(self) -> asyncio.Future[float | None]:
        waiter = asyncio.get_running_loop().create_future()
        self._drained.append(waiter)
        self._tell_drained()
        return waiter

    def play_out(self) -> None:
        if (end := self.end_t) is not None:
            self.advance(end)

    def _tell_drained(self) -> None:
        """Complete the waiters once the input clock has passed the end of what is queued."""
        end = self.end_t
        if end is not None and self._heard_t < end:
            return
        waiters, self._drained = self._drained, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(end)

    def wake_like_within(self, tail_s: float) -> bool:
        now = min(self.clock(), self._cut_t)
        return any(s.wake_like and s.start_t <= now < s.end_t + tail_s for s in self._queue)

    def advance(self, t: float) -> None:
        """Hand the sink what has played up to input time t."""
        self._heard_t = max(self._heard_t, t)
        until = min(t, self._cut_t)
        position = 0
        for scheduled in self._queue:
            samples = scheduled.chunk.samples
            heard = int(round(scheduled.heard_s(until) * scheduled.chunk.rate_hz))
            already = min(max(self._written - position, 0), samples)
            if heard > already:
                self.sink.write(_at_volume(_slice(scheduled.chunk, already, heard), self.volume))
                self._written = position + heard
            position += samples
        self._tell_drained()

    def heard_at_input(self, start_t: float, samples: int) -> np.ndarray:
        """The reply as a microphone beside the speaker hears it: float 16 kHz over that span."""
        out = np.zeros(samples, dtype=np.float32)
        end_t = min(start_t + samples / RATE_HZ, self._cut_t)
        for s in self._queue:
            if s.end_t <= start_t or s.start_t >= end_t:
                continue
            audio = self._at_input_rate(s)
            offset = int(round((s.start_t - start_t) * RATE_HZ))
            first, last = max(offset, 0), min(offset + len(audio), int(round((end_t - start_t) * RATE_HZ)))
            if last > first:
                out[first:last] += audio[first - offset:last - offset]
        return out

    def _at_input_rate(self, scheduled: _Scheduled) -> np.ndarray:
        key = id(scheduled.chunk)
        if key not in self._resampled:
            audio = int16_to_float(scheduled.chunk.as_int16())
            if scheduled.chunk.rate_hz != RATE_HZ:
                audio = soxr.resample(audio, scheduled.chunk.rate_hz, RATE_HZ)
            self._resampled[key] = audio
        return self._resampled[key]


def _slice(chunk: AudioChunk, begin: int, end: int) -> AudioChunk:
    frame = chunk.width_bytes * chunk.channels
    return AudioChunk(chunk.audio[begin * frame:end * frame], chunk.rate_hz, chunk.width_bytes, chunk.channels)


def _at_volume(chunk: AudioChunk, volume: float) -> AudioChunk:
    if volume == 1.0:
        return chunk
    return AudioChunk(float_to_int16(int16_to_float(chunk.as_int16()) * volume).tobytes(), chunk.rate_hz)


class EchoMixer:
    """Mixes the reply into the input at its playback time: a speaker beside the microphone."""

    def __init__(self, player: ReplayPlayer, gain_db: float) -> None:
        self.player = player
        self.gain = np.float32(10 ** (gain_db / 20))

    def mix(self, chunk: AudioChunk) -> AudioChunk:
        echo = self.player.heard_at_input(chunk.timestamp_s, chunk.samples)
        if not echo.any():
            return chunk
        mixed = int16_to_float(chunk.as_int16()) + self.gain * self.player.volume * echo
        return AudioChunk(float_to_int16(mixed).tobytes(), timestamp_s=chunk.timestamp_s,
                          received_wall=chunk.received_wall)
