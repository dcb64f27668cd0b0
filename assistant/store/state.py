"""The state directory: one owner at a time, no symbolic links followed, and a database that
degrades instead of stopping the assistant.

A process that keeps timers and lists holds `lock` in the state directory (flock, with its
PID inside) for as long as it runs; a second one is refused, naming the first. The
database is SQLite in WAL mode with a busy timeout. A damaged one is moved aside with a
timestamp, never deleted, and what can still be read from it goes into a fresh one. When
the database cannot be written at all (a read-only state directory, a symbolic link in its
place), the assistant runs on a copy in memory that refuses every change, so each change is
answered with why it was not saved; a write that fails later (a full disk) is answered the
same way. Every failure is reported once to `on_problem` (the service's status).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from assistant.errors import StateBusyError, StateDirError

log = logging.getLogger(__name__)

LOCK_FILE = "lock"
BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another connection's (a tool's) before failing."""

_WHY = {
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_READONLY: "the state directory is read-only",
    sqlite3.SQLITE_CORRUPT: "the database is damaged",
    sqlite3.SQLITE_NOTADB: "the database is damaged",
    sqlite3.SQLITE_BUSY: "another program is writing the database",
    sqlite3.SQLITE_IOERR: "the disk failed",
    sqlite3.SQLITE_CANTOPEN: "the database cannot be opened",
}
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def why_not(err: sqlite3.Error) -> str:
    """Why a change was not saved, in words a reply can say ("the disk is full")."""
    return _WHY.get(getattr(err, "sqlite_errorcode", 0) & 0xFF, str(err).rstrip("."))


@contextlib.contextmanager
def owning(state_dir: Path) -> Iterator[None]:
    """This process holds the state directory while inside; StateBusyError when another does."""
    path = state_dir / LOCK_FILE
    fd = _lock_file(path)
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StateBusyError(f"{path}: another assistant (PID {holder}) is using {state_dir}; "
                                 "stop it first, or give this one its own state_dir") from None
        _write_pid(fd)
        yield
    finally:
        os.close(fd)


def _lock_file(path: Path) -> int | None:
    """The lock file, open; None when the state directory is read-only (nothing can be
    written there, so there is nothing to guard)."""
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise StateDirError(f"{path} is a symbolic link, which the assistant does not follow: "
                                "remove it") from None
        if err.errno not in (errno.EROFS, errno.EACCES, errno.ENOSPC, errno.EDQUOT):
            raise StateDirError(f"{path}: cannot lock the state directory: {err.strerror}") from None
    try:
        return os.open(path, os.O_RDONLY | flags)
    except OSError:
        log.warning("%s: cannot lock the state directory (%s): nothing will be saved there", path.parent,
                    "read-only" if _read_only(path.parent) else "no space")
        return None


def _write_pid(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:  # the flock is what guards; the PID only names the holder
        pass


class StateConnection(sqlite3.Connection):
    """A connection that reports whether its writes fail: `problem` is why they do now (None:
    they work), and `on_problem` hears each change of it. A write is a `with db:` block."""

    path: Path | None = None
    problem: str | None = None
    on_problem: Callable[[str | None], None] | None = None
    refusing: str | None = None
    """Why every change is refused (a copy in memory of a database that cannot be written)."""

    def __exit__(self, kind, err, traceback):
        try:
            handled = super().__exit__(kind, err, traceback)
        except sqlite3.Error as failed:
            self.report(self.why_not(failed))
            raise
        if isinstance(err, sqlite3.Error):
            self.report(self.why_not(err))
        elif kind is None:
            self.report(None)
        return handled

    def why_not(self, err: sqlite3.Error) -> str:
        return self.refusing or why_not(err)

    def report(self, problem: str | None) -> None:
        if problem == self.problem:
            return
        self.problem = problem
        if problem is not None:
            log.error("%s: cannot save timers and lists: %s", self.path, problem)
        if self.on_problem is not None:
            self.on_problem(problem)


def open_database(path: Path | str, make_tables: Callable[[sqlite3.Connection], None]) -> StateConnection:
    """The database at `path` with its tables made, ready to use whatever state it is in
    (":memory:": this process's own)."""
    if str(path) != ":memory:":
        return _on_disk(Path(path), make_tables)
    db = _connect(":memory:")
    db.execute("PRAGMA journal_mode=MEMORY")
    make_tables(db)
    return db


def _on_disk(path: Path, make_tables: Callable[[sqlite3.Connection], None]) -> StateConnection:
    # The state directory is the assistant's own (mode 0700): a link there is a mistake or an attack.
    if path.is_symlink():
        return _read_only_copy(path, f"{path.name} is a symbolic link, which is not followed; remove it",
                               make_tables)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = _opened(path)
        make_tables(db)
        return db
    except sqlite3.DatabaseError as err:
        if isinstance(err, _Damaged) or err.sqlite_errorcode & 0xFF in _DAMAGED:
            return _recovered(path, make_tables)
        return _read_only_copy(path, _why_unwritable(path, err), make_tables)
    except OSError as err:
        return _read_only_copy(path, err.strerror or str(err), make_tables)


class _Damaged(sqlite3.DatabaseError):
    """What a quick check found wrong."""


def _connect(path: Path | str) -> StateConnection:
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, factory=StateConnection,
                         timeout=BUSY_TIMEOUT_MS / 1000)
    db.path = None if str(path) == ":memory:" else Path(path)
    return db


