"""The stages a stream runs, and how each model is loaded from the settings (the engine,
engine.py, loads them once before any audio flows)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from hassil import Intents

from assistant import models
from assistant.config import HomeAssistantSettings, IntentsSettings, Settings
from assistant.errors import ConfigError
from assistant.hear.asr import SpeechRecognizer
from assistant.hear.end_of_turn import BothJudge, Judge, SmartTurnJudge, TranscriptJudge
from assistant.hear.endpoint import VoiceActivity
from assistant.hear.own_voice import OwnVoiceGuard
from assistant.hear.turn_detector import SmartTurn
from assistant.hear.verifier import OpenWakeWordFeatures, OpenWakeWordHead
from assistant.hear.wake import FirstPass, Verifier, WakeDetector
from assistant.hear.wake_phrase import wake_names
from assistant.home.control import HomeControl
from assistant.home.home_assistant import HomeAssistantClient, load_token
from assistant.home.own_intents import OwnIntents, load_own_intents
from assistant.home.sentences import HomeSentences
from assistant.speak.tts import Synthesizer
from assistant.understand.audit import AuditLog, audit_path
from assistant.understand.cloud import CloudClient, load_api_key
from assistant.understand.escalation import escalation_reason
from assistant.understand.llm import LocalLlm
from assistant.understand.router import Router
from assistant.understand.skill_mapper import SkillMapper
from assistant.understand.skills import Skill, load_skills

log = logging.getLogger(__name__)


@dataclass
class Stages:
    """The loaded models a pipeline runs; each stage is passed in, never built inside."""

    wake: WakeDetector
    vad: VoiceActivity
    asr: SpeechRecognizer
    router: Router
    llm: LocalLlm | None
    tts: Synthesizer
    own_voice: OwnVoiceGuard | None
    cloud: CloudClient | None = None
    turn_judge: Judge | None = None
    """Judges at a short pause whether the command is complete; None: silence alone ends it."""
    home: HomeControl | None = None
    """Home Assistant, when home_assistant.url is set; it follows the house in a thread of its own."""

    def close(self) -> None:
        """Stop what runs beside the models (Home Assistant's watcher)."""
        if self.home is not None:
            self.home.stop()


def load_wake(settings: Settings, word_models: list[tuple[Path, float, Path, float]] | None = None) -> WakeDetector:
    """A wake detector with its own streaming state; `word_models`: `models.wake_words(settings)`,
    when already found and checked (an engine builds one detector per stream from them)."""
    wake = settings.wake
    threads = wake.verifier_threads
    # verifier_only: one stream of embeddings, scored by every word's head
    shared = openwakeword_features(threads) if wake.mode == "verifier_only" else None
    words = []
    for first_pass_config, first_pass_threshold, verifier_model, verifier_threshold in (
            word_models if word_models is not None else models.wake_words(settings)):
        if wake.mode == "first_pass_only":
            pipelines = None
        elif shared is not None:
            pipelines = [(shared, openwakeword_head(verifier_model, threads))]
        else:
            pipelines = verifier_pipelines(verifier_model, threads, wake.verifier_alignments)
        verifier = Verifier(pipelines, verifier_threshold) if pipelines is not None else None
        words.append((FirstPass(first_pass_config, first_pass_threshold), verifier))
    return WakeDetector(words, wake, shared)


def verifier_pipelines(head_model: Path, threads: int, count: int = 1) -> list[tuple[OpenWakeWordFeatures, OpenWakeWordHead]]:
    """`count` copies of openWakeWord's models with this wake head: the verifier's, one per alignment."""
    return [(openwakeword_features(threads), openwakeword_head(head_model, threads)) for _ in range(count)]


def openwakeword_features(threads: int) -> OpenWakeWordFeatures:
    package = models.openwakeword_dir()
    return OpenWakeWordFeatures(models.tflite_library(package), package / "models", threads)


def openwakeword_head(model: Path, threads: int) -> OpenWakeWordHead:
    return OpenWakeWordHead(models.tflite_library(models.openwakeword_dir()), model, threads)


def load_own_voice(settings: Settings) -> OwnVoiceGuard | None:
    """A private first pass that scores the assistant's own replies before they play."""
    conversation = settings.conversation
    if not conversation.own_voice_guard:
        return None
    first_pass = FirstPass(models.first_pass_config(settings.wake.first_pass_model), settings.wake.first_pass_threshold)
    return OwnVoiceGuard(first_pass, conversation.own_voice_threshold, conversation.own_voice_tail_s)


def load_turn_judge(settings: Settings, router: Router) -> Judge | None:
    endpoint = settings.endpoint
    words = TranscriptJudge(router.matches_template, router.wake_names)
    if endpoint.end_of_turn == "transcript":
        return words
    if endpoint.end_of_turn == "silence":
        return None
    model = SmartTurnJudge(SmartTurn(models.turn_model(endpoint.turn_model), endpoint.threads), endpoint.turn_threshold)
    model.model.probability(np.zeros(16000, np.float32))  # warm: the first call takes several times longer
    return model if endpoint.end_of_turn == "smart_turn" else BothJudge(model, words, endpoint.sentence_silence_s)


def load_asr(settings: Settings) -> SpeechRecognizer:
    return SpeechRecognizer(models.asr_model(settings.asr.model), settings.asr, models.wake_word_names(settings))


def load_tts(settings: Settings) -> Synthesizer:
    return Synthesizer(*models.tts_voice(settings.tts.voice), settings.tts)


def load_cloud(settings: Settings) -> CloudClient:
    """The cloud client; the key is read only when the cloud is enabled, and nothing connects yet."""
    cloud = settings.cloud
    key = load_api_key(cloud) if cloud.enabled else None
    if cloud.enabled and key is None:
        log.warning("cloud.enabled is true but there is no API key (cloud.api_key_file, the credential "
                    "cloud-api-key, or $%s); cloud requests get the fallback", cloud.api_key_env)
    audit = AuditLog(audit_path(settings.resolved_state_dir()))
    return CloudClient(cloud, settings.llm.system_prompt, key, audit)


def load_mapper(settings: Settings, llm: LocalLlm | None,
                skills: tuple[Intents, dict[str, Skill]]) -> SkillMapper | None:
    """The LLM step that maps free phrasing onto skills, when llm.skill_mapping asks for it."""
    if llm is None or not settings.llm.skill_mapping:
        return None
    try:
        mapper = SkillMapper(llm, *skills, wake_words=models.wake_word_names(settings))
    except ValueError as err:  # its prompt does not fit the context
        raise ConfigError(f"llm.skill_mapping: {err}") from None
    mapper.warm()  # its prompt, evaluated once (seconds on a small CPU)
    return mapper


def load_home(settings: Settings) -> HomeControl | None:
    """Home Assistant's client and sentences, following the house from now on; None when
    home_assistant.url is empty. Nothing waits for it: a turn before it answers says so."""
    home = settings.home_assistant
    if not home.url:
        return None
    audit = AuditLog(audit_path(settings.resolved_state_dir()))
    client = HomeAssistantClient(home, load_token(home), audit)
    control = HomeControl(client, HomeSentences(settings.asr.language), home.area,
                          conversation=home.conversation)
    control.sentences.warm()
    control.start()
    # Models load meanwhile; a replay's first turn then knows the house (a daemon's too, mostly).
    if not control.wait_until_learnt(max(home.timeout_s, 5.0)):
        log.warning("Home Assistant at %s: %s; home commands wait for it", client.host, control.problem)
    return control


def load_own(settings: Settings) -> OwnIntents | None:
    """The user's own intents (intents.dir), their HTTP actions audited; None when there are none."""
    own = load_own_intents(settings.intents)
    if own is not None:
        own.audit = AuditLog(audit_path(settings.resolved_state_dir()))
        log.info("%d intents of your own from %s", len(own.defined), settings.intents.dir)
    return own


def load_llm(settings: Settings) -> LocalLlm | None:
    """The local LLM, warmed; load it after every other model: freeing a Llama while another
    loader's error unwinds turns that error into a SystemError inside llama-cpp-python."""
    if not settings.llm.enabled:
        return None
    llm = LocalLlm(models.llm_model(settings.llm.model), settings.llm,
                   chat_format=models.llm_chat_format(settings.llm.model))
    llm.warm()
    return llm


def load_understanding(settings: Settings, llm: LocalLlm | None,
                       cloud: CloudClient) -> tuple[Router, HomeControl | None]:
    """The router over every tier (own intents, skills, Home Assistant, the local LLM, the
    cloud), and the Home Assistant it controls."""
    skills = load_skills()
    home = load_home(settings)
    router = load_router(skills, llm, cloud, load_mapper(settings, llm, skills), home, load_own(settings),
                         models.wake_word_names(settings))
    return router, home


def load_router(skills: tuple[Intents, dict[str, Skill]], llm: LocalLlm | None, cloud: CloudClient,
                mapper: SkillMapper | None = None, home: HomeControl | None = None,
                own: OwnIntents | None = None, wake_words: Sequence[str] = ()) -> Router:
    """`wake_words`: the configured wake phrases (`models.wake_word_names`)."""
    names = wake_names(wake_words)
    router = Router(*skills, llm, cloud=cloud, belongs_in_cloud=functools.partial(escalation_reason, names=names),
                    mapper=mapper, home=home, own=own, wake_words=wake_words)
    for phrase in ("what is one plus one", "set a timer for three seconds"):
        router.route(phrase)  # hassil builds each range list's number words at its first match
    return router


def for_a_run(stages: Stages, settings: Settings) -> Stages:
    """The same models for another run (a test's replay, a benchmark's): a fresh wake detector
    and own-voice guard, so no state carries over, and the router and cloud client as these
    settings say (cheap: no model loads)."""
    fresh = replace(stages, wake=load_wake(settings), own_voice=load_own_voice(settings))
    wake_words = models.wake_word_names(settings)
    words_changed = list(stages.router.wake_words) != wake_words
    if words_changed:
        fresh = replace(fresh, asr=stages.asr.for_wake_words(wake_words))
    home_changed = (stages.home.settings if stages.home else HomeAssistantSettings()) != settings.home_assistant
    if home_changed:  # the caller stops it when the run is over
        fresh = replace(fresh, home=load_home(settings))
    own_changed = (stages.router.own.settings if stages.router.own else IntentsSettings()) != settings.intents
    if (stages.cloud is None or stages.cloud.settings != settings.cloud or home_changed or own_changed
            or words_changed):
        cloud = load_cloud(settings)
        skills = (stages.router.intents, stages.router.skills)  # already loaded, and warmed
        own = load_own(settings) if own_changed else stages.router.own
        fresh = replace(fresh, cloud=cloud, router=load_router(skills, stages.llm, cloud, stages.router.mapper,
                                                               fresh.home, own, wake_words))
    if (stages.turn_judge.name if stages.turn_judge else "silence") != settings.endpoint.end_of_turn or words_changed:
        fresh = replace(fresh, turn_judge=load_turn_judge(settings, fresh.router))
    return fresh


def load_stages(settings: Settings) -> Stages:
    """An engine's models and one stream's stages on them: for a program with one stream (a
    benchmark, the tests); `Stages.close` stops the engine's Home Assistant watcher."""
    from assistant.run.engine import Engine

    return Engine.load(settings).stream_stages()
