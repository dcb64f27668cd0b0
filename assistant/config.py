"""Settings: nested frozen dataclasses, loaded once from TOML and validated by key name.

The defaults here equal the shipped `config.toml` (a test keeps them in step).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import re
import stat
import tomllib
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

BUNDLED = "bundled"
GEMMA3_270M = "gemma3-270m"
"""A packaged LLM `llm.model` may name (the optional extra `gemma`)."""


def setting(default: Any, doc: str, *, min: float | None = None, max: float | None = None,
            choices: tuple[str, ...] | None = None, path: bool = False, names: tuple[str, ...] = (),
            paths: bool = False) -> Any:
    """A settings field with its documentation and the values it accepts; a `path` may also be
    one of `names` (a packaged model), which is not a file; `paths`: a list of absolute paths."""
    meta = {"doc": doc, "min": min, "max": max, "choices": choices, "path": path, "names": names, "paths": paths}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class AudioSettings:
    """Microphone and speakers."""

    input_device: str = setting("default", "sounddevice input name or index; \"default\" is the system's")
    output_device: str = setting("default", "sounddevice output name or index; \"default\" is the system's")
    input_gain_db: float = setting(0.0, "gain applied to the microphone, in dB", min=-30.0, max=30.0)
    output_volume: float = setting(1.0, "reply loudness, 0 to 1", min=0.0, max=1.0)
    block_ms: int = setting(30, "microphone block length, in ms", min=10, max=200)
    noise_suppression: int = setting(
        0, "WebRTC noise suppression before the VAD and recognition, 1 (light) to 4; 0: off (bench asr: "
        "it made Whisper less accurate, clean and in noise)", min=0, max=4)
    auto_gain_dbfs: int = setting(0, "WebRTC automatic gain towards this level in -dBFS, 1 to 31; 0: off",
                                  min=0, max=31)


WAKE_MODES = ("two_pass", "verifier_only", "first_pass_only")
PACKAGED_WAKE_WORDS = ("hey_jarvis", "okay_nabu", "alexa", "hey_mycroft")
"""Wake words whose models both wake word packages carry: a model setting may name one."""


@dataclass(frozen=True)
class WakeWordSettings:
    """A wake word beside the main one: its own pair of models and thresholds."""

    first_pass_model: str = setting("", "microWakeWord model config (.json beside its .tflite), or a packaged "
                                    "word: " + ", ".join(PACKAGED_WAKE_WORDS), path=True, names=PACKAGED_WAKE_WORDS)
    first_pass_threshold: float = setting(0.5, "first-pass probability that wakes the verifier", min=0.0, max=1.0)
    verifier_model: str = setting("", "openWakeWord wake model (.tflite or .onnx), or a packaged word",
                                  path=True, names=PACKAGED_WAKE_WORDS)
    verifier_threshold: float = setting(0.5, "verifier score that accepts a candidate", min=0.0, max=1.0)


@dataclass(frozen=True)
class WakeSettings:
    """Two-pass wake word detection: a tiny first pass gates a larger verifier."""

    mode: str = setting("two_pass", "two_pass (the first pass gates the verifier), verifier_only (openWakeWord on "
                        "every chunk) or first_pass_only (microWakeWord alone)", choices=WAKE_MODES)
    first_pass_model: str = setting(BUNDLED, "microWakeWord model config (.json beside its .tflite); bundled: "
                                    "hey_jarvis; or another packaged word: okay_nabu, alexa, hey_mycroft",
                                    path=True, names=PACKAGED_WAKE_WORDS)
    first_pass_threshold: float = setting(0.001, "first-pass probability that wakes the verifier (as low as it "
                                          "goes: the first pass is for recall, the verifier for precision; bench wake "
                                          "chose it)", min=0.0, max=1.0)
    verifier_model: str = setting(BUNDLED, "openWakeWord wake model (.tflite or .onnx), or a packaged word",
                                  path=True, names=PACKAGED_WAKE_WORDS)
    verifier_threshold: float = setting(0.5, "score that accepts a candidate: the verifier's, fused with the first "
                                        "pass's (see fusion)", min=0.0, max=1.0)
    verifier_window_s: float = setting(2.5, "audio before the candidate that the verifier scores, in s", min=2.0, max=8.0)
    verifier_hold_s: float = setting(2.0, "how long after the candidate the verifier may still accept it, in s "
                                     "(a low first pass fires mid-phrase, before the verifier is sure; bench wake)",
                                     min=0.0, max=2.0)
    verifier_threads: int = setting(1, "TFLite threads for the verifier", min=1, max=16)
    verifier_alignments: int = setting(1, "how many alignments of its 80 ms steps the verifier scores a candidate at, "
                                       "judged by their mean (its score depends on the alignment; bench wake: more "
                                       "steadied one verdict, not the totals, and cost 0.2 s a wake each)", min=1, max=8)
    refractory_s: float = setting(2.0, "time after a wake or rejection when no new candidate is taken, in s", min=0.0, max=30.0)
    fusion: float = setting(0.0, "score fusion: a candidate is accepted when (1 - fusion) x the verifier's score + "
                            "fusion x the first pass's peak reaches verifier_threshold; 0: the verifier's score alone "
                            "(bench wake: fusion let \"hey Travis\" in)",
                            min=0.0, max=1.0)
    second_chance_s: float = setting(
        6.0, "after a candidate turned down with a score of at least near_miss_score, for this long a candidate "
        "needs only second_chance_threshold (a person saying it again); 0: never, in s", min=0.0, max=30.0)
    near_miss_score: float = setting(0.3, "a turned-down candidate's score that gives a second chance",
                                     min=0.0, max=1.0)
    second_chance_threshold: float = setting(0.3, "the score that accepts a candidate during a second chance",
                                             min=0.0, max=1.0)
    extra_words: tuple[WakeWordSettings, ...] = field(default=(), metadata={
        "doc": "more wake words, each a [[wake.extra_words]] table with its own models and thresholds",
        "items": WakeWordSettings})


@dataclass(frozen=True)
class EndpointSettings:
    """Voice activity and the end of a command."""

    vad_model: str = setting(BUNDLED, "Silero VAD model (.onnx)", path=True)
    speech_threshold: float = setting(0.5, "Silero speech probability counted as speech", min=0.05, max=0.95)
    end_of_turn: str = setting(
        "both", "what judges at a short pause whether the command is complete: smart_turn (a model that hears it), "
        "transcript (a template matches, or the text ends a sentence), both (the two agree) or silence (wait silence_s)",
        choices=("both", "smart_turn", "transcript", "silence"))
    pause_s: float = setting(0.15, "silence after speech at which the command so far is transcribed and judged, in s",
                             min=0.1, max=2.0)
    silence_s: float = setting(1.2, "silence after speech that ends a command not judged complete, in s",
                               min=0.2, max=5.0)
    sentence_silence_s: float = setting(
        0.7, "silence that ends a command whose words read finished but that smart-turn does not hear "
        "finished (end_of_turn = both), in s", min=0.2, max=5.0)
    turn_model: str = setting(BUNDLED, "smart-turn end-of-turn model (.onnx)", path=True)
    turn_threshold: float = setting(0.5, "smart-turn probability that the command is complete", min=0.05, max=0.99)
    no_speech_s: float = setting(5.0, "time after a wake with no speech before giving up, in s", min=1.0, max=30.0)
    max_command_s: float = setting(12.0, "longest command, in s", min=2.0, max=60.0)
    threads: int = setting(1, "onnxruntime threads for the VAD", min=1, max=16)


@dataclass(frozen=True)
class ConversationSettings:
    """Follow-up questions and the assistant's own voice."""

    question_follow_up_s: float = setting(
        5.0, "after a reply that ends in a question, listen this long without the wake word, in s; 0: never",
        min=0.0, max=30.0)
    follow_up_s: float = setting(
        0.0, "after any other reply, listen this long without the wake word, in s; 0: never", min=0.0, max=30.0)
    own_voice_guard: bool = setting(
        True, "turn down wake candidates heard while the reply itself sounds like the wake word")
    own_voice_threshold: float = setting(
        0.3, "first-pass score of a reply sentence that marks it wake-like", min=0.0, max=1.0)
    own_voice_tail_s: float = setting(
        0.7, "how long after a wake-like sentence its echo may still be heard, in s", min=0.0, max=5.0)
    skill_timeout_s: float = setting(
        10.0, "deadline for a skill's answer (a timer set, a home command done), in s; past it the turn says so "
        "and ends in an error", min=0.5, max=120.0)


