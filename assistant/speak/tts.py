"""Speech synthesis with piper, one chunk per sentence so playback can start early.

Reply text keeps digits ("It's 7:05 PM."); `speakable` turns them into words first.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from num2words import num2words

from assistant.config import TtsSettings
from assistant.errors import ModelError, StageError
from assistant.hear.audio import AudioChunk

_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\s*([AaPp])\.?\s*[Mm]\b\.?")
_MONTHS = ("January|February|March|April|May|June|July|August|September|October|November|December")
_DATE = re.compile(rf"\b({_MONTHS}) (\d{{1,2}}), (\d{{4}})\b")
_NUMBER = re.compile(r"(?<![\w.-])-?\d+(?:\.\d+)?\b")


def speakable(text: str) -> str:
    """Times, dates and numbers in words, as a person would say them."""
    text = _CLOCK.sub(_say_clock, text)
    text = _DATE.sub(_say_date, text)
    return _NUMBER.sub(_say_number, text)


def _say_number(match: re.Match) -> str:
    number = match.group()
    return num2words(float(number) if "." in number else int(number))


def _say_clock(match: re.Match) -> str:
    hour, minute, half = int(match.group(1)), int(match.group(2)), match.group(3).upper()
    spoken_hour = num2words(hour)
    if minute == 0:
        spoken = spoken_hour
    elif minute < 10:
        spoken = f"{spoken_hour} oh {num2words(minute)}"
    else:
        spoken = f"{spoken_hour} {num2words(minute)}"
    return f"{spoken} {half}.M." if half == "A" else f"{spoken} P.M."


def _say_date(match: re.Match) -> str:
    day = num2words(int(match.group(2)), to="ordinal")
    return f"{match.group(1)} {day}, {num2words(int(match.group(3)), to='year')}"


class Synthesizer:
    def __init__(self, voice_path: Path, config_path: Path, settings: TtsSettings) -> None:
        import onnxruntime
        from piper import PiperVoice, SynthesisConfig
        from piper.config import PiperConfig

        try:
            fields = json.loads(config_path.read_text(encoding="utf-8"))
            config = PiperConfig.from_dict(fields)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = settings.threads
            options.inter_op_num_threads = 1
            # Every sentence has its own shapes (the audio's length even depends on the
            # noise), so onnxruntime's arena and memory patterns, kept per shape and never
            # given back, grew ~260 MB over an hour of replies; plain malloc/free stays flat.
            options.enable_cpu_mem_arena = False
            options.enable_mem_pattern = False
            session = onnxruntime.InferenceSession(str(voice_path), sess_options=options,
                                                   providers=["CPUExecutionProvider"])
        except Exception as err:  # native loaders raise many types; all mean a bad file
            raise ModelError(f"{voice_path}: cannot load this piper voice (tts.voice): "
                             f"{type(err).__name__}: {err}", code="corrupt_model") from None
        self.voice = PiperVoice(config=config, session=session)
        self.name = voice_path.name.removesuffix(".onnx")
        """The voice's name, from its file ("en_US-joe-medium")."""
        language = fields.get("language")
        self.language = str(language.get("family") or "en") if isinstance(language, dict) else "en"
        """The voice's language ("en")."""
        self.synthesis = SynthesisConfig(length_scale=settings.length_scale)
        self.rate_hz = config.sample_rate
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """Mono 16-bit chunks at the voice's rate, one per sentence."""
        sentences = self.voice.synthesize(speakable(text), self.synthesis)
        while True:
            try:
                with self._lock:  # one sentence at a time: sessions share the voice; not held across a yield
                    chunk = next(sentences, None)
            except (RuntimeError, ValueError) as err:
                raise StageError("tts", f"speech synthesis failed: {err}") from err
            if chunk is None:
                return
            yield AudioChunk(chunk.audio_int16_bytes, rate_hz=chunk.sample_rate)
