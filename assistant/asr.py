"""Speech recognition with faster-whisper (CTranslate2), loaded once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import AsrSettings
from .errors import ModelError, StageError

# Whisper sometimes hears the tail of the wake phrase at the start of a command.
_WAKE_REMNANT = re.compile(r"^\W*(?:(?:hey|hi|okay)\W+)?(?:jarvis|jervis)\b\W*", re.IGNORECASE)


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str


class SpeechRecognizer:
    def __init__(self, model_dir: Path, settings: AsrSettings) -> None:
        from faster_whisper import WhisperModel

        self.settings = settings
        try:
            self.model = WhisperModel(str(model_dir), device="cpu", compute_type=settings.compute_type,
                                      cpu_threads=settings.threads, local_files_only=True)
        except Exception as err:  # native loaders raise many types; all mean a bad file
            raise ModelError(f"{model_dir}: cannot load the Whisper model (asr.model): {err}",
                             code="corrupt_model") from None

    def segments(self, audio: np.ndarray, timestamps: bool = True) -> list[Segment]:
        """Transcribe float32 16 kHz mono audio, whole, into timed segments."""
        try:
            found, _info = self.model.transcribe(
                audio, language=self.settings.language, beam_size=self.settings.beam_size,
                vad_filter=False, condition_on_previous_text=False,
                without_timestamps=not timestamps)
            return [Segment(s.start, s.end, s.text.strip()) for s in found]
        except (RuntimeError, ValueError) as err:
            raise StageError("asr", f"speech recognition failed: {err}") from err

    def transcribe(self, audio: np.ndarray) -> str:
        """The text of a command, without a leftover wake phrase."""
        text = " ".join(s.text for s in self.segments(audio, timestamps=False) if s.text)
        return strip_wake_remnant(text)


def strip_wake_remnant(text: str) -> str:
    return _WAKE_REMNANT.sub("", text).strip()
