"""The one owner of turn state: idle, listening, thinking, speaking.

Audio chunks come in with their input time; cheap per-chunk work (wake, VAD) runs
inline, and the blocking model calls of a turn (ASR, LLM, TTS) run in worker threads.

The clock is the input-audio time. After the endpoint decision at `t_end`, an event
that happens `w` seconds of wall time later is stamped `t_end + w`: replay runs faster
than real time, and this is when the reply would have played. Input audio that falls
inside the reply's playback is what a microphone would have heard while it played.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from .audio import AudioChunk, int16_to_float
from .endpoint import Endpointer, EndReason
from .errors import StageError
from .events import (Error, EventSink, Reply, Route, SpeechEnd, SpeechStart, Transcript, TtsEnd,
                     TtsStart, Turn)
from .config import Settings
from .router import OFFLINE, OFFLINE_REPLY, RouteDecision
from .skills.clock import local_now
from .stages import Stages

log = logging.getLogger(__name__)

NO_ANSWER_REPLY = "Sorry, I don't have an answer to that."


class AudioSink(Protocol):
    """Where reply speech goes: a WAV file, or the speakers."""

    def write(self, chunk: AudioChunk) -> None: ...


@dataclass
class _Listening:
    """An accepted wake or push-to-talk turn, collecting its command."""

    start_t: float
    endpointer: Endpointer
    stages_ms: dict[str, float]
    chunks: list[AudioChunk] = field(default_factory=list)

    def speech_end_s(self) -> float | None:
        """Input time of the last speech heard in the command, or None if there was none."""
        last = self.endpointer.last_speech_end_s
        return None if last is None else self.start_t + last


@dataclass(frozen=True)
class _TurnClock:
    """Input time after an endpoint decision: its audio time plus the wall time since."""

    t_end: float
    decided_wall: float
    """perf_counter() at the decision."""

    def at(self, wall: float) -> float:
        return self.t_end + (wall - self.decided_wall)

    def now(self) -> float:
        return self.at(time.perf_counter())


@dataclass(frozen=True)
class _Speaking:
    """A reply playing, on the input clock."""

    start_t: float
    end_t: float
    stages_ms: dict[str, float]
    voice_to_voice_ms: float


@dataclass(frozen=True)
class _Spoken:
    first_chunk_wall: float
    """perf_counter() when the first chunk went to the sink."""
    first_chunk_ms: float
    duration_s: float
    tts_ms: float


class Pipeline:
    def __init__(self, stages: Stages, settings: Settings, events: EventSink, sink: AudioSink,
                 now: Callable[[], datetime] = local_now) -> None:
        self.stages = stages
        self.settings = settings
        self.events = events
        self.sink = sink
        self.now = now
        self.listening: _Listening | None = None
        self.speaking: _Speaking | None = None

    async def run(self, chunks: AsyncIterable[AudioChunk], ptt: bool = False) -> None:
        """Process a whole stream; with `ptt` the stream is one push-to-talk turn."""
        if ptt:  # the turn ends with the input, not with silence
            self._open_turn(0.0, Endpointer(math.inf, math.inf, math.inf), {})
        end_t = 0.0
        async for chunk in chunks:
            end_t = chunk.end_s
            if ptt:
                await self._hear(chunk)
            else:
                await self.feed(chunk)
        await self.finish(end_t)

    async def feed(self, chunk: AudioChunk) -> None:
        """One chunk of the always-listening stream."""
        if self.speaking and chunk.end_s >= self.speaking.end_t:
            self._end_playback(self.speaking.end_t, interrupted=False)
        armed = self.listening is None and (self.speaking is None or chunk.timestamp_s >= self.speaking.start_t)
        update = self.stages.wake.process(chunk, armed=armed)
        for event in update.events:
            self.events.emit(event)
        if update.woke and update.candidate_t is not None:
            await self._woke(update.candidate_t, update.verifier_ms)
        elif self.listening:
            await self._hear(chunk)

    async def _woke(self, candidate_t: float, verifier_ms: float | None) -> None:
        if self.speaking:
            self._end_playback(candidate_t, interrupted=True)
        self._open_turn(candidate_t, Endpointer.from_settings(self.settings.endpoint),
                        {} if verifier_ms is None else {"verifier": verifier_ms})
        # The command may have begun while the verifier was deciding.
        for heard in self.stages.wake.audio_since(candidate_t):
            if self.listening:
                await self._hear(heard)

    def _open_turn(self, start_t: float, endpointer: Endpointer, stages_ms: dict[str, float]) -> None:
        self.stages.vad.reset()
        self.listening = _Listening(start_t, endpointer, stages_ms)

    async def finish(self, end_t: float) -> None:
        """The input has ended: close the open turn and the reply that is playing."""
        if self.listening:
            await self._respond(EndReason.END_OF_INPUT, end_t)
        if self.speaking:
            self._end_playback(max(end_t, self.speaking.end_t), interrupted=False)

    async def _hear(self, chunk: AudioChunk) -> None:
        listening = self.listening
        assert listening is not None
        is_speech = self.stages.vad.probability(chunk) >= self.settings.endpoint.speech_threshold
        progress = listening.endpointer.process(chunk.duration_s, is_speech)
        listening.chunks.append(chunk)
        if progress.speech_started:
            self.events.emit(SpeechStart(t=chunk.timestamp_s))
        if progress.ended:
            await self._respond(progress.ended, chunk.end_s)

    async def _respond(self, reason: EndReason, t_end: float) -> None:
        """From the endpoint decision to the first reply audio: ASR, route, answer, speech."""
        turn, self.listening = self.listening, None
        assert turn is not None
        clock = _TurnClock(t_end, time.perf_counter())
        speech_end_s = turn.speech_end_s()
        if speech_end_s is None:
            reason = EndReason.NO_SPEECH
        self.events.emit(SpeechEnd(t=t_end, reason=reason.value, speech_end_s=_round(speech_end_s)))
        if speech_end_s is None:
            self.events.emit(Turn(t=t_end, outcome="no_speech", stages_ms=turn.stages_ms))
            return
        try:
            reply = await self._think(turn, clock)
            spoken = await asyncio.to_thread(self._speak, reply) if reply else None
        except StageError as err:
            self.events.emit(Error(t=clock.now(), stage=err.stage, code=err.code, message=err.message))
            self.events.emit(Turn(t=clock.now(), outcome="error", stages_ms=turn.stages_ms))
            return
        if spoken is None:
            self.events.emit(Turn(t=clock.now(), outcome="dropped", stages_ms=turn.stages_ms))
            return
        self._start_playback(turn, clock, speech_end_s, spoken)

    async def _think(self, turn: _Listening, clock: _TurnClock) -> str | None:
        """Transcribe, route and answer: the reply text, or None when no words were heard."""
        stages_ms = turn.stages_ms
        audio = int16_to_float(np.concatenate([c.as_int16() for c in turn.chunks]))
        text, stages_ms["asr"] = await _timed(self.stages.asr.transcribe, audio)
        self.events.emit(Transcript(t=clock.now(), text=text, asr_ms=stages_ms["asr"]))
        if not text:
            return None
        route, stages_ms["route"] = await _timed(self.stages.router.route, text)
        self.events.emit(Route(t=clock.now(), tier=route.tier, intent=route.intent, fallback=route.fallback,
                               reason=route.reason))
        reply, stages_ms[route.answered_by] = await _timed(self._answer, route, text)
        self.events.emit(Reply(t=clock.now(), text=reply, tier=route.answered_by,
                               think_ms=stages_ms[route.answered_by]))
        return reply

    def _start_playback(self, turn: _Listening, clock: _TurnClock, speech_end_s: float, spoken: _Spoken) -> None:
        turn.stages_ms["tts_first_chunk"] = spoken.first_chunk_ms
        turn.stages_ms["tts"] = spoken.tts_ms
        start_t = clock.at(spoken.first_chunk_wall)
        self.events.emit(TtsStart(t=start_t))
        # Audio time waiting for the endpoint, plus wall time from the decision to the first reply audio.
        voice_to_voice_ms = _ms(start_t - speech_end_s)
        self.speaking = _Speaking(start_t, start_t + spoken.duration_s, turn.stages_ms, voice_to_voice_ms)

    def _answer(self, route: RouteDecision, text: str) -> str:
        """The reply text from whichever tier answers (runs in a worker thread)."""
        if route.intent is not None:
            return self.stages.router.run_skill(route.intent, self.now())
        if route.answered_by == OFFLINE or self.stages.llm is None:
            return OFFLINE_REPLY
        return self.stages.llm.reply(text) or NO_ANSWER_REPLY

    def _speak(self, text: str) -> _Spoken:
        """Synthesise sentence by sentence, handing each chunk to the sink (worker thread)."""
        started = time.perf_counter()
        first_chunk_wall = None
        duration_s = 0.0
        for chunk in self.stages.tts.synthesize(text):
            if first_chunk_wall is None:
                first_chunk_wall = time.perf_counter()
            self.sink.write(chunk)
            duration_s += chunk.duration_s
        done = time.perf_counter()
        first_chunk_wall = first_chunk_wall or done
        return _Spoken(first_chunk_wall, _ms(first_chunk_wall - started), duration_s, _ms(done - started))

    def _end_playback(self, t: float, interrupted: bool) -> None:
        speaking, self.speaking = self.speaking, None
        assert speaking is not None
        self.events.emit(TtsEnd(t=t, interrupted=interrupted, duration_s=round(t - speaking.start_t, 3)))
        self.events.emit(Turn(t=t, outcome="interrupted" if interrupted else "answered",
                              stages_ms=speaking.stages_ms, voice_to_voice_ms=speaking.voice_to_voice_ms))


async def _timed(function, *args):
    """Run a blocking call in a worker thread; its result and wall time in ms."""
    started = time.perf_counter()
    result = await asyncio.to_thread(function, *args)
    return result, _ms(time.perf_counter() - started)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
