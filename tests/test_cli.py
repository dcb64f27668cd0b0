"""The command line as users and scripts meet it: streams, exit statuses, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import FIXTURES, JFK, ROOT

ASSISTANT = [sys.executable, "-m", "assistant.cli"]


def run(*args: str, cwd: Path = ROOT, env: dict | None = None, wrapper: tuple[str, ...] = ()
        ) -> subprocess.CompletedProcess:
    """`assistant ARGS`, started through `wrapper` (a command that runs another) when given."""
    return subprocess.run([*wrapper, *ASSISTANT, *args], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env=env, stdin=subprocess.DEVNULL)


def assert_one_line_error(result: subprocess.CompletedProcess, status: int, *needles: str) -> None:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr


@pytest.fixture(scope="module")
def replayed_json(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "reply.wav"
    result = run("replay", str(FIXTURES / "wake_time.wav"), "--json", "--out", str(out))
    return result, out


def test_replay_json_prints_only_events_on_stdout(replayed_json):
    result, _ = replayed_json
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["wake_candidate", "wake", "speech_start", "speech_end", "transcript",
                                            "route", "reply", "tts_start", "tts_end", "turn"]
    assert all(isinstance(e["t"], (int, float)) for e in events)


def test_replay_writes_the_reply_as_mono_16_bit_wav_at_the_voice_rate(replayed_json):
    _, out = replayed_json
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 22050)
        assert w.getnframes() > 22050


def test_replay_of_a_file_with_no_speech_writes_an_empty_valid_wav(tmp_path):
    out = tmp_path / "reply.wav"
    result = run("replay", str(FIXTURES / "noise_only.wav"), "--json", "--out", str(out))
    # The first pass is set for recall, so the hiss may start a candidate the verifier turns down.
    heard = [json.loads(line)["event"] for line in result.stdout.splitlines()]
    assert result.returncode == 0 and set(heard) <= {"wake_candidate", "wake_rejected"}
    with wave.open(str(out)) as w:
        assert w.getnframes() == 0


def test_config_is_accepted_after_the_subcommand(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[llm]\nenabled = false\n")
    result = run("replay", str(FIXTURES / "ptt_llm.wav"), "--ptt", "--json", "--out", str(tmp_path / "r.wav"),
                 "--config", str(config))
    route = next(json.loads(line) for line in result.stdout.splitlines() if '"route"' in line)
    assert route["fallback"] == "offline"


def test_transcribe_prints_the_whole_file_on_one_line():
    if not JFK.exists():
        pytest.skip(f"{JFK} is not beside this repository")
    result = run("transcribe", str(JFK))
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert "ask not what your country can do for you" in result.stdout.lower()


def test_transcribe_across_its_30_s_windows_hears_the_same_words_as_the_whole_file(tmp_path):
    """The file is read a window at a time; the cut near 30 s falls in JFK's speech, at a pause."""
    if not JFK.exists():
        pytest.skip(f"{JFK} is not beside this repository")
    from assistant.config import Settings
    from assistant.hear.asr import words_of
    from assistant.hear.audio import read_file_audio
    from assistant.run.stages import load_asr

    jfk, gap = read_file_audio(JFK), np.zeros(16000, np.float32)
    first = np.concatenate([jfk, gap, read_file_audio(FIXTURES / "wake_time.wav")])
    audio = np.concatenate([first, np.zeros(20 * 16000 - len(first), np.float32), jfk, gap])  # JFK again at 20-31 s
    soundfile.write(tmp_path / "long.wav", audio, 16000, subtype="PCM_16")
    result = run("transcribe", str(tmp_path / "long.wav"), "--json")
    assert result.returncode == 0, result.stderr
    *segments, transcript = [json.loads(line) for line in result.stdout.splitlines()]
    whole = load_asr(Settings()).segments(audio)  # the whole-file path transcribe took before
    assert words_of(transcript["text"]) == words_of(" ".join(s.text for s in whole))
    assert words_of(transcript["text"]).count("country") == 4
    times = [t for s in segments for t in (s["t"], s["end_s"])]
    assert times == sorted(times) and 0 <= times[0] and times[-1] <= transcript["t"] == len(audio) / 16000


def test_transcribe_json_gives_timed_segments():
    result = run("transcribe", str(FIXTURES / "ptt_time.wav"), "--json")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "segment" and events[0]["end_s"] > events[0]["t"]
    assert "time" in events[-1]["text"].lower()


@pytest.mark.parametrize("kind", ["silence", "hiss"])
def test_transcribe_prints_nothing_for_a_file_without_speech(tmp_path, kind):
    """Whisper writes "you" on each window of silence and "." on hiss; transcribe drops them as replay does."""
    hiss = np.random.default_rng(0).standard_normal(60 * 16000) * 0.003
    audio = np.zeros(90 * 16000) if kind == "silence" else hiss
    soundfile.write(tmp_path / "quiet.wav", audio, 16000, subtype="PCM_16")
    human, as_json = run("transcribe", str(tmp_path / "quiet.wav")), run("transcribe", str(tmp_path / "quiet.wav"), "--json")
    assert human.returncode == as_json.returncode == 0, human.stderr + as_json.stderr
    assert human.stdout == "\n"
    [transcript] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert (transcript["event"], transcript["text"]) == ("transcript", "")


