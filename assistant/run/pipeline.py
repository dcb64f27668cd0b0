"""The one owner of turn state: an explicit state machine (`State`, changed only by `_go`).

    idle ─► listening / follow_up ─► thinking ─► speaking ─► idle
                                        └──────────┴─► interrupted / error ─► idle

The input loop never waits on a turn. Every chunk goes through the wake detector (and,
while a command is being heard, the VAD) whatever the turn is doing; a turn is a task
(`turn.Turn`) that the loop starts at an endpoint and cancels at a wake word or a stop.
An announcement (`announce.Announcement`) speaks as a turn does but answers no request.
Every turn and announcement ends in `_end_turn`; a turn's `TurnResult` is what `tts_end`
and `turn` report. A reply that has been queued ends the turn when the player says it has
drained (`Player.drained`), not when someone looks.

The clock is the input-audio time, injected (`input_clock`). Events are stamped where on
the input they happened: a turn's events at the input time reached when they happen. Live
that is the microphone's sample clock. Replay runs faster than real time, so its clock
holds input audio at time t, while a turn computes, until the turn's clock (endpoint time
plus wall time since) has passed t; while nothing computes, replay runs as fast as it can.
So replay gives the events a live run would.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from assistant.config import Settings
from assistant.events import EventSink, FollowUp, SpeechEnd, SpeechStart
from assistant.hear.audio import AudioChunk, int16_to_float
from assistant.hear.end_of_turn import PauseCheck, Verdict
from assistant.hear.endpoint import Endpointer, EndReason
from assistant.hear.noise import NoiseCleaner
from assistant.hear.wake import WakeUpdate
from assistant.run.input_clock import InputClock, ReplayClock
from assistant.run.stages import Stages
from assistant.run.turn import Command, Played, Speech, Turn, TurnResult
from assistant.run.worker import in_store_thread, ms, release_memory
from assistant.speak.announce import Announcement
from assistant.speak.player import AudioSink, EchoMixer, Player, ReplayPlayer
from assistant.store.lists import ListStore
from assistant.store.reminders import ReminderStore
from assistant.understand.skills import Awaiting
from assistant.understand.skills.clock import local_now

log = logging.getLogger(__name__)

_PRE_ROLL_S = 0.15
"""A wake is stamped where the first pass reaches 0.5, up to ~0.14 s after the wake phrase
ends (0.0 to 0.14 s on the fixtures), so a command said with no pause has begun by then;
recognition hears this much before the stamp. More brings in the phrase's tail, which
Whisper writes as "was" or "It was" and which then spoils the command: 0.25 s gave 8.8 %
word errors on the fixtures' commands, 0.15 s 1.4 %."""

_HEARD_CHUNKS = 100
"""Chunks kept for a command's start: 3.2 s, more than the verifier may take to decide."""

_RING_CHECK_S = 0.5
"""How often, in input time, the reminder store is asked what is due."""


class State(enum.Enum):
    IDLE = "idle"
    LISTENING = "listening"
    """Hearing a command after a wake word or push-to-talk."""
    FOLLOW_UP = "follow_up"
    """Hearing a command without the wake word, right after a reply."""
    THINKING = "thinking"
    """A turn (or an announcement) is computing and nothing plays yet."""
    SPEAKING = "speaking"
    INTERRUPTED = "interrupted"
    """A turn or announcement being cut short (a wake word, a key, a stop): left at once for idle."""
    ERROR = "error"
    """A turn that failed being closed: left at once for idle."""


_NEXT: dict[State, frozenset[State]] = {
    State.IDLE: frozenset({State.LISTENING, State.FOLLOW_UP, State.THINKING}),  # THINKING: an announcement
    State.LISTENING: frozenset({State.LISTENING, State.THINKING, State.IDLE}),  # LISTENING: a new wake word
    State.FOLLOW_UP: frozenset({State.LISTENING, State.THINKING, State.IDLE}),
    State.THINKING: frozenset({State.SPEAKING, State.IDLE, State.INTERRUPTED, State.ERROR}),
    State.SPEAKING: frozenset({State.IDLE, State.INTERRUPTED, State.ERROR}),
    State.INTERRUPTED: frozenset({State.IDLE}),
    State.ERROR: frozenset({State.IDLE}),
}
"""The changes the machine allows; any other is a bug."""

