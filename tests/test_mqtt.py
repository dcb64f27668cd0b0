"""MQTT: the assistant's state for LEDs, the mute switch, audited messages, and a broker that
comes and goes; against a real mosquitto and a real subscriber."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from mqtt_broker import Broker, Subscriber, certificates, mosquitto

from assistant.config import MqttSettings, load_settings, with_changes
from assistant.errors import ConfigError
from assistant.events import Recorder
from assistant.hear.audio import NullSink, as_stream, file_chunks
from assistant.home.mqtt import MqttLink, MuteCommand, assistant_name, mute_command
from assistant.run.daemon import AssistantStatus
from assistant.run.pipeline import replay_pipeline
from assistant.run.service import ServiceNotifier
from assistant.run.stages import for_a_run
from assistant.understand.audit import AuditLog, human_line, read_records
from bench.live import Daemon, NotifySocket, play_into_room, with_trailing_silence

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def has_mosquitto() -> None:
    if mosquitto() is None:
        if os.environ.get("CI"):
            pytest.fail("the MQTT tests need mosquitto (scripts/test installs it as root)")
        pytest.skip("needs mosquitto (Debian: apt-get install mosquitto)")


@pytest.fixture
def broker(has_mosquitto, tmp_path):
    broker = Broker(tmp_path).start()
    yield broker
    broker.kill()


@pytest.fixture
def private_broker(has_mosquitto, tmp_path):
    """A broker that takes one user, with PASSWORD."""
    broker = Broker(tmp_path, users={"speaker": PASSWORD}).start()
    yield broker
    broker.kill()


@pytest.fixture
def tls_broker(has_mosquitto, tmp_path):
    """A broker that speaks TLS only, with a certificate from a CA of the test's own (tmp_path/ca.pem)."""
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("the MQTT TLS tests need openssl (scripts/test installs it as root)")
        pytest.skip("needs openssl")
    certificates(tmp_path)
    broker = Broker(tmp_path, tls=True).start()
    yield broker
    broker.kill()


@pytest.fixture
def links(tmp_path):
    """Makes started links (closed at the end), each recording to tmp_path/audit.jsonl."""
    made: list[MqttLink] = []

    def make(broker: Broker, on_mute=None, password: str | None = None, **settings) -> MqttLink:
        link = MqttLink(MqttSettings(enabled=True, url=broker.url, name="kitchen", **settings),
                        AuditLog(tmp_path / "audit.jsonl"), password=password, on_mute=on_mute)
        link.start()
        made.append(link)
        return link

    yield make
    for link in made:
        link.close()


@pytest.fixture
def subscribers():
    made: list[Subscriber] = []

    def make(broker: Broker, topic: str = "#", **auth) -> Subscriber:
        made.append(Subscriber(broker, topic, **auth))
        return made[-1]

    yield make
    for subscriber in made:
        subscriber.close()


def until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        time.sleep(0.02)


def assistant(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, stdin=subprocess.DEVNULL, check=False)


def said(messages) -> list[str]:
    return [m.payload.decode() for m in messages]


# The state

def test_a_late_subscriber_reads_the_latest_state_retained(broker, links, subscribers):
    link = links(broker)
    watching = subscribers(broker, "assistant/kitchen/state")
    until(lambda: link.connected)
    link.set_state("listening")
    link.set_state("thinking")
    watching.until(lambda m: m.payload == b"thinking")
    late = subscribers(broker, "assistant/kitchen/state")
    [message] = late.until(lambda m: True)
    assert (message.payload, message.retain) == (b"thinking", True)
    assert late.during(0.3) == [message]


def test_the_state_set_while_the_broker_was_away_is_published_once_connected(has_mosquitto, tmp_path, links,
                                                                              subscribers):
    broker = Broker(tmp_path)
    link = links(broker)
    link.set_state("idle")
    link.set_state("speaking")
    broker.start()
    try:
        until(lambda: link.connected, timeout_s=15)
        [message] = subscribers(broker, "assistant/kitchen/state").until(lambda m: True)
        assert message.payload == b"speaking"
    finally:
        broker.kill()


def test_stopping_says_offline(broker, links, subscribers):
    link = links(broker)
    watching = subscribers(broker, "assistant/kitchen/state")
    until(lambda: link.connected)
    link.set_state("idle")
    watching.until(lambda m: m.payload == b"idle")
    link.close()
    watching.until(lambda m: m.payload == b"offline")
    [retained] = subscribers(broker, "assistant/kitchen/state").until(lambda m: True)
    assert retained.payload == b"offline"