@dataclass(frozen=True)
class RemindersSettings:
    """Timers and alarms ringing."""

    ring_times: int = setting(3, "how many times a timer or alarm chimes and says what it is, unless stopped",
                              min=1, max=20)
    ring_pause_s: float = setting(2.0, "pause between those times, in s", min=0.0, max=60.0)
    longest_timer_h: float = setting(24.0, "the longest timer, in hours; a longer one is refused in words", min=0.1,
                                     max=168.0)
    longest_reminder_days: float = setting(7.0, "how far ahead a reminder may be, in days", min=1.0, max=366.0)


@dataclass(frozen=True)
class AsrSettings:
    """Speech recognition with faster-whisper."""

    model: str = setting(BUNDLED, "CTranslate2 Whisper model directory", path=True)
    language: str = setting("en", "spoken language code")
    compute_type: str = setting("int8", "CTranslate2 compute type", choices=("int8", "int8_float32", "float32"))
    beam_size: int = setting(1, "beam width; 1 is greedy and fastest", min=1, max=10)
    threads: int = setting(2, "CTranslate2 CPU threads", min=1, max=16)
    min_window_s: float = setting(
        10.0, "shortest audio window Whisper encodes a command in, in s; 30 is Whisper's own (slowest, "
        "no more accurate on the fixtures); under 10 it starts repeating itself", min=5.0, max=30.0)
    prompt: str = setting("", "words Whisper is told came before each command, to lean it towards them; empty: none")
    second_guesses: int = setting(
        5, "when a transcript matches no skill and is no small talk, how many of Whisper's next best readings "
        "(a beam search this wide, on that turn only) are tried against the skills' templates; 0: none", min=0, max=10)
    second_guess_margin: float = setting(
        0.5, "how much less likely (mean log-probability per token) a second guess may be than the transcript",
        min=0.0, max=5.0)


