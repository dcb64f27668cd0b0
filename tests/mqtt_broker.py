"""A real MQTT broker for tests: Debian's mosquitto on a loopback port of its own, and a real
subscriber (paho) that records what arrives. scripts/test installs mosquitto as root."""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as paho


def mosquitto() -> str | None:
    """The broker's program, if installed (in /usr/sbin, which a user's PATH may not hold)."""
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    return found if os.access(found, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def certificates(folder: Path) -> Path:
    """A CA of our own (folder/ca.pem) and a certificate it signed for localhost and 127.0.0.1
    (folder/server.pem, server.key), made with Debian's openssl."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=folder)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (folder / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    for name in ("ca.key", "server.key"):  # as root mosquitto reads them; otherwise it would be another user
        (folder / name).chmod(0o644)
    return folder / "ca.pem"


class Broker:
    """mosquitto listening on 127.0.0.1 only; anonymous, or with `users` ({name: password});
    with `tls`, TLS only, with the certificates `certificates()` made in `folder`.
    Not started until `start()`; a test may kill it and start it again on the same port."""

    def __init__(self, folder: Path, users: dict[str, str] | None = None, tls: bool = False) -> None:
        self.folder = folder
        self.port = free_port()
        self.tls = tls
        lines = [f"listener {self.port} 127.0.0.1", "persistence false"]
        if tls:
            lines += [f"cafile {folder / 'ca.pem'}", f"certfile {folder / 'server.pem'}",
                      f"keyfile {folder / 'server.key'}"]
        if os.geteuid() == 0:  # as root it would drop to the user mosquitto, who cannot read a test's files
            lines.append("user root")
        if users:
            passwords = folder / "passwords"
            for number, (name, password) in enumerate(users.items()):
                subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if number == 0 else []), str(passwords), name,
                                password], check=True, capture_output=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")
        self.log = folder / "mosquitto.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtts://localhost:{self.port}" if self.tls else f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> Broker:
        program = mosquitto()
        assert program is not None
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([program, "-c", str(self.config)], stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"mosquitto exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"mosquitto did not listen within {timeout_s} s: {self.log.read_text()}")

    def kill(self) -> None:
        """Gone at once, as a crash or a pulled cable."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class Subscriber:
    """A real MQTT client subscribed to `topic`, keeping each message that arrives."""

    def __init__(self, broker: Broker, topic: str = "#", username: str | None = None,
                 password: str | None = None) -> None:
        self.arrived: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.messages: list[paho.MQTTMessage] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        if username:
            self.client.username_pw_set(username, password)
        if broker.tls:
            self.client.tls_set(ca_certs=str(broker.folder / "ca.pem"))
        subscribed = queue.Queue()
        self.client.on_message = lambda _c, _u, message: self.arrived.put(message)
        self.client.on_subscribe = lambda *_args: subscribed.put(True)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.client.subscribe(topic, qos=1)
        subscribed.get(timeout=10)

    def until(self, done, timeout_s: float = 10.0) -> list[paho.MQTTMessage]:
        """Messages until `done(message)` is true for one; all of them so far."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.messages.append(self.arrived.get(timeout=max(deadline - time.monotonic(), 0.0)))
            except queue.Empty:
                seen = [(m.topic, m.payload) for m in self.messages]
                raise AssertionError(f"no such message within {timeout_s} s; got {seen}") from None
            if done(self.messages[-1]):
                return self.messages

    def during(self, seconds: float) -> list[paho.MQTTMessage]:
        """Every message that arrives within the next `seconds`."""
        try:
            self.until(lambda _m: False, seconds)
        except AssertionError:
            pass
        return self.messages

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