def test_the_broker_says_offline_when_the_assistant_vanishes_without_a_word(broker, tmp_path, subscribers):
    watching = subscribers(broker, "assistant/kitchen/state")
    program = f"""
import os, signal, sys, time
from pathlib import Path
from assistant.understand.audit import AuditLog
from assistant.config import MqttSettings
from assistant.home.mqtt import MqttLink
link = MqttLink(MqttSettings(enabled=True, url={broker.url!r}, name="kitchen"), AuditLog(Path({str(tmp_path)!r}) / "a"))
link.start()
link.set_state("idle")
time.sleep(30)
"""
    process = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT)
    try:
        watching.until(lambda m: m.payload == b"idle", timeout_s=30)
        process.send_signal(signal.SIGKILL)
        watching.until(lambda m: m.payload == b"offline", timeout_s=10)
    finally:
        process.kill()
        process.wait(timeout=10)


def test_the_default_name_is_this_hosts_fit_for_a_topic(monkeypatch):
    monkeypatch.setattr("socket.gethostname", lambda: "Kitchen Pi+2.example.com")
    assert assistant_name(MqttSettings()) == "Kitchen-Pi-2"
    assert assistant_name(MqttSettings(name="den")) == "den"


# The mute switch

@pytest.mark.parametrize("payload, command", [
    (b"on", MuteCommand.ON), (b"ON", MuteCommand.ON), (b"True", MuteCommand.ON), (b"1", MuteCommand.ON),
    (b"off", MuteCommand.OFF), (b"false", MuteCommand.OFF), (b" 0\n", MuteCommand.OFF),
    (b"Toggle", MuteCommand.TOGGLE), (b"maybe", None), (b"", None), (b"\xff", None)])
def test_the_mute_topic_takes_on_off_true_false_1_0_and_toggle_in_any_case(payload, command):
    assert mute_command(payload) is command


def test_a_mute_command_from_the_broker_reaches_the_callback(broker, links, subscribers):
    heard: list[MuteCommand] = []
    link = links(broker, on_mute=heard.append)
    until(lambda: link.connected)
    button = subscribers(broker, "nothing/here")
    time.sleep(0.2)  # the link's subscription is made once it is connected
    for word in ("ON", "nonsense", "toggle", "0"):
        button.publish("assistant/kitchen/mute", word)
    until(lambda: len(heard) == 3)
    assert heard == [MuteCommand.ON, MuteCommand.TOGGLE, MuteCommand.OFF]


def test_a_retained_on_is_obeyed_at_connection_and_a_retained_toggle_is_not(broker, links, subscribers):
    button = subscribers(broker, "nothing/here")
    button.publish("assistant/kitchen/mute", "on", retain=True)
    heard: list[MuteCommand] = []
    links(broker, on_mute=heard.append)
    until(lambda: heard == [MuteCommand.ON])
    button.publish("assistant/kitchen/mute", "toggle", retain=True)  # delivered live, then retained
    until(lambda: len(heard) == 2)
    heard.clear()
    links(broker, on_mute=heard.append)
    time.sleep(1.0)
    assert heard == []


def _status_with(broker, links, notify):
    """An AssistantStatus as the daemon makes it: the link's mute commands handed to the running loop."""
    loop = asyncio.get_running_loop()
    status = AssistantStatus(ServiceNotifier(environ=notify.env()))
    link = links(broker, on_mute=lambda command: loop.call_soon_threadsafe(status.mute, command))
    status.use(link)
    return status, link


async def _until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s"
        await asyncio.sleep(0.02)


def test_mute_says_muted_to_systemd_and_the_broker_and_unmute_goes_back(broker, links, subscribers, tmp_path):
    from assistant.run.pipeline import State

    notify = NotifySocket(tmp_path / "notify")
    watching = subscribers(broker, "assistant/kitchen/state")
    button = subscribers(broker, "nothing/here")

    async def run() -> None:
        status, link = _status_with(broker, links, notify)
        status.microphone_changed("listening")
        status.pipeline_changed(State.IDLE)
        await _until(lambda: link.connected)
        await asyncio.sleep(0.2)
        await asyncio.to_thread(button.publish, "assistant/kitchen/mute", "on")
        await _until(lambda: status.muted)
        await asyncio.to_thread(watching.until, lambda m: m.payload == b"muted")
        await asyncio.to_thread(button.publish, "assistant/kitchen/mute", "off")
        await _until(lambda: not status.muted)
        await asyncio.to_thread(watching.until, lambda m: m.payload == b"idle" and len(watching.messages) > 1)

    try:
        asyncio.run(run())
        assert said(watching.messages) == ["idle", "muted", "idle"]
        assert [m for m in notify.during(0.2) if m.startswith("STATUS=")] == [
            "STATUS=listening", "STATUS=muted", "STATUS=listening"]
    finally:
        notify.socket.close()


