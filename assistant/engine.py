"""One engine, many sessions: the models loaded once, and each stream's own state.

The `Engine` holds what is expensive and shared: Whisper, the piper voice, the skills and
router, the local LLM, the cloud client, Home Assistant, and the wake words' model files.
CTranslate2 takes calls from many threads but queues them on its one worker, so
recognition holds a lock too, which costs no throughput: one transcription at a time at
full speed, its features (numpy) not competing with another's decode for 2 cores. piper's
onnxruntime session and llama.cpp's context are not safe to share mid-call, so synthesis
and understanding (the router, which drives the LLM and keeps match caches) each hold one. A `Session` is one stream: its wake detector
(microWakeWord's and openWakeWord's streaming state are per stream, so each session
loads its own small interpreters), and the last reply, for "repeat that".
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import memory, models
from .asr import Recognition, Segment, SpeechRecognizer
from .audio import AudioChunk
from .cloud import CloudClient
from .config import Settings
from .home.control import HomeControl
from .llm import LocalLlm
from .router import OFFLINE, Router
from .skills import SkillRequest
from .stages import load_asr, load_cloud, load_llm, load_tts, load_understanding, load_wake
from .tts import Synthesizer
from .wake import WakeDetector, WakeUpdate

log = logging.getLogger(__name__)

RATE_HZ = 16000
_COMMAND_S = 30
"""Audio up to this long is a command (Whisper's one window, the hallucination checks);
longer audio is transcribed as `assistant transcribe` does a file."""
NO_STORES_REPLY = "I can't keep timers, alarms, reminders or lists from here; ask the assistant's own speaker."


@dataclass(frozen=True)
class WakeWord:
    """A wake word the engine detects."""

    id: str
    """The model's name ("hey_jarvis"): what a client asks for and a detection names."""
    phrase: str
    """What is said ("Hey Jarvis")."""
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Heard:
    """A transcript, or why there is none."""

    text: str
    """What was said; empty when nothing was (or Whisper only imagined it)."""
    dropped: str | None = None
    """Why Whisper's words were not taken (`Recognition.hallucinated`), or None."""


@dataclass(frozen=True)
class Answer:
    """What the assistant says to a request, and whether anything could answer it."""

    text: str
    tier: str
    """Who answered: fast_path, home, local_llm, cloud or offline."""
    handled: bool
    """False when nothing could answer (offline: the reply says why)."""


class Engine:
    """The models, loaded once; shared by every session (see the module's docstring for the locks)."""

    def __init__(self, settings: Settings, asr: SpeechRecognizer, tts: Synthesizer, router: Router,
                 llm: LocalLlm | None = None, cloud: CloudClient | None = None, home: HomeControl | None = None,
                 wake_models: list[tuple[Path, float, Path, float]] | None = None) -> None:
        self.settings = settings
        self.asr = asr
        self.tts = tts
        self.router = router
        self.llm = llm
        self.cloud = cloud
        self.home = home
        self._wake_models = wake_models if wake_models is not None else models.wake_words(settings)
        self.wake_words = [_wake_word(config) for config, *_ in self._wake_models]
        self._hearing = threading.Lock()
        self._speaking = threading.Lock()
        self._understanding = threading.Lock()

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        """Every model the services use, checked first as start-up checks them (ModelError, ConfigError)."""
        log.info("loading models")
        models.check_all(settings)
        cloud = load_cloud(settings)
        wake_models = models.wake_words(settings)
        load_wake(settings, wake_models).close()  # each word's models load: a bad one fails now, not in a session
        asr = load_asr(settings)
        tts = load_tts(settings)
        llm = load_llm(settings)
        router, home = load_understanding(settings, llm, cloud)
        memory.release()
        return cls(settings, asr, tts, router, llm, cloud, home, wake_models)

    @property
    def voice_name(self) -> str:
        """The piper voice's name ("en_US-joe-medium")."""
        return self.tts.name

    def session(self) -> Session:
        return Session(self)

    def wake_detector(self) -> WakeDetector:
        """A fresh detector for one stream: the words' small interpreters, loaded from the checked files."""
        return load_wake(self.settings, self._wake_models)

    def transcribe(self, audio: np.ndarray) -> Heard:
        """What was said in float32 16 kHz mono audio: a command as the pipeline hears one (its
        hallucinations dropped), a longer recording as `assistant transcribe` reads a file."""
        with self._hearing:
            try:
                if len(audio) > _COMMAND_S * RATE_HZ:
                    return Heard(" ".join(s.text for s in self.segments(audio) if s.text))
                heard: Recognition = self.asr.recognize(audio)
            finally:
                # Each call runs in a thread of its own, which glibc gives an arena of its own:
                # what the features took would otherwise stay resident per thread (bench serve).
                memory.release()
        dropped = heard.hallucinated()
        return Heard("" if dropped else heard.text, dropped)

    def segments(self, audio: np.ndarray) -> Iterator[Segment]:
        return self.asr.stream_segments(iter([audio]))

    def speak(self, text: str) -> list[AudioChunk]:
        """Mono 16-bit speech at the voice's rate, one chunk per sentence (one synthesis at a time)."""
        with self._speaking:
            return list(self.tts.synthesize(text))

    def answer(self, text: str, last_reply: str | None = None) -> Answer:
        """The reply to a request, by the router's tiers (one request at a time: the LLM and the
        router's caches are not shared between threads)."""
        with self._understanding:
            decision = self.router.route(text)
            request = SkillRequest(said=text, last_reply=last_reply, limits=self.settings.reminders)
            try:
                whole = self.router.skill_reply(decision, request)
            except AssertionError:  # a skill that needs the reminder or list store, which the daemon owns
                return Answer(NO_STORES_REPLY, decision.answered_by, handled=False)
            if whole is not None:
                return Answer(whole.text, decision.answered_by, handled=decision.answered_by != OFFLINE)
            reply = self.router.streamed_reply(text, threading.Event(), decision)
            said = " ".join(sentence for sentence in reply)
            return Answer(said, reply.tier, handled=reply.tier != OFFLINE and bool(said))

    def close(self) -> None:
        if self.home is not None:
            self.home.stop()


class Session:
    """One client's stream on the engine: its wake detector and what it was last told."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.last_reply: str | None = None
        self._wake: WakeDetector | None = None

    def wake(self) -> WakeDetector:
        """This stream's detector (loaded at first use)."""
        if self._wake is None:
            self._wake = self.engine.wake_detector()
        return self._wake

    def hear(self, chunk: AudioChunk) -> WakeUpdate:
        """Feed one chunk of the stream to the wake detector. While a candidate is being verified,
        wait for the verifier to score what it was given: a client may send audio faster than
        real time, and the verdict must not depend on how fast."""
        wake = self.wake()
        update = wake.process(chunk)
        if wake.verifying_since() is not None:
            wake.catch_up()
        return update

    def restart_wake(self) -> None:
        """Forget the stream so far: the next audio starts a new one."""
        if self._wake is not None:
            self._wake.close()
            self._wake = None

    def answer(self, text: str) -> Answer:
        answer = self.engine.answer(text, self.last_reply)
        self.last_reply = answer.text
        return answer

    def close(self) -> None:
        self.restart_wake()


def _wake_word(config: Path) -> WakeWord:
    fields = json.loads(config.read_text(encoding="utf-8"))
    return WakeWord(config.stem, str(fields["wake_word"]), tuple(fields.get("trained_languages") or ("en",)))
