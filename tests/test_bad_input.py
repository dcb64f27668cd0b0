"""Hostile input to every command, as one table: bad audio, bad outputs, bad settings and a bad
environment. Each row: the command's status, one line on stderr naming the file, key or value,
no traceback, and every file it was given left as it was (nothing written, nothing left behind).

Signals (SIGTERM to replay: 143, SIGINT: 130) are tried in tests/test_signals.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import soundfile

from conftest import FIXTURES
from test_cli import assert_one_line_error, run

GOOD_WAV = FIXTURES / "ptt_time.wav"


def _wav_claiming(rate_hz: int, data_bytes: int | None = None) -> bytes:
    """A real 16-bit mono WAV with its header's rate, or its data size, changed."""
    wav = bytearray(GOOD_WAV.read_bytes()[:44 + 8000])
    wav[24:28] = rate_hz.to_bytes(4, "little")
    if data_bytes is not None:
        wav[40:44] = data_bytes.to_bytes(4, "little")
    return bytes(wav)


def _nan_wav(path: Path) -> None:
    audio = np.zeros(16000, np.float32)
    audio[500:600] = np.nan
    soundfile.write(path, audio, 16000, subtype="FLOAT")


def _null_device(path: Path) -> None:
    """A character device node like /dev/null (only root may make one)."""
    if os.geteuid() == 0:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))


_CORRUPT_VOICE_CONFIG = {"num_symbols": 10, "num_speakers": 1, "audio": {}, "espeak": {"voice": "en-us"},
                         "phoneme_id_map": {}}
"""Everything piper reads from a voice's .onnx.json but audio.sample_rate."""

INPUTS = {
    "good.wav": lambda p: shutil.copyfile(GOOD_WAV, p),
    "kept.wav": lambda p: p.write_bytes(b"an earlier reply, kept"),
    "link.wav": lambda p: p.symlink_to("good.wav"),
    "empty.wav": lambda p: p.write_bytes(b""),
    "header.wav": lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "),
    "cut.wav": lambda p: p.write_bytes(_wav_claiming(16000, data_bytes=10 * 32000)),
    "slow.wav": lambda p: p.write_bytes(_wav_claiming(1)),
    "nan.wav": _nan_wav,
    "text.wav": lambda p: p.write_text("not audio at all\n"),
    "dir.wav": lambda p: p.mkdir(),
    "fifo.wav": os.mkfifo,
    "null.wav": _null_device,
    "null_link.wav": lambda p: p.symlink_to("null.wav"),
    "locked.wav": lambda p: (shutil.copyfile(GOOD_WAV, p), p.chmod(0)),
    "model_dir": lambda p: p.mkdir(),
    "model.fifo": os.mkfifo,
    "corrupt.onnx": lambda p: p.write_bytes(b"\x08\x07" + bytes(range(256)) * 4),
    "corrupt.gguf": lambda p: p.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 64),
    "voice.onnx": lambda p: shutil.copyfile(FIXTURES.parent / "config.toml", p),
    "voice.onnx.json": lambda p: p.write_text(json.dumps(_CORRUPT_VOICE_CONFIG)),
    "linked_state": lambda p: _linked_state(p, "kept.wav"),
    "tune": lambda p: _tune_folder(p, "good.wav"),
    "tune_fifo": lambda p: _tune_folder(p, None),
    "tune_empty": lambda p: _tune_folder(p, b""),
    "tune_locked_dir": lambda p: (_tune_folder(p, "good.wav"), (p / "positives").chmod(0)),
    "tune_locked_file": lambda p: (_tune_folder(p, "good.wav"), (p / "positives" / "one.wav").chmod(0)),
}


def _linked_state(folder: Path, target: str) -> None:
    """A state directory whose audit log and lock file are symbolic links to `target` beside it."""
    folder.mkdir()
    for name in ("audit.jsonl", "lock"):
        (folder / name).symlink_to(f"../{target}")


def _tune_folder(folder: Path, positive: str | bytes | None) -> None:
    """A wake-tune folder with one good negative and one positive: good, a FIFO, or these bytes."""
    for name in ("positives", "negatives"):
        (folder / name).mkdir(parents=True)
    shutil.copyfile(GOOD_WAV, folder / "negatives" / "room.wav")
    if positive is None:
        os.mkfifo(folder / "positives" / "one.wav")
    elif isinstance(positive, bytes):
        (folder / "positives" / "one.wav").write_bytes(positive)
    else:
        shutil.copyfile(GOOD_WAV, folder / "positives" / "one.wav")


