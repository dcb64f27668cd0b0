"""The events the pipeline reports, and their JSON-lines form (see the schema in docs/commands.md).

Every event knows `t`, the input-audio time in seconds where it happened.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TextIO


@dataclass(frozen=True)
class Event:
    name: ClassVar[str] = "event"
    t: float
    """Input-audio time, in s."""

    def to_dict(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        body["t"] = round(self.t, 3)
        return {"event": self.name, **body}


@dataclass(frozen=True)
class WakeCandidate(Event):
    name: ClassVar[str] = "wake_candidate"
    word: str
    first_pass: float


@dataclass(frozen=True)
class Wake(Event):
    name: ClassVar[str] = "wake"
    word: str
    first_pass: float | None
    """The first pass's score, or None in `verifier_only` mode."""
    verifier: float | None
    """The verifier's score, or None in a mode that skips it."""
    verifier_ms: float | None = None


@dataclass(frozen=True)
class WakeRejected(Event):
    name: ClassVar[str] = "wake_rejected"
    word: str
    first_pass: float | None
    """The first pass's score, or None in `verifier_only` mode."""
    verifier: float | None
    """The verifier's score, or None when it did not run."""
    verifier_ms: float | None
    reason: str = "verifier"
    """verifier (it disagreed), or own_voice (the assistant's own reply sounded like the wake word)."""


@dataclass(frozen=True)
class SpeechStart(Event):
    name: ClassVar[str] = "speech_start"


@dataclass(frozen=True)
class SpeechEnd(Event):
    name: ClassVar[str] = "speech_end"
    reason: str
    """silence, max_length, end_of_input or no_speech."""
    speech_end_s: float | None = None
    """Input time of the last speech sample the VAD heard, or None when there was none."""
    decided_by: str | None = None
    """smart_turn or transcript, when a judge found the command complete at a short pause;
    None when the full silence (or the input's end, the length limit) ended it."""
    turn_complete: float | None = None
    """smart-turn's probability that the command was complete, when it decided."""


@dataclass(frozen=True)
class Transcript(Event):
    name: ClassVar[str] = "transcript"
    text: str
    """What was said; empty when nothing was, or when what Whisper heard was dropped."""
    asr_ms: float
    """Wall time from the endpoint decision to the transcript (a speculative one may be ready sooner)."""
    dropped: str | None = None
    """Why Whisper's text was dropped as not said: no_speech, usual_hallucination, repetition or
    more_than_said (more words than the speech the VAD heard allows)."""


@dataclass(frozen=True)
class Route(Event):
    name: ClassVar[str] = "route"
    tier: str
    """fast_path, local_llm or cloud: where the request belongs."""
    intent: str | None
    fallback: str | None
    """None, or the tier answering instead when the decided one is disabled or down."""
    reason: str
    slots: dict[str, Any] = field(default_factory=dict)
    """Slot values of the intent template that matched ({"percent": 50})."""
    then: list[dict[str, Any]] = field(default_factory=list)
    """Further requests in the same sentence, each {"intent", "slots"}, done after this one."""


@dataclass(frozen=True)
class Reply(Event):
    name: ClassVar[str] = "reply"
    text: str
    tier: str
    """Who produced the text: fast_path, local_llm, cloud or offline."""
    think_ms: float


@dataclass(frozen=True)
class TtsStart(Event):
    name: ClassVar[str] = "tts_start"


@dataclass(frozen=True)
class TtsEnd(Event):
    name: ClassVar[str] = "tts_end"
    interrupted: bool
    duration_s: float
    """Length of the reply speech synthesised, in s."""
    played_s: float
    """How much of it was heard before it ended or was cut, in s."""
    stop_ms: float | None = None
    """When cut on a sound card: wall time from the stop to the last frame heard, in ms."""


@dataclass(frozen=True)
class Error(Event):
    name: ClassVar[str] = "error"
    stage: str
    code: str
    message: str


