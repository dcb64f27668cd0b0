"""The assistant as a systemd service, run by a real systemd booted in a container (tests/nspawn.py).

Each scenario boots the cached root with the assistant installed, upgrades it in place
from the working tree with scripts/install, and records what systemd saw. The container
has no sound device at all, so the daemon runs degraded throughout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

import nspawn
from conftest import ROOT

UNIT = ROOT / "systemd" / "assistant.service"
WATCHDOG_S = int(re.search(r"^WatchdogSec=(\d+)s$", UNIT.read_text(), re.M)[1])
UPGRADE = "say upgrade; ASSISTANT_NO_START=1 /src/scripts/install > $R/install.log 2>&1 || say install failed\n"


@pytest.fixture(scope="module")
def root():
    missing = nspawn.missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"systemd tests need {', '.join(missing)} (scripts/test installs the packages as root)")
        pytest.skip(f"needs {', '.join(missing)}")
    return nspawn.installed_root()


def test_the_unit_rates_2_or_lower_in_systemd_analyze_security():
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("needs systemd-analyze (Debian's systemd; scripts/test installs it with systemd-container)")
        pytest.skip("needs systemd-analyze (Debian: systemd)")
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    level = float(re.search(r"Overall exposure level for assistant\.service: ([\d.]+)", result.stdout)[1])
    assert level <= 2.0, result.stdout


def test_the_unit_lets_the_service_open_the_sound_devices_a_pi_has():
    # A Raspberry Pi's sound (HDMI, a USB microphone and speaker, a sound HAT) is ALSA's
    # /dev/snd/*, group audio, as on any Debian; scripts/check-aarch64 boots this unit on arm64.
    lines = UNIT.read_text().splitlines()
    assert "DevicePolicy=closed" in lines
    assert "DeviceAllow=char-alsa rw" in lines
    groups = [line.split("=", 1)[1].split() for line in lines if line.startswith("SupplementaryGroups=")]
    assert any("audio" in names for names in groups)


@pytest.fixture(scope="module")
def service(root, tmp_path_factory):
    """One boot: the documented install starts the service; then reloads, and a stop."""
    results = tmp_path_factory.mktemp("service")
    probe = r"""
