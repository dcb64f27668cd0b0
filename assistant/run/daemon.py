"""The always-listening service: models loaded once, the microphone kept open through faults,
systemd told how it is doing, and signals obeyed.

SIGTERM or SIGINT: stop listening, cut speech, exit 0. SIGHUP: read the config again; a
valid new one restarts the pipeline with it (models reloaded), an invalid one is
reported in one line and the old one stays. The watchdog is fed by the input loop as it
takes each chunk, or while it deliberately waits for a missing microphone, so only a
stuck loop starves it.

With `[mqtt]` enabled, the assistant's state goes to the broker whenever it changes, and
the broker's mute command is obeyed: while muted the microphone's audio is replaced by
silence before anything hears it, so nothing wakes the assistant; timers still ring.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from assistant import config as config_module
from assistant.config import Settings
from assistant.errors import ConfigError, ModelError
from assistant.events import EventSink
from assistant.hear.audio import AudioChunk
from assistant.home.mqtt import MqttLink, MuteCommand, load_password
from assistant.home.own_intents import acknowledged
from assistant.run.service import ServiceNotifier
from assistant.run.stopping import in_daemon_thread, signal_queue
from assistant.store.reminders import ReminderStore
from assistant.store.state import owning
from assistant.understand.audit import AuditLog, audit_path

if TYPE_CHECKING:
    from assistant.run.engine import Engine
    from assistant.run.metrics import Metrics
    from assistant.run.pipeline import State
    from assistant.run.serve import Server

log = logging.getLogger(__name__)


_STOP_WAIT_S = 1.0
"""At a stop, how long the pipeline may take to end its turn's step (SIGTERM: exit within 2 s)."""


class Signal(enum.Enum):
    STOP = "stop"
    RELOAD = "reload"


class AssistantStatus:
    """What the assistant is doing as systemd and the MQTT broker see it, from the pipeline's
    state, the microphone's and the mute switch. Lives on the event loop; never waits."""

    def __init__(self, notifier: ServiceNotifier, link: MqttLink | None = None) -> None:
        self.notifier = notifier
        self.link = link
        self.muted = False
        self._pipeline: str | None = None
        """idle, listening, thinking or speaking; None until the pipeline has taken audio."""
        self._microphone: str | None = None
        """"listening", or why not (the service's status); None until the microphone has said."""

    @property
    def state(self) -> str | None:
        """One of the MQTT states: muted first (the user's choice), then degraded (no microphone)."""
        if self.muted:
            return "muted"
        if self._microphone not in (None, "listening"):
            return "degraded"
        if self._pipeline is None and self._microphone == "listening":
            return "idle"  # the microphone is open and no audio has reached the pipeline yet
        return self._pipeline

    @property
    def service_status(self) -> str | None:
        """systemd's STATUS=: the microphone's, said to be muted when it is."""
        if self._microphone is None or not self.muted:
            return self._microphone
        return "muted" if self._microphone == "listening" else f"muted; {self._microphone}"

    def use(self, link: MqttLink | None) -> None:
        """Publish to this link from now on, starting with the state now."""
        self.link = link
        self._publish()

    def pipeline_changed(self, state: State) -> None:
        """The pipeline's observer: a follow-up window is listening too."""
        self._pipeline = "listening" if state.value == "follow_up" else state.value
        self._publish()

    def microphone_changed(self, status: str) -> None:
        self._microphone = status
        self._changed()

    def mute(self, command: MuteCommand) -> None:
        muted = (not self.muted) if command is MuteCommand.TOGGLE else command is MuteCommand.ON
        if muted != self.muted:
            self.muted = muted
            log.warning("muted: the microphone is not heard until unmuted" if muted else "unmuted: listening again")
            self._changed()

    async def unless_muted(self, chunks: AsyncIterator[AudioChunk]) -> AsyncIterator[AudioChunk]:
        """The microphone's chunks; while muted, silence in their place (the input clock goes on, so
        timers ring and a reply plays out)."""
        async for chunk in chunks:
            yield replace(chunk, audio=bytes(len(chunk.audio))) if self.muted else chunk

    def _changed(self) -> None:
        if (status := self.service_status) is not None:
            self.notifier.status(status)
        self._publish()

    def _publish(self) -> None:
        if self.link is not None and (state := self.state) is not None:
            self.link.set_state(state)


