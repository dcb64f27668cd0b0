"""The state directory: a full disk, a read-only one, a damaged database, two processes on one
directory and a symbolic link placed in it. The assistant keeps going, says why in words, and
never follows a link. Real file systems: a small tmpfs filled to the brim, one remounted read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import FIXTURES
from test_cli import assert_one_line_error, run

from assistant.run.daemon import show_state_problems
from assistant.run.service import ServiceNotifier
from assistant.store.lists import SHOPPING, ListStore
from assistant.store.reminders import TIMER, ReminderStore
from assistant.understand.audit import AuditLog
from assistant.understand.skills import SkillRequest
from bench.live import Daemon, NotifySocket

PAGE = 4096
NOW = datetime(2025, 3, 1, 9, 0).astimezone()


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "1m"):
    """A fresh tmpfs mounted at `folder` for the test, unmounted after it."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write into `folder` until its file system is full; the file that filled it."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as out:
        while True:
            out.write(bytes(PAGE))
            out.flush()
    return filler


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def with_timers(path: Path, *names: str) -> None:
    """A real reminders database at `path` holding these timers and a shopping list."""
    store = ReminderStore(path)
    for minutes, name in enumerate(names, 1):
        store.add_timer(NOW, minutes * 60, name)
    lists = ListStore(store.db)
    for item in ("milk", "eggs", "bread"):
        lists.add(SHOPPING, item)
    store.close()


def said_to(router, store: ReminderStore, text: str) -> str:
    """The skill's reply to `text`, with `store` as the reminders."""
    reply = router.whole_reply(router.route(text), SkillRequest(reminders=store, now=NOW))
    assert reply is not None, text
    return reply


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def notify(tmp_path):
    socket = NotifySocket(tmp_path / "notify")
    yield socket
    socket.close()


def test_a_full_disk_is_answered_in_words_shown_as_degraded_and_mended_by_space(tmp_path, replay, notify):
    with tmpfs(tmp_path / "state") as state:
        store = ReminderStore.in_state_dir(state)
        notifier = ServiceNotifier(environ=notify.env())
        notifier.status("listening")
        show_state_problems(store, notifier)
        filler = fill(state)
        full = replay(FIXTURES / "wake_timer_whole.wav", reminders=store)
        filler.unlink()
        freed = replay(FIXTURES / "wake_timer_hesitant.wav", reminders=store)
        pending = store.pending(TIMER)
        store.close()
    assert [r.text for r in full.named("reply")] == ["I couldn't save that timer: the disk is full."]
    assert [t.outcome for t in full.named("turn")] == ["answered"]
    assert [r.text for r in freed.named("reply")] == ["Timer set for 5 minutes."]
    assert [t.duration_s for t in pending] == [300]
    assert notify.during(0.2) == ["STATUS=listening", "STATUS=listening; degraded: saving: the disk is full",
                                  "STATUS=listening"]


def test_a_read_only_state_directory_keeps_its_timers_and_says_why_nothing_new_is_saved(tmp_path, router):
    with tmpfs(tmp_path / "state") as state:
        with_timers(state / "reminders.sqlite3", "pasta")
        remount_read_only(state)
        store = ReminderStore.in_state_dir(state)
        reply = said_to(router, store, "set a timer for 5 minutes")
        kept = [t.name for t in store.pending(TIMER)]
        problem = store.db.problem
        store.close()
    assert reply == "I couldn't save that timer: the state directory is read-only."
    assert kept == ["pasta"]
    assert problem == "the state directory is read-only"


def _damaged_aside(state: Path) -> Path:
    [aside] = [p for p in state.iterdir() if ".damaged-" in p.name and not p.name.endswith(("-wal", "-shm"))]
    return aside


def test_damaged_pages_are_moved_aside_and_what_can_be_read_comes_back(tmp_path, caplog):
    path = tmp_path / "reminders.sqlite3"
    with_timers(path, "pasta", "eggs", "tea")
    with open(path, "r+b") as db:  # garbage over every page after the timers' (the lists')
        db.seek(2 * PAGE)
        db.write(os.urandom(path.stat().st_size - 2 * PAGE))
    damaged = digest(path)
    with caplog.at_level(logging.ERROR, logger="assistant.store.state"):
        store = ReminderStore(path)
    aside = _damaged_aside(tmp_path)
    assert [t.name for t in store.pending(TIMER)] == ["pasta", "eggs", "tea"]
    assert ListStore(store.db).items(SHOPPING) == []
    assert digest(aside) == damaged, "the damaged database is kept as it was"
    assert str(aside) in caplog.text and "damage cut short list_items" in caplog.text
    store.add_timer(NOW, 60, "rice")  # the fresh database takes changes
    assert store.db.problem is None


def test_a_truncated_database_is_moved_aside_and_what_is_left_comes_back(tmp_path, caplog):
    path = tmp_path / "reminders.sqlite3"
    with_timers(path, "pasta", "eggs")
    os.truncate(path, 2 * PAGE)
    with caplog.at_level(logging.ERROR, logger="assistant.store.state"):
        store = ReminderStore(path)
    aside = _damaged_aside(tmp_path)
    assert [t.name for t in store.pending(TIMER)] == ["pasta", "eggs"]
    assert aside.stat().st_size == 2 * PAGE
    assert f"moved to {aside}" in caplog.text


def test_a_file_that_is_no_database_is_kept_aside_and_a_fresh_one_starts(tmp_path):
    path = tmp_path / "reminders.sqlite3"
    path.write_bytes(b"not a database\n" * 100)
    store = ReminderStore(path)
    assert store.pending(TIMER) == [] and store.db.problem is None
    assert _damaged_aside(tmp_path).read_bytes() == b"not a database\n" * 100


def test_a_database_that_is_a_symbolic_link_is_not_followed(tmp_path, router):
    elsewhere = tmp_path / "elsewhere.sqlite3"
    with_timers(elsewhere, "pasta")
    before = digest(elsewhere)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "reminders.sqlite3").symlink_to(elsewhere)
    store = ReminderStore.in_state_dir(tmp_path / "state")
    assert store.pending(TIMER) == []
    assert said_to(router, store, "set a timer for 5 minutes") == (
        "I couldn't save that timer: reminders.sqlite3 is a symbolic link, which is not followed; remove it.")
    store.close()
    assert digest(elsewhere) == before


def test_an_audit_log_that_is_a_symbolic_link_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("kept\n")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "audit.jsonl").symlink_to(target)
    with pytest.raises(OSError, match="symbolic link"):
        AuditLog(tmp_path / "state" / "audit.jsonl").request("api.example.com", b"what is the weather")
    assert target.read_text() == "kept\n"


def _holder(lock: Path, timeout_s: float) -> str:
    """The PID written in the lock file, once there is one."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if lock.exists() and (pid := lock.read_text().strip()):
            return pid
        time.sleep(0.1)
    raise AssertionError(f"nobody took {lock}")


def test_a_second_daemon_on_the_same_state_directory_exits_75_naming_the_first(tmp_path):
    state = tmp_path / "state"
    env = {**os.environ, "PULSE_SERVER": f"unix:{tmp_path}/no-such-server", "STATE_DIRECTORY": str(state),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    with Daemon(env) as first:
        holder = _holder(state / "lock", timeout_s=60)
        second = run("daemon", env=env)
        first.terminate(timeout_s=5)
    assert holder == str(first.process.pid)
    assert_one_line_error(second, 75, f"PID {holder}", str(state))
