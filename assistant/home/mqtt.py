"""MQTT: the assistant's status for LEDs and scripts, a mute switch, and the messages intents publish.

paho-mqtt keeps the connection in its own network thread (`loop_start`) and reconnects by
itself with backoff (1 s doubling to 60 s), so nothing here waits for the broker: the
caller only hands a message to a queue. A thread of ours takes it from there, records it
in the audit log, and only then gives it to paho, so every byte of a message is recorded
before it leaves (the connection's own packets, CONNECT with the password and SUBSCRIBE,
carry nothing of the user's and are not recorded, as HTTP headers are not for the cloud).

- Status: `PREFIX/NAME/state` holds one of STATES, retained, so the latest state wins and
  a subscriber that comes later reads it at once. Published only while connected, and
  the latest one again at each (re)connection; the broker says `offline` when the
  connection is lost (the last will), and so does the assistant when it stops.
- Mute: `PREFIX/NAME/mute` takes on/off/true/false/1/0/toggle (any case); each is handed
  to `on_mute`, in paho's thread. A retained on/off is obeyed at each connection (a switch's
  position); a retained toggle is ignored, as it would flip the assistant at every one.
- Actions (`publish`): QoS 1, so the broker acknowledges them and a reply can say a thing
  was done only once it has. A message published while the broker is away is dropped,
  not queued (a light that comes on minutes after it was asked for is worse than a reply
  that says it could not): logged, not recorded (nothing left), and its Publication says so.
"""

from __future__ import annotations

import enum
import logging
import os
import queue
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho

from assistant.config import MQTT_PORTS, PATH_MISSING, MqttSettings, path_problem
from assistant.errors import ConfigError
from assistant.understand.audit import AuditedRequest, AuditLog
from assistant.understand.secrets import SecretSource

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "mqtt-password"
"""The systemd credential the password is read from: `LoadCredential=mqtt-password:/path/to/it`."""

STATES = ("idle", "listening", "thinking", "speaking", "muted", "degraded")
"""What `PREFIX/NAME/state` says while the assistant runs."""
OFFLINE = "offline"
"""What it says once the assistant has stopped, or its connection was lost (the last will)."""

RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
ACK_WAIT_S = 30.0
"""A message the broker has not acknowledged by then is recorded as failed."""
CLOSE_WAIT_S = 0.5
"""How long closing waits for `offline` to go out, and again for paho's thread: systemd's stop is 2 s."""
_QUEUED_MAX = 256


class MuteCommand(enum.Enum):
    ON = "on"
    OFF = "off"
    TOGGLE = "toggle"


_MUTE_WORDS = {"on": MuteCommand.ON, "true": MuteCommand.ON, "1": MuteCommand.ON, "off": MuteCommand.OFF,
               "false": MuteCommand.OFF, "0": MuteCommand.OFF, "toggle": MuteCommand.TOGGLE}


def mute_command(payload: bytes) -> MuteCommand | None:
    """The command a message on the mute topic gives, or None when it is none of the words."""
    try:
        word = payload.decode("utf-8").strip().lower()
    except UnicodeDecodeError:
        return None
    return _MUTE_WORDS.get(word)


def load_password(settings: MqttSettings, environ: Mapping[str, str] = os.environ) -> str | None:
    """The password from `password_file`, else the systemd credential; None if there is none.
    Error messages name the file, never what it holds."""
    return SecretSource("password", settings.password_file, "mqtt.password_file", CREDENTIAL_NAME, "",
                        in_a_header=False).read(environ)


def tls_context(settings: MqttSettings) -> ssl.SSLContext:
    """Verification of an mqtts:// broker: its certificate against the system's CAs or tls_ca_file, and its name."""
    path = settings.tls_ca_file
    if path and (problem := path_problem(Path(path))) is not None:
        raise ConfigError(f"{path}: {'no such CA file' if problem == PATH_MISSING else problem} (mqtt.tls_ca_file)")
    try:
        return ssl.create_default_context(cafile=path or None)
    except (ssl.SSLError, ValueError) as err:
        raise ConfigError(f"{path}: not PEM CA certificates (mqtt.tls_ca_file): {err}") from None


