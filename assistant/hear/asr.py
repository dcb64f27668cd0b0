"""Speech recognition with faster-whisper (CTranslate2), loaded once.

A command is a few seconds long, but Whisper's encoder is built for 30 s windows and
faster-whisper always pads to one: on tiny.en that is ~500 ms of the ~600 ms a command
took. CTranslate2's encoder accepts a shorter window, so a command is encoded in a
window just longer than itself (`asr.min_window_s`), padded with the features of
silence as Whisper pads; too short a window makes Whisper repeat itself, so the
shortest is 10 s by default and the decoder's length is bounded by the audio's. Whole
files (`assistant transcribe`) are read and recognised one 30 s window at a time
(`stream_segments`), each through faster-whisper's own path.
"""

from __future__ import annotations

import copy
import math
import re
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from assistant.config import AsrSettings
from assistant.errors import ModelError, StageError
from assistant.hear.audio import windows
from assistant.hear.wake_phrase import GREETINGS, alternatives, phrase_words, wake_names

# ... and sometimes as another word ("was set a timer", "service. Repeat that."): only a
# template match after dropping it tells that it was not said.
_MISHEARD_TAIL = re.compile(r"^\W*(?:was|us|is|vis|this|service|travis|it's)\b\W*", re.IGNORECASE)
_RATE_HZ = 16000
_WINDOW_S = 30
"""Whisper's own window: a long file is recognised in pieces of at most this length."""
_CUT_WITHIN_S = 5
"""A piece ends at the quietest 100 ms of its last 5 s: almost always a pause between words."""
_TOKENS_PER_S = 10
"""Fast speech is ~4 tokens a second; past this many the decoder is looping, not hearing."""
_NO_SPEECH_PROB = 0.8
_GUESSING_LOGPROB = -1.0
"""Whisper's own no-speech rule (both past these: the window held no speech), with 0.8 for
its 0.6: a short "Stop." after the wake phrase scored 0.74 here, noise and music 0.82 up."""
_WORDS_ALWAYS, _WORDS_PER_SPEECH_S = 2, 6
"""Fast speech is ~4 words a second: more words than this allows for the speech the VAD
heard were not said ("I'm going to go to the end of the video." on clicks)."""
_LOOPING_RATIO = 2.4
"""Text that zlib compresses more than this repeats itself (Whisper's own threshold)."""
_USUAL_HALLUCINATIONS = frozenset({
    "you", "thank you", "thanks", "thanks for watching", "thank you for watching", "so", "bye", "yes",
    "the", "i", "oh", "okay", "uh", "um", "hmm", "ah"})
"""What tiny.en says on silence, noise, hum, clicks and music (found by `tests/test_asr.py`'s
inputs): dropped when said with low confidence, kept when said clearly."""


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Recognition:
    """A command's transcript and what Whisper thought of it."""

    text: str
    no_speech_prob: float
    """Whisper's probability that the window holds no speech."""
    avg_logprob: float
    """Mean log-probability of the transcript's tokens: low when Whisper was guessing."""

    @property
    def guessed(self) -> bool:
        """Whisper was guessing at the words (a command cut mid-word is often heard as another)."""
        return self.avg_logprob <= _GUESSING_LOGPROB

    def hallucinated(self, speech_s: float | None = None) -> str | None:
        """Why this transcript is not what someone said (no_speech, usual_hallucination,
        repetition, more_than_said), or None when it is. `speech_s`: how much speech the
        VAD heard in the audio, when known."""
        words = words_of(self.text)
        # Sure there was no speech, Whisper still writes "you" or "." on silence, and not as a guess.
        only_filler = not words or " ".join(words) in _USUAL_HALLUCINATIONS
        if self.no_speech_prob >= _NO_SPEECH_PROB and (self.avg_logprob <= _GUESSING_LOGPROB or only_filler):
            return "no_speech"
        if " ".join(words) in _USUAL_HALLUCINATIONS and self.avg_logprob <= _GUESSING_LOGPROB:
            return "usual_hallucination"
        if looping(self.text):
            return "repetition"
        if speech_s is not None and len(words) > _WORDS_ALWAYS + _WORDS_PER_SPEECH_S * speech_s:
            return "more_than_said"
        return None


def words_of(text: str) -> list[str]:
    """The text's words, lower case, without punctuation."""
    return re.findall(r"[\w']+", text.lower())


def said_once(text: str) -> str:
    """A transcript that is one request written twice over ("What's 17 times 3? What's 17
    times 3?", which a prompt can bring out in noise), as one."""
    half = len(text) // 2
    for cut in range(max(1, half - 2), min(len(text), half + 3)):
        first, second = text[:cut].strip(), text[cut:].strip()
        if first and first.lower() == second.lower() and len(first.split()) >= 2:
            return first
    return text


