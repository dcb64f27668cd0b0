"""Settings are parsed once, validated by key, and the shipped file equals the defaults."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from assistant.config import Settings, describe, find_config, load_settings
from assistant.errors import ConfigError
from conftest import ROOT
from test_cli import run


def test_the_shipped_config_equals_the_built_in_defaults():
    assert load_settings(ROOT / "config.toml") == Settings()


def test_the_shipped_config_lists_every_setting():
    text = (ROOT / "config.toml").read_text()
    for section, key, _default, _doc in describe():
        assert f"\n{key} = " in text, (section, key)


def test_relative_model_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "c.toml").write_text('[tts]\nvoice = "voices/me.onnx"\n')
    assert load_settings(tmp_path / "c.toml").tts.voice == str(tmp_path / "voices" / "me.onnx")


def test_every_relative_path_is_relative_to_the_config_file_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "c.toml").write_text('state_dir = "state"\n[llm]\nmodel = "m.gguf"\n'
                                              '[cloud]\napi_key_file = "key"\n[intents]\ndir = "intents"\n')
    monkeypatch.chdir(tmp_path)
    settings = load_settings(Path("conf/c.toml"))
    assert (settings.state_dir, settings.llm.model, settings.cloud.api_key_file, settings.intents.dir) == tuple(
        str(tmp_path / "conf" / name) for name in ("state", "m.gguf", "key", "intents"))


def test_a_config_beginning_with_a_byte_order_mark_is_read_and_passes_config_check(tmp_path):
    (tmp_path / "c.toml").write_bytes("\ufeff[llm]\ntemperature = 0.5\n".encode())  # as Windows Notepad saves it
    assert load_settings(tmp_path / "c.toml").llm.temperature == 0.5
    checked = run("config", "check", str(tmp_path / "c.toml"))
    assert (checked.returncode, checked.stdout) == (0, f"ok: {tmp_path / 'c.toml'}\n"), checked.stderr


def test_an_empty_path_where_empty_means_none_is_accepted(tmp_path):
    (tmp_path / "c.toml").write_text('[cloud]\napi_key_file = ""\n[intents]\ndir = ""\n')
    assert load_settings(tmp_path / "c.toml").intents.dir == ""


def test_every_problem_in_a_file_is_reported_at_once(tmp_path):
    (tmp_path / "c.toml").write_text("[wake]\nfirst_pass_threshold = 2\n[asr]\nbeam_size = 1.5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.toml")
    lines = caught.value.message.splitlines()
    assert len(lines) == 2 and "first_pass_threshold" in lines[0] and "beam_size" in lines[1]


def test_integers_are_accepted_where_numbers_are_expected(tmp_path):
    (tmp_path / "c.toml").write_text("[endpoint]\nsilence_s = 1\n")
    assert load_settings(tmp_path / "c.toml").endpoint.silence_s == 1.0


@pytest.mark.parametrize("url", ["http://example.com/v1", "ftp://127.0.0.1/", "https://"])
def test_the_cloud_endpoint_needs_tls_unless_it_is_loopback(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[cloud]\nenabled = true\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match="cloud"):
        load_settings(tmp_path / "c.toml")


@pytest.mark.parametrize("url", ["https://api.example.com/v1", "http://127.0.0.1:8080/v1", "http://localhost/v1"])
def test_tls_or_loopback_cloud_endpoints_are_accepted(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[cloud]\nenabled = true\nurl = "{url}"\n')
    assert load_settings(tmp_path / "c.toml").cloud.url == url


def test_lookup_prefers_the_explicit_file_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASSISTANT_CONFIG", "/env/config.toml")
    assert str(find_config("/explicit.toml")) == "/explicit.toml"
    assert str(find_config(None)) == "/env/config.toml"
    monkeypatch.delenv("ASSISTANT_CONFIG")
    (tmp_path / "systemd").mkdir()
    (tmp_path / "systemd" / "config.toml").write_text("")
    monkeypatch.setenv("CONFIGURATION_DIRECTORY", str(tmp_path / "systemd"))
    assert find_config(None) == tmp_path / "systemd" / "config.toml"
    monkeypatch.delenv("CONFIGURATION_DIRECTORY")
    assert find_config(None) is None


def test_state_dir_auto_follows_systemd_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/assistant")
    assert str(Settings().resolved_state_dir()) == "/var/lib/assistant"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert Settings().resolved_state_dir() == tmp_path / "assistant"


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().wake.first_pass_threshold = 0.1  # type: ignore[misc]


def test_a_packaged_llm_is_named_not_taken_for_a_path(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[llm]\nmodel = "gemma3-270m"\n')
    assert load_settings(config).llm.model == "gemma3-270m"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_number_that_is_not_finite_is_refused_by_name(tmp_path, value):
    (tmp_path / "c.toml").write_text(f"[endpoint]\nsilence_s = {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.toml")
    assert "silence_s" in caught.value.message and "finite" in caught.value.message


@pytest.mark.parametrize("url", ["https://api.example.com/v1\\r\\nX-Injected: 1", "https://api.example.com/v1 ",
                                 "https://api.exa mple.com/v1", "https://api.example.com/v1\\u0000"])
def test_a_cloud_url_with_a_space_or_control_character_is_refused_without_echoing_it(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[cloud]\nenabled = true\nurl = "{url}?key=sk-secret"\n')
    with pytest.raises(ConfigError, match=r"\[cloud\] url: holds a space or control character") as caught:
        load_settings(tmp_path / "c.toml")
    assert "sk-secret" not in caught.value.message


def test_a_refused_cloud_url_is_named_by_scheme_and_host_only(tmp_path):
    (tmp_path / "c.toml").write_text('[cloud]\nenabled = true\nurl = "http://example.com/v1?key=sk-secret"\n')
    with pytest.raises(ConfigError, match=r"http://example\.com") as caught:
        load_settings(tmp_path / "c.toml")
    assert "sk-secret" not in caught.value.message


@pytest.mark.parametrize("state_dir", ["state", "new/deeper/state", "auto"])
def test_a_state_dir_that_exists_or_can_be_made_is_accepted(tmp_path, state_dir):
    (tmp_path / "state").mkdir()
    (tmp_path / "c.toml").write_text(f'state_dir = "{state_dir}"\n')
    assert load_settings(tmp_path / "c.toml").state_dir in (state_dir, str(tmp_path / state_dir))


@pytest.mark.parametrize("state_dir, says", [("file", "is a file, not a directory"),
                                             ("file/state", "(its parent {t}/file): is a file"),
                                             ("fifo", "is a FIFO")])
def test_a_state_dir_that_cannot_hold_state_is_refused_by_name(tmp_path, state_dir, says):
    (tmp_path / "file").write_text("")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "c.toml").write_text(f'state_dir = "{state_dir}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.toml")
    assert caught.value.message.startswith(f"{tmp_path / 'c.toml'}: state_dir = ")
    assert says.format(t=tmp_path) in caught.value.message


def test_a_state_dir_that_is_not_writable_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    (tmp_path / "ro").mkdir(mode=0o555)
    (tmp_path / "c.toml").write_text('state_dir = "ro/state"\n')
    with pytest.raises(ConfigError, match="state_dir.*not writable"):
        load_settings(tmp_path / "c.toml")


@pytest.mark.parametrize("value", ["a\\u0000b", "a\\nb", "a\\u001bb"])
def test_a_path_with_a_control_character_is_refused_by_name(tmp_path, value):
    (tmp_path / "c.toml").write_text(f'[llm]\nmodel = "{value}"\n')
    with pytest.raises(ConfigError, match=r"\[llm\] model = .*control character"):
        load_settings(tmp_path / "c.toml")


def test_an_unknown_users_home_is_a_path_like_any_other(tmp_path):
    (tmp_path / "c.toml").write_text('[tts]\nvoice = "~no_such_user_here/v.onnx"\n')
    assert load_settings(tmp_path / "c.toml").tts.voice == str(tmp_path / "~no_such_user_here" / "v.onnx")


def test_a_config_file_that_is_a_fifo_is_refused_without_being_read(tmp_path):
    os.mkfifo(tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="is a FIFO"):
        load_settings(tmp_path / "c.toml")


def test_a_key_with_a_line_break_is_named_on_one_line(tmp_path):
    (tmp_path / "c.toml").write_text('[wake]\n"bad\\nkey" = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.toml")
    assert caught.value.message.splitlines() == [f"{tmp_path / 'c.toml'}: [wake] 'bad\\nkey': unknown key; allowed: "
                                                 + caught.value.message.split("allowed: ")[1]]


def test_the_packaged_models_named_by_path_pass_the_start_up_probes(tmp_path):
    """Custom paths are loaded in the probe process: good files must pass it, each kind."""
    from assistant import models

    (tmp_path / "c.toml").write_text(f'''
[wake]
first_pass_model = "{models.first_pass_config("bundled")}"
verifier_model = "{models.verifier_model("bundled")}"
[endpoint]
vad_model = "{models.vad_model("bundled")}"
turn_model = "{models.turn_model("bundled")}"
[asr]
model = "{models.asr_model("bundled")}"
[llm]
model = "{models.llm_model("bundled")}"
[tts]
voice = "{models.tts_voice("bundled")[0]}"
''')
    models.check_all(load_settings(tmp_path / "c.toml"))


@pytest.mark.parametrize("url", ["http://example.com:8123", "http://8.8.8.8:8123", "ftp://192.168.1.2/",
                                 "http://192.168.1.2:99999", "http://192.168.1.2:+80", "http://user:pw@192.168.1.2:8123",
                                 "https://", "https://999.1.1.1", "https://[fd00::1"])
def test_home_assistant_needs_tls_unless_it_is_inside_the_home(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[home_assistant]\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match=r"\[home_assistant\] url"):
        load_settings(tmp_path / "c.toml")


@pytest.mark.parametrize("url", ["https://ha.example.com", "http://127.0.0.1:8123", "http://192.168.1.20:8123",
                                 "http://10.0.0.5:8123", "http://[fd12:3456::1]:8123", "http://169.254.1.1:8123",
                                 "http://homeassistant.local:8123", "http://homeassistant:8123"])
def test_home_assistant_over_tls_or_inside_the_home_is_accepted(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[home_assistant]\nurl = "{url}"\n')
    assert load_settings(tmp_path / "c.toml").home_assistant.url == url


@pytest.mark.parametrize("url, says", [
    ("https://api.example.com:99999/v1", "the port must be a number from 1 to 65535, not 99999"),
    ("https://api.example.com:0x50/v1", "the port must be a number from 1 to 65535"),
    ("https://api.example.com:/v1", "the port must be a number from 1 to 65535"),
    ("https://[::1/v1", "an IPv6 address must be written whole between [ and ]"),
    ("https://999.1.1.1/v1", "the host is not a valid host name or IP address"),
    ("https://\u2603.example.com/v1", "the host is not a valid host name or IP address"),
])
def test_a_cloud_url_its_first_use_would_refuse_is_refused_now(tmp_path, url, says):
    (tmp_path / "c.toml").write_text(f'[cloud]\nenabled = true\nurl = "{url}"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.toml")
    assert caught.value.message == f"{tmp_path / 'c.toml'}: [cloud] url: {says}"


def test_a_port_that_may_be_a_password_missing_its_at_sign_is_not_echoed(tmp_path):
    (tmp_path / "c.toml").write_text('[home_assistant]\nurl = "https://me:hunter2/ha.example.com"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.toml")
    assert "[home_assistant] url: the port must be" in caught.value.message and "hunter2" not in caught.value.message


def test_a_skill_deadline_shorter_than_home_assistants_is_refused_by_name(tmp_path):
    (tmp_path / "c.toml").write_text("[conversation]\nskill_timeout_s = 2.0\n[home_assistant]\ntimeout_s = 3.0\n")
    with pytest.raises(ConfigError, match=r"\[conversation\] skill_timeout_s = 2.0: must exceed \[home_assistant\]"):
        load_settings(tmp_path / "c.toml")
    (tmp_path / "c.toml").write_text("[conversation]\nskill_timeout_s = 4.0\n[home_assistant]\ntimeout_s = 3.0\n")
    assert load_settings(tmp_path / "c.toml").conversation.skill_timeout_s == 4.0