@dataclass(frozen=True)
class LlmSettings:
    """The local language model (llama.cpp)."""

    enabled: bool = setting(True, "answer small talk with the local model (greetings, thanks, how are you); it answers nothing else, and a sentence of its that claims an action is not spoken")
    model: str = setting(BUNDLED, "GGUF model file; or \"gemma3-270m\" (the optional extra `gemma`)", path=True,
                         names=(GEMMA3_270M,))
    context_tokens: int = setting(1024, "context window, in tokens", min=256, max=32768)
    max_reply_tokens: int = setting(60, "longest reply, in tokens", min=8, max=1024)
    temperature: float = setting(0.2, "sampling temperature", min=0.0, max=2.0)
    threads: int = setting(2, "llama.cpp threads", min=1, max=16)
    skill_mapping: bool = setting(
        False, "map requests the templates miss onto skills with the local LLM before it answers; needs "
        "context_tokens = 2048 with the shipped skills (off: on the labelled set SmolLM2 maps half the free phrasings "
        "and mistakes a fifth of the rest for a skill)")
    system_prompt: str = setting(
        "You are a voice assistant on a small home speaker. Answer in one or two short, plain "
        "sentences that sound natural when spoken. Never use lists, markdown or emoji.",
        "instructions given to the model before every request")


@dataclass(frozen=True)
class CloudSettings:
    """An OpenAI-compatible endpoint for requests the device cannot serve; off by default."""

    enabled: bool = setting(False, "allow requests to leave the device")
    url: str = setting("", "base URL of an OpenAI-compatible API, e.g. https://host/v1 (https, or http on loopback)")
    model: str = setting("", "model name sent to the endpoint; empty: none is sent (a server with one model)")
    api_key_file: str = setting(
        "", "file holding the API key; empty: the systemd credential cloud-api-key, then api_key_env", path=True)
    api_key_env: str = setting("ASSISTANT_CLOUD_API_KEY", "environment variable holding the API key (desktop use)")
    fallback: str = setting("offline", "who answers when the cloud cannot: offline (says it can't) or local_llm",
                            choices=("offline", "local_llm"))
    max_reply_tokens: int = setting(150, "longest reply, in tokens", min=8, max=4096)
    max_reply_chars: int = setting(1000, "longest reply taken, in characters, whatever the server does with "
                                   "max_reply_tokens: the stream is closed there", min=100, max=100000)
    max_reply_speech_s: float = setting(60.0, "longest reply said, in s of speech: the answer ends with the last "
                                        "sentence that fits", min=5.0, max=600.0)
    first_words_s: float = setting(2.5, "deadline from the request to the answer's first words, retries included, in s",
                                   min=0.5, max=30.0)
    timeout_s: float = setting(10.0, "deadline for the whole answer, in s", min=1.0, max=120.0)
    retries: int = setting(1, "further attempts after a connection error or a 5xx, before anything is said",
                           min=0, max=5)
    retry_backoff_s: float = setting(0.25, "wait before the first retry, doubled for each next one, in s",
                                     min=0.0, max=5.0)
    breaker_failures: int = setting(1, "failed requests in a row that open the circuit breaker", min=1, max=20)
    breaker_cooldown_s: float = setting(
        60.0, "while the breaker is open the fallback answers at once; after this one request tries again, in s",
        min=1.0, max=3600.0)


@dataclass(frozen=True)
class HomeAssistantSettings:
    """Your Home Assistant: lights, switches and the rest it exposes to Assist; off when url is empty."""

    url: str = setting("", "Home Assistant's address, e.g. http://homeassistant.local:8123; plain http only to "
                       "this machine or the home network (private, link-local or .local names); empty: no home control")
    token_file: str = setting("", "file holding a long-lived access token (Home Assistant: your profile, Security); "
                              "empty: the systemd credential home-assistant-token, then token_env", path=True)
    token_env: str = setting("ASSISTANT_HA_TOKEN", "environment variable holding the token (desktop use)")
    area: str = setting("", "the Home Assistant area this speaker is in, so \"turn off the lights\" means here; "
                        "empty: say where")
    timeout_s: float = setting(2.0, "deadline for Home Assistant's answer to one request, in s "
                               "(past it the turn says Home Assistant is not answering)", min=0.2, max=30.0)
    conversation: bool = setting(True, "a request the templates miss that names something in your home goes to "
                                 "Home Assistant's own conversation agent before the local LLM")


