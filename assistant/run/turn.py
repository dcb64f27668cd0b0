"""One request, from the endpoint decision until its last sentence is queued to play, and
what it shares with an announcement (`Speech`: saying sentences through the player).

A turn is an asyncio task: recognition, routing, then the answer as a stream of
sentences, each synthesised and handed to the player as soon as it is complete. The
pipeline may cancel it at any await (a wake word, SIGTERM); every blocking step runs in
a worker thread that the cancellation waits for, so nothing keeps running past it.
The turn reports its own events; how it ends is the pipeline's call, and the `TurnResult`
it then makes is what `tts_end` and `turn` report.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from assistant.config import ConversationSettings, RemindersSettings
from assistant.errors import StageError
from assistant.events import (
    Error,
    Event,
    EventSink,
    Reply,
    Route,
    Transcript,
    TtsEnd,
    TtsStart,
)
from assistant.events import Turn as TurnEvent
from assistant.hear.asr import Recognition
from assistant.hear.audio import AudioChunk
from assistant.hear.end_of_turn import PauseCheck
from assistant.run.stages import Stages
from assistant.run.worker import in_thread, ms, stream_from_thread, timed, with_deadline
from assistant.speak.player import Player
from assistant.speak.sentences import split_sentences
from assistant.store.lists import ListStore
from assistant.store.reminders import ReminderStore
from assistant.understand.llm import Progress
from assistant.understand.router import RouteDecision
from assistant.understand.skills import Awaiting, SkillReply, SkillRequest

log = logging.getLogger(__name__)


@dataclass
class Command:
    """What was heard: the command's audio and where its endpoint fell on the input clock."""

    audio: np.ndarray
    """Float32 samples at 16 kHz."""
    t_end: float
    """Input time of the endpoint decision."""
    speech_end_s: float
    """Input time of the last speech sample."""
    stages_ms: dict[str, float] = field(default_factory=dict)
    speech_s: float | None = None
    """How much of the audio the VAD heard as speech; None: not known (push-to-talk's whole input)."""
    speculation: PauseCheck | None = None
    """The check begun at the last pause, when no speech followed it: its transcript is the
    command's; None: transcribe now."""


@dataclass(frozen=True)
class Played:
    """How the assistant's speech ended: what `tts_end` reports."""

    interrupted: bool
    duration_s: float
    """Length of the speech synthesised, in s."""
    played_s: float
    """How much of it was heard, in s."""
    stop_ms: float | None = None
    """When cut on a sound card: wall time from the stop to the last frame heard, in ms."""

    def event(self, t: float) -> TtsEnd:
        return TtsEnd(t=t, interrupted=self.interrupted, duration_s=round(self.duration_s, 3),
                      played_s=round(self.played_s, 3), stop_ms=self.stop_ms)


@dataclass(frozen=True)
class TurnResult:
    """How a request ended, at input time `t`: what the `turn` event reports, after `tts_end` when it spoke."""

    outcome: str
    """answered, no_speech, dropped, interrupted or error."""
    t: float
    stages_ms: dict[str, float]
    played: Played | None = None
    """None when nothing was said."""
    voice_to_voice_ms: float | None = None
    input_lag_ms: float | None = None
    cloud_requests: int = 0
    cloud_bytes_sent: int = 0

    def events(self) -> list[Event]:
        said = [] if self.played is None else [self.played.event(self.t)]
        return said + [TurnEvent(t=self.t, outcome=self.outcome, stages_ms=self.stages_ms,
                                 voice_to_voice_ms=self.voice_to_voice_ms, input_lag_ms=self.input_lag_ms,
                                 cloud_requests=self.cloud_requests, cloud_bytes_sent=self.cloud_bytes_sent)]