@pytest.mark.parametrize("content, why", [
    (b"", "empty"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable audio file"),
    (bytes(range(256)) * 16, "not a readable audio file"),
    (b"not audio\n", "not a readable audio file"),
])
def test_bad_audio_input_is_one_line_and_status_2(tmp_path, content, why):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(content)
    assert_one_line_error(run("replay", str(bad), "--json"), 2, str(bad), why)


def test_a_missing_input_file_is_status_2():
    assert_one_line_error(run("transcribe", "/no/such/file.wav"), 2, "/no/such/file.wav", "no such file")


def test_config_check_accepts_the_shipped_file():
    result = run("config", "check", "config.toml")
    assert result.returncode == 0 and result.stdout.strip() == "ok: config.toml"


@pytest.mark.parametrize("content, needles", [
    ('[wake]\nfirst_pass_threshold = "high"\n', ["first_pass_threshold", "must be a number"]),
    ("[wake]\nno_such_key_xyz = 1\n", ["no_such_key_xyz", "allowed:"]),
    ("[wake\n", ["not valid TOML"]),
    ("[endpoint]\nsilence_s = 99\n", ["silence_s", "between 0.2 and 5.0"]),
    ('[asr]\ncompute_type = "float64"\n', ["compute_type", "int8"]),
    ('[wake]\nverifier_model = "missing.tflite"\n', ["missing.tflite", "wake.verifier_model"]),
])
def test_config_problems_are_status_78_naming_the_key(tmp_path, content, needles):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    assert_one_line_error(run("config", "check", str(config)), 78, str(config) if "missing" not in content else "",
                          *needles)


def test_a_bad_config_stops_replay_with_status_78(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("[tts]\nlength_scale = 9\n")
    assert_one_line_error(run("--config", str(config), "replay", str(FIXTURES / "ptt_time.wav")), 78, "length_scale")


def test_a_corrupt_custom_wake_model_is_refused_before_tflite_sees_it(tmp_path):
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    (tmp_path / "bad.json").write_text(json.dumps({"model": "bad.tflite", "wake_word": "x",
                                                   "micro": {"probability_cutoff": 0.5, "sliding_window_size": 5}}))
    (tmp_path / "c.toml").write_text('[wake]\nfirst_pass_model = "bad.json"\n')
    assert_one_line_error(run("config", "check", str(tmp_path / "c.toml")), 78, "bad.tflite", "TFL3")


def test_the_config_file_is_found_through_the_environment(tmp_path):
    config = tmp_path / "env.toml"
    config.write_text("[wake]\nbogus_key = 1\n")
    env = {"PATH": "/usr/bin:/bin", "ASSISTANT_CONFIG": str(config), "HOME": str(tmp_path)}
    assert_one_line_error(run("config", "check", cwd=tmp_path, env=env), 78, "bogus_key")


@pytest.mark.parametrize("key", ["llm] model", "tts] voice", "endpoint] vad_model", "asr] model"])
def test_a_corrupt_model_file_stops_start_up_with_status_78(tmp_path, key):
    from assistant.models import llm_model

    broken = tmp_path / "broken"
    broken.mkdir()
    truncated = llm_model("bundled").read_bytes()[:1_000_000]  # right magic, cut short
    for name in ("model.gguf", "model.gguf.json", "model.bin"):
        (broken / name).write_bytes(truncated)
    section, name = key.split("] ")
    target = broken if section == "asr" else broken / "model.gguf"
    (tmp_path / "c.toml").write_text(f'[{section}]\n{name} = "{target}"\n')
    result = run("replay", str(FIXTURES / "ptt_time.wav"), "--config", str(tmp_path / "c.toml"))
    assert_one_line_error(result, 78, str(target), f"{section}.{name}")


def _state_config(tmp_path: Path) -> Path:
    config = tmp_path / "c.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    return config


def _write_audit_log(tmp_path: Path) -> None:
    from assistant.understand.audit import AuditLog

    log = AuditLog(tmp_path / "state" / "audit.jsonl")
    record_id = log.request("api.example.com", '{"messages": "Why is the sky blue?"}'.encode())
    log.outcome(record_id, "api.example.com", "answered", status=200, ms=640.0)


def test_audit_with_no_log_yet_says_nothing_has_left_the_device(tmp_path):
    result = run("audit", "--config", str(_state_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    expected = f"nothing has left the device: there is no audit log at {tmp_path}/state/audit.jsonl"
    assert result.stdout.strip() == expected


def test_audit_prints_each_request_with_time_host_bytes_and_the_text_sent(tmp_path):
    _write_audit_log(tmp_path)
    result = run("audit", "--config", str(_state_config(tmp_path)))
    assert result.returncode == 0, result.stderr
    sent, outcome = result.stdout.splitlines()
    assert sent.endswith('sent 36 bytes to api.example.com: {"messages": "Why is the sky blue?"}')
    assert "answered (HTTP 200) from api.example.com" in outcome


def test_audit_json_prints_the_records_one_object_per_line(tmp_path):
    _write_audit_log(tmp_path)
    result = run("audit", "--json", "--config", str(_state_config(tmp_path)))
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["record"] for r in records] == ["request", "outcome"]
    assert records[0]["text"] == '{"messages": "Why is the sky blue?"}' and records[0]["bytes"] == 36


def test_audit_json_with_no_log_keeps_stdout_empty(tmp_path):
    result = run("audit", "--json", "--config", str(_state_config(tmp_path)))
    assert result.returncode == 0 and result.stdout == "" and "nothing has left the device" in result.stderr


def test_a_corrupt_audit_log_is_one_line_naming_the_file_and_status_2(tmp_path):
    _write_audit_log(tmp_path)
    with (tmp_path / "state" / "audit.jsonl").open("a") as f:
        f.write('{"record": "request", "ti\n')
    result = run("audit", "--config", str(_state_config(tmp_path)))
    assert_one_line_error(result, 2, f"{tmp_path}/state/audit.jsonl:3")
    assert result.stdout == ""


def test_an_unreadable_api_key_file_stops_start_up_with_status_78(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[cloud]\nenabled = true\nurl = "https://api.example.com/v1"\napi_key_file = "no-such-key"\n')
    result = run("replay", str(FIXTURES / "ptt_time.wav"), "--config", str(config))
    assert_one_line_error(result, 78, str(tmp_path / "no-such-key"), "cloud.api_key_file")


def test_a_replay_leaves_nothing_in_the_home_directory(tmp_path):
    """No library keeps an identifier or a cache behind (onnxruntime's telemetry writes a device id)."""
    import os

    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    result = run("replay", str(FIXTURES / "ptt_time.wav"), "--ptt", "--out", str(tmp_path / "r.wav"), env=env)
    assert result.returncode == 0, result.stderr
    assert list(home.rglob("*")) == []


def test_replay_refuses_to_write_its_reply_over_the_input(tmp_path):
    source = tmp_path / "in.wav"
    source.write_bytes((FIXTURES / "wake_time.wav").read_bytes())
    before = source.read_bytes()
    assert_one_line_error(run("replay", str(source), "--out", str(source)), 2, str(source), "input file")
    assert source.read_bytes() == before


@pytest.mark.parametrize("where", ["a directory", "in a missing directory"])
def test_replay_refuses_an_output_it_cannot_write_before_loading_models(tmp_path, where):
    out = tmp_path if where == "a directory" else tmp_path / "missing" / "r.wav"
    assert_one_line_error(run("replay", str(FIXTURES / "wake_time.wav"), "--out", str(out)), 2, str(out))


def test_the_reply_file_appears_whole_and_leaves_no_partial_file(tmp_path):
    out = tmp_path / "r.wav"
    result = run("replay", str(FIXTURES / "wake_name_reply.wav"), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["r.wav"]
    with wave.open(str(out)) as w:
        assert w.getnframes() > 0


@pytest.mark.parametrize("command", ["replay", "transcribe"])
def test_float_audio_with_samples_that_are_not_numbers_is_status_2(tmp_path, command):
    bad = tmp_path / "nan.wav"
    audio = np.zeros(32000, np.float32)
    audio[1000:1100] = np.nan
    soundfile.write(bad, audio, 16000, subtype="FLOAT")
    out = tmp_path / "r.wav"
    out.write_bytes(b"kept")
    extra = ["--out", str(out)] if command == "replay" else []
    assert_one_line_error(run(command, str(bad), *extra), 2, str(bad), "not numbers")
    assert out.read_bytes() == b"kept"


def test_a_named_pipe_is_refused_at_once_not_read(tmp_path):
    fifo = tmp_path / "in.wav"
    os.mkfifo(fifo)
    assert_one_line_error(run("transcribe", str(fifo)), 2, str(fifo), "not a regular file")


def test_home_assistant_without_a_token_stops_start_up_with_status_78_naming_where_to_put_one(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[home_assistant]\nurl = "http://127.0.0.1:8123"\ntoken_env = "NO_SUCH_TOKEN_VARIABLE"\n')
    result = run("config", "check", str(config))
    assert_one_line_error(result, 78, "token_file", "home-assistant-token", "$NO_SUCH_TOKEN_VARIABLE")


def test_the_home_assistant_token_is_never_shown_by_config_check(tmp_path):
    config = tmp_path / "c.toml"
    (tmp_path / "token").write_text("secret token with spaces\n")
    config.write_text('[home_assistant]\nurl = "http://127.0.0.1:8123"\ntoken_file = "token"\n')
    result = run("config", "check", str(config))
    assert result.returncode == 78 and "secret" not in result.stderr + result.stdout
    assert "one line of visible ASCII" in result.stderr
