"""Input time: where on the input an event happening now belongs, injected into the pipeline.

Live, it is the microphone's sample clock: the end of the last chunk heard. A replay runs
faster than real time, so its clock keeps what computes in step with the audio, as the
contract's replay clock says: work that began at input time t0 is at t0 plus the wall time
since, a chunk is taken only once that clock has passed it, and past the input's end time
goes on on the clock of the turn still running.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

from assistant.hear.audio import AudioChunk

Since = Callable[[], "tuple[float, float] | None"]
"""(input time, perf_counter()) at which some work began, or None when there is none."""


class InputClock:
    """The live clock: the end of the last chunk heard; chunks come when they come."""

    def __init__(self) -> None:
        self.reached_t = 0.0
        """Input time reached: the end of the last chunk heard."""
        self.input_ended = False

    def keep_pace_with(self, computing: Since, running: Since) -> None:
        """What computes now (the latest to begin, if several), and the turn running now."""

    def reach(self, t: float) -> None:
        self.reached_t = t

    def now(self) -> float:
        return self.reached_t

    def end_input(self) -> None:
        self.input_ended = True

    async def hold(self, chunk: AudioChunk) -> AudioChunk:
        """The chunk, once it is due."""
        return chunk


class ReplayClock(InputClock):
    """A file's input time, paced by what computes."""

    def __init__(self) -> None:
        super().__init__()
        self._computing: Since = lambda: None
        self._running: Since = lambda: None

    def keep_pace_with(self, computing: Since, running: Since) -> None:
        self._computing, self._running = computing, running

    def now(self) -> float:
        since = self._running() if self.input_ended else None
        if since is None:
            return self.reached_t
        start_t, start_wall = since
        return max(self.reached_t, start_t + time.perf_counter() - start_wall)

    async def hold(self, chunk: AudioChunk) -> AudioChunk:
        """Hold a chunk until the clock of whatever is computing has passed it, as a microphone
        would deliver it; stamp when it arrived."""
        arrived = None
        while (since := self._computing()) is not None:
            start_t, start_wall = since
            arrived = start_wall + (chunk.end_s - start_t)
            if time.perf_counter() >= arrived:
                break
            await asyncio.sleep(min(arrived - time.perf_counter(), 0.01))
        return chunk if arrived is None else replace(chunk, received_wall=arrived)