watch_states
systemctl log-level debug  # the manager logs every notify message
rm /etc/assistant/config.toml  # the cached image has one: this install writes it afresh
say install
/src/scripts/install > $R/install.log 2>&1; echo $? > $R/install.status
say installed
snapshot installed
systemctl is-enabled assistant.service > $R/enabled
ls /opt/assistant/.venv/bin/assistant /etc/assistant/config.toml > $R/files 2>&1
systemd-analyze verify /etc/systemd/system/assistant.service > $R/verify.log 2>&1; echo $? > $R/verify.status
pid=$(value MainPID)
grep '^Groups:' /proc/$pid/status > $R/groups; getent group audio | cut -d: -f3 > $R/audio_gid
sleep 3
snapshot degraded
say reload
systemctl reload assistant.service; echo $? > $R/reload.status
sleep 2
snapshot reloaded
echo 'no_such_key = 1' >> /etc/assistant/config.toml
say bad reload
systemctl reload assistant.service; echo $? > $R/bad_reload.status
sleep 2
snapshot bad_reload
say changed reload
sed -i -e '/^no_such_key/d' -e 's/^length_scale = 1.0$/length_scale = 1.1/' /etc/assistant/config.toml
date +%s.%N > $R/changed_reload.start
systemctl reload assistant.service; echo $? > $R/changed_reload.status
sleep 1
wait_for ActiveState active 120 || say not active again
snapshot changed_reload
say stop
date +%s.%N > $R/stop.start; systemctl stop assistant.service; date +%s.%N > $R/stop.end
snapshot stopped
systemctl log-level info
"""
    nspawn.boot(root, probe, results, timeout_s=240)
    return results


def _journal(results) -> str:
    return nspawn.read(results / "journal.log")


def test_install_puts_the_venv_config_and_unit_in_place_and_starts_it(service):
    assert nspawn.read(service / "install.status").strip() == "0", nspawn.read(service / "install.log")
    assert "wrote /etc/assistant/config.toml" in nspawn.read(service / "install.log")
    assert nspawn.read(service / "enabled").strip() == "enabled"
    assert "No such file" not in nspawn.read(service / "files")
    assert nspawn.read_show(service / "installed.show")["ActiveState"] == "active"


def test_the_installed_unit_passes_systemd_analyze_verify(service):
    assert nspawn.read(service / "verify.status").strip() == "0", nspawn.read(service / "verify.log")
    assert nspawn.read(service / "verify.log") == ""


def test_the_unit_is_active_only_once_the_daemon_says_ready(service):
    states = nspawn.read_states(service / "states.tsv")
    started = next(t for t, s in states if s.get("ActiveState") == "activating" and s.get("MainPID") != "0")
    active = next(t for t, s in states if s.get("ActiveState") == "active")
    assert active - started > 1.0, "the models load before READY=1"
    # The manager's own account (debug level): the start ends on the daemon's READY=1, not before.
    lines = _journal(service).splitlines()
    running = next(i for i, line in enumerate(lines) if "assistant.service: Changed start -> running" in line)
    assert "Got notification message" in lines[running - 1] and "READY=1" in lines[running - 1], lines[running - 1]
    assert not any("READY=1" in line for line in lines[:running - 1])


def test_it_stays_up_degraded_without_any_sound_device_and_says_so(service):
    installed, degraded = (nspawn.read_show(service / f"{name}.show") for name in ("installed", "degraded"))
    assert degraded["ActiveState"] == "active" and degraded["NRestarts"] == "0"
    assert degraded["MainPID"] == installed["MainPID"]
    status = degraded["StatusText"].lower()
    assert "microphone" in status and "retry" in status, status


def test_the_service_user_holds_the_audio_group(service):
    groups = nspawn.read(service / "groups").split()[1:]
    assert nspawn.read(service / "audio_gid").strip() in groups


def test_reload_keeps_the_process_and_a_bad_config_keeps_the_old_one(service):
    before, reloaded, bad = (nspawn.read_show(service / f"{name}.show") for name in ("degraded", "reloaded", "bad_reload"))
    assert nspawn.read(service / "reload.status").strip() == "0"
    for after in (reloaded, bad):
        assert after["ActiveState"] == "active" and after["MainPID"] == before["MainPID"]
        assert after["NRestarts"] == "0"
    assert "no_such_key" in _journal(service)


def test_a_changed_config_takes_effect_on_reload_in_the_same_process(service):
    before, after = (nspawn.read_show(service / f"{name}.show") for name in ("bad_reload", "changed_reload"))
    assert nspawn.read(service / "changed_reload.status").strip() == "0"
    started = float(nspawn.read(service / "changed_reload.start"))
    during = [s for t, s in nspawn.read_states(service / "states.tsv") if t > started]
    assert any(s.get("ActiveState") == "reloading" for s in during), "RELOADING=1 while the models load again"
    assert (after["ActiveState"], after["MainPID"], after["NRestarts"]) == ("active", before["MainPID"], "0")
    assert "reload: restarting with /etc/assistant/config.toml" in _journal(service)


def test_stop_ends_it_with_status_0_within_2_s(service):
    seconds = float(nspawn.read(service / "stop.end")) - float(nspawn.read(service / "stop.start"))
    stopped = nspawn.read_show(service / "stopped.show")
    assert (stopped["ActiveState"], stopped["Result"], stopped["ExecMainStatus"]) == ("inactive", "success", "0")
    assert seconds < 2.0


def test_a_config_error_ends_it_without_a_restart_loop(root, tmp_path):
    probe = UPGRADE + r"""