SETTINGS = {
    "nan": ("[endpoint]\nsilence_s = nan\n", ["{t}/nan.toml", "silence_s", "finite"]),
    "inf": ("[wake]\nrefractory_s = inf\n", ["{t}/inf.toml", "refractory_s", "finite"]),
    "wrong_type": ('[asr]\nbeam_size = "two"\n', ["{t}/wrong_type.toml", "beam_size", "'two'", "an integer"]),
    "unknown_key": ("[tts]\nspeed = 2\n", ["{t}/unknown_key.toml", "speed", "unknown key"]),
    "out_of_range": ("[llm]\ntemperature = 9\n", ["{t}/out_of_range.toml", "temperature", "between 0.0 and 2.0"]),
    "model_is_dir": ('[endpoint]\nvad_model = "model_dir"\n', ["{t}/model_dir", "is a directory", "endpoint.vad_model"]),
    "model_is_fifo": ('[llm]\nmodel = "model.fifo"\n', ["{t}/model.fifo", "FIFO", "llm.model"]),
    "model_missing": ('[tts]\nvoice = "nope.onnx"\n', ["{t}/nope.onnx", "no such model file", "tts.voice"]),
    "model_corrupt": ('[endpoint]\nturn_model = "corrupt.onnx"\n', ["{t}/corrupt.onnx", "endpoint.turn_model"]),
    "gguf_corrupt": ('[llm]\nmodel = "corrupt.gguf"\n', ["{t}/corrupt.gguf", "llm.model"]),
    "asr_not_dir": ('[asr]\nmodel = "corrupt.onnx"\n', ["{t}/corrupt.onnx", "not a directory", "asr.model"]),
    "asr_empty_dir": ('[asr]\nmodel = "model_dir"\n', ["{t}/model_dir", "model.bin", "asr.model"]),
    "voice_no_rate": ('[tts]\nvoice = "voice.onnx"\n', ["{t}/voice.onnx.json", "sample_rate", "tts.voice"]),
    "wake_fifo": ('[wake]\nfirst_pass_model = "model.fifo"\n', ["{t}/model.fifo", "FIFO", "wake.first_pass_model"]),
    "key_fifo": ('[cloud]\nenabled = true\nurl = "https://api.example.com/v1"\napi_key_file = "model.fifo"\n',
                 ["{t}/model.fifo", "FIFO", "cloud.api_key_file"]),
    "state_is_file": ('state_dir = "good.wav"\n', ["{t}/state_is_file.toml", "state_dir", "{t}/good.wav",
                                                    "not a directory"]),
    "state_under_file": ('state_dir = "good.wav/state"\n', ["{t}/state_under_file.toml", "state_dir",
                                                             "{t}/good.wav", "not a directory"]),
    "cloud_port": ('[cloud]\nenabled = true\nurl = "https://api.example.com:99999/v1"\n',
                   ["{t}/cloud_port.toml", "[cloud] url", "port must be a number from 1 to 65535, not 99999"]),
    "cloud_port_hex": ('[cloud]\nenabled = true\nurl = "https://api.example.com:0x50/v1"\n',
                       ["{t}/cloud_port_hex.toml", "[cloud] url", "port must be a number from 1 to 65535"]),
    "mqtt_port": ('[mqtt]\nenabled = true\nurl = "mqtt://127.0.0.1:70000"\n',
                  ["{t}/mqtt_port.toml", "[mqtt] url", "port must be a number from 1 to 65535, not 70000"]),
    "home_assistant_port": ('[home_assistant]\nurl = "http://192.168.1.2:99999"\n',
                            ["{t}/home_assistant_port.toml", "[home_assistant] url", "port must be a number"]),
    "model_empty": ('[llm]\nmodel = ""\n', ["{t}/model_empty.toml", "[llm] model is empty", "relative to {t}",
                                            '"bundled"']),
    "state_dir_empty": ('state_dir = ""\n', ["{t}/state_dir_empty.toml", "state_dir is empty", "relative to {t}",
                                             '"auto"']),
    "path_with_nul": ('[tts]\nvoice = "a\\u0000b.onnx"\n', ["{t}/path_with_nul.toml", "voice", "control character"]),
}

AUDIO = [  # (input, status, what the line says)
    ("empty.wav", 2, "empty"),
    ("header.wav", 2, "not a readable audio file"),
    ("slow.wav", 2, "sample rate of 1 Hz"),
    ("nan.wav", 2, "not numbers"),
    ("text.wav", 2, "not a readable audio file"),
    ("dir.wav", 2, "is a directory"),
    ("fifo.wav", 2, "not a regular file"),
    ("locked.wav", 2, "ermission denied"),
    ("missing.wav", 2, "no such file"),
]