def _opened(path: Path) -> StateConnection:
    """The database at `path` in WAL mode, checked page by page; raises what is wrong with it."""
    db = _connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        found = [line for (line,) in db.execute("PRAGMA quick_check")]
        if found != ["ok"]:
            raise _Damaged("; ".join(found[:3]))
    except BaseException:
        db.close()
        raise
    return db


def _why_unwritable(path: Path, err: sqlite3.Error) -> str:
    return "the state directory is read-only" if _read_only(path.parent) else why_not(err)


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _recovered(path: Path, make_tables: Callable[[sqlite3.Connection], None]) -> StateConnection:
    """A fresh database at `path` with what can be read from the damaged one, which is moved aside."""
    moved = _aside(path)
    try:
        for suffix in ("", "-wal", "-shm"):  # the journal goes with its database
            if os.path.lexists(f"{path}{suffix}"):
                os.rename(f"{path}{suffix}", f"{moved}{suffix}")
        db = _opened(path)
        rows, lost = _copy_readable(moved, db)
        make_tables(db)
    except (OSError, sqlite3.Error) as err:
        return _read_only_copy(path, f"the database is damaged and cannot be replaced ({err})", make_tables,
                               source=moved if os.path.lexists(moved) else path)
    cut = f"; damage cut short {', '.join(lost)}" if lost else ""
    log.error("%s was damaged: moved to %s; %d rows read back into a fresh one%s", path, moved, rows, cut)
    return db


def _aside(path: Path) -> Path:
    """A name beside `path` for its damaged copy, with the time, that no earlier copy has."""
    stamped = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
    moved, count = stamped, 1
    while os.path.lexists(moved):
        count += 1
        moved = stamped.with_name(f"{stamped.name}-{count}")
    return moved


def _read_only_copy(path: Path, problem: str, make_tables: Callable[[sqlite3.Connection], None],
                    source: Path | None = None) -> StateConnection:
    """What can be read at `source` (default `path`), in memory, refusing every change: timers
    still ring, and each change is answered with `problem`."""
    db = _connect(":memory:")
    db.path = path
    source = source or path
    if not source.is_symlink():
        _copy_readable(source, db)
    make_tables(db)
    db.execute("PRAGMA query_only=ON")
    db.refusing = problem
    db.report(problem)
    return db


def _copy_readable(source: Path, into: sqlite3.Connection) -> tuple[int, list[str]]:
    """Copy every table and row that can still be read from `source` into `into`: how many rows,
    and the tables that damage cut short."""
    for old in _readers(source):
        with contextlib.closing(old):
            try:
                (version,) = old.execute("PRAGMA user_version").fetchone()
                tables = old.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                     "AND name NOT LIKE 'sqlite_%'").fetchall()
            except sqlite3.Error:
                continue
            rows, lost = 0, []
            for name, sql in tables:
                try:
                    into.execute(sql)
                except sqlite3.Error:  # a damaged schema entry: its table is lost
                    lost.append(name)
                    continue
                copied, whole = _copy_rows(old, into, name)
                rows += copied
                lost += [] if whole else [name]
            into.execute(f"PRAGMA user_version = {int(version)}")
            return rows, lost
    return 0, []


def _readers(source: Path) -> Iterator[sqlite3.Connection]:
    """Read-only connections to `source`: with its WAL journal, then (a read-only directory) the file alone."""
    for options in ("mode=ro", "mode=ro&immutable=1"):
        try:
            old = sqlite3.connect(f"file:{source}?{options}", uri=True)
            old.execute("PRAGMA writable_schema=ON")  # a schema naming pages cut off is still read
        except sqlite3.Error:
            continue
        yield old


def _copy_rows(old: sqlite3.Connection, into: sqlite3.Connection, table: str) -> tuple[int, bool]:
    """The rows of `table` up to the first damaged page: how many, and whether that was all."""
    copied = 0
    try:
        for row in old.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
            into.execute(f'INSERT INTO "{table}" VALUES ({", ".join("?" * len(row))})', row)
            copied += 1
    except sqlite3.DatabaseError:
        return copied, False
    return copied, True
