"""One engine, many sessions: the models loaded once, and each stream's own state.

The `Engine` holds what is expensive and shared: Whisper, the piper voice, the end-of-turn
judge, the own-voice guard, the skills and router, the local LLM, the cloud client, Home
Assistant, and the wake words' model files. Each model serialises its own calls where its
library is not safe to share mid-call: Whisper (CTranslate2 queues calls on its one worker
anyway, so a lock costs no throughput and keeps one transcription's features from competing
with another's decode for 2 cores), piper's onnxruntime session, llama.cpp's context
(`LocalLlm.lock`) and the own-voice guard's first pass. onnxruntime's `run` and hassil's
matching are safe from many threads.

Everything that belongs to one stream is its session's: the wake detector (microWakeWord's
and openWakeWord's streaming state, so each stream loads its own small interpreters) and the
VAD's state. The daemon, push-to-talk and replay run a `Pipeline` (listening, the endpointer,
the turn) on `Engine.stream_stages()`; `assistant serve` gives each client a `Session`.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant import models
from assistant.config import Settings
from assistant.hear.asr import Recognition, Segment, SpeechRecognizer
from assistant.hear.audio import AudioChunk
from assistant.hear.end_of_turn import Judge
from assistant.hear.endpoint import VoiceActivity
from assistant.hear.own_voice import OwnVoiceGuard
from assistant.hear.wake import WakeDetector, WakeUpdate
from assistant.home.control import HomeControl
from assistant.run import memory
from assistant.run.stages import (
    Stages,
    load_asr,
    load_cloud,
    load_llm,
    load_own_voice,
    load_tts,
    load_turn_judge,
    load_understanding,
    load_wake,
)
from assistant.speak.tts import Synthesizer
from assistant.understand.cloud import CloudClient
from assistant.understand.llm import LocalLlm
from assistant.understand.router import OFFLINE, Router
from assistant.understand.skills import SkillRequest

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
                 wake_models: list[tuple[Path, float, Path, float]] | None = None, turn_judge: Judge | None = None,
                 own_voice: OwnVoiceGuard | None = None) -> None:
        self.settings = settings
        self.asr = asr
        self.tts = tts
        self.router = router
        self.llm = llm
        self.cloud = cloud
        self.home = home
        self._wake_models = wake_models if wake_models is not None else models.wake_words(settings)
        self.wake_words = [_wake_word(config) for config, *_ in self._wake_models]
        self.turn_judge = turn_judge
        """Judges at a short pause whether a command is complete; None: silence alone ends it."""
        self.own_voice = own_voice
        self._vad_model = models.vad_model(settings.endpoint.vad_model)
        self._checked: tuple[WakeDetector, VoiceActivity] | None = None
        """The detector and VAD loaded to check the files at start-up, for the first stream."""

    @classmethod
    def load(cls, settings: Settings) -> Engine:
        """Every model the services use, checked first as start-up checks them (ModelError, ConfigError)."""
        log.info("loading models")
        models.check_all(settings)
        cloud = load_cloud(settings)
        wake_models = models.wake_words(settings)
        wake = load_wake(settings, wake_models)  # each word's models load: a bad one fails now, not in a session
        vad = VoiceActivity(models.vad_model(settings.endpoint.vad_model), settings.endpoint.threads)  # fails now, too
        asr = load_asr(settings)
        tts = load_tts(settings)
        own_voice = load_own_voice(settings)
        llm = load_llm(settings)
        router, home = load_understanding(settings, llm, cloud)
        turn_judge = load_turn_judge(settings, router)
        memory.release()  # what loading freed (CTranslate2 converts Whisper's weights to int8 in a copy)
        engine = cls(settings, asr, tts, router, llm, cloud, home, wake_models, turn_judge, own_voice)
        engine._checked = (wake, vad)  # the first stream takes them: not loaded twice
        return engine

    @property
    def voice_name(self) -> str:
        """The piper voice's name ("en_US-joe-medium")."""
        return self.tts.name

    def session(self) -> Session:
        """A client's session (`assistant serve`)."""
        return Session(self)

    def stream_stages(self) -> Stages:
        """What a `Pipeline` runs on one stream (the daemon's microphone, push-to-talk, a replayed
        file): the engine's models, with this stream's own wake detector and VAD."""
        checked, self._checked = self._checked, None
        wake, vad = checked or (self.wake_detector(), VoiceActivity(self._vad_model, self.settings.endpoint.threads))
        return Stages(wake=wake, vad=vad, asr=self.asr, router=self.router, llm=self.llm,
                      tts=self.tts, own_voice=self.own_voice, cloud=self.cloud, turn_judge=self.turn_judge,
                      home=self.home)

    def wake_detector(self) -> WakeDetector:
        """A fresh detector for one stream: the words' small interpreters, loaded from the checked files."""
        return load_wake(self.settings, self._wake_models)

    def transcribe(self, audio: np.ndarray) -> Heard:
        """What was said in float32 16 kHz mono audio: a command as the pipeline hears one (its
        hallucinations dropped), a longer recording as `assistant transcribe` reads a file."""
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
        """Mono 16-bit speech at the voice's rate, one chunk per sentence."""
        return list(self.tts.synthesize(text))

    def answer(self, text: str, last_reply: str | None = None) -> Answer:
        """The reply to a request, by the router's tiers."""
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