def test_without_a_microphone_the_state_is_degraded_and_muted_says_both_to_systemd():
    from assistant.run.pipeline import State

    status = AssistantStatus(ServiceNotifier(environ={}))
    status.pipeline_changed(State.IDLE)
    status.microphone_changed("no microphone (no_input), retrying in 4 s")
    assert status.state == "degraded"
    status.mute(MuteCommand.TOGGLE)
    assert (status.state, status.service_status) == ("muted", "muted; no microphone (no_input), retrying in 4 s")


@pytest.fixture(scope="module")
def replayer(stages, settings):
    """Replay a fixture through the real pipeline with the daemon's status in between."""

    def replay(path: Path, status: AssistantStatus) -> Recorder:
        these = with_changes(settings, {"conversation": {"question_follow_up_s": 0.0}})
        recorder = Recorder()
        pipeline = replay_pipeline(for_a_run(stages, these), these, recorder, NullSink())
        pipeline.on_state = status.pipeline_changed
        asyncio.run(pipeline.run(status.unless_muted(as_stream(file_chunks(path)))))
        return recorder

    return replay


def test_while_muted_a_wake_word_is_not_heard_and_unmuted_it_is(replayer):
    status = AssistantStatus(ServiceNotifier(environ={}))
    status.mute(MuteCommand.ON)
    muted = replayer(FIXTURES / "wake_time.wav", status)
    status.mute(MuteCommand.OFF)
    unmuted = replayer(FIXTURES / "wake_time.wav", status)
    assert [e.name for e in muted.events if e.name in ("wake_candidate", "wake", "turn")] == []
    assert [e.outcome for e in unmuted.events if e.name == "turn"] == ["answered"]


def test_a_turn_is_published_as_listening_thinking_speaking_then_idle(broker, links, subscribers, replayer):
    watching = subscribers(broker, "assistant/kitchen/state")
    status = AssistantStatus(ServiceNotifier(environ={}))
    link = links(broker)
    until(lambda: link.connected)
    status.use(link)
    status.microphone_changed("listening")
    replayer(FIXTURES / "wake_time.wav", status)
    watching.until(lambda m: m.payload == b"idle" and len(watching.messages) > 1)
    assert said(watching.messages) == ["idle", "listening", "thinking", "speaking", "idle"]


