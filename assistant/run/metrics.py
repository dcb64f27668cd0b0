"""Prometheus metrics, made from the events `--json` prints: one more event sink, no bookkeeping of its own.

Each `Metrics` has its own registry (never the library's global one), so tests and several
sinks in one process do not collide. `serving` exposes it over HTTP while a run lasts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import start_http_server

from assistant.config import listen_address
from assistant.errors import ConfigError
from assistant.events import (
    Error,
    Event,
    Served,
    Turn,
    Wake,
    WakeCandidate,
    WakeRejected,
)

log = logging.getLogger(__name__)

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""From a verifier's few milliseconds to a cloud answer's seconds, in s."""


class Metrics:
    """An event sink that counts wakes, turns and errors and times each stage of a turn."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.stage_seconds = Histogram(
            "assistant_stage_seconds", "Wall time of each stage of a turn (the keys of the turn event's stages_ms)",
            ["stage"], buckets=LATENCY_BUCKETS_S, registry=registry)
        self.voice_to_voice_seconds = Histogram(
            "assistant_voice_to_voice_seconds", "From the end of the command's speech to the first reply audio",
            buckets=LATENCY_BUCKETS_S, registry=registry)
        self.wake_candidates = Counter("assistant_wake_candidates", "Wake words the first pass heard",
                                       ["word"], registry=registry)
        self.wakes = Counter("assistant_wakes", "Wake words accepted", ["word"], registry=registry)
        self.wake_rejections = Counter("assistant_wake_rejections",
                                       "Wake candidates rejected, by why (verifier or own_voice)",
                                       ["word", "reason"], registry=registry)
        self.turns = Counter("assistant_turns", "Turns, by how they ended", ["outcome"], registry=registry)
        self.errors = Counter("assistant_errors", "Errors reported, by stage and code", ["stage", "code"],
                              registry=registry)
        self.cloud_requests = Counter("assistant_cloud_requests", "Requests sent to the cloud endpoint",
                                      registry=registry)
        self.cloud_sent_bytes = Counter("assistant_cloud_sent_bytes", "Bytes of request bodies sent to the cloud",
                                        registry=registry)
        self.served = Counter("assistant_served_requests", "Requests assistant serve answered, by service and outcome",
                              ["service", "outcome"], registry=registry)
        self.sessions_open = Gauge(
            "assistant_sessions_open", "Streams being served now (the microphone, a replay, each client of serve)",
            registry=registry)
        ProcessCollector(registry=registry)  # process_resident_memory_bytes and the rest, read at each scrape

    def emit(self, event: Event) -> None:
        match event:
            case WakeCandidate(word=word):
                self.wake_candidates.labels(word).inc()
            case Wake(word=word):
                self.wakes.labels(word).inc()
            case WakeRejected(word=word, reason=reason):
                self.wake_rejections.labels(word, reason).inc()
            case Error(stage=stage, code=code):
                self.errors.labels(stage, code).inc()
            case Turn():
                self._turn(event)
            case Served(service=service, outcome=outcome, stages_ms=stages_ms):
                self.served.labels(service, outcome).inc()
                self._stages(stages_ms)

    def _turn(self, turn: Turn) -> None:
        self.turns.labels(turn.outcome).inc()
        self._stages(turn.stages_ms)
        if turn.voice_to_voice_ms is not None:
            self.voice_to_voice_seconds.observe(turn.voice_to_voice_ms / 1000)
        self.cloud_requests.inc(turn.cloud_requests)
        self.cloud_sent_bytes.inc(turn.cloud_bytes_sent)

    def _stages(self, stages_ms: dict[str, float]) -> None:
        for stage, stage_ms in stages_ms.items():
            self.stage_seconds.labels(stage).observe(stage_ms / 1000)

    @contextmanager
    def session(self) -> Iterator[None]:
        """An audio stream being listened to, for as long as the block lasts."""
        self.sessions_open.inc()
        try:
            yield
        finally:
            self.sessions_open.dec()

    def exposition(self) -> str:
        """What /metrics serves: the Prometheus text format."""
        return generate_latest(self.registry).decode("utf-8")


@contextmanager
def serving(metrics: Metrics, listen: str) -> Iterator[None]:
    """`metrics` at http://`listen`/metrics until the block ends. An address that cannot be
    listened on (a port in use) is a ConfigError naming the setting."""
    host, port = listen_address(listen)
    try:
        server, thread = start_http_server(port, host, registry=metrics.registry)
    except OSError as err:
        raise ConfigError(f"[metrics] listen = {listen!r}: cannot listen there: {err.strerror or err}") from None
    log.info("metrics at http://%s/metrics", listen)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=2)