_ENDED_IN = {"interrupted": State.INTERRUPTED, "error": State.ERROR}
"""The state a turn passes through on its way to idle, by outcome (others go straight there)."""


class ImpossibleTransition(RuntimeError):
    """The pipeline asked for a change of state that the machine does not allow: a bug."""


@dataclass
class _Listening:
    """A command being heard."""

    start_t: float
    endpointer: Endpointer
    stages_ms: dict[str, float]
    follow_up: bool = False
    chunks: list[AudioChunk] = field(default_factory=list)
    check: PauseCheck | None = None
    """The latest pause's judgement and speculative transcript."""
    waiting: Verdict | None = None
    """The latest verdict, which may have shortened the silence that ends the command."""

    def audio(self) -> np.ndarray:
        return int16_to_float(np.concatenate([c.as_int16() for c in self.chunks]))

    def current_check(self) -> PauseCheck | None:
        """The check of the pause going on now: no speech since it began."""
        check = self.check
        return check if check is not None and self.endpointer.silent_since(check.pause) else None

    def speech_end_s(self) -> float | None:
        """Input time of the last speech heard in the command, or None if there was none."""
        last = self.endpointer.last_speech_end_s
        return None if last is None else self.start_t + last


class Pipeline:
    def __init__(self, stages: Stages, settings: Settings, events: EventSink, player: Player,
                 now: Callable[[], datetime] = local_now, echo: EchoMixer | None = None,
                 turn_class: type[Turn] = Turn, reminders: ReminderStore | None = None,
                 on_state: Callable[[State], None] | None = None, clock: InputClock | None = None) -> None:
        self.stages = stages
        self.turn_class = turn_class
        """What runs a request once it is heard (benchmarks compare another way of answering)."""
        self.settings = settings
        self.events = events
        self.player = player
        self.now = now
        self.echo = echo
        self._state = State.IDLE
        self.listening: _Listening | None = None
        self.speech: Speech | None = None
        """The turn or announcement thinking or speaking now."""
        self.clock = clock if clock is not None else InputClock()
        """Input time: live, the microphone's; in replay, paced by what computes."""
        self.clock.keep_pace_with(self._computing_since, self._running_since)
        self._ending: set[asyncio.Future] = set()
        """Cancelled turn tasks still finishing their current step."""
        self._failure: BaseException | None = None
        self.last_reply: str | None = None
        """The last reply that was said, in part or whole ("repeat that")."""
        self.reminders = reminders if reminders is not None else ReminderStore(":memory:")
        self.lists = ListStore(self.reminders.db)
        """The shopping and to-do lists, in the reminders' database."""
        self._awaiting: Awaiting | None = None
        """The question the last reply asked, answered only in its follow-up window."""
        self._started: datetime | None = None
        """When the first input arrived: reminders due before then were missed."""
        self._ring_checked_t = -math.inf
        self._due_check: asyncio.Task | None = None
        """The store being asked what is due (in its thread), or None."""
        self._due_check_since: tuple[float, float] | None = None
        """(input time, perf_counter()) at which that question was asked: replay paces on it."""
        audio = settings.audio
        self.cleaner = (NoiseCleaner(audio.noise_suppression, audio.auto_gain_dbfs)
                        if audio.noise_suppression or audio.auto_gain_dbfs else None)
        """WebRTC noise suppression and gain for what the VAD and recognition hear (not the wake word)."""
        self._heard: deque[AudioChunk] = deque(maxlen=_HEARD_CHUNKS)
        """The last few seconds as the VAD and recognition hear them (cleaned, when they are)."""
        self.on_state = on_state
        """Told the state whenever it has changed, as each chunk is taken (the daemon's status, MQTT): it
        must not wait. A turn that begins to speak between chunks is told at the next one."""
        self._told_state: State | None = None

    @property
    def state(self) -> State:
        return self._state

    def _go(self, state: State) -> None:
        """The one place the state changes."""
        if state not in _NEXT[self._state]:
            raise ImpossibleTransition(f"{self._state.value} cannot become {state.value}")
        self._state = state

    @property
    def now_t(self) -> float:
        """Input time reached: the end of the last chunk heard."""
        return self.clock.reached_t

    def input_time(self) -> float:
        """Where on the input clock an event happening now belongs."""
        return self.clock.now()

    async def run(self, chunks: AsyncIterable[AudioChunk], ptt: bool = False) -> None:
        """Process a stream; `ptt`: it is one push-to-talk turn. Each chunk waits until the clock
        says it is due (a file's, while something computes; a microphone's never waits)."""
        if ptt:  # the turn ends with the input, not with silence
            self._listen(0.0, Endpointer(math.inf, math.inf, math.inf), {})
        try:
            async for chunk in chunks:
                chunk = await self.clock.hold(chunk)
                await self._reach(chunk.end_s)
                self.feed(chunk)
                await asyncio.sleep(0)  # let a turn task take what it is waiting for
                if self._failure is not None:
                    raise self._failure
            await self.finish()
        except asyncio.CancelledError:
            await self.shutdown()
            raise

    def press(self) -> State:
        """Push-to-talk's one key: when idle, listen for a command without the wake word;
        while listening, the command ends here; while thinking or speaking, stop.
        Returns the state it leaves the assistant in."""
        state = self.state
        if state in (State.IDLE, State.FOLLOW_UP):  # a follow-up window becomes a push-to-talk command
            self._listen(self.now_t, Endpointer.from_settings(self.settings.endpoint), {})
        elif state is State.LISTENING:
            self._endpoint(EndReason.END_OF_INPUT, self.now_t)
        else:
            self._end_turn("interrupted")
        return self.state

    def _computing_since(self) -> tuple[float, float] | None:
        """(input time, perf_counter()) at which the work now computing began, the latest if several."""
        started = []
        if self.speech is not None and self.speech.computing:
            started.append((self.speech.start_t, self.speech.started_wall))
        if self.listening is not None and (check := self.listening.check) is not None and check.computing:
            started.append((check.t, check.started_wall))
        if self._due_check_since is not None:
            started.append(self._due_check_since)
        if (verifying := self.stages.wake.verifying_since()) is not None:
            started.append(verifying)
        return max(started, key=lambda s: s[1] - s[0], default=None)

    def _running_since(self) -> tuple[float, float] | None:
        """(input time, perf_counter()) at which the turn or announcement now running began."""
        return None if self.speech is None else (self.speech.start_t, self.speech.started_wall)

    async def _reach(self, t: float) -> None:
        """The input clock reaches t, the end of the next chunk: the player hands on what has
        played by then, and a turn whose reply has now drained ends before the chunk is heard
        (its task, woken by the player, runs before this one resumes)."""
        self.clock.reach(t)
        self.player.advance(t)
        await asyncio.sleep(0)

    def feed(self, chunk: AudioChunk) -> None:
        """One chunk of input, once the clock has reached its end: never waits, whatever the turn is doing."""
        self._ring_if_due()
        if self.echo is not None:
            chunk = self.echo.mix(chunk)
        update = self.stages.wake.process(chunk, armed=self.state is not State.LISTENING,
                                          own_voice=self._own_voice_playing())
        self._note_input_lag(chunk)
        self._heard.append(chunk if self.cleaner is None else self.cleaner.process(chunk))
        if not self._on_wake(update) and self.listening is not None:
            self._hear(self._heard[-1])
        self._tell_state()

    def _tell_state(self) -> None:
        if self.on_state is not None and (state := self.state) is not self._told_state:
            self._told_state = state
            self.on_state(state)

    def _on_wake(self, update: WakeUpdate) -> bool:
        """Report what the wake detector found; True when it woke the assistant."""
        for event in update.events:
            self.events.emit(event)
        if update.woke and update.candidate_t is not None:
            self._woke(update.candidate_t, update.verifier_ms)
            return True
        return False

    def _own_voice_playing(self) -> bool:
        guard = self.stages.own_voice
        # Not only while speaking: the echo of the last words arrives after the reply has ended.
        return guard is not None and self.player.wake_like_within(guard.tail_s)

    def _note_input_lag(self, chunk: AudioChunk) -> None:
        if isinstance(self.speech, Turn) and chunk.received_wall is not None:
            self.speech.saw_input_lag((time.perf_counter() - chunk.received_wall) * 1000)

    def _woke(self, candidate_t: float, verifier_ms: float | None) -> None:
        if self.speech is not None:
            self._end_turn("interrupted")
        self._listen(candidate_t, Endpointer.from_settings(self.settings.endpoint),
                     {} if verifier_ms is None else {"verifier": verifier_ms})
        assert self.listening is not None
        self.listening.chunks = [c for c in self._heard if candidate_t - _PRE_ROLL_S < c.end_s <= candidate_t]
        # The command may have begun while the verifier was deciding.
        for heard in [c for c in self._heard if c.end_s > candidate_t]:
            if self.listening is not None:
                self._hear(heard)

    def _listen(self, start_t: float, endpointer: Endpointer, stages_ms: dict[str, float],
                follow_up: bool = False) -> None:
        self.stages.vad.reset()
        if self.listening is not None:  # a command given up for a new one (a wake word, a key)
            self._drop_check(self.listening)
        self._go(State.FOLLOW_UP if follow_up else State.LISTENING)
        self.listening = _Listening(start_t, endpointer, stages_ms, follow_up)

    def _hear(self, chunk: AudioChunk) -> None:
        listening = self.listening
        assert listening is not None
        is_speech = self.stages.vad.probability(chunk) >= self.settings.endpoint.speech_threshold
        progress = listening.endpointer.process(chunk.duration_s, is_speech)
        listening.chunks.append(chunk)
        if progress.speech_started:
            self.events.emit(SpeechStart(t=chunk.timestamp_s))
        if progress.ended:  # with the verdict that shortened the silence, if one did
            self._endpoint(progress.ended, chunk.end_s, listening.waiting if listening.endpointer.end_silence_s else None)
        elif progress.paused is not None:
            self._check_pause(listening, progress.paused, chunk.end_s)
        elif is_speech and listening.check is not None:  # the person goes on: that pause's check is stale
            self._drop_check(listening)
        self._decide_pause()

    def _check_pause(self, listening: _Listening, pause: int, t: float) -> None:
        """A short pause: judge whether the command so far is complete, and transcribe it meanwhile;
        later in the same pause, judge again with the transcript already made."""
        earlier = listening.check
        if earlier is not None and earlier.pause == pause:
            if earlier.computing or self.stages.turn_judge is None:
                return
            heard = earlier.recognition
        else:
            self._drop_check(listening)
            heard = None
        listening.check = PauseCheck.start(pause, t, listening.audio(), self.stages.turn_judge, self.stages.asr,
                                           heard)

    def _drop_check(self, listening: _Listening) -> None:
        check, listening.check = listening.check, None
        if check is not None:
            check.cancel()
            self._ending.add(check.task)
            check.task.add_done_callback(self._ending.discard)

    def _decide_pause(self) -> None:
        """End the command when the judge has found it complete during the pause going on now."""
        listening = self.listening
        if listening is None or (check := listening.current_check()) is None:
            return
        verdict = check.decided()
        if verdict is None:
            return
        listening.waiting = verdict
        if listening.endpointer.decide(check.pause, verdict.complete, verdict.wait_s):
            self._endpoint(EndReason.SILENCE, self.now_t, verdict)

    def _endpoint(self, reason: EndReason, t_end: float, verdict: Verdict | None = None) -> None:
        """The command has ended: start its turn, or close quietly when nothing was said.
        `verdict`: the judgement that ended it early."""
        listening, self.listening = self.listening, None
        assert listening is not None
        speech_end_s = listening.speech_end_s()
        check = listening.current_check()
        if check is None:
            self._drop_check(listening)
        if speech_end_s is None and listening.follow_up:
            self._go(State.IDLE)
            return  # a follow-up window that heard nothing closes quietly
        self.events.emit(SpeechEnd(t=t_end, reason=(reason if speech_end_s is not None else EndReason.NO_SPEECH).value,
                                   speech_end_s=None if speech_end_s is None else round(speech_end_s, 3),
                                   decided_by=verdict.by if verdict else None,
                                   turn_complete=verdict.score if verdict else None))
        if speech_end_s is None:
            self._go(State.IDLE)
            self._report(TurnResult("no_speech", t_end, listening.stages_ms))
            release_memory()
            return
        listening.stages_ms["end_of_turn"] = ms(t_end - speech_end_s)  # audio time: live, the wall time waited
        command = Command(listening.audio(), t_end, speech_end_s, listening.stages_ms,
                          speech_s=listening.endpointer.speech_s, speculation=check)
        turn = self.turn_class(command, self.stages, self.events, self.player, self.input_time, self.now)
        turn.answering = self._awaiting if listening.follow_up else None
        turn.last_reply = self.last_reply
        turn.reminders = self.reminders
        turn.lists = self.lists
        turn.limits = self.settings.reminders
        turn.skill_timeout_s = self.settings.conversation.skill_timeout_s
        self._start(turn)

    def _ring_if_due(self) -> None:
        """Announce the timers and alarms that are due, once nobody is talking to the assistant."""
        if self._started is None:
            self._started = self.now()
        if (self.state is not State.IDLE or self._due_check is not None
                or self.now_t - self._ring_checked_t < _RING_CHECK_S):
            return
        self._ring_checked_t = self.now_t
        self._due_check_since = (self.now_t, time.perf_counter())
        self._due_check = asyncio.get_running_loop().create_task(self._announce_due(self.now()))

    async def _announce_due(self, now: datetime) -> None:
        """Ask the store, in its thread, what is due by `now`; announce it if still idle (else at a later check)."""
        try:
            due = await in_store_thread(self.reminders.due, now)
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # the store failing stops the run, as it did on the loop
            self._failure = err
            return
        finally:
            self._due_check = self._due_check_since = None
        if not due or self.state is not State.IDLE:
            return
        missed = {r.id for r in due if r.due < self._started}
        self._start(Announcement(due, missed, self.settings.reminders, self.reminders, self.now_t,
                                 self.stages, self.events, self.player, self.input_time, self.now))

    def _start(self, speech: Speech) -> None:
        self._go(State.THINKING)
        self.speech = speech
        self._awaiting = None
        speech.on_speaking = functools.partial(self._began_speaking, speech)
        speech.task = asyncio.get_running_loop().create_task(self._run(speech))

    def _began_speaking(self, speech: Speech) -> None:
        if self.speech is speech:
            self._go(State.SPEAKING)

    async def _run(self, speech: Speech) -> None:
        """Its task: compute, let what it said play out, and end it."""
        try:
            await speech.run()
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # a bug in a turn stops the whole run, as it would inline
            self._failure = err
            raise
        release_memory()  # its computing is done (the reply may still be playing): see _end_turn
        ended_t = await self.player.drained() if speech.spoke else None
        self._end_turn(speech.outcome(), t=ended_t, played_out=True)

    def _end_turn(self, outcome: str, t: float | None = None, played_out: bool = False) -> None:
        """The one place a turn or an announcement ends, at input time `t` (default: now): report
        it; cut its speech and cancel its task unless it has played out; then offer a follow-up."""
        t = self.input_time() if t is None else t  # while the turn is current: past the input's end, its clock
        speech, self.speech = self.speech, None
        assert speech is not None and speech.task is not None
        self._go(_ENDED_IN.get(outcome, State.IDLE))
        if (write := speech.ended(outcome)) is not None:  # to the store, off the loop; waited for at the end
            writing = in_store_thread(write)
            self._ending.add(writing)
            writing.add_done_callback(self._ending.discard)
        played = self._played(speech, played_out) if speech.spoke else None
        if isinstance(speech, Turn):
            if speech.spoke:
                self.last_reply = speech.reply_text or self.last_reply
            self._report(speech.result(outcome, t, played))
        elif played is not None:  # an announcement: no request, so no `turn` event
            self.events.emit(played.event(t))
        if not speech.task.done():
            speech.task.cancel()
            self._ending.add(speech.task)
            speech.task.add_done_callback(self._ending.discard)
        release_memory()  # what the turn's models freed, back to the system (assistant/run/memory.py)
        if self._state is not State.IDLE:
            self._go(State.IDLE)
        if isinstance(speech, Turn) and outcome == "answered" and speech.spoke and not self.clock.input_ended:
            self._awaiting = speech.awaiting
            self._offer_follow_up(t, speech.reply_text or "")

    def _played(self, speech: Speech, played_out: bool) -> Played:
        """How its speech ended: cut here unless it played out."""
        stopped = None if played_out else self.player.stop()
        return Played(interrupted=stopped is not None, duration_s=speech.synthesized_s,
                      played_s=self.player.played_s if stopped is None else stopped.played_s,
                      stop_ms=None if stopped is None else stopped.stop_ms)

    def _report(self, result: TurnResult) -> None:
        for event in result.events():
            self.events.emit(event)

    def _offer_follow_up(self, t: float, reply: str) -> None:
        conversation = self.settings.conversation
        window_s = conversation.question_follow_up_s if reply.rstrip().endswith("?") else conversation.follow_up_s
        if window_s <= 0:
            return
        endpoint = self.settings.endpoint
        self._listen(t, replace(Endpointer.from_settings(endpoint), no_speech_s=window_s), {}, follow_up=True)
        self.events.emit(FollowUp(t=t, window_s=window_s))

    async def finish(self) -> None:
        """The input has ended: close the open command, and let the last reply compute and play out."""
        self.clock.end_input()
        if self._due_check is not None:  # what is due by the input's end is still announced
            await asyncio.wait([self._due_check])
        self._on_wake(self.stages.wake.verdict())
        if self.listening is not None:
            self._endpoint(EndReason.END_OF_INPUT, self.now_t)
        if (speech := self.speech) is not None:
            await speech.computed.wait()
            if self._failure is not None:
                raise self._failure
            self.player.play_out()  # nothing more is heard, so nothing can cut it: it plays to its end now
            await asyncio.wait([speech.task])
        self._tell_state()
        await self._wait_for_ending()

    async def shutdown(self) -> None:
        """Stop now (SIGTERM): cut the reply, cancel the turn, wait for its worker threads."""
        if self._due_check is not None:
            self._due_check.cancel()
            await asyncio.wait([self._due_check])
        if self.listening is not None:
            self._drop_check(self.listening)
        if self.speech is not None:
            self._end_turn("interrupted")
        await self._wait_for_ending()

    async def _wait_for_ending(self) -> None:
        if self._ending:
            await asyncio.wait(set(self._ending))


def replay_pipeline(stages: Stages, settings: Settings, events: EventSink, sink: AudioSink,
                    echo_db: float | None = None, started_at: datetime | None = None,
                    turn_class: type[Turn] = Turn, reminders: ReminderStore | None = None) -> Pipeline:
    """A pipeline for a file: replies play on the input clock into `sink`; with `echo_db`,
    they are also mixed into the input at that gain, as a speaker beside the microphone.

    The file is heard as if it began at `started_at` (default: now): the time of day that
    skills and reminders see is that plus the input time, so a 10 s timer set in the file
    rings 10 s of audio later. Its timers and alarms are its own (in memory) unless a
    `reminders` store is given."""
    clock = ReplayClock()
    player = ReplayPlayer(sink, clock=clock.now)
    player.volume = settings.audio.output_volume
    began = (started_at or local_now()).astimezone()
    return Pipeline(stages, settings, events, player, lambda: began + timedelta(seconds=clock.now()),
                    echo=None if echo_db is None else EchoMixer(player, echo_db), turn_class=turn_class,
                    reminders=reminders, clock=clock)