def test_the_daemon_publishes_its_state_obeys_mute_and_says_offline_when_stopped(broker, subscribers, pulse,
                                                                                  tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    config = tmp_path / "config.toml"
    config.write_text(f'[mqtt]\nenabled = true\nurl = "{broker.url}"\nname = "kitchen"\n')
    watching = subscribers(broker, "assistant/kitchen/state")
    button = subscribers(broker, "nothing/here")
    played = with_trailing_silence(FIXTURES / "wake_time.wav", 2.0, tmp_path / "played.wav")
    try:
        with Daemon({**pulse, **notify.env()}, "--config", str(config)) as daemon:
            notify.until(lambda m: m == "STATUS=listening", timeout_s=120)
            watching.until(lambda m: m.payload == b"idle", timeout_s=10)
            button.publish("assistant/kitchen/mute", "on")
            notify.until(lambda m: m == "STATUS=muted", timeout_s=10)
            watching.until(lambda m: m.payload == b"muted")
            play_into_room(pulse, played).wait(timeout=60)
            heard_while_muted = [e["event"] for e in daemon.events_for(1.0)]
            button.publish("assistant/kitchen/mute", "toggle")
            notify.until(lambda m: m == "STATUS=listening", timeout_s=10)
            play_into_room(pulse, played).wait(timeout=60)
            turn = daemon.events_until(lambda e: e["event"] == "turn", timeout_s=60)[-1]
            status, seconds = daemon.terminate(timeout_s=2.0)
        watching.until(lambda m: m.payload == b"offline")
    finally:
        notify.socket.close()
    assert "wake" not in heard_while_muted and "wake_candidate" not in heard_while_muted
    assert turn["outcome"] == "answered" and status == 0 and seconds < 2.0
    states = said(watching.messages)
    assert states[:2] == ["idle", "muted"] and {"listening", "thinking", "speaking"} <= set(states[2:])
    assert states[-1] == "offline"


# What leaves the device

def test_a_message_is_recorded_before_it_is_sent_with_its_topic_bytes_and_turn(broker, links, subscribers, tmp_path):
    log = tmp_path / "audit.jsonl"
    on_arrival: list[list[dict]] = []
    porch = subscribers(broker, "home/porch/light")
    porch.client.on_message = lambda _c, _u, message: (on_arrival.append(read_records(log)),
                                                       porch.arrived.put(message))
    link = links(broker)
    until(lambda: link.connected)
    publication = link.publish("home/porch/light", "on", turn_id="7")
    assert publication.wait(10)
    porch.until(lambda m: True)
    request = on_arrival[0][0]  # recorded before it reached the broker (its outcome may be there by now)
    assert {k: request[k] for k in ("record", "host", "bytes", "text", "kind", "topic", "turn")} == {
        "record": "request", "host": f"127.0.0.1:{broker.port}", "bytes": 2, "text": "on", "kind": "mqtt",
        "topic": "home/porch/light", "turn": "7"}
    until(lambda: len(read_records(log)) == 2)
    outcome = read_records(log)[1]
    assert (outcome["record"], outcome["id"], outcome["outcome"]) == ("outcome", request["id"], "answered")


def test_assistant_audit_shows_the_topic_and_the_turn(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.request("broker.lan:1883", b"on", kind="mqtt", topic="home/porch/light", turn="7")
    log.request("broker.lan:1883", b"idle", kind="mqtt", topic="assistant/kitchen/state")
    log.request("api.example.com", b"{}")
    lines = [human_line(r) for r in read_records(tmp_path / "audit.jsonl")]
    assert lines[0].endswith("sent 2 bytes to broker.lan:1883 (mqtt, topic home/porch/light, turn 7): on")
    assert lines[1].endswith("sent 4 bytes to broker.lan:1883 (mqtt, topic assistant/kitchen/state): idle")
    assert lines[2].endswith("sent 2 bytes to api.example.com: {}")


def test_the_state_is_recorded_too(broker, links, subscribers, tmp_path):
    link = links(broker)
    watching = subscribers(broker, "assistant/kitchen/state")
    until(lambda: link.connected)
    link.set_state("idle")
    watching.until(lambda m: m.payload == b"idle")
    [record] = read_records(tmp_path / "audit.jsonl")
    assert (record["topic"], record["text"], record["turn"]) == ("assistant/kitchen/state", "idle", None)


def test_the_password_reaches_the_broker_and_nothing_else(private_broker, links, subscribers, tmp_path, caplog):
    (tmp_path / "password").write_text(PASSWORD + "\n")
    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path}"\n[mqtt]\nenabled = true\nurl = "{private_broker.url}"\n'
                      f'username = "speaker"\npassword_file = "password"\nname = "kitchen"\n')
    settings = load_settings(config)
    from assistant.home.mqtt import load_password

    caplog.set_level(logging.DEBUG)
    watching = subscribers(private_broker, "#", username="speaker", password=PASSWORD)
    link = links(private_broker, username="speaker", password=load_password(settings.mqtt))
    until(lambda: link.connected)
    link.set_state("idle")
    assert link.publish("home/porch/light", "on", turn_id="1").wait(10)
    watching.until(lambda m: m.topic == "home/porch/light")
    check = assistant("config", "check", str(config), "-vv")
    audit = assistant("audit", "--json", "--config", str(config))
    assert check.returncode == 0 and check.stdout.strip() == f"ok: {config}", check.stderr
    assert [json.loads(line)["topic"] for line in audit.stdout.splitlines() if '"request"' in line] == [
        "assistant/kitchen/state", "home/porch/light"]
    for seen in (check.stdout, check.stderr, audit.stdout, audit.stderr, caplog.text,
                 (tmp_path / "audit.jsonl").read_text()):
        assert PASSWORD not in seen


def test_a_wrong_password_is_one_log_line_naming_the_broker_not_the_password(private_broker, links, caplog):
    caplog.set_level(logging.WARNING, logger="assistant")
    link = links(private_broker, username="speaker", password="not it")
    time.sleep(3.5)  # the first attempt and two retries
    assert not link.connected
    [line] = [r.getMessage() for r in caplog.records]
    assert f"127.0.0.1:{private_broker.port}" in line and "refused" in line and "not it" not in line