def row(name: str, args: list[str], status: int, needles: list[str], env: dict | None = None):
    """One hostile case: "{t}" in the arguments, needles and environment is the folder of inputs."""
    return pytest.param(args, status, needles, env or {}, id=name)


ROWS = [
    *[row(f"replay-{name}", ["replay", f"{{t}}/{name}", "--out", "{t}/kept.wav"], status, [f"{{t}}/{name}", says])
      for name, status, says in AUDIO],
    *[row(f"transcribe-{name}", ["transcribe", f"{{t}}/{name}"], status, [f"{{t}}/{name}", says])
      for name, status, says in AUDIO],
    # A WAV cut short of what its header promises is refused, naming what is missing.
    row("transcribe-cut.wav", ["transcribe", "{t}/cut.wav"], 2, ["{t}/cut.wav", "truncated", "promises 320000 bytes"]),
    row("replay-cut.wav", ["replay", "{t}/cut.wav"], 2, ["{t}/cut.wav", "truncated", "promises 320000 bytes"]),
    row("wake-tune-missing", ["wake-tune", "{t}/missing"], 2, ["{t}/missing", "no such directory"]),
    row("wake-tune-file", ["wake-tune", "{t}/good.wav"], 2, ["{t}/good.wav", "not a directory"]),
    row("wake-tune-fifo-inside", ["wake-tune", "{t}/tune_fifo"], 2,
        ["{t}/tune_fifo/positives/one.wav", "not a regular file"]),
    row("wake-tune-empty-inside", ["wake-tune", "{t}/tune_empty"], 2, ["{t}/tune_empty/positives/one.wav", "empty"]),
    row("wake-tune-locked-folder", ["wake-tune", "{t}/tune_locked_dir"], 2,
        ["{t}/tune_locked_dir/positives", "cannot read", "ermission denied"]),
    row("wake-tune-locked-inside", ["wake-tune", "{t}/tune_locked_file"], 2,
        ["{t}/tune_locked_file/positives/one.wav", "cannot read", "ermission denied"]),
    # Outputs
    row("out-on-proc", ["replay", "{t}/good.wav", "--out", "/proc/x.wav"], 2, ["/proc/x.wav", "cannot write there"]),
    row("out-is-input", ["replay", "{t}/good.wav", "--out", "{t}/good.wav"], 2, ["{t}/good.wav", "input file"]),
    row("out-links-to-input", ["replay", "{t}/good.wav", "--out", "{t}/link.wav"], 2, ["{t}/link.wav", "input file"]),
    row("input-links-to-out", ["replay", "{t}/link.wav", "--out", "{t}/good.wav"], 2, ["{t}/good.wav", "input file"]),
    row("out-in-missing-dir", ["replay", "{t}/good.wav", "--out", "{t}/missing/r.wav"], 2,
        ["{t}/missing/r.wav", "no such directory"]),
    row("out-is-dir", ["replay", "{t}/good.wav", "--out", "{t}/dir.wav"], 2, ["{t}/dir.wav", "is a directory"]),
    *[row(f"out-is-{name}", ["replay", "{t}/good.wav", "--out", f"{{t}}/{name}.wav"], 2,
          [f"{{t}}/{name}.wav", "not a regular file"]) for name in ("fifo", "null", "null_link")],
    # Usage
    *[row(f"echo-{gain}", ["replay", "{t}/good.wav", "--out", "{t}/kept.wav", f"--echo={gain}"], 2,
          ["--echo", f"'{gain}'", "between -60 and 20"]) for gain in ("1e308", "nan", "inf", "-inf", "loud")],
    # Settings: config check refuses them, and start-up refuses exactly the same
    *[row(f"config-check-{name}", ["config", "check", f"{{t}}/{name}.toml"], 78, needles)
      for name, (_, needles) in SETTINGS.items()],
    *[row(f"replay-{name}", ["replay", "{t}/good.wav", "--out", "{t}/kept.wav", "--config", f"{{t}}/{name}.toml"],
          78, needles) for name, (_, needles) in SETTINGS.items()],
    row("transcribe-asr_empty_dir", ["transcribe", "{t}/good.wav", "--config", "{t}/asr_empty_dir.toml"], 78,
        SETTINGS["asr_empty_dir"][1]),
    row("audit-state_is_file", ["audit", "--config", "{t}/state_is_file.toml"], 78, SETTINGS["state_is_file"][1]),
    row("ptt-nan", ["ptt", "--config", "{t}/nan.toml"], 78, SETTINGS["nan"][1]),
    row("daemon-inf", ["daemon", "--config", "{t}/inf.toml"], 78, SETTINGS["inf"][1]),
    row("daemon-model_is_fifo", ["daemon", "--config", "{t}/model_is_fifo.toml"], 78, SETTINGS["model_is_fifo"][1],
        {"STATE_DIRECTORY": "{t}/../state"}),
    row("wake-tune-wake_fifo", ["wake-tune", "{t}/tune", "--config", "{t}/wake_fifo.toml"], 78,
        SETTINGS["wake_fifo"][1]),
    # Environment
    *[row(f"{command[0]}-ASSISTANT_CONFIG-{target}", command, 78, [f"{{t}}/{target}", says],
          {"ASSISTANT_CONFIG": f"{{t}}/{target}"})
      for command in (["config", "check"], ["audit"])
      for target, says in (("missing.toml", "no such config file"), ("dir.wav", "is a directory"),
                           ("model.fifo", "FIFO"))],
    # A state directory is never read or written through a symbolic link placed in it
    row("audit-log-is-a-link", ["audit"], 2, ["{t}/linked_state/audit.jsonl", "symbolic link", "remove it"],
        {"STATE_DIRECTORY": "{t}/linked_state"}),
    row("daemon-lock-is-a-link", ["daemon"], 78, ["{t}/linked_state/lock", "symbolic link", "remove it"],
        {"STATE_DIRECTORY": "{t}/linked_state"}),
    row("replay-config-fifo", ["replay", "{t}/good.wav", "--config", "{t}/model.fifo"], 78, ["{t}/model.fifo", "FIFO"]),
]


