"""Push-to-talk on the desktop: a key starts a command, no wake word; the same key ends it
(or the endpointer does), and stops a reply that is thinking or playing. `q` quits.

The pipeline is the daemon's, so the wake word still works too. In a terminal the keys
act at once (no Enter needed but for Enter itself); from a pipe, each line is a press.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import termios
import tty
from collections.abc import Iterator
from typing import TextIO

from assistant.config import Settings
from assistant.events import EventSink
from assistant.run.pipeline import State
from assistant.run.stopping import in_daemon_thread
from assistant.store.reminders import ReminderStore
from assistant.store.state import owning

log = logging.getLogger(__name__)

QUIT_KEYS = ("q", "Q")
_HINTS = {
    State.LISTENING: "listening: just speak, it ends when you stop (a key ends it sooner; during the reply, a key stops it)",
    State.IDLE: "press Enter to talk, q to quit",
    State.THINKING: "thinking (a key stops it)",
}


async def push_to_talk(settings: Settings, events: EventSink, keys_in: TextIO, says: TextIO) -> None:
    """Run until `q` (or the end of the keys); `says` gets the short prompts. The state directory is
    this process's while it runs."""
    from assistant.hear.devices import Microphone

    microphone = Microphone(settings.audio)
    microphone.check()  # a missing microphone is reported before the models load
    with owning(settings.resolved_state_dir()):
        await _talk(settings, events, keys_in, says, microphone)


async def _talk(settings: Settings, events: EventSink, keys_in: TextIO, says: TextIO, microphone) -> None:
    from assistant.hear.devices import DevicePlayer
    from assistant.run.engine import Engine
    from assistant.run.pipeline import Pipeline

    engine = await in_daemon_thread(Engine.load, settings)  # a Ctrl-C while loading does not wait for it
    stages = engine.stream_stages()
    speaker = DevicePlayer(settings.audio, stages.tts.rate_hz)
    reminders = ReminderStore.in_state_dir(settings.resolved_state_dir())
    pipeline = Pipeline(stages, settings, events, speaker, reminders=reminders)
    running = asyncio.create_task(pipeline.run(microphone.chunks(
        on_open=lambda: print(_HINTS[State.IDLE], file=says, flush=True))))
    try:
        with _keys(keys_in) as keys:
            while True:
                pressed = asyncio.create_task(keys.get())
                await asyncio.wait([running, pressed], return_when=asyncio.FIRST_COMPLETED)
                if running.done():
                    pressed.cancel()
                    running.result()  # a microphone that failed: raised here
                    return
                key = pressed.result()
                if key is None or key in QUIT_KEYS:
                    return
                stopping = pipeline.state in (State.THINKING, State.SPEAKING)
                hint = _HINTS.get(pipeline.press(), "")
                print(f"stopped; {hint}" if stopping else hint, file=says, flush=True)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        speaker.close(drain=False)
        reminders.close()
        engine.close()


@contextlib.contextmanager
def _keys(stream: TextIO) -> Iterator[asyncio.Queue[str | None]]:
    """Key presses as they come (a terminal in cbreak mode), or lines from a pipe; None at the end."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    fd = stream.fileno()
    terminal = os.isatty(fd)
    saved = termios.tcgetattr(fd) if terminal else None
    pending = b""

    def readable() -> None:
        nonlocal pending
        data = os.read(fd, 1024)
        if not data:
            loop.remove_reader(fd)
            queue.put_nowait(None)
            return
        if terminal:
            for key in data.decode(errors="replace"):
                queue.put_nowait(key)
            return
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            queue.put_nowait(line.decode(errors="replace").strip() or "\n")

    if terminal:
        tty.setcbreak(fd)
    loop.add_reader(fd, readable)
    try:
        yield queue
    finally:
        loop.remove_reader(fd)
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)