def check_files(settings: MqttSettings) -> None:
    """What start-up reads for MQTT, read as it reads it: a ConfigError naming the file that will not do."""
    if settings.enabled:
        load_password(settings)
        if settings.tls_ca_file:
            tls_context(settings)


def assistant_name(settings: MqttSettings) -> str:
    """The NAME in the topics: the configured one, else this host's name made fit for a topic."""
    if settings.name:
        return settings.name
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "assistant"


def is_topic(topic: str) -> bool:
    """A topic a message may be published to: no wildcards, no NUL, at most 65535 bytes."""
    return 0 < len(topic.encode("utf-8")) <= 65535 and not any(c in topic for c in "+#\0")


class Publication:
    """One message handed to the link, and how it ended once it has."""

    def __init__(self, topic: str, payload: bytes, turn_id: str | None, qos: int, retain: bool) -> None:
        self.topic = topic
        self.payload = payload
        self.turn_id = turn_id
        self.qos = qos
        self.retain = retain
        self.outcome: str | None = None
        """answered (the broker acknowledged it) or failed; None while neither is known."""
        self.detail: str | None = None
        """Why it failed."""
        self._done = threading.Event()

    def wait(self, timeout_s: float) -> bool:
        """True once the broker has acknowledged it; False when it failed, or `timeout_s` passed first."""
        self._done.wait(timeout_s)
        return self.outcome == "answered"

    @property
    def ended(self) -> bool:
        return self._done.is_set()

    def _end(self, outcome: str, detail: str | None = None) -> None:
        self.outcome, self.detail = outcome, detail
        self._done.set()


# What the outbox thread is asked to do, in order.
@dataclass(frozen=True)
class _Publish:
    publication: Publication


@dataclass(frozen=True)
class _State:
    state: str


@dataclass(frozen=True)
class _Acknowledged:
    mid: int


class _Connected:
    pass


class _Disconnected:
    pass


class _Close:
    pass