@dataclass(frozen=True)
class IntentsSettings:
    """Your own intents: sentences in hassil's syntax, each with a reply and one action (http, mqtt or command)."""

    dir: str = setting("", "folder of YAML files of intents (see docs/home.md); empty: none", path=True)
    allowed_commands: tuple[str, ...] = setting((), "programs (absolute paths) a command action may run", paths=True)


@dataclass(frozen=True)
class TtsSettings:
    """Speech synthesis with piper."""

    voice: str = setting(BUNDLED, "piper voice (.onnx with its .onnx.json beside it)", path=True)
    length_scale: float = setting(1.0, "speaking slowness; above 1 is slower", min=0.5, max=2.0)
    threads: int = setting(2, "onnxruntime threads for synthesis (2 halves a short reply's wait here)", min=1, max=16)


MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
"""The URL schemes a broker may have, with their default ports: plain and TLS."""


@dataclass(frozen=True)
class MqttSettings:
    """An MQTT broker: the assistant's status for LEDs, a mute switch, and intents' messages; off by default."""

    enabled: bool = setting(False, "connect to the broker")
    url: str = setting("", "the broker: mqtts://HOST[:PORT] (TLS, verified; port 8883), or mqtt://HOST[:PORT] (plain; "
                       "port 1883) only to a loopback or private address or a local name")
    username: str = setting("", "user name at the broker; empty: none")
    password_file: str = setting("", "file holding the password; empty: the systemd credential mqtt-password, "
                                 "if there is one", path=True)
    name: str = setting("", "this assistant's name in its topics (letters, digits, _ . -); empty: the host name")
    topic_prefix: str = setting("assistant", "topics are PREFIX/NAME/state (published) and PREFIX/NAME/mute (obeyed)")
    tls_ca_file: str = setting("", "CA certificates (PEM) that verify an mqtts:// broker; empty: the system's",
                               path=True)
    keepalive_s: int = setting(30, "keep-alive interval; a broker gone without a word is noticed within 1.5 times "
                               "this, in s", min=5, max=3600)


SERVE_DEFAULT_URI = "tcp://127.0.0.1:10700"


