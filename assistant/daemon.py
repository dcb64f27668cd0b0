"""The always-listening service: models loaded once, the microphone kept open through faults,
systemd told how it is doing, and signals obeyed.

SIGTERM or SIGINT: stop listening, cut speech, exit 0. SIGHUP: read the config again; a
valid new one restarts the pipeline with it (models reloaded), an invalid one is
reported in one line and the old one stays. The watchdog is fed by the input loop as it
takes each chunk, or while it deliberately waits for a missing microphone, so only a
stuck loop starves it.
"""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from . import config as config_module
from .config import Settings
from .errors import ConfigError, ModelError
from .events import EventSink
from .reminders import ReminderStore
from .service import ServiceNotifier
from .stopping import in_daemon_thread, signal_queue

log = logging.getLogger(__name__)


class Signal(enum.Enum):
    STOP = "stop"
    RELOAD = "reload"


@dataclass
class Daemon:
    settings: Settings
    config_path: Path | None
    events: EventSink
    notifier: ServiceNotifier

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT; reload on SIGHUP."""
        signals = signal_queue({signal.SIGTERM: Signal.STOP, signal.SIGINT: Signal.STOP,
                                signal.SIGHUP: Signal.RELOAD})
        from .devices import Microphone

        microphone = Microphone(self.settings.audio)
        reminders = ReminderStore.in_state_dir(self.settings.resolved_state_dir())
        try:
            while await self._run_until_signalled(microphone, reminders, signals) is Signal.RELOAD:
                microphone.settings = self.settings.audio  # read when it next opens
        finally:
            self.notifier.stopping()
            reminders.close()

    async def _run_until_signalled(self, microphone, reminders: ReminderStore, signals: asyncio.Queue) -> Signal:
        """One pipeline on the current settings, until a stop or a reload that takes effect."""
        from .devices import DevicePlayer
        from .pipeline import Pipeline
        from .stages import load_stages

        self.notifier.status("loading models")
        loading = in_daemon_thread(load_stages, self.settings)
        signalled = asyncio.create_task(signals.get())
        while not (loading.done() or signalled.done()):
            # Loading is progress too: after a reload, systemd's watchdog is already armed.
            self.notifier.alive()
            await asyncio.wait([loading, signalled], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        if signalled.done() and signalled.result() is Signal.STOP:
            return Signal.STOP  # not waiting for the models: a stop is a stop
        stages = await loading
        if signalled.done():  # a reload asked for while loading: handled once running
            signals.put_nowait(signalled.result())
        else:
            signalled.cancel()
        if stages.home is not None:  # Home Assistant down or back: the service's status says so
            stages.home.on_problem = lambda problem: self.notifier.degraded("Home Assistant", problem)
            self.notifier.degraded("Home Assistant", stages.home.problem)
        speaker = DevicePlayer(self.settings.audio, stages.tts.rate_hz)
        pipeline = Pipeline(stages, self.settings, self.events, speaker, reminders=reminders)
        chunks = microphone.chunks_forever(on_state=self._on_microphone, on_waiting=self.notifier.alive)
        running = asyncio.create_task(pipeline.run(self.notifier.feeding(chunks), paced=False))
        self.notifier.ready("starting the microphone")
        try:
            while True:
                signalled = asyncio.create_task(signals.get())
                await asyncio.wait([running, signalled], return_when=asyncio.FIRST_COMPLETED)
                if running.done():
                    signalled.cancel()
                    running.result()  # the input never ends; a failure is raised here
                    return Signal.STOP
                if signalled.result() is Signal.STOP or await self._reloaded():
                    return signalled.result()
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            speaker.close(drain=False)
            stages.close()
            del pipeline, stages
            gc.collect()  # the old models go before new ones load

    async def _reloaded(self) -> bool:
        """Read the config again: True when a valid, changed one is to take effect. Custom
        models are probed in subprocesses that take seconds: off the loop, which keeps listening."""
        self.notifier.reloading()
        try:
            settings = await asyncio.to_thread(self._checked_settings)
        except (ConfigError, ModelError) as err:
            log.error("reload refused, keeping the running config: %s", err.message.replace("\n", "; "))
            self.notifier.reloaded()
            return False
        if settings == self.settings:
            log.warning("reload: %s unchanged", self.config_path or "the built-in defaults")
            self.notifier.reloaded()
            return False
        log.warning("reload: restarting with %s", self.config_path or "the built-in defaults")
        self.settings = settings
        return True

    def _checked_settings(self) -> config_module.Settings:
        from . import models

        settings = config_module.load_settings(self.config_path)
        models.check_all(settings)
        return settings

    def _on_microphone(self, state: str) -> None:
        """The microphone's state is the service's status."""
        if state == "listening":
            from .models import wake_word_names

            log.warning("listening for %s", " or ".join(f'"{name.lower()}"' for name in wake_word_names(self.settings)))
        self.notifier.status(state)