class Speech:
    """Something the assistant says as a cancellable task: a request's reply (`Turn`) or an
    announcement. It computes what to say and queues it on the player; how it ends is the
    pipeline's call."""

    def __init__(self, start_t: float, stages: Stages, events: EventSink, player: Player,
                 input_time: Callable[[], float], now: Callable[[], datetime]) -> None:
        self.start_t = start_t
        """Input time at which it began: its clock's origin."""
        self.started_wall = time.perf_counter()
        """perf_counter() at which it began (a turn: the endpoint decision)."""
        self.stages = stages
        self.events = events
        self.player = player
        self.input_time = input_time
        """The pipeline's clock: where on the input an event happens now."""
        self.now = now
        self.computed = asyncio.Event()
        """Set once everything to say is queued (or it failed): its reply may still be playing."""
        self.spoke = False
        self.on_speaking: Callable[[], None] = lambda: None
        """Told at the first audio, set by whoever starts it."""
        self.reply_text: str | None = None
        self.error: StageError | None = None
        self.synthesized_s = 0.0
        self.task: asyncio.Task | None = None
        """The task running `run`, set by whoever starts it."""

    @property
    def computing(self) -> bool:
        return not self.computed.is_set()

    def outcome(self) -> str:
        """How it ends on its own, once computed and played: an error when a stage failed."""
        return "error" if self.error is not None else "answered"

    def ended(self, outcome: str) -> Callable[[], object] | None:
        """Called by the pipeline once it is over (answered, interrupted, ...); returns
        what is left to write to the store, which the pipeline runs off the event loop, or None."""
        return None

    async def run(self) -> None:
        """Compute what to say and queue its speech; a stage failure is reported, not raised."""
        try:
            await self._compute()
        except StageError as err:
            self.error = err
            self.events.emit(Error(t=self.input_time(), stage=err.stage, code=err.code, message=err.message))
        finally:
            self.computed.set()

    async def _compute(self) -> None:
        raise NotImplementedError

    async def _say(self, sentence: str, limit_s: float | None = None) -> bool:
        """Speak one sentence; False, saying none of it, when it would take the speech past `limit_s`."""
        spoken, synthesis_ms = await timed(self._synthesize, sentence)
        self._synthesized(synthesis_ms)
        if limit_s is not None and self.synthesized_s + sum(chunk.duration_s for chunk, _ in spoken) > limit_s:
            return False
        for chunk, wake_like in spoken:
            self._play(chunk, wake_like)
        return True

    def _synthesized(self, synthesis_ms: float) -> None:
        """A sentence's synthesis took `synthesis_ms` (a request counts it among its stages)."""

    def _synthesize(self, sentence: str) -> list[tuple[AudioChunk, bool]]:
        """Speech for one sentence, each piece marked when it sounds like the wake word (worker thread)."""
        guard = self.stages.own_voice
        return [(chunk, guard is not None and guard.wake_like(chunk)) for chunk in self.stages.tts.synthesize(sentence)]

    def _play(self, sound: AudioChunk, wake_like: bool = False) -> None:
        if not self.spoke:
            self._first_audio()
        self.player.play(sound, wake_like)
        self.synthesized_s += sound.duration_s

    def _first_audio(self) -> None:
        self.spoke = True
        self.player.begin()
        self._began_speaking()
        self.on_speaking()
        self.events.emit(TtsStart(t=self.input_time()))

    def _began_speaking(self) -> None:
        """Its first audio has just been handed to the player (a request times its voice to voice here)."""