@dataclass(frozen=True)
class Turn(Event):
    name: ClassVar[str] = "turn"
    outcome: str
    """answered, no_speech, dropped, interrupted or error."""
    stages_ms: dict[str, float] = field(default_factory=dict)
    voice_to_voice_ms: float | None = None
    input_lag_ms: float | None = None
    """Worst wall time from a microphone block's arrival to its wake score while the turn ran."""
    cloud_requests: int = 0
    """Requests the turn sent to the cloud endpoint (a retry is another one)."""
    cloud_bytes_sent: int = 0
    """The size of those requests' bodies, in bytes (what `assistant audit` shows as sent)."""


@dataclass(frozen=True)
class FollowUp(Event):
    name: ClassVar[str] = "follow_up"
    window_s: float
    """How long the assistant listens without the wake word, in s."""


@dataclass(frozen=True)
class Announcement(Event):
    name: ClassVar[str] = "announcement"
    kind: str
    """timer, alarm or reminder."""
    label: str | None = None
    """A timer's name ("pasta"), if it has one; a reminder's message."""
    due: str = ""
    """When it fell due, local ISO time."""
    missed: bool = False
    """It fell due while the assistant was not running."""
    text: str = ""


@dataclass(frozen=True)
class Served(Event):
    """One request `assistant serve` answered for a client (Home Assistant, a satellite)."""

    name: ClassVar[str] = "served"
    service: str
    """asr, tts or handle (a wake stream reports its wake events instead)."""
    outcome: str
    """answered; no_speech (asr heard nothing said); not_handled (nothing could answer)."""
    stages_ms: dict[str, float] = field(default_factory=dict)
    """As a turn's: asr; tts_first_chunk and tts; the tier that answered (fast_path, local_llm, cloud, ...)."""


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class JsonLines:
    """Writes each event as one JSON object per line and flushes, so a reader sees it at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        self.stream.write(json.dumps(event.to_dict(), ensure_ascii=False) + "\n")
        self.stream.flush()


class HumanLines:
    """Short readable lines for the events a person cares about; with `words=False`, what was
    heard and said is left out (a service's log is kept; its owner decides what goes in it)."""

    def __init__(self, stream: TextIO, words: bool = True) -> None:
        self.stream = stream
        self.words = words

    def emit(self, event: Event) -> None:
        if not self.words and isinstance(event, Transcript | Reply | Announcement):
            event = dataclasses.replace(event, text=f"({len(event.text.split())} words)")
        line = _human(event)
        if line:
            self.stream.write(f"[{event.t:7.2f}s] {line}\n")
            self.stream.flush()


def _human(event: Event) -> str | None:
    match event:
        case Wake(word=word):
            return f"wake: {word}"
        case Transcript(text=text):
            return f"heard: {text}"
        case Route(tier=tier, intent=intent, fallback=fallback):
            return f"route: {tier}" + (f" {intent}" if intent else "") + (f", answered by {fallback}" if fallback else "")
        case Reply(text=text, tier=tier):
            return f"reply ({tier}): {text}"
        case Error(stage=stage, message=message):
            return f"error in {stage}: {message}"
        case Announcement(text=text):
            return f"announcing: {text}"
        case FollowUp(window_s=window_s):
            return f"listening for a follow-up for {window_s:g} s"
        case Turn(outcome=outcome, voice_to_voice_ms=v2v):
            return f"turn {outcome}" + (f", voice to voice {v2v:.0f} ms" if v2v is not None else "")
    return None


class NoEvents:
    """A sink that keeps nothing (a server with its metrics off)."""

    def emit(self, event: Event) -> None:
        pass


class Fanout:
    """Hands each event to several sinks in turn: the lines a person or script reads, and the metrics."""

    def __init__(self, *sinks: EventSink) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            sink.emit(event)


class Recorder:
    """Keeps every event in a list (tests, benchmarks)."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)