def _make_inputs(folder: Path) -> None:
    folder.mkdir()
    for name, make in INPUTS.items():
        make(folder / name)
    for name, (text, _) in SETTINGS.items():
        (folder / f"{name}.toml").write_text(text)


def _fingerprint(folder: Path) -> dict[str, str]:
    """What every entry under `folder` is and holds, read without following links or opening FIFOs."""
    found = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            found[str(path)] = f"link to {os.readlink(path)}"
        elif stat.S_ISREG(mode):
            try:
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            except PermissionError:
                found[str(path)] = f"unreadable, mode {stat.filemode(mode)}"
        else:  # a device or FIFO left alone keeps its inode, not just its kind
            found[str(path)] = f"{stat.filemode(mode)}, inode {path.lstat().st_ino}"
    return found


_ROOT_AS_A_USER = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
"""Root without the capabilities that let it read whatever a file's mode says: a locked input
is then locked for it too, as for anyone else."""


@pytest.mark.parametrize("args, status, needles, extra_env", ROWS)
def test_hostile_input_is_one_line_with_its_status_and_changes_nothing(tmp_path, args, status, needles, extra_env):
    if any("null" in a for a in args) and os.geteuid() != 0:
        pytest.skip("only root makes a device node")
    inputs = tmp_path / "in"
    _make_inputs(inputs)
    fill = lambda text: text.replace("{t}", str(inputs))  # noqa: E731
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"),
           "XDG_CACHE_HOME": str(home / "cache")}
    env.pop("ASSISTANT_CONFIG", None)
    env.update({key: fill(value) for key, value in extra_env.items()})
    before = _fingerprint(inputs)

    locked = any("locked" in a for a in args) and os.geteuid() == 0
    result = run(*map(fill, args), cwd=tmp_path, env=env, wrapper=_ROOT_AS_A_USER if locked else ())

    if status == 0:
        assert result.returncode == 0, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
        assert all(fill(needle) in result.stderr for needle in needles), result.stderr
    else:
        assert_one_line_error(result, status, *map(fill, needles))
    assert _fingerprint(inputs) == before


@pytest.mark.parametrize("name", ["cloud_port", "mqtt_port", "home_assistant_port", "model_empty", "state_dir_empty",
                                  "model_is_fifo", "key_fifo"])
def test_config_check_refuses_what_start_up_refuses_with_the_same_line_and_status(tmp_path, name):
    inputs = tmp_path / "in"
    _make_inputs(inputs)
    config = str(inputs / f"{name}.toml")

    checked = run("config", "check", config, cwd=tmp_path)
    started = run("replay", str(inputs / "good.wav"), "--out", str(inputs / "kept.wav"), "--config", config,
                  cwd=tmp_path)

    assert (checked.returncode, checked.stderr) == (started.returncode, started.stderr) == (78, checked.stderr)
    assert len(checked.stderr.strip().splitlines()) == 1, checked.stderr
