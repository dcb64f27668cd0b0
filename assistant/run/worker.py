"""Blocking model calls off the event loop, in ways a cancelled turn can end.

A cancelled `await` returns at once in asyncio, but the thread behind it goes on. These
helpers make cancelling wait for the thread's current step (one token, one sentence of
synthesis, one recognition) so no worker outlives the turn that started it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from assistant.run import memory
from assistant.run.stopping import in_daemon_thread

T = TypeVar("T")

# One long-lived thread for the steps (recognition, routing, synthesis): spread over the
# default executor's threads, each thread's malloc arena kept its own copy of piper's
# large buffers after they were freed. A turn's steps run one after another anyway.
_STEPS = ThreadPoolExecutor(1, thread_name_prefix="stage")
# One thread for the pipeline's own reads and writes of the reminder store, in order, so
# SQLite never runs on the event loop nor waits behind a turn's step.
_STORE = ThreadPoolExecutor(1, thread_name_prefix="store")


def release_memory() -> None:
    """Give what the turn's steps freed back to the system, on the steps' thread once they are
    done (so never during a step, nor on the event loop); returns at once."""
    memory.release_after(_STEPS)


async def in_thread(function: Callable[..., T], *args) -> T:
    """Run a blocking call in a worker thread; when cancelled, wait for it before re-raising
    (or drop it, if it is still queued behind another step)."""
    queued = _STEPS.submit(function, *args)
    future = asyncio.wrap_future(queued)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if not queued.cancel():
            await asyncio.wait([future])
        raise


async def with_deadline(deadline_s: float, function: Callable[..., T], *args) -> T:
    """Run a blocking call in a thread of its own (`in_daemon_thread`); TimeoutError once
    `deadline_s` has passed.

    For code that may hang (a skill, a request to another machine): the thread is then left
    to end by itself, and the steps' thread stays free for the turns after it. When
    cancelled, wait for the call as `in_thread` does, but no longer than the deadline.
    """
    done = in_daemon_thread(function, *args)
    done.add_done_callback(lambda future: future.cancelled() or future.exception())  # retrieved, even if late
    try:
        # asyncio.timeout, not wait_for: in 3.11 wait_for loses a cancellation that comes as the call ends.
        async with asyncio.timeout(deadline_s):
            return await asyncio.shield(done)
    except asyncio.CancelledError:
        await asyncio.wait([done], timeout=deadline_s)
        raise


def in_store_thread(function: Callable[..., T], *args) -> asyncio.Future[T]:
    """Queue a call on the store's thread (the pipeline's SQLite reads and writes) now, in the
    order of the calls; await the result, or leave it to run."""
    return asyncio.wrap_future(_STORE.submit(function, *args))


async def timed(function: Callable[..., T], *args) -> tuple[T, float]:
    """`in_thread`, with the call's wall time in ms."""
    started = time.perf_counter()
    result = await in_thread(function, *args)
    return result, ms(time.perf_counter() - started)


class _End:
    """Marks the end of a thread's stream (an object, so no item can be mistaken for it)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


async def stream_from_thread(items: Callable[[threading.Event], Iterator[T]]) -> AsyncIterator[T]:
    """Iterate `items(stop)` in a worker thread, handing each item to the event loop as it comes.

    Closing or cancelling the consumer sets `stop` (the producer checks it between items)
    and waits for the thread to end.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[T | _End] = asyncio.Queue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items(stop):
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as err:  # handed to the consumer, which raises it
            loop.call_soon_threadsafe(queue.put_nowait, _End(err))
            return
        loop.call_soon_threadsafe(queue.put_nowait, _End())

    thread = asyncio.ensure_future(asyncio.to_thread(produce))
    try:
        while True:
            item = await queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stop.set()
        await asyncio.wait([thread])


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