# A broker that comes and goes

def test_a_broker_not_running_at_start_blocks_nothing_and_is_used_once_it_starts(has_mosquitto, tmp_path, links,
                                                                                 subscribers):
    broker = Broker(tmp_path)
    started = time.monotonic()
    link = links(broker)
    link.set_state("idle")
    dropped = link.publish("home/porch/light", "on")
    assert time.monotonic() - started < 1.0
    assert not dropped.wait(5) and "not connected" in dropped.detail
    broker.start()
    try:
        until(lambda: link.connected, timeout_s=15)
        assert link.publish("home/porch/light", "on").wait(10)
        records = read_records(tmp_path / "audit.jsonl")
        assert [r.get("topic") for r in records if r["record"] == "request"] == [
            "assistant/kitchen/state", "home/porch/light"]  # the dropped message was never recorded
    finally:
        broker.kill()


def test_a_broker_killed_mid_run_neither_blocks_nor_raises_a_publish(broker, links):
    link = links(broker)
    until(lambda: link.connected)
    broker.kill()
    for _ in range(3):
        started = time.monotonic()
        publication = link.publish("home/porch/light", "on", turn_id="2")
        link.set_state("thinking")
        assert time.monotonic() - started < 1.0
        assert not publication.wait(10) and publication.outcome == "failed"


def test_a_broker_that_stops_answering_blocks_no_caller(broker, links):
    link = links(broker)
    until(lambda: link.connected)
    broker.process.send_signal(signal.SIGSTOP)  # the connection stays open; nothing reads it
    try:
        started = time.monotonic()
        for number in range(100):
            link.set_state("thinking" if number % 2 else "speaking")
        publications = [link.publish("home/porch/light", "x" * 10_000, turn_id=str(n)) for n in range(20)]
        assert time.monotonic() - started < 1.0
        assert not publications[-1].wait(0.5) and not any(p.outcome == "answered" for p in publications)
    finally:
        broker.process.send_signal(signal.SIGCONT)


def test_an_outage_is_logged_once_however_many_retries_and_its_end_once(broker, links, caplog, subscribers):
    caplog.set_level(logging.WARNING, logger="assistant")
    link = links(broker)
    until(lambda: link.connected)
    link.set_state("idle")
    broker.kill()
    until(lambda: not link.connected)
    link.set_state("thinking")
    time.sleep(4.0)  # retries after 1, 2 and 4 s
    broker.start()
    until(lambda: link.connected, timeout_s=15)
    [retained] = subscribers(broker, "assistant/kitchen/state").until(lambda m: True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert "retrying in the background" in lines[0] and "connected to" in lines[1] and "again" in lines[1]
    assert retained.payload == b"thinking"  # the latest state, published again


# TLS

def test_mqtts_verifies_the_broker_against_the_ca_given(tls_broker, links, subscribers, tmp_path):
    link = links(tls_broker, tls_ca_file=str(tmp_path / "ca.pem"))
    watching = subscribers(tls_broker, "assistant/kitchen/state")
    link.set_state("idle")
    until(lambda: link.connected)
    watching.until(lambda m: m.payload == b"idle")


def test_mqtts_never_connects_to_a_broker_whose_certificate_does_not_verify(tls_broker, links, caplog):
    caplog.set_level(logging.WARNING, logger="assistant")
    link = links(tls_broker)  # the system's CAs do not know the test's own
    time.sleep(2.0)
    assert not link.connected
    [line] = [r.getMessage() for r in caplog.records]
    assert "cannot connect" in line


# Settings

def _refused(tmp_path, mqtt: str) -> list[str]:
    (tmp_path / "c.toml").write_text("[mqtt]\nenabled = true\n" + mqtt)
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "c.toml")
    return caught.value.message.splitlines()


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1:1883", "must be mqtts://HOST[:PORT] (TLS), or mqtt://HOST[:PORT]"),
    ("mqtt://", "must be mqtts://"),
    ("mqtt://127.0.0.1/topic", "must be mqtts://"),
    ("mqtt://127.0.0.1:0", "the port must be a number from 1 to 65535"),
    ("mqtt://127.0.0.1:70000", "the port must be a number from 1 to 65535"),
    ("mqtt://127.0.0.1:port", "the port must be a number from 1 to 65535"),
    ("mqtt://bad_name", "is not a host name or an IP address"),
    ("mqtt://broker.example.com", "plain MQTT only to a loopback or private address"),
    ("mqtt://8.8.8.8:1883", "plain MQTT only to a loopback or private address"),
    ("mqtts://broker.example.com:8883\\n", "holds a space or control character"),
])
def test_a_bad_broker_url_is_one_line_naming_the_key(tmp_path, url, says):
    [line] = _refused(tmp_path, f'url = "{url}"\n')
    assert line.startswith(f"{tmp_path / 'c.toml'}: [mqtt] url") and says in line