def show_state_problems(reminders: ReminderStore, notifier: ServiceNotifier) -> None:
    """Saving that fails (a full disk, a read-only state directory) is shown in the service's status."""
    reminders.db.on_problem = lambda problem: notifier.degraded("saving", problem)
    notifier.degraded("saving", reminders.db.problem)


@dataclass
class Daemon:
    settings: Settings
    config_path: Path | None
    events: EventSink
    notifier: ServiceNotifier
    metrics: Metrics | None = None
    """Fed by `events` too; served at `[metrics] listen` while the daemon runs, and told when it listens."""
    status: AssistantStatus = field(init=False)
    _listening: contextlib.ExitStack = field(init=False, default_factory=contextlib.ExitStack)

    def __post_init__(self) -> None:
        self.status = AssistantStatus(self.notifier)

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT; reload on SIGHUP."""
        signals = signal_queue({signal.SIGTERM: Signal.STOP, signal.SIGINT: Signal.STOP,
                                signal.SIGHUP: Signal.RELOAD})
        from assistant.hear.devices import Microphone

        microphone = Microphone(self.settings.audio)
        with owning(self.settings.resolved_state_dir()), self._serving_metrics(), self._listening:
            reminders = ReminderStore.in_state_dir(self.settings.resolved_state_dir())
            show_state_problems(reminders, self.notifier)
            link = None
            try:
                link = await self._linked(None)
                while await self._run_until_signalled(microphone, reminders, signals) is Signal.RELOAD:
                    microphone.settings = self.settings.audio  # read when it next opens
                    link = await self._linked(link)
            finally:
                self.notifier.stopping()
                reminders.close()
                if link is not None:
                    link.close()  # says offline; bounded to about a second

    def _serving_metrics(self) -> contextlib.AbstractContextManager:
        """/metrics at `[metrics] listen` (as it was at start-up: a reload does not move it)."""
        if self.metrics is None:
            return contextlib.nullcontext()
        from assistant.run.metrics import serving

        return serving(self.metrics, self.settings.metrics.listen)

    async def _linked(self, link: MqttLink | None) -> MqttLink | None:
        """The MQTT link for the current settings: the running one when they are the same, connecting
        in the background otherwise; None when MQTT is off."""
        mqtt, audit = self.settings.mqtt, AuditLog(audit_path(self.settings.resolved_state_dir()))
        try:
            password = load_password(mqtt) if mqtt.enabled else None
        except ConfigError as err:
            if link is None:
                raise
            log.error("MQTT: keeping the running connection: %s", err.message)
            return link
        if link is not None:
            if link.made_with(mqtt, audit, password):
                return link
            link.close()
        self.status.use(None)
        if not mqtt.enabled:
            return None
        loop = asyncio.get_running_loop()
        link = MqttLink(mqtt, audit, password=password,
                        on_mute=lambda command: loop.call_soon_threadsafe(self.status.mute, command))
        await asyncio.to_thread(link.start)  # TLS loads the CA certificates: off the loop
        self.status.use(link)
        return link

    async def _run_until_signalled(self, microphone, reminders: ReminderStore, signals: asyncio.Queue) -> Signal:
        """One pipeline on the current settings, until a stop or a reload that takes effect."""
        from assistant.hear.devices import DevicePlayer
        from assistant.run.engine import Engine
        from assistant.run.pipeline import Pipeline

        self.notifier.status("loading models")
        loading = in_daemon_thread(Engine.load, self.settings)
        signalled = asyncio.create_task(signals.get())
        while not (loading.done() or signalled.done()):
            # Loading is progress too: after a reload, systemd's watchdog is already armed.
            self.notifier.alive()
            await asyncio.wait([loading, signalled], timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
        if signalled.done() and signalled.result() is Signal.STOP:
            return Signal.STOP  # not waiting for the models: a stop is a stop
        engine = await loading
        stages = engine.stream_stages()  # the microphone's session
        if signalled.done():  # a reload asked for while loading: handled once running
            signals.put_nowait(signalled.result())
        else:
            signalled.cancel()
        if stages.router.own is not None and self.status.link is not None:  # your intents' mqtt actions
            stages.router.own.publish = acknowledged(self.status.link)
        if stages.home is not None:  # Home Assistant down or back: the service's status says so
            stages.home.on_problem = lambda problem: self.notifier.degraded("Home Assistant", problem)
            self.notifier.degraded("Home Assistant", stages.home.problem)
        speaker = DevicePlayer(self.settings.audio, stages.tts.rate_hz)
        pipeline = Pipeline(stages, self.settings, self.events, speaker, reminders=reminders,
                            on_state=self.status.pipeline_changed)
        chunks = microphone.chunks_forever(on_state=self._on_microphone, on_waiting=self.notifier.alive)
        running = asyncio.create_task(pipeline.run(self.notifier.feeding(self.status.unless_muted(chunks))))
        wyoming = None
        reloading = False
        try:
            wyoming = await self._serving_wyoming(engine)
            self.notifier.ready("starting the microphone")
            while True:
                signalled = asyncio.create_task(signals.get())
                await asyncio.wait([running, signalled], return_when=asyncio.FIRST_COMPLETED)
                if running.done():
                    signalled.cancel()
                    running.result()  # the input never ends; a failure is raised here
                    return Signal.STOP
                if signalled.result() is Signal.STOP or await self._reloaded():
                    reloading = signalled.result() is Signal.RELOAD
                    return signalled.result()
        finally:
            running.cancel()
            # The turn's worker thread ends its step (a sentence of synthesis: seconds on a busy CPU).
            # A reload waits for it, as the old models must go first; a stop does not: the process ends.
            await asyncio.wait([running], timeout=None if reloading else _STOP_WAIT_S)
            if running.done() and not running.cancelled():
                running.exception()  # retrieved: the pipeline's failure was raised above already
            if wyoming is not None:
                await wyoming.close()
            speaker.close(drain=False)
            engine.close()
            del pipeline, stages, engine, wyoming
            gc.collect()  # the old models go before new ones load

    async def _serving_wyoming(self, engine: Engine) -> Server | None:
        """The Wyoming services on the microphone's engine (`serve.with_daemon`), or None. An
        address that cannot be listened on is a degraded status, never a stop (no restart loop)."""
        if not self.settings.serve.with_daemon:
            return None
        from assistant.run.serve import serve_beside, why_not_bound

        try:
            server = await serve_beside(engine, self.settings.serve, self.metrics)
        except (OSError, ConfigError) as err:
            why = err.message if isinstance(err, ConfigError) else why_not_bound(err)
            problem = f"cannot serve Wyoming at {self.settings.serve.uri} (serve.with_daemon): {why}"
            log.error("%s", problem)
            self.notifier.degraded("serving", problem)
            return None
        self.notifier.degraded("serving", None)
        return server

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
        from assistant import models

        settings = config_module.load_settings(self.config_path)
        models.check_all(settings)
        return settings

    def _on_microphone(self, state: str) -> None:
        """The microphone's state is the service's status."""
        if state == "listening":
            from assistant.models import wake_word_names

            log.warning("listening for %s", " or ".join(f'"{name.lower()}"' for name in wake_word_names(self.settings)))
        self.status.microphone_changed(state)
        if self.metrics is not None:  # the microphone's stream is the daemon's one session
            self._listening.close()
            if state == "listening":
                self._listening.enter_context(self.metrics.session())