echo 'no_such_key = 1' >> /etc/assistant/config.toml
watch_states
systemctl start assistant.service; echo $? > $R/start.status
sleep 8  # longer than RestartSec=: a restart would have begun
snapshot failed
"""
    nspawn.boot(root, probe, tmp_path, timeout_s=120)
    failed = nspawn.read_show(tmp_path / "failed.show")
    assert nspawn.read(tmp_path / "start.status").strip() != "0"
    assert (failed["ActiveState"], failed["Result"], failed["ExecMainStatus"]) == ("failed", "exit-code", "78")
    assert failed["NRestarts"] == "0"
    assert all(s.get("NRestarts") == "0" for _, s in nspawn.read_states(tmp_path / "states.tsv"))
    assert "no_such_key" in _journal(tmp_path)


def test_the_cloud_key_comes_from_the_credential_store_and_nowhere_else(root, tmp_path):
    probe = UPGRADE + r"""
sed -i -e '/^\[cloud\]/,/^\[/ { s|^enabled = false$|enabled = true|; s|^url = ""$|url = "http://127.0.0.1:9/v1"| }' /etc/assistant/config.toml
install -d -m 0700 /etc/credstore
printf 'not one word\n' > /etc/credstore/cloud-api-key  # a key the daemon refuses, so it shows it read this one
systemctl start assistant.service
snapshot refused
systemctl reset-failed assistant.service
printf 'sk-secret-4711\n' > /etc/credstore/cloud-api-key
systemctl start assistant.service
snapshot accepted
pid=$(value MainPID)
tr '\0' '\n' < /proc/$pid/environ | grep -c '^CREDENTIALS_DIRECTORY=' > $R/credentials_directory
grep -c 'sk-secret' /proc/$pid/environ > $R/key_in_environment
systemctl show assistant.service > $R/all.show
"""
    nspawn.boot(root, probe, tmp_path, timeout_s=180)
    refused, accepted = (nspawn.read_show(tmp_path / f"{name}.show") for name in ("refused", "accepted"))
    assert (refused["ActiveState"], refused["ExecMainStatus"], refused["NRestarts"]) == ("failed", "78", "0")
    assert "the systemd credential cloud-api-key" in _journal(tmp_path)
    assert accepted["ActiveState"] == "active"
    assert nspawn.read(tmp_path / "credentials_directory").strip() == "1"
    assert nspawn.read(tmp_path / "key_in_environment").strip() == "0"
    assert "sk-secret" not in nspawn.read(tmp_path / "all.show") + _journal(tmp_path)


def test_the_watchdog_restarts_a_stalled_loop(root, tmp_path):
    probe = UPGRADE + f"""
watch_states
systemctl start assistant.service
pid=$(value MainPID)
sleep {WATCHDOG_S + 3}  # fed while degraded: still the same process
snapshot fed
say SIGSTOP $pid
kill -STOP $pid
wait_for NRestarts 1 {WATCHDOG_S + 30} || say no restart
snapshot restarted
"""
    nspawn.boot(root, probe, tmp_path, timeout_s=WATCHDOG_S * 2 + 150)
    fed, restarted = (nspawn.read_show(tmp_path / f"{name}.show") for name in ("fed", "restarted"))
    assert fed["ActiveState"] == "active" and fed["NRestarts"] == "0", fed
    assert restarted["NRestarts"] == "1" and restarted["MainPID"] != fed["MainPID"]
    states = nspawn.read_states(tmp_path / "states.tsv")
    assert any(s.get("Result") == "watchdog" for _, s in states)
    assert "Watchdog timeout" in _journal(tmp_path)


def _replay_unit() -> str:
    """The shipped unit's sandbox around replays: every model runs as the service would run it."""
    dropped = ("Type=", "NotifyAccess=", "ExecStart=", "ExecReload=", "Restart", "Watchdog", "TimeoutStartSec=")
    lines = [line for line in UNIT.read_text().splitlines() if not line.startswith(dropped)]
    at = lines.index("[Service]") + 1
    assistant = "/opt/assistant/.venv/bin/assistant"
    lines[at:at] = [
        "Type=oneshot",
        f"ExecStart={assistant} replay /opt/assistant/fixtures/wake_time.wav --json --out ${{STATE_DIRECTORY}}/wake.wav",
        # a question for the cloud, which is off: the local LLM answers instead
        f"ExecStart={assistant} --config /probe/llm.toml replay /opt/assistant/fixtures/ptt_llm.wav --ptt --json "
        "--out ${STATE_DIRECTORY}/llm.wav",
        # what sounddevice does to open a stream: PortAudio, and a C callback made by cffi
        "ExecStart=/opt/assistant/.venv/bin/python -c \"import sounddevice as sd; sd.query_devices(); "
        "sd._ffi.callback('PaStreamCallback', lambda *a: 0, error=sd._lib.paAbort); print('{\\\"event\\\": \\\"portaudio\\\"}')\"",
        "StandardOutput=append:/results/replay.jsonl",
        "StandardError=journal",
    ]
    return "\n".join(lines) + "\n"


