"""The daemon as a systemd service: the notify protocol, the watchdog and journald-friendly logs.

systemd's notify protocol is one datagram per message on `$NOTIFY_SOCKET` (sd_notify(3));
it needs no library. Outside systemd (no socket) every call does nothing, so the same
daemon runs in a terminal. The watchdog is fed from the input loop's own progress: a
stalled loop stops feeding it and systemd restarts the service.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable

log = logging.getLogger(__name__)


class ServiceNotifier:
    """Tells systemd how the service is doing; a no-op when not run by systemd."""

    def __init__(self, environ: dict[str, str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_s = _watchdog_interval(env)
        self.clock = clock
        self._fed_at = -float("inf")
        self._status: str | None = None
        self._doing = ""
        self._problems: dict[str, str] = {}
        self._socket: socket.socket | None = None

    @property
    def active(self) -> bool:
        return self.address is not None

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={status}")
        self._status = status

    def status(self, text: str) -> None:
        """What the service is doing, for `systemctl status`; sent only when it changes."""
        self._doing = text
        shown = text + "".join(f"; degraded: {part}: {problem}" for part, problem in self._problems.items())
        if shown != self._status:
            self._status = shown
            self._send(f"STATUS={shown}")

    def degraded(self, part: str, problem: str | None) -> None:
        """A part of the service that cannot work now ("Home Assistant", and why), shown after
        what it is doing; None: it works again. Safe from any thread (one datagram)."""
        if problem is None:
            self._problems.pop(part, None)
        else:
            self._problems[part] = problem
        self.status(self._doing)

    def alive(self) -> None:
        """The loop made progress: feed the watchdog (at most a few times per interval)."""
        if self.watchdog_s is None:
            return
        now = self.clock()
        if now - self._fed_at >= self.watchdog_s / 4:
            self._fed_at = now
            self._send("WATCHDOG=1")

    def reloading(self) -> None:
        self._send(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def reloaded(self) -> None:
        self._send("READY=1")

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=stopping")

    def _send(self, message: str) -> None:
        if self.address is None:
            return
        try:
            if self._socket is None:
                # Never blocking: a notify queue that nobody reads (10 datagrams by default) must not
                # stop the input loop; a message that does not fit is dropped.
                self._socket = socket.socket(socket.AF_UNIX,
                                             socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            self._socket.sendto(message.encode(), self.address)
        except OSError as err:  # systemd gone or the socket full: the service goes on regardless
            log.debug("notify socket: %s", err)

    async def feeding(self, chunks: AsyncIterator) -> AsyncIterator:
        """Pass the input through, feeding the watchdog for each piece the loop takes."""
        async for chunk in chunks:
            self.alive()
            yield chunk


def _socket_address(value: str) -> str | bytes | None:
    if not value:
        return None
    if value.startswith("@"):  # an abstract socket
        return b"\0" + value[1:].encode()
    return value if value.startswith("/") else None


def _watchdog_interval(env: dict[str, str] | os._Environ) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1_000_000


_JOURNAL_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """`<4>wake: ...`: journald reads the priority from the prefix and adds its own time."""

    def format(self, record: logging.LogRecord) -> str:
        priority = _JOURNAL_PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{priority}>{line}" for line in super().format(record).splitlines())


def under_journald() -> bool:
    """stderr is connected to the journal (systemd sets $JOURNAL_STREAM to its device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    if ":" not in stream:
        return False
    try:
        stat = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{stat.st_dev}:{stat.st_ino}"
