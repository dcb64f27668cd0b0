"""SIGTERM and SIGINT, handled one way for every command.

The event loop's own signal handlers put each signal in a queue, so any await notices it
at once: a wait on the replay clock, or a model call in a worker thread. The work in
progress is then cancelled and winds up: a turn as at a wake word (the reply cut, its
worker's current step of a second or less waited for); a call that may take longer (models
loading, a 30 s window being decoded) runs `in_daemon_thread` and is left to the exit.
The daemon reads the queue to stop (or, on SIGHUP, to reload) and exits 0; `replay` and
`transcribe` run `until_stopped` and exit 128 plus the signal's number (143 for SIGTERM,
130 for SIGINT), as a shell reports a process that a signal ended.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, TypeVar

T = TypeVar("T")
M = TypeVar("M")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_workers: set[threading.Thread] = set()
"""The threads `in_daemon_thread` started that are still running."""


class Stopped(BaseException):
    """A stop signal ended the command early; like KeyboardInterrupt, not an error."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


def signal_queue(meanings: dict[signal.Signals, M]) -> asyncio.Queue[M]:
    """A queue that gets each signal's meaning as the signal arrives (for the running loop's lifetime)."""
    queue: asyncio.Queue[M] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for signum, meaning in meanings.items():
        loop.add_signal_handler(signum, queue.put_nowait, meaning)
    return queue


async def until_stopped(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` to its end or until SIGTERM or SIGINT; then cancel it, let it wind up, and raise Stopped."""
    signals = signal_queue({signum: signum for signum in STOP_SIGNALS})
    running = asyncio.ensure_future(work)
    signalled = asyncio.ensure_future(signals.get())
    await asyncio.wait([running, signalled], return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        signalled.cancel()
        return running.result()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    raise Stopped(signalled.result())


def raise_stopped_on_sigterm() -> None:
    """Before an event loop takes the signals over (imports, file checks): SIGTERM raises
    Stopped, as SIGINT raises KeyboardInterrupt."""
    signal.signal(signal.SIGTERM, _raise_stopped)


def _raise_stopped(signum: int, _frame) -> None:
    raise Stopped(signum)


def in_daemon_thread(function: Callable[..., T], *args) -> asyncio.Future[T]:
    """Run a slow blocking call (loading models, a model call that cannot be interrupted) in a
    thread that does not hold up the process's exit, unlike the event loop's executor, which
    is waited for. Cancelling the future leaves the call running, unwatched."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def run() -> None:
        try:
            result, error = function(*args), None
        except BaseException as err:  # handed to the awaiting task, raised there
            result, error = None, err
        _workers.discard(threading.current_thread())
        try:
            loop.call_soon_threadsafe(_settle, future, result, error)
        except RuntimeError:  # the loop has closed: nobody waits for this any more
            pass

    thread = threading.Thread(target=run, name=getattr(function, "__name__", "worker"), daemon=True)
    _workers.add(thread)
    thread.start()
    return future


async def stream_in_daemon_thread(items: Iterable[T]) -> AsyncIterator[T]:
    """Iterate `items` in one daemon thread (one thread, so one malloc arena however long it
    runs), handing each item to the event loop as it comes; a stop does not wait for it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    ended = object()

    def produce() -> None:
        for item in items:
            loop.call_soon_threadsafe(queue.put_nowait, item)

    produced = in_daemon_thread(produce)
    produced.add_done_callback(lambda _: queue.put_nowait(ended))  # after the items: one loop, in order
    while (item := await queue.get()) is not ended:
        yield item
    produced.result()  # the producer's error, if it failed


def exit_status(status: int) -> int:
    """`status` to exit with; but exit with it at once when a call that `in_daemon_thread` started
    still runs (a model loading or decoding that a stop left behind): tearing the interpreter
    and the native libraries down under that call crashes the process (SIGSEGV, std::terminate).
    At once too after a stop signal: that teardown alone took 0.5 s, and Ctrl-C should end
    push-to-talk within a second."""
    if _workers or status in {128 + signum for signum in STOP_SIGNALS}:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _settle(future: asyncio.Future, result, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