def looping(text: str) -> bool:
    """Whether the decoder got stuck: a phrase said three times running, or text that compresses too well."""
    words = words_of(text)
    for n in range(1, 9):
        for i in range(len(words) - 3 * n + 1):
            if words[i:i + n] == words[i + n:i + 2 * n] == words[i + 2 * n:i + 3 * n]:
                return True
    data = text.encode()
    return len(data) > 24 and len(data) / len(zlib.compress(data)) > _LOOPING_RATIO


class SpeechRecognizer:
    def __init__(self, model_dir: Path, settings: AsrSettings, wake_words: Sequence[str] = ()) -> None:
        """`wake_words`: the configured wake phrases ("Hey Jarvis"), whose remnants are taken
        off the start of a command; none: nothing is."""
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.settings = settings
        self._lock = threading.Lock()
        """One transcription at a time: sessions share the model (see engine.py)."""
        try:
            self.model = WhisperModel(str(model_dir), device="cpu", compute_type=settings.compute_type,
                                      cpu_threads=settings.threads, local_files_only=True)
        except Exception as err:  # native loaders raise many types; all mean a bad file
            raise ModelError(f"{model_dir}: cannot load the Whisper model (asr.model): {err}",
                             code="corrupt_model") from None
        multilingual = self.model.model.is_multilingual
        self.tokenizer = Tokenizer(self.model.hf_tokenizer, multilingual, task="transcribe",
                                   language=settings.language if multilingual else None)
        extractor = self.model.feature_extractor
        self._silence = extractor(np.zeros(30 * _RATE_HZ, np.float32), padding=0)[:, :extractor.nb_max_frames]
        self._prompt = self._prompt_tokens(settings.prompt)
        self.wake_words = tuple(wake_words)
        self._wake_remnant = wake_remnant(wake_words)

    def _prompt_tokens(self, prompt: str) -> list[int]:
        tokens = list(self.tokenizer.sot_sequence) + [self.tokenizer.no_timestamps]
        if prompt:  # Whisper reads it as the text said before: it leans towards these words
            tokens = [self.tokenizer.sot_prev, *self.tokenizer.encode(" " + prompt.strip())[-200:], *tokens]
        return tokens

    def segments(self, audio: np.ndarray, timestamps: bool = True) -> list[Segment]:
        """Transcribe float32 16 kHz mono audio of any length, whole, into timed segments; what
        Whisper invents on silence and noise is left out, as a command's is dropped."""
        return list(self._segments_of(audio, timestamps))

    def stream_segments(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        """Transcribe float32 16 kHz mono audio of any length as it is read, into segments timed
        from its start, each as soon as it is found; memory stays that of one window.

        The audio is cut into windows of at most 30 s at a quiet point near each window's end.
        Carrying each window's unfinished last segment over into the next would handle speech
        with no pause at all, but costs a second decode of that tail and needs Whisper's
        timestamps to be right at the edge; a 100 ms pause within 5 s is near certain in
        speech, and within a window faster-whisper already carries its own tail over."""
        for first, window in windows(blocks, _WINDOW_S * _RATE_HZ, _CUT_WITHIN_S * _RATE_HZ):
            start_s, length_s = first / _RATE_HZ, len(window) / _RATE_HZ
            for s in self._segments_of(window):  # Whisper's times can run past the audio's end
                yield Segment(start_s + min(s.start_s, length_s), start_s + min(s.end_s, length_s), s.text)

    def _segments_of(self, audio: np.ndarray, timestamps: bool = True) -> Iterator[Segment]:
        try:
            with self._lock:  # decoded whole here (faster-whisper decodes lazily): the lock is not held across a yield
                found = list(self.model.transcribe(
                    audio, language=self.settings.language, beam_size=self.settings.beam_size,
                    vad_filter=False, condition_on_previous_text=False,
                    without_timestamps=not timestamps)[0])
        except (RuntimeError, ValueError) as err:
            raise StageError("asr", f"speech recognition failed: {err}") from err
        for s in found:
            if not Recognition(s.text.strip(), s.no_speech_prob, s.avg_logprob).hallucinated():
                yield Segment(s.start, s.end, s.text.strip())

    def recognize(self, audio: np.ndarray) -> Recognition:
        """A command's transcript, without a leftover wake phrase (audio up to 30 s)."""
        audio = audio[-30 * _RATE_HZ:]
        [heard] = self._decode(audio, self.settings.min_window_s, self.settings.beam_size)
        if looping(heard.text) and self.settings.min_window_s < 30:  # a short window can loop; Whisper's own rarely does
            [heard] = self._decode(audio, 30.0, self.settings.beam_size)
        return replace(heard, text=said_once(heard.text))

    def second_guesses(self, audio: np.ndarray, first: Recognition) -> list[Recognition]:
        """Whisper's next best readings of a command (`asr.second_guesses` of them, by a beam
        search that wide), best first: those not much less likely than `first` (by at most
        `asr.second_guess_margin` of mean log-probability) and worded otherwise. For a
        transcript that means nothing to the skills: "clear might to do list" was also
        heard, a little less surely, as "clear my to do list"."""
        count = self.settings.second_guesses
        if count == 0:
            return []
        guesses = self._decode(audio[-30 * _RATE_HZ:], self.settings.min_window_s, max(count, 2), count)
        least = first.avg_logprob - self.settings.second_guess_margin
        unlike = {" ".join(words_of(first.text))}
        found = []
        for guess in guesses:
            words = " ".join(words_of(guess.text))
            if guess.avg_logprob >= least and not guess.guessed and words and words not in unlike:
                unlike.add(words)
                found.append(replace(guess, text=said_once(guess.text)))
        return found

    def _decode(self, audio: np.ndarray, min_window_s: float, beam_size: int, readings: int = 1) -> list[Recognition]:
        """The `readings` likeliest transcripts of `audio`, best first."""
        import ctranslate2

        try:
            features = self._window(audio, min_window_s)
            with self._lock:
                result = self._generate(ctranslate2.StorageView.from_array(features), len(audio), beam_size, readings)
        except (RuntimeError, ValueError) as err:
            raise StageError("asr", f"speech recognition failed: {err}") from err
        no_speech = round(float(result.no_speech_prob), 3)
        return [Recognition(strip_wake_remnant(self.tokenizer.decode(ids).strip(), self._wake_remnant), no_speech,
                            round(float(score), 3)) for ids, score in zip(result.sequences_ids, result.scores)]

    def _generate(self, features, samples: int, beam_size: int, readings: int):
        encoded = self.model.model.encode(features, to_cpu=True)
        # CTranslate2 counts the prompt in the length
        max_tokens = min(448, len(self._prompt) + math.ceil(_TOKENS_PER_S * samples / _RATE_HZ) + 10)
        return self.model.model.generate(
            encoded, [self._prompt], beam_size=beam_size, num_hypotheses=readings, max_length=max_tokens,
            return_scores=True, return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1])[0]

    def _window(self, audio: np.ndarray, min_window_s: float) -> np.ndarray:
        """The audio's log-mel features in the shortest window that holds it, padded as silence."""
        heard = self.model.feature_extractor(audio, padding=160)  # at least one frame, however short
        window_s = min(30.0, max(min_window_s, math.ceil(len(audio) / _RATE_HZ + 1.0)))
        frames = min(self._silence.shape[-1], int(window_s * 100))
        window = self._silence[:, :frames].copy()
        window[:, :min(frames, heard.shape[-1])] = heard[:, :frames]
        return np.ascontiguousarray(window[np.newaxis])

    def for_wake_words(self, wake_words: Sequence[str]) -> SpeechRecognizer:
        """The same model, taking other wake phrases' remnants off (no model loads)."""
        other = copy.copy(self)
        other.wake_words = tuple(wake_words)
        other._wake_remnant = wake_remnant(wake_words)
        return other

    def transcribe(self, audio: np.ndarray) -> str:
        """The text of a command, without a leftover wake phrase."""
        return self.recognize(audio).text


def wake_remnant(wake_words: Sequence[str]) -> re.Pattern[str]:
    """What Whisper may hear of the wake phrase at the start of a command: the configured
    words' names ("jarvis" of "hey jarvis"), after an optional greeting."""
    names, greetings = wake_names(wake_words), set(GREETINGS)
    for phrase in wake_words:
        greetings.update(phrase_words(phrase)[:-1])
    if not names:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile(rf"^\W*(?:(?:{alternatives(greetings)})\W+)?(?:{alternatives(names)})\b\W*", re.IGNORECASE)


def strip_wake_remnant(text: str, remnant: re.Pattern[str]) -> str:
    return remnant.sub("", text).strip()


def without_misheard_tail(text: str) -> str | None:
    """The text without a first word that may be the wake phrase's tail misheard, or None
    when it does not start with one."""
    stripped = _MISHEARD_TAIL.sub("", text, count=1).strip()
    return stripped if stripped != text.strip() and stripped else None