def test_every_model_runs_under_the_units_hardening(root, tmp_path):
    probe = UPGRADE + r"""
cp /probe/assistant-replay.service /etc/systemd/system/ && systemctl daemon-reload
systemctl start assistant-replay.service; echo $? > $R/replay.status
systemctl show assistant-replay.service -p Result,ExecMainStatus > $R/replay.show
stat -c '%n %s' /var/lib/assistant/wake.wav /var/lib/assistant/llm.wav > $R/wavs 2>&1
journalctl -u assistant-replay.service --no-pager > $R/replay-journal.log
"""
    nspawn.boot(root, probe, tmp_path, timeout_s=240,
                files={"assistant-replay.service": _replay_unit(), "llm.toml": '[cloud]\nfallback = "local_llm"\n'})
    journal = nspawn.read(tmp_path / "replay-journal.log")
    assert nspawn.read(tmp_path / "replay.status").strip() == "0", journal[-4000:]
    events = [json.loads(line) for line in nspawn.read(tmp_path / "replay.jsonl").splitlines()]
    turns = [e for e in events if e["event"] == "turn"]
    assert [t["outcome"] for t in turns] == ["answered", "answered"], events
    assert [e["tier"] for e in events if e["event"] == "reply"] == ["fast_path", "local_llm"]
    assert events[-1]["event"] == "portaudio"
    sizes = [int(line.split()[1]) for line in nspawn.read(tmp_path / "wavs").splitlines()]
    assert len(sizes) == 2 and min(sizes) > 10_000


def test_upgrade_keeps_the_config_and_uninstall_keeps_config_and_state(root, tmp_path):
    probe = UPGRADE + r"""
echo '# mine' >> /etc/assistant/config.toml
mkdir -p /var/lib/private/assistant && echo kept > /var/lib/private/assistant/mine
ASSISTANT_NO_START=1 /src/scripts/install > $R/upgrade.log 2>&1; echo $? > $R/upgrade.status
tail -1 /etc/assistant/config.toml > $R/config_tail
/src/scripts/install --uninstall > $R/uninstall.log 2>&1; echo $? > $R/uninstall.status
ls -d /opt/assistant /etc/systemd/system/assistant.service /etc/assistant/config.toml \
  /var/lib/private/assistant/mine > $R/left 2>/dev/null
systemctl is-enabled assistant.service > $R/enabled 2>&1
"""
    nspawn.boot(root, probe, tmp_path, timeout_s=120)
    assert nspawn.read(tmp_path / "upgrade.status").strip() == "0", nspawn.read(tmp_path / "upgrade.log")
    assert "keeping /etc/assistant/config.toml" in nspawn.read(tmp_path / "upgrade.log")
    assert nspawn.read(tmp_path / "config_tail").strip() == "# mine"
    assert nspawn.read(tmp_path / "uninstall.status").strip() == "0", nspawn.read(tmp_path / "uninstall.log")
    assert nspawn.read(tmp_path / "left").split() == ["/etc/assistant/config.toml", "/var/lib/private/assistant/mine"]
    assert nspawn.read(tmp_path / "enabled").strip() != "enabled"
