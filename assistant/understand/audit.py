"""The audit log: every request that leaves the device, recorded before it is sent.

One JSON object per line in the state directory, appended and never rewritten: a
`request` record (when, which host, how many bytes, the exact body) before the request
goes out, then an `outcome` record with the same `id` once it is known. The
Authorization header and passwords are never recorded. `assistant audit` prints it.

A request to anything but the cloud says what it went to: `kind` (`mqtt`), and for MQTT
the `topic`; `turn` names the turn that caused it (null for the assistant's own status).
A record without `kind` is a cloud request, as every record was before there were others.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from assistant.errors import AuditLogError

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"

_REQUIRED = {
    "request": {"id": str, "time": str, "host": str, "bytes": int, "text": str},
    "outcome": {"id": str, "time": str, "host": str, "outcome": str},
}


def audit_path(state_dir: Path) -> Path:
    return state_dir / AUDIT_FILE


@dataclass(frozen=True)
class AuditLog:
    """Appends records to one file; each record is one write, so a crash never leaves half a line."""

    path: Path

    def request(self, host: str, body: bytes, *, kind: str | None = None, topic: str | None = None,
                turn: str | None = None) -> str:
        """Record a request about to be sent; returns its id. Raises OSError when it cannot be
        recorded, and then the request must not be sent. `kind` (with `topic` and `turn`) for
        anything but the cloud."""
        record_id = uuid.uuid4().hex[:12]
        record = {"record": "request", "id": record_id, "time": _now(), "host": host,
                  "bytes": len(body), "text": body.decode("utf-8")}
        if kind is not None:
            record.update(kind=kind, **({"topic": topic} if topic is not None else {}), turn=turn)
        self._append(record)
        return record_id

    def start(self, host: str, body: bytes, **kind: str | None) -> AuditedRequest:
        """A request recorded before it is sent, to be ended with its outcome. Raises OSError
        when it cannot be recorded, and then nothing may be sent (`refusal` says so)."""
        return AuditedRequest(self, host, self.request(host, body, **kind), time.monotonic())

    def refusal(self, err: OSError) -> str:
        return f"cannot write the audit log {self.path}: {err}; nothing was sent"

    def outcome(self, record_id: str, host: str, outcome: str, *, status: int | None = None,
                detail: str | None = None, ms: float | None = None) -> None:
        """Record how a request ended: `answered`, `failed` or `stopped`."""
        self._append({"record": "outcome", "id": record_id, "time": _now(), "host": host,
                      "outcome": outcome, "status": status, "detail": detail, "ms": ms})

    def _append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_APPEND makes the single write land whole at the end, whoever else appends.
        fd = _open_unlinked(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            if os.write(fd, line) != len(line):
                raise OSError(f"{self.path}: short write (disk full?)")
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class AuditedRequest:
    """One recorded request on its way: `end` adds its outcome, once."""

    log: AuditLog
    host: str
    id: str
    started: float
    ended: bool = False

    def end(self, outcome: str, *, status: int | None = None, detail: str | None = None) -> None:
        """Record how it ended (`answered`, `failed` or `stopped`) and how long it took. The request
        itself was recorded: an outcome that cannot be is a warning, not a failure."""
        if self.ended:
            return
        self.ended = True
        try:
            self.log.outcome(self.id, self.host, outcome, status=status, detail=detail,
                             ms=round((time.monotonic() - self.started) * 1000, 1))
        except OSError as err:
            log.warning("cannot add the outcome to the audit log %s: %s", self.log.path, err)


def _open_unlinked(path: Path, flags: int) -> int:
    """The file at `path` opened, never through a symbolic link (one placed in the state
    directory would send the log elsewhere)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise OSError("it is a symbolic link, which is not followed: remove it") from None
        raise


def read_records(path: Path) -> list[dict[str, Any]] | None:
    """Every record in the log, checked; None when there is no log yet."""
    try:
        with os.fdopen(_open_unlinked(path, os.O_RDONLY), encoding="utf-8") as records:
            # Split on newlines only: a record's text may hold U+2028, which splitlines() would cut.
            lines = records.read().split("\n")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise AuditLogError(f"{path}: cannot read the audit log: {err}") from None
    return [_checked(line, path, number) for number, line in enumerate(lines, 1) if line.strip()]


def _checked(line: str, path: Path, number: int) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise AuditLogError(f"{path}:{number}: not a JSON record ({err})") from None
    kind = record.get("record") if isinstance(record, dict) else None
    fields = _REQUIRED.get(kind)
    if fields is None:
        raise AuditLogError(f"{path}:{number}: not an audit record (\"record\" must be request or outcome)")
    for name, kind_of in fields.items():
        if not isinstance(record.get(name), kind_of):
            raise AuditLogError(f"{path}:{number}: {kind} record without a valid {name!r}")
    return record


def human_line(record: dict[str, Any]) -> str:
    """One readable line per record."""
    when = record["time"][:19].replace("T", " ")
    if record["record"] == "request":
        return f"{when}  sent {record['bytes']} bytes to {record['host']}{_what_for(record)}: {record['text']}"
    status = f" (HTTP {record['status']})" if record.get("status") is not None else ""
    took = f" in {record['ms']:.0f} ms" if isinstance(record.get("ms"), (int, float)) else ""
    detail = f": {record['detail']}" if record.get("detail") else ""
    return f"{when}  {record['outcome']}{status} from {record['host']}{took}{detail}"


def _what_for(record: dict[str, Any]) -> str:
    """" (mqtt, topic T, turn N)" for a request that is not the cloud's; "" for one that is."""
    if record.get("kind") is None:
        return ""
    about = [str(record["kind"])]
    about += [f"topic {record['topic']}"] if record.get("topic") is not None else []
    about += [f"turn {record['turn']}"] if record.get("turn") is not None else []
    return f" ({', '.join(about)})"


def _now() -> str:
    """Local time with its UTC offset, to the millisecond."""
    return datetime.now().astimezone().isoformat(timespec="milliseconds")