def test_a_broker_url_with_a_password_in_it_is_refused_without_echoing_it(tmp_path):
    [line] = _refused(tmp_path, 'url = "mqtt://speaker:hunter2@127.0.0.1"\n')
    assert "[mqtt] url: must not hold credentials" in line and "hunter2" not in line


@pytest.mark.parametrize("url", ["mqtt://127.0.0.1", "mqtt://192.168.1.20:1884", "mqtt://10.0.0.2",
                                 "mqtt://[fd00::2]", "mqtt://169.254.1.1", "mqtt://mosquitto",
                                 "mqtt://pi.local", "mqtt://hub.home.arpa", "mqtts://broker.example.com",
                                 "mqtts://broker.example.com:8884"])
def test_plain_mqtt_stays_on_the_local_network_and_tls_goes_anywhere(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[mqtt]\nenabled = true\nurl = "{url}"\n')
    assert load_settings(tmp_path / "c.toml").mqtt.url == url


@pytest.mark.parametrize("mqtt, says", [
    ('url = ""\n', "[mqtt] url: must be set when enabled = true"),
    ('url = "mqtt://127.0.0.1"\nname = "kitchen/den"\n', "[mqtt] name = 'kitchen/den'"),
    ('url = "mqtt://127.0.0.1"\ntopic_prefix = "home/#"\n', "[mqtt] topic_prefix = 'home/#'"),
    ('url = "mqtt://127.0.0.1"\npassword_file = "p"\n', "[mqtt] password_file: is set but username is empty"),
    ('url = "mqtt://127.0.0.1"\ntls_ca_file = "ca.pem"\n', "[mqtt] tls_ca_file: is set but url"),
])
def test_other_mqtt_settings_that_cannot_work_are_named(tmp_path, mqtt, says):
    [line] = _refused(tmp_path, mqtt)
    assert says in line


def test_a_missing_password_file_stops_config_check_naming_it(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[mqtt]\nenabled = true\nurl = "mqtt://127.0.0.1"\nusername = "u"\npassword_file = "nope"\n')
    check = assistant("config", "check", str(config))
    assert check.returncode == 78 and check.stderr.strip() == (
        f"assistant: {tmp_path / 'nope'}: no such password file (mqtt.password_file)")


def test_the_password_may_come_from_a_systemd_credential(tmp_path):
    from assistant.home.mqtt import load_password

    (tmp_path / "mqtt-password").write_text(PASSWORD + "\n")
    assert load_password(MqttSettings(), {"CREDENTIALS_DIRECTORY": str(tmp_path)}) == PASSWORD
    assert load_password(MqttSettings(), {}) is None


# Your own intents' mqtt actions

MOVIE_NIGHT = """\
language: en
intents:
  MovieNight:
    data: [{sentences: ["movie night [in the] {room}"]}]
    reply: "Movie night in the {room}."
    action: {mqtt: {topic: "home/{room}/scene", payload: "movie"}}
lists:
  room: {values: ["lounge", "bedroom"]}
"""


def movie_night(tmp_path, link):
    from test_own_intents import intents_dir

    from assistant.home.own_intents import acknowledged, load_own_intents

    own = load_own_intents(intents_dir(tmp_path, MOVIE_NIGHT))
    own.publish = acknowledged(link)
    name, slots = own.match("movie night in the lounge")
    return own.carry_out(name, slots)


def test_an_intent_publishes_its_message_and_says_its_reply_once_the_broker_has_it(broker, links, subscribers,
                                                                                 tmp_path):
    link = links(broker)
    watching = subscribers(broker, "home/#")
    until(lambda: link.connected)
    assert movie_night(tmp_path, link) == "Movie night in the lounge."
    [message] = watching.until(lambda m: True)
    assert (message.topic, message.payload) == ("home/lounge/scene", b"movie")


def test_an_intent_whose_broker_is_away_says_so_instead_of_its_reply(has_mosquitto, tmp_path, links):
    link = links(Broker(tmp_path))  # never started
    reply = movie_night(tmp_path, link)
    assert reply.startswith("Sorry, that didn't work:") and "lounge" not in reply