class Turn(Speech):
    """One request heard from someone: it closes with a `turn` event."""

    def __init__(self, command: Command, stages: Stages, events: EventSink, player: Player,
                 input_time: Callable[[], float], now: Callable[[], datetime]) -> None:
        super().__init__(command.t_end, stages, events, player, input_time, now)
        self.command = command
        self.stages_ms = command.stages_ms
        self.outcome_if_silent = "dropped"
        """How the turn ends when it says nothing: dropped (no words heard), or answered."""
        self.heard: Recognition | None = None
        """What Whisper made of the command (None until then, or when it heard nothing said)."""
        self.voice_to_voice_ms: float | None = None
        self.input_lag_ms: float | None = None
        self.progress = Progress()
        """The streamed answer's: when its first token came, and the requests sent to the cloud."""
        self.last_reply: str | None = None
        """What the assistant said in the turn before, set by whoever starts this one."""
        self.reminders: ReminderStore | None = None
        """The timers, alarms and reminders, set by whoever starts this turn."""
        self.lists: ListStore | None = None
        """The shopping and to-do lists, set by whoever starts this turn."""
        self.limits = RemindersSettings()
        """How long a timer and how far ahead a reminder may be, set by whoever starts this turn."""
        self.skill_timeout_s = ConversationSettings().skill_timeout_s
        """How long a skill may take, set by whoever starts this turn."""
        self.answering: Awaiting | None = None
        """The question this turn may answer (heard in that question's follow-up window)."""
        self.awaiting: Awaiting | None = None
        """The question this turn's reply asks, if any."""

    def outcome(self) -> str:
        """How it ends on its own, once computed (and its reply, if any, played): a turn that failed,
        even after it began to speak (a skill's apology, heard in full), ends in an error."""
        if self.error is not None:
            return "error"
        return "answered" if self.spoke else self.outcome_if_silent

    def result(self, outcome: str, t: float, played: Played | None) -> TurnResult:
        sent = list(self.progress.sent_bytes)  # a copy: a cancelled turn's thread may still be appending
        return TurnResult(outcome, t, self.stages_ms, played, self.voice_to_voice_ms, self.input_lag_ms,
                          cloud_requests=len(sent), cloud_bytes_sent=sum(sent))

    def saw_input_lag(self, lag_ms: float) -> None:
        self.input_lag_ms = max(self.input_lag_ms or 0.0, round(lag_ms, 1))

    async def _compute(self) -> None:
        text = await self._transcript()
        if not text:
            return
        self.outcome_if_silent = "answered"
        route, self.stages_ms["route"] = await timed(self.stages.router.route, text, self.answering)
        route = await self._second_guess(route)
        self.events.emit(Route(t=self.input_time(), tier=route.tier, intent=route.intent, fallback=route.fallback,
                               reason=route.reason, slots=route.slots,
                               then=[{"intent": part.intent, "slots": part.slots} for part in route.then]))
        started = time.perf_counter()
        whole = await self._skill_reply(route, text)
        if whole is not None:
            self.stages_ms[route.answered_by] = ms(time.perf_counter() - started)
            self.awaiting = whole.awaiting
            sentences = split_sentences(whole.text)
            self._replied(" ".join(sentences), route)  # what is said, as a streamed reply reports it
            for sentence in sentences:
                await self._say(sentence)
        else:
            await self._stream(text, route)

    async def _skill_reply(self, route: RouteDecision, said: str) -> SkillReply | None:
        """The skill's reply, or None when a model answers. In a thread of its own with a deadline
        (a skill writes SQLite, a home command waits for Home Assistant): a skill that raises or
        passes `skill_timeout_s` is reported as this turn's error and apologised for, and the
        session goes on."""
        skill = route.intent or route.answered_by
        try:
            return await with_deadline(self.skill_timeout_s, self.stages.router.skill_reply, route,
                                       self.skill_request(said=said))
        except StageError:
            raise
        except TimeoutError:
            failure = StageError("skill", f"{skill}: no answer within {self.skill_timeout_s:g} s "
                                 "(conversation.skill_timeout_s)", code="skill_timeout")
            sorry = "Sorry, that took too long. Please try again."
        except Exception as err:  # any bug in any skill: this turn fails, not the session
            log.exception("the skill %s failed", skill)
            failure = StageError("skill", f"{skill}: {type(err).__name__}: {err}", code="skill_failed")
            sorry = "Sorry, something went wrong. Please try again."
        self.error = failure
        self.events.emit(Error(t=self.input_time(), stage=failure.stage, code=failure.code, message=failure.message))
        return SkillReply(sorry)

    def skill_request(self, said: str = "") -> SkillRequest:
        """What a skill may use: the time, the volume, the last reply, reminders and lists, and what was said."""
        return SkillRequest(now=self.now(), volume=self.player, last_reply=self.last_reply, reminders=self.reminders,
                            lists=self.lists, said=said, limits=self.limits)

    async def _second_guess(self, route: RouteDecision) -> RouteDecision:
        """`route`, or, when it went to no skill and was no small talk, the route of one of
        Whisper's other readings that a skill's template matches."""
        router = self.stages.router
        if self.heard is None or not self.stages.asr.settings.second_guesses or not router.wants_second_guess(route):
            return route
        started = time.perf_counter()
        guesses = await in_thread(self.stages.asr.second_guesses, self.command.audio, self.heard)
        guessed = await in_thread(router.second_guess, [g.text for g in guesses], self.answering)
        self.stages_ms["second_guess"] = ms(time.perf_counter() - started)
        return guessed or route

    async def _transcript(self) -> str:
        """What was said, reported: the speculative transcript when there is one, else one made now;
        empty when Whisper heard nothing said (noise, silence, its usual hallucinations)."""
        started = time.perf_counter()
        if self.command.speculation is not None:
            heard = await self.command.speculation.transcript()
        else:
            heard = await in_thread(self.stages.asr.recognize, self.command.audio)
        self.stages_ms["asr"] = ms(time.perf_counter() - started)
        dropped = heard.hallucinated(self.command.speech_s)
        text = "" if dropped else heard.text
        self.heard = None if dropped else heard
        self.events.emit(Transcript(t=self.input_time(), text=text, asr_ms=self.stages_ms["asr"], dropped=dropped))
        return text

    async def _stream(self, text: str, route: RouteDecision) -> None:
        """The model's sentences spoken as they come; the whole text reported once complete."""
        started = time.perf_counter()
        think: dict[str, float] = {}
        answered_by = [route.answered_by]  # set by the thread: the cloud's fallback, when the cloud failed

        def sentences(stop: threading.Event) -> Iterator[str]:
            reply = self.stages.router.streamed_reply(text, stop, route)
            self.progress = reply.progress
            for sentence in reply:
                if "first_sentence" not in think and (first_token := reply.progress.first_token_wall) is not None:
                    think["first_token"] = ms(first_token - started)
                think.setdefault("first_sentence", ms(time.perf_counter() - started))
                yield sentence
            answered_by[0] = reply.tier
            think[reply.tier] = ms(time.perf_counter() - started)

        said = []
        limit_s = self.stages.router.speech_limit_s(route)
        async with aclosing(stream_from_thread(sentences)) as stream:  # leaving the loop closes the stream
            async for sentence in stream:
                if not await self._say(sentence, limit_s):
                    log.warning("the reply reached %g s of speech (cloud.max_reply_speech_s); the rest is not said",
                                limit_s)
                    break
                said.append(sentence)
        self.stages_ms.update(think)
        self._replied(" ".join(said), route, answered_by[0])

    def _replied(self, text: str, route: RouteDecision, tier: str | None = None) -> None:
        """Report the whole reply; `tier`: who produced it, when not the one the route named."""
        tier = tier or route.answered_by
        self.reply_text = text
        self.events.emit(Reply(t=self.input_time(), text=text, tier=tier, think_ms=self.stages_ms.get(tier, 0.0)))

    def _synthesized(self, synthesis_ms: float) -> None:
        self.stages_ms.setdefault("tts_first_chunk", synthesis_ms)
        self.stages_ms["tts"] = round(self.stages_ms.get("tts", 0.0) + synthesis_ms, 1)

    def _began_speaking(self) -> None:
        # Audio time waiting for the endpoint, plus wall time from the decision to the first reply audio.
        waited_s = self.command.t_end - self.command.speech_end_s
        self.voice_to_voice_ms = ms(waited_s + time.perf_counter() - self.started_wall)
