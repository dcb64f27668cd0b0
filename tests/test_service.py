"""The daemon as a service: systemd's notify protocol, the watchdog, signals and device faults.

A datagram socket stands in for systemd (`$NOTIFY_SOCKET`, `$WATCHDOG_USEC`); a private
PulseAudio stands in for the sound card, and is killed and restarted for a real fault.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time

import pytest
from conftest import FIXTURES

from assistant.run.service import JournalFormatter, ServiceNotifier, under_journald
from bench.live import (
    Daemon,
    NotifySocket,
    play_into_room,
    private_pulseaudio,
    with_trailing_silence,
)


@pytest.fixture
def notify(tmp_path):
    socket = NotifySocket(tmp_path / "notify")
    yield socket
    socket.close()


def test_without_systemd_the_notifier_does_nothing():
    notifier = ServiceNotifier(environ={})
    notifier.ready("listening")
    notifier.alive()
    assert not notifier.active


def test_the_notifier_speaks_systemds_protocol(notify):
    notifier = ServiceNotifier(environ=notify.env(watchdog_s=4.0))
    notifier.status("loading models")
    notifier.status("loading models")  # unchanged: not sent again
    notifier.ready("listening")
    notifier.alive()
    notifier.stopping()
    assert notify.during(0.2) == ["STATUS=loading models", "READY=1\nSTATUS=listening", "WATCHDOG=1",
                                  "STOPPING=1\nSTATUS=stopping"]


def test_a_part_that_cannot_work_is_shown_as_degraded_until_it_works_again(notify):
    notifier = ServiceNotifier(environ=notify.env())
    notifier.status("listening")
    notifier.degraded("Home Assistant", "cannot reach Home Assistant at 192.168.1.20:8123")
    notifier.status("listening")  # the microphone's state again: the problem stays shown
    notifier.degraded("Home Assistant", None)
    assert notify.during(0.2) == [
        "STATUS=listening",
        "STATUS=listening; degraded: Home Assistant: cannot reach Home Assistant at 192.168.1.20:8123",
        "STATUS=listening"]


def test_the_watchdog_is_fed_a_few_times_per_interval_not_at_every_chunk(notify):
    now = [0.0]
    notifier = ServiceNotifier(environ=notify.env(watchdog_s=4.0), clock=lambda: now[0])
    for _ in range(100):  # 100 chunks in the same instant
        notifier.alive()
    now[0] += 1.0
    notifier.alive()
    assert notify.during(0.2).count("WATCHDOG=1") == 2


def test_a_watchdog_meant_for_another_process_is_ignored(notify):
    notifier = ServiceNotifier(environ={**notify.env(watchdog_s=4.0), "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_s is None


def test_under_journald_log_lines_carry_their_priority_and_no_time():
    record = logging.LogRecord("assistant.hear.devices", logging.WARNING, __file__, 1, "no microphone", None, None)
    assert JournalFormatter("%(name)s: %(message)s").format(record) == "<4>assistant.hear.devices: no microphone"


def test_journald_is_recognised_by_the_stream_it_gave_stderr(monkeypatch):
    stat = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
    assert under_journald()
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + 1}")
    assert not under_journald()


def _ready_status(messages: list[str]) -> str:
    ready = next(m for m in messages if m.startswith("READY=1"))
    return ready.split("STATUS=", 1)[1] if "STATUS=" in ready else ""


def test_ready_after_loading_then_listening_fed_and_stopping_on_sigterm(pulse, notify):
    with Daemon({**pulse, **notify.env(watchdog_s=4.0)}) as daemon:
        notify.until(lambda m: m.startswith("READY=1"), timeout_s=120)
        notify.until(lambda m: m == "STATUS=listening", timeout_s=30)
        fed = notify.during(2.5).count("WATCHDOG=1")
        status, seconds = daemon.terminate(timeout_s=2.0)
    messages = notify.during(0.2)
    assert messages.index("STATUS=loading models") < next(i for i, m in enumerate(messages) if m.startswith("READY=1"))
    assert fed >= 2, "the watchdog is fed while audio flows"
    assert "STOPPING=1\nSTATUS=stopping" in messages
    assert status == 0 and seconds < 2.0


def test_with_no_microphone_it_is_ready_degraded_and_keeps_the_watchdog_fed(tmp_path, notify):
    env = {**os.environ, **notify.env(watchdog_s=4.0), "PULSE_SERVER": f"unix:{tmp_path}/no-such-server",
           "STATE_DIRECTORY": str(tmp_path / "state")}
    with Daemon(env) as daemon:
        notify.until(lambda m: m.startswith("READY=1"), timeout_s=120)
        notify.until(lambda m: "no microphone" in m, timeout_s=30)
        later = notify.during(5.0)
        status, _ = daemon.terminate(timeout_s=2.0)
    assert any(m.startswith("STATUS=no microphone") and "retrying in" in m for m in later + notify.messages)
    assert later.count("WATCHDOG=1") >= 2, "backing off on purpose still feeds the watchdog"
    assert daemon.process.returncode == 0 and status == 0


def _asked_the_time(daemon: Daemon, env: dict, tmp_path) -> dict:
    """Play "hey jarvis, what time is it?" into the room; the turn that closes it. Stops the daemon."""
    player = play_into_room(env, with_trailing_silence(FIXTURES / "wake_time.wav", 6.0, tmp_path / "played.wav"))
    try:
        return daemon.events_until(lambda e: e["event"] == "turn", timeout_s=60)[-1]
    finally:
        player.wait(timeout=60)
        daemon.terminate(timeout_s=5)


def test_the_microphone_comes_back_after_the_sound_server_restarts(tmp_path, notify):
    with private_pulseaudio(tmp_path / "runtime") as env:
        env = {**env, **notify.env(watchdog_s=4.0), "STATE_DIRECTORY": str(tmp_path / "state")}
        with Daemon(env) as daemon:
            daemon.wait_until_listening()
            subprocess.run(["pulseaudio", "--kill"], env=env, check=True, timeout=30)
            notify.until(lambda m: "no microphone" in m, timeout_s=30)
            with private_pulseaudio(tmp_path / "runtime"):
                notify.until(lambda m: m == "STATUS=listening", timeout_s=60)
                turn = _asked_the_time(daemon, env, tmp_path)
    assert turn["outcome"] == "answered"


@contextlib.contextmanager
def _listening_then_reloaded(tmp_path, pulse, notify, new_config: str):
    """A daemon started on one config and listening, then sent SIGHUP after the file changed."""
    config = tmp_path / "config.toml"
    config.write_text("[wake]\nverifier_threshold = 0.5\n")
    with Daemon({**pulse, **notify.env()}, "--config", str(config)) as daemon:
        notify.until(lambda m: m == "STATUS=listening", timeout_s=120)
        config.write_text(new_config)
        daemon.process.send_signal(signal.SIGHUP)
        yield daemon, config


def test_sighup_with_a_broken_config_keeps_the_running_one(tmp_path, pulse, notify):
    with _listening_then_reloaded(tmp_path, pulse, notify, "[wake]\nverifier_threshold = 5\n") as (daemon, config):
        notify.until(lambda m: m == "READY=1", timeout_s=30)  # the reload is over
        time.sleep(0.5)
        alive = daemon.process.poll() is None
        status, _ = daemon.terminate(timeout_s=2.0)
    stderr = daemon.process.stderr.read().decode()
    assert alive and status == 0
    [refused] = [line for line in stderr.splitlines() if "reload refused" in line]
    assert "verifier_threshold = 5" in refused and str(config) in refused


def test_sighup_with_a_changed_config_restarts_the_pipeline_with_it(tmp_path, pulse, notify):
    with _listening_then_reloaded(tmp_path, pulse, notify, "[wake]\nverifier_threshold = 0.6\n") as (daemon, _):
        notify.until(lambda m: m.startswith("RELOADING=1"), timeout_s=10)
        notify.until(lambda m: m.startswith("READY=1"), timeout_s=120)
        notify.until(lambda m: m == "STATUS=listening", timeout_s=30)
        status, _ = daemon.terminate(timeout_s=2.0)
    assert status == 0


def test_the_service_log_leaves_out_what_was_said_unless_allowed():
    import io

    from assistant.events import HumanLines, Reply, Transcript

    kept, private = io.StringIO(), io.StringIO()
    for sink in (HumanLines(kept), HumanLines(private, words=False)):
        sink.emit(Transcript(t=1.0, text="Remind me to call my doctor.", asr_ms=400.0))
        sink.emit(Reply(t=1.5, text="Sorry, I can't answer that on this device.", tier="offline", think_ms=0.1))
    assert "doctor" in kept.getvalue()
    assert "doctor" not in private.getvalue() and "answer" not in private.getvalue()
    assert "heard: (6 words)" in private.getvalue()


def test_listening_resumes_after_the_sound_server_suspends_the_room(tmp_path, notify):
    with private_pulseaudio(tmp_path / "runtime") as env:
        env = {**env, **notify.env(watchdog_s=4.0), "STATE_DIRECTORY": str(tmp_path / "state")}
        with Daemon(env) as daemon:
            daemon.wait_until_listening()
            subprocess.run(["pactl", "suspend-sink", "room", "1"], env=env, check=True, timeout=10)
            time.sleep(4.0)
            subprocess.run(["pactl", "suspend-sink", "room", "0"], env=env, check=True, timeout=10)
            with contextlib.suppress(AssertionError):  # the stream may have stalled: then it is reopened
                notify.until(lambda m: "no microphone" in m, timeout_s=10)
                notify.until(lambda m: m == "STATUS=listening", timeout_s=30)
            turn = _asked_the_time(daemon, env, tmp_path)
    assert turn["outcome"] == "answered"


def test_a_notify_socket_nobody_reads_never_blocks_the_loop(tmp_path):
    import socket as sockets

    unread = sockets.socket(sockets.AF_UNIX, sockets.SOCK_DGRAM)
    unread.bind(str(tmp_path / "notify"))
    now = [0.0]
    notifier = ServiceNotifier(environ={"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "4000000"},
                               clock=lambda: now[0])
    for _ in range(200):  # far more than a datagram queue holds (10 by default)
        now[0] += 1.0
        notifier.alive()
    notifier.status("still here")  # reached: nothing blocked
    unread.close()