@dataclass(frozen=True)
class ServeSettings:
    """`assistant serve`: Wyoming services (asr, tts, wake, handle) for Home Assistant and satellites."""

    uri: str = setting(SERVE_DEFAULT_URI, "where assistant serve listens: tcp://HOST:PORT; loopback by default, any "
                       "other address (tcp://0.0.0.0:10700: every interface) is an explicit choice")
    zeroconf: bool = setting(False, "announce the server on the local network as _wyoming._tcp, so Home Assistant "
                             "discovers it; needs uri on an address other devices reach")
    max_clients: int = setting(16, "connections served at once; one more is told the server is busy and closed",
                               min=1, max=1024)
    with_daemon: bool = setting(False, "assistant daemon serves them too, at uri, with the models its microphone "
                                "uses (one set of models for the speaker and every satellite)")


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics over HTTP (latencies, wakes, turns, errors, cloud requests); off by default."""

    listen: str = setting("", "where to serve /metrics, as HOST:PORT, e.g. \"127.0.0.1:9464\" (any address other "
                          "than loopback is an explicit choice); empty: off")


@dataclass(frozen=True)
class Settings:
    """All settings; `source` is the file they came from, or None for the built-in defaults."""

    state_dir: str = setting("auto", "where state is kept; \"auto\": $STATE_DIRECTORY, "
                             "$XDG_STATE_HOME/assistant or ~/.local/state/assistant", path=True)
    log_transcripts: bool = setting(False, "the daemon's log (the journal) shows what was heard and said; "
                                    "off: only how many words (--json output always has them)")
    audio: AudioSettings = field(default_factory=AudioSettings)
    wake: WakeSettings = field(default_factory=WakeSettings)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    conversation: ConversationSettings = field(default_factory=ConversationSettings)
    reminders: RemindersSettings = field(default_factory=RemindersSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    cloud: CloudSettings = field(default_factory=CloudSettings)
    home_assistant: HomeAssistantSettings = field(default_factory=HomeAssistantSettings)
    intents: IntentsSettings = field(default_factory=IntentsSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    source: Path | None = field(default=None, compare=False, metadata={"internal": True})

    def resolved_state_dir(self) -> Path:
        """The state directory, with "auto" resolved from the environment."""
        if self.state_dir != "auto":
            return Path(self.state_dir)
        if os.environ.get("STATE_DIRECTORY"):
            return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
        xdg = os.environ.get("XDG_STATE_HOME")
        base = Path(xdg) if xdg else Path.home() / ".local" / "state"
        return base / "assistant"


def with_changes(settings: Settings, changes: dict[str, dict[str, Any]]) -> Settings:
    """`settings` with some values changed, given as {section: {key: value}} (tests, benchmarks,
    fixtures' own settings); unchecked, as the caller's values are."""
    sections = {name: dataclasses.replace(getattr(settings, name), **_tables(getattr(settings, name), values))
                for name, values in changes.items()}
    return dataclasses.replace(settings, **sections)


def _tables(section: Any, values: dict[str, Any]) -> dict[str, Any]:
    """`values` with arrays of tables given as dicts built into their settings class."""
    items = {f.name: f.metadata.get("items") for f in dataclasses.fields(section)}
    return {key: tuple(items[key](**v) if isinstance(v, dict) else v for v in value) if items.get(key) else value
            for key, value in values.items()}


def find_config(explicit: str | None) -> Path | None:
    """The config file to use, by the contract's lookup order; None means built-in defaults."""
    if explicit:
        return Path(explicit)
    if os.environ.get("ASSISTANT_CONFIG"):
        return Path(os.environ["ASSISTANT_CONFIG"])
    if os.environ.get("CONFIGURATION_DIRECTORY"):
        candidate = Path(os.environ["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml"
        if candidate.is_file():
            return candidate
    local = Path("config.toml")
    return local if local.is_file() else None


def load_settings(path: Path | None) -> Settings:
    """Parse and validate a config file; raises ConfigError listing every problem."""
    if path is None:
        return Settings()
    if problem := path_problem(path):  # before reading: a FIFO would block
        raise ConfigError(f"{path}: {'no such config file' if problem == PATH_MISSING else problem}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # -sig: Windows Notepad begins with a BOM
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    problems: list[str] = []
    settings = _build(Settings, raw, "", path, problems)
    problems += (_cloud_problems(settings.cloud) + _home_assistant_problems(settings.home_assistant)
                 + _mqtt_problems(settings.mqtt) + _state_dir_problems(settings.state_dir)
                 + serve_problems(settings.serve) + _metrics_problems(settings.metrics))
    if settings.conversation.skill_timeout_s <= settings.home_assistant.timeout_s:
        problems.append(f"[conversation] skill_timeout_s = {settings.conversation.skill_timeout_s}: must exceed "
                        f"[home_assistant] timeout_s = {settings.home_assistant.timeout_s} (a home command is a skill)")
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    return dataclasses.replace(settings, source=path)


def _cloud_problems(cloud: CloudSettings) -> list[str]:
    """Requests leave the device only over verified TLS, or plain HTTP to this machine."""
    problems = []
    if cloud.first_words_s > cloud.timeout_s:
        problems.append(f"[cloud] first_words_s = {cloud.first_words_s}: must not exceed timeout_s = {cloud.timeout_s}")
    if not cloud.url:
        return problems + (["[cloud] url: must be set when enabled = true"] if cloud.enabled else [])
    if (problem := _url_problem("[cloud] url", cloud.url, "api_key_file")) is not None:
        return problems + [problem]
    parts = urllib.parse.urlsplit(cloud.url)
    host = parts.hostname or ""
    if not (parts.scheme == "https" and host) and not (parts.scheme == "http" and is_loopback(host)):
        problems.append(f"[cloud] url ({parts.scheme or 'no scheme'}://{host or 'no host'}/...): must be "
                        "https://HOST/..., or http:// to a loopback address (127.0.0.0/8, localhost, [::1])")
    return problems


_TOPIC_LEVELS = re.compile(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")
_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
LOCAL_SUFFIXES = (".local", ".lan", ".home.arpa", ".internal", ".localdomain")
"""Names that only a local network resolves (mDNS, home routers, RFC 8375, ICANN's private-use name)."""


def _mqtt_problems(mqtt: MqttSettings) -> list[str]:
    """A broker URL that can be used; plain MQTT stays on the local network."""
    problems = []
    if mqtt.name and not re.fullmatch(r"[A-Za-z0-9_.-]+", mqtt.name):
        problems.append(f"[mqtt] name = {mqtt.name!r}: must be letters, digits, '_', '.' or '-' (one topic level)")
    if not _TOPIC_LEVELS.fullmatch(mqtt.topic_prefix):
        problems.append(f"[mqtt] topic_prefix = {mqtt.topic_prefix!r}: must be topic levels of letters, digits, "
                        "'_', '.' or '-', separated by '/' (e.g. \"assistant\" or \"home/assistant\")")
    if mqtt.password_file and not mqtt.username:
        problems.append("[mqtt] password_file: is set but username is empty; a broker takes a password with a user name")
    if not mqtt.url:
        return problems + (["[mqtt] url: must be set when enabled = true"] if mqtt.enabled else [])
    if (problem := _url_problem("[mqtt] url", mqtt.url, "username and password_file", http=False)) is not None:
        return problems + [problem]
    parts = urllib.parse.urlsplit(mqtt.url)
    host = parts.hostname or ""
    shown = f"{parts.scheme or 'no scheme'}://{parts.netloc.rpartition('@')[2] or 'no host'}"  # never user:password
    accepted = "must be mqtts://HOST[:PORT] (TLS), or mqtt://HOST[:PORT] to a private address or local name"
    if parts.scheme not in MQTT_PORTS or not host or (parts.path not in ("", "/")) or parts.query or parts.fragment:
        problems.append(f"[mqtt] url ({shown}{'/...' if parts.path.strip('/') or parts.query else ''}): {accepted}")
    elif not (_is_address(host) or (_HOST_NAME.fullmatch(host) and not host.rstrip(".").rpartition(".")[2].isdigit())):
        problems.append(f"[mqtt] url ({shown}): {host!r} is not a host name or an IP address")
    elif parts.scheme == "mqtt" and not is_local_network(host):
        problems.append(f"[mqtt] url ({shown}): plain MQTT only to a loopback or private address (RFC 1918, ULA, "
                        f"link-local) or a local name (one word, or ending {', '.join(LOCAL_SUFFIXES)}); "
                        f"use mqtts://{parts.netloc} for TLS")
    elif parts.scheme == "mqtt" and mqtt.tls_ca_file:
        problems.append(f"[mqtt] tls_ca_file: is set but url ({shown}) is plain MQTT; use mqtts:// for TLS")
    return problems


def parse_serve_uri(uri: str) -> tuple[str, int]:
    """(host, port) of a `tcp://HOST:PORT` listening address; ValueError saying what is accepted."""
    accepted = "must be tcp://HOST:PORT, e.g. tcp://127.0.0.1:10700 (an IPv6 address in brackets)"
    try:
        parts = urllib.parse.urlsplit(uri)
        port = parts.port
    except ValueError:  # a port out of range or not a number, a '[' without its ']'
        raise ValueError(accepted) from None
    host = parts.hostname or ""
    if (parts.scheme != "tcp" or not host or port is None or port == 0 or parts.path not in ("", "/")
            or parts.query or parts.fragment or parts.username is not None
            or any(c.isspace() or not c.isprintable() for c in uri)):
        raise ValueError(accepted)
    if not (_is_address(host) or _HOST_NAME.fullmatch(host)):
        raise ValueError(f"{host!r} is not a host name or an IP address")
    return host, port


def serve_problems(serve: ServeSettings) -> list[str]:
    """A listening address that can be used; zeroconf only where other devices can connect."""
    try:
        host, _port = parse_serve_uri(serve.uri)
    except ValueError as err:
        return [f"[serve] uri = {serve.uri!r}: {err}"]
    if serve.zeroconf and is_loopback(host):
        return [(f"[serve] zeroconf = true: uri ({serve.uri}) listens on loopback, which no other device reaches; "
                 "set uri to this machine's address (or tcp://0.0.0.0:PORT) to announce it, or zeroconf = false")]
    return []


def listen_address(listen: str) -> tuple[str, int]:
    """(host, port) of a HOST:PORT setting such as `[metrics] listen`; an IPv6 address is written [::1]:PORT.
    Raises ValueError saying what is wrong."""
    if not listen.isprintable() or any(c.isspace() for c in listen):
        raise ValueError("must be HOST:PORT with no spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(f"http://{listen}")
        host = parts.hostname or ""
    except ValueError:  # a '[' without its ']', or no IP address between them
        raise ValueError("an IPv6 address must be written whole between [ and ], e.g. [::1]:9464") from None
    if parts.netloc != listen or parts.username is not None or not host or ":" not in listen.rpartition("]")[2]:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:9464")
    if (problem := _port_problem(parts)) is not None:
        raise ValueError(problem)
    if not (_is_address(host) or (_HOST_NAME.fullmatch(host) and not host.rstrip(".").rpartition(".")[2].isdigit())):
        raise ValueError(f"{host!r} is not a host name or an IP address")
    return host, int(parts.port or 0)


def _metrics_problems(metrics: MetricsSettings) -> list[str]:
    if not metrics.listen:
        return []
    try:
        listen_address(metrics.listen)
    except ValueError as err:
        return [f"[metrics] listen = {metrics.listen!r}: {err}"]
    return []


def _home_assistant_problems(home: HomeAssistantSettings) -> list[str]:
    """Home Assistant over verified TLS, or plain HTTP inside the home (the contract's rule)."""
    if not home.url:
        return []
    if (problem := _url_problem("[home_assistant] url", home.url, "token_file")) is not None:
        return [problem]
    parts = urllib.parse.urlsplit(home.url)
    host = parts.hostname or ""
    shown = f"{parts.scheme or 'no scheme'}://{parts.netloc or 'no host'}"
    if parts.scheme == "https" and host or parts.scheme == "http" and is_local_network(host):
        return []
    return [f"[home_assistant] url ({shown}): must be https://HOST:PORT, or http:// to this machine or "
            "the home network (a private, ULA or link-local address, or a .local, .lan or .home.arpa name)"]


def _url_problem(key: str, url: str, secret_setting: str, *, http: bool = True) -> str | None:
    """What no URL may hold, named without echoing the URL (it may hold a key): a space or
    control character (a line break could add a header to a request), credentials, a port
    that its first use would refuse, or (`http`) anything httpx cannot read."""
    if (bad := next((i for i, c in enumerate(url) if c.isspace() or not c.isprintable()), None)) is not None:
        return f"{key}: holds a space or control character (at position {bad}); percent-encode it (%20) or remove it"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # a '[' without its ']', or no IP address between them
        return f"{key}: an IPv6 address must be written whole between [ and ]"
    if parts.username is not None or parts.password is not None:
        return f"{key}: must not hold credentials (user:password@); use {secret_setting}"
    if (problem := _port_problem(parts)) is not None:
        return f"{key}: {problem}"
    if http and not _httpx_reads(url):
        return f"{key}: the host is not a valid host name or IP address"
    return None


def _port_problem(parts: urllib.parse.SplitResult) -> str | None:
    """A port, when the URL gives one, from 1 to 65535: urllib refuses more only at first use."""
    host_and_port = parts.netloc.rpartition("@")[2]
    if ":" not in host_and_port.rpartition("]")[2]:
        return None
    port = host_and_port.rpartition(":")[2]
    if re.fullmatch(r"[0-9]{1,5}", port) and 1 <= int(port) <= 65535:
        return None
    # Only digits are shown: other text after the host's ':' may be a password that lost its '@'.
    return "the port must be a number from 1 to 65535" + (f", not {port}" if port.isdigit() and port.isascii() else "")


def _httpx_reads(url: str) -> bool:
    import httpx  # here, not at the top: most commands never need it

    try:
        httpx.URL(url)
    except httpx.InvalidURL:  # a host that is not valid IDNA, or an IPv4 address like 999.1.1.1
        return False
    return True


def _state_dir_problems(state_dir: str) -> list[str]:
    """A state directory that is not "auto" must be a writable directory, or one that can be made
    (its nearest existing parent a writable directory): found now, not at the first timer."""
    if state_dir == "auto":
        return []
    path = Path(state_dir)
    existing = next((p for p in (path, *path.parents) if os.path.lexists(p)), Path("/"))
    problem = path_problem(existing, "directory", writable=True)
    if problem is None:
        return []
    where = "" if existing == path else f" (its parent {existing})"
    return [f"state_dir = {state_dir!r}{where}: {problem}; give a directory the assistant may write to"]


def path_problem(path: Path, want: str = "file", writable: bool = False) -> str | None:
    """What keeps `path` from being a readable regular file (`want="file"`) or directory
    (`want="directory"`), or None. Found with stat alone: the path is never opened, since
    opening a FIFO or a device can block forever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return PATH_MISSING
    except PermissionError:
        return "permission denied"
    except (OSError, ValueError) as err:  # not a directory on the way, a symlink loop, a NUL
        return getattr(err, "strerror", None) or str(err)
    kind = next((name for test, name in _KINDS if test(mode)), "special file")
    if kind != want:
        return f"is a {kind}, not a {want}"
    if not os.access(path, os.R_OK | (os.X_OK if want == "directory" else 0)):
        return "permission denied"
    if writable and not os.access(path, os.W_OK):
        return "not writable"
    return None


PATH_MISSING = "no such file or directory"
_KINDS = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO (named pipe)"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "device"), (stat.S_ISBLK, "device"))


def is_loopback(host: str) -> bool:
    """True for names and addresses that never leave this machine."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is IPv4 loopback too
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


_LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",  # loopback, RFC 1918, link-local
    "::1/128", "fc00::/7", "fe80::/10"))  # loopback, ULA, link-local


def is_local_network(host: str) -> bool:
    """True for addresses on this machine or its local network, and for names that only a local network
    resolves: one word ("mosquitto", "localhost") or a local suffix. A name is judged by its form, as it
    is not resolved before connecting."""
    if _is_address(host):
        address = ipaddress.ip_address(host)
        address = getattr(address, "ipv4_mapped", None) or address  # ::ffff:192.168.1.2 is that IPv4 address
        return any(address in network for network in _LOCAL_NETWORKS if network.version == address.version)
    name = host.lower().rstrip(".")
    return "." not in name or name.endswith(LOCAL_SUFFIXES)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _public_fields(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


_REPLACED = {"wake.verifier_enabled": 'replaced by mode; verifier_enabled = false is now mode = "first_pass_only"'}
"""Keys that older versions had, with what to write instead."""


def _build(cls: type, raw: dict, section: str, path: Path, problems: list[str]) -> Any:
    fields = {f.name: f for f in _public_fields(cls)}
    where = f"[{section}] " if section else ""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            hint = _REPLACED.get(f"{section}.{key}")
            shown = key if key.isprintable() else repr(key)  # a line break in a quoted key would split the message
            problems.append(f"{where}{shown}: {hint}" if hint else f"{where}{shown}: unknown key; allowed: {', '.join(fields)}")
        elif f.metadata.get("items") is not None:
            values[key] = _build_tables(f.metadata["items"], value, f"{section}.{key}", path, problems)
        elif _section_class(f) is not None:
            if isinstance(value, dict):
                values[key] = _build(_section_class(f), value, key, path, problems)
            else:
                problems.append(f"{key}: must be a table [{key}], got {value!r}")
        else:
            checked = _check_value(f, value, f"{where}{key}", path, problems)
            if checked is not None:
                values[key] = checked
    return cls(**values)


def _build_tables(cls: type, raw: Any, name: str, path: Path, problems: list[str]) -> tuple:
    """An array of tables ([[name]]), each built and checked like a section."""
    if not isinstance(raw, list) or not all(isinstance(table, dict) for table in raw):
        problems.append(f"{name}: must be [[{name}]] tables, got {raw!r}")
        return ()
    built = []
    for number, table in enumerate(raw, 1):
        where = f"{name} #{number}"
        item = _build(cls, table, where, path, problems)
        missing = [f.name for f in _public_fields(cls) if f.metadata["path"] and not getattr(item, f.name)]
        problems += [f"[{where}] {key}: must be set" for key in missing]
        built.append(item)
    return tuple(built)


def _section_class(f: dataclasses.Field) -> type | None:
    """The settings class of a [section] field, or None for a plain value."""
    return None if f.default_factory is dataclasses.MISSING else f.default_factory


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               tuple: "a list of strings"}


def _check_value(f: dataclasses.Field, value: Any, name: str, path: Path, problems: list[str]) -> Any:
    kind = type(f.default)
    meta = f.metadata
    if meta.get("paths"):
        return _checked_paths(value, name, problems)
    if type(value) is not kind and not (kind is float and type(value) is int):
        problems.append(f"{name} = {value!r}: must be {_TYPE_NAMES[kind]}")
        return None
    if meta["choices"] and value not in meta["choices"]:
        problems.append(f"{name} = {value!r}: must be one of {', '.join(meta['choices'])}")
        return None
    if kind is float and not math.isfinite(value):  # nan passes every comparison
        problems.append(f"{name} = {value!r}: must be a finite number")
        return None
    low, high = meta["min"], meta["max"]
    if (low is not None and value < low) or (high is not None and value > high):
        problems.append(f"{name} = {value!r}: must be between {low} and {high}")
        return None
    if meta["path"] and value == "" != f.default:  # empty means "none" only where that is the default
        problems.append(f'{name} is empty: give a path (relative to {path.absolute().parent}) or "{f.default}"')
        return None
    if meta["path"] and value not in (BUNDLED, "auto", "", *meta["names"]):
        if not value.isprintable():  # a NUL cannot be in a path; a line break is surely a mistake
            problems.append(f"{name} = {value!r}: holds a control character; give a path")
            return None
        # os.path's expanduser leaves "~nobody" as it is where Path's raises
        value = str((path.parent / os.path.expanduser(value)).resolve())
    return float(value) if kind is float else value


def _checked_paths(value: Any, name: str, problems: list[str]) -> tuple[str, ...] | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"{name} = {value!r}: must be a list of strings")
        return None
    relative = [item for item in value if not os.path.isabs(item) or not item.isprintable()]
    if relative:
        problems.append(f"{name}: {relative[0]!r} must be an absolute path (a program is run by its path, no shell)")
        return None
    return tuple(value)


def describe() -> list[tuple[str, str, Any, str]]:
    """Every setting as (section, key, default, doc), for docs/settings.md and the defaults test."""
    rows = []
    for f in _public_fields(Settings):
        if _section_class(f) is not None:
            for sub in _public_fields(_section_class(f)):
                rows.append((f.name, sub.name, sub.default, sub.metadata["doc"]))
        else:
            rows.append(("", f.name, f.default, f.metadata["doc"]))
    return rows