class MqttLink:
    """The assistant's connection to an MQTT broker; nothing it does waits for the broker."""

    def __init__(self, settings: MqttSettings, audit: AuditLog, *, password: str | None = None,
                 on_mute: Callable[[MuteCommand], None] | None = None) -> None:
        self.settings = settings
        self.audit = audit
        self.on_mute = on_mute
        """Called with each mute command, in paho's network thread (hand it to a loop with call_soon_threadsafe)."""
        self._password = password
        parts = urllib.parse.urlsplit(settings.url)
        self.tls = parts.scheme == "mqtts"
        self.host = parts.hostname or ""
        self.port = parts.port or MQTT_PORTS[parts.scheme]
        self.address = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        """host:port, as the audit log and the log name the broker."""
        self.name = assistant_name(settings)
        self.topic = f"{settings.topic_prefix}/{self.name}"
        self.state_topic = f"{self.topic}/state"
        self.mute_topic = f"{self.topic}/mute"
        self._state: str | None = None
        """The latest state asked for, published again at each connection."""
        self._client: paho.Client | None = None
        self._outbox: queue.Queue = queue.Queue(_QUEUED_MAX)
        self._outbox_thread = threading.Thread(target=self._send_queued, name="mqtt-outbox", daemon=True)
        self._down = False
        """An outage has been logged and has not ended yet: its retries are not logged."""
        self._ever_connected = False
        self._closing = False

    def made_with(self, settings: MqttSettings, audit: AuditLog, password: str | None) -> bool:
        """True when it was made with these (a reload that changed none of them keeps it)."""
        return (self.settings, self.audit, self._password) == (settings, audit, password)

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected()

    def start(self) -> None:
        """Connect in the background. Returns at once (after loading the CA certificates for TLS,
        a few hundred ms: call it off the event loop)."""
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"assistant-{self.name}",
                             protocol=paho.MQTTv311, clean_session=True)
        if self.settings.username:
            client.username_pw_set(self.settings.username, self._password)
        elif self._password is not None:
            log.warning("MQTT: a password without a user name is not sent (set mqtt.username)")
        if self.tls:
            client.tls_set_context(tls_context(self.settings))
        client.will_set(self.state_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self._client = client
        self._outbox_thread.start()
        client.connect_async(self.host, self.port, keepalive=self.settings.keepalive_s)
        client.loop_start()  # resolving, connecting and every retry happen in paho's thread

    def publish(self, topic: str, payload: str | bytes, *, turn_id: str | None = None, qos: int = 1,
                retain: bool = False) -> Publication:
        """Send a message for an action; never waits and never raises for the broker's sake
        (a bad topic or payload is the caller's error: ValueError). It is recorded in the audit
        log with `turn_id` before it leaves; `wait` on the result to know whether it arrived."""
        if not is_topic(topic):
            raise ValueError(f"not a topic a message can be published to: {topic!r}")
        body = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("an MQTT payload must be UTF-8 text (the audit log records it as text)") from None
        publication = Publication(topic, body, None if turn_id is None else str(turn_id), qos, retain)
        if self._client is None or self._closing:
            publication._end("failed", "MQTT is not running")
        elif not self._put(_Publish(publication)):
            publication._end("failed", "too many MQTT messages are waiting to be recorded")
        return publication

    def set_state(self, state: str) -> None:
        """The assistant's state, one of STATES: published (retained) when it changes; never waits."""
        if state not in STATES:
            raise ValueError(f"not a state: {state!r}")
        if state != self._state:
            self._state = state
            self._put(_State(state))

    def close(self) -> None:
        """Say `offline`, disconnect and stop, in about a second at most whatever the broker does."""
        client, closed, self._closing = self._client, self._closing, True
        if client is None or closed:
            return
        self._put(_Close())
        self._outbox_thread.join(2 * CLOSE_WAIT_S)
        client.disconnect()
        # paho's thread may be in a connection attempt (5 s) or a backoff: it is a daemon thread, not waited for long.
        stopping = threading.Thread(target=client.loop_stop, name="mqtt-stop", daemon=True)
        stopping.start()
        stopping.join(CLOSE_WAIT_S)

    def _put(self, item: object) -> bool:
        try:
            self._outbox.put_nowait(item)
        except queue.Full:  # the audit log's disk is stuck: nothing more can be recorded anyway
            log.warning("MQTT: %d messages are waiting to be recorded in the audit log; dropped one", _QUEUED_MAX)
            return False
        return True

    # paho's network thread

    def _on_connect(self, client: paho.Client, _userdata, _flags, reason: paho.ReasonCode, _properties) -> None:
        if reason.is_failure:
            self._outage(f"the broker refused the connection: {reason}")
            return
        client.subscribe(self.mute_topic, qos=1)
        if self._down:  # the end of an outage that was logged
            log.warning("MQTT: connected to %s%s", self.address, " again" if self._ever_connected else "")
        else:
            log.info("MQTT: connected to %s", self.address)
        self._down, self._ever_connected = False, True
        self._put(_Connected())

    def _on_connect_fail(self, _client: paho.Client, _userdata) -> None:
        self._outage("cannot connect")

    def _on_disconnect(self, _client: paho.Client, _userdata, _flags, reason: paho.ReasonCode, _properties) -> None:
        if not self._closing:
            self._outage(f"the connection was lost ({reason})")
        self._put(_Disconnected())

    def _outage(self, why: str) -> None:
        """One line per outage, not one per retry."""
        if self._down:
            log.debug("MQTT broker %s: %s", self.address, why)
            return
        self._down = True
        log.warning("MQTT broker %s: %s; retrying in the background (up to every %d s)", self.address, why,
                    RECONNECT_MAX_S)

    def _on_message(self, _client: paho.Client, _userdata, message: paho.MQTTMessage) -> None:
        if message.topic != self.mute_topic:
            return
        command = mute_command(message.payload)
        if command is None:
            log.warning("MQTT: ignored %r on %s: give on, off, true, false, 1, 0 or toggle", message.payload[:40],
                        self.mute_topic)
        elif message.retain and command is MuteCommand.TOGGLE:
            log.info("MQTT: ignored a retained toggle on %s (it would flip at every connection)", self.mute_topic)
        elif self.on_mute is not None:
            try:
                self.on_mute(command)
            except Exception:  # a bug in the callback must not end paho's thread, and with it the connection
                log.exception("MQTT: the mute callback failed")

    def _on_publish(self, _client: paho.Client, _userdata, mid: int, _reason, _properties) -> None:
        self._put(_Acknowledged(mid))

    # the outbox thread: every audit write, so neither the caller nor paho's thread waits for the disk

    def _send_queued(self) -> None:
        waiting: dict[int, tuple[Publication, AuditedRequest]] = {}
        """Messages sent and not yet acknowledged, by paho's message id."""
        state_sent: str | None = None
        """The state sent on this connection: a change can arrive between paho connecting and its
        _Connected, and must not go out twice."""
        while True:
            try:
                item = self._outbox.get(timeout=1.0 if waiting else None)
            except queue.Empty:
                item = None
            now = time.monotonic()
            if isinstance(item, _Publish):
                if (sent := self._send(item.publication)) is not None:
                    waiting[sent[0]] = (item.publication, sent[1])
            elif isinstance(item, _State):
                if self.connected and item.state != state_sent:
                    self._send_state(item.state)
                    state_sent = item.state
            elif isinstance(item, _Connected):
                if (latest := self._state) is not None and latest != state_sent:
                    self._send_state(latest)  # the latest, whatever was missed while away
                    state_sent = latest
            elif isinstance(item, _Acknowledged):
                if (entry := waiting.pop(item.mid, None)) is not None:
                    self._ended(*entry, "answered")
            elif isinstance(item, _Disconnected):
                state_sent = None
                for entry in waiting.values():
                    self._ended(*entry, "failed", "the connection was lost before the broker acknowledged it")
                waiting.clear()
            elif isinstance(item, _Close):
                for entry in waiting.values():
                    self._ended(*entry, "failed", "the assistant stopped before the broker acknowledged it")
                if self.connected:
                    self._send_state(OFFLINE, wait_s=CLOSE_WAIT_S)
                return
            for mid, entry in list(waiting.items()):
                if now - entry[1].started > ACK_WAIT_S:
                    del waiting[mid]
                    self._ended(*entry, "failed", f"the broker did not acknowledge it within {ACK_WAIT_S:g} s")

    def _send(self, publication: Publication) -> tuple[int, AuditedRequest] | None:
        """Record and send an action's message: (paho's message id, its record), or None if it failed."""
        if not self.connected:
            log.warning("MQTT: not connected to %s; the message to %s was dropped", self.address, publication.topic)
            publication._end("failed", f"not connected to the MQTT broker {self.address}; nothing was sent")
            return None
        assert self._client is not None
        try:
            request = self.audit.start(self.address, publication.payload, kind="mqtt", topic=publication.topic,
                                       turn=publication.turn_id)
        except OSError as err:
            log.warning("MQTT: cannot write the audit log %s: %s; the message to %s was not sent", self.audit.path,
                        err, publication.topic)
            publication._end("failed", f"cannot write the audit log: {err}; nothing was sent")
            return None
        info = self._client.publish(publication.topic, publication.payload, qos=publication.qos,
                                    retain=publication.retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            self._ended(publication, request, "failed", paho.error_string(info.rc))
            return None
        return info.mid, request

    def _ended(self, publication: Publication, request: AuditedRequest, outcome: str,
               detail: str | None = None) -> None:
        request.end(outcome, detail=detail)
        publication._end(outcome, detail)

    def _send_state(self, state: str, wait_s: float = 0.0) -> None:
        """Record and send a status message: QoS 0 (no acknowledgement, so no outcome record), retained."""
        assert self._client is not None
        try:
            self.audit.request(self.address, state.encode(), kind="mqtt", topic=self.state_topic)
        except OSError as err:
            log.warning("MQTT: cannot write the audit log %s: %s; the state was not sent", self.audit.path, err)
            return
        info = self._client.publish(self.state_topic, state, qos=0, retain=True)
        if wait_s and info.rc == paho.MQTT_ERR_SUCCESS:
            try:
                info.wait_for_publish(wait_s)
            except (RuntimeError, ValueError):  # the connection went meanwhile
                pass
