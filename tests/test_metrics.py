"""Prometheus metrics: made from the events a replay reports, served over HTTP while a run lasts."""

from __future__ import annotations

import json
import socket
import threading

import httpx
import pytest
from cloud_endpoint import Endpoint, client_for, status, streamed
from conftest import FIXTURES, MANIFEST
from mqtt_broker import free_port
from prometheus_client.parser import text_string_to_metric_families
from test_cli import assert_one_line_error
from test_cli import run as run_cli
from test_cloud import cloud_router, replay_with

from assistant.config import Settings
from assistant.errors import ConfigError
from assistant.events import Error
from assistant.run.metrics import Metrics, serving


def scraped(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def metrics_of(events) -> dict:
    metrics = Metrics()
    for event in events:
        metrics.emit(event)
    return scraped(metrics.exposition())


def test_each_stage_of_a_replayed_turn_is_one_observation_in_its_histogram(replay):
    events = replay(FIXTURES / "wake_time.wav").events
    samples = metrics_of(events)
    turn = next(e for e in events if e.name == "turn")
    assert {"verifier", "end_of_turn", "asr", "route", "tts_first_chunk"} <= set(turn.stages_ms)
    for stage, stage_ms in turn.stages_ms.items():
        assert sample(samples, "assistant_stage_seconds_count", stage=stage) == 1
        assert sample(samples, "assistant_stage_seconds_sum", stage=stage) == pytest.approx(stage_ms / 1000)
    assert sample(samples, "assistant_voice_to_voice_seconds_count") == 1
    assert sample(samples, "assistant_voice_to_voice_seconds_sum") == pytest.approx(turn.voice_to_voice_ms / 1000)


def test_turns_are_counted_by_outcome(replay):
    fixture = "wake_interrupts_reply.wav"
    samples = metrics_of(replay(FIXTURES / fixture).events)
    expected = [t["outcome"] for t in MANIFEST[fixture]["turns"]]
    assert expected == ["interrupted", "answered"]
    assert sample(samples, "assistant_turns_total", outcome="interrupted") == 1
    assert sample(samples, "assistant_turns_total", outcome="answered") == 1
    assert sample(samples, "assistant_stage_seconds_count", stage="asr") == 2


def test_a_wake_with_nothing_said_is_a_no_speech_turn_with_no_voice_to_voice(replay):
    samples = metrics_of(replay(FIXTURES / "wake_then_silence.wav").events)
    assert sample(samples, "assistant_turns_total", outcome="no_speech") == 1
    assert sample(samples, "assistant_voice_to_voice_seconds_count") == 0
    assert sample(samples, "assistant_stage_seconds_count", stage="asr") == 0


def test_wake_candidates_accepts_and_rejections_match_the_events(replay):
    events = replay(FIXTURES / "wake_two_turns_noisy.wav").events
    samples = metrics_of(events)
    count = {name: sum(e.name == name for e in events) for name in ("wake_candidate", "wake", "wake_rejected")}
    assert count["wake"] == MANIFEST["wake_two_turns_noisy.wav"]["wake_count"]
    word = next(e.word for e in events if e.name == "wake")
    assert sample(samples, "assistant_wake_candidates_total", word=word) == count["wake_candidate"]
    assert sample(samples, "assistant_wakes_total", word=word) == count["wake"]
    rejected = sum(v for (name, _), v in samples.items() if name == "assistant_wake_rejections_total")
    assert rejected == count["wake_rejected"]


def test_errors_are_counted_by_stage_and_code():
    samples = metrics_of([Error(t=1.0, stage="llm", code="failed", message="the local LLM failed: boom"),
                          Error(t=2.0, stage="llm", code="failed", message="again"),
                          Error(t=3.0, stage="home", code="unreachable", message="down")])
    assert sample(samples, "assistant_errors_total", stage="llm", code="failed") == 2
    assert sample(samples, "assistant_errors_total", stage="home", code="unreachable") == 1


@pytest.fixture
def cloud_503_then_answer():
    """A cloud endpoint that fails once (retried), then answers."""
    server = Endpoint(status(503), streamed("Because air scatters blue light more."))
    yield server
    server.close()


def test_cloud_requests_and_bytes_sent_are_those_the_audit_log_records(stages, cloud_503_then_answer, tmp_path):
    server = cloud_503_then_answer
    settings = Settings(state_dir=str(tmp_path))
    metrics = Metrics()
    router = cloud_router(client_for(server.url, tmp_path))
    events = replay_with(stages, settings, router, tmp_path, events=metrics)
    turn = next(e for e in events if e.name == "turn")
    audited = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    sent = [r["bytes"] for r in audited if r["record"] == "request"]
    assert len(sent) == 2 == len(server.received)  # the 503, then the answer
    assert (turn.cloud_requests, turn.cloud_bytes_sent) == (2, sum(sent))
    samples = scraped(metrics.exposition())
    assert sample(samples, "assistant_cloud_requests_total") == 2
    assert sample(samples, "assistant_cloud_sent_bytes_total") == sum(sent)
    assert sample(samples, "assistant_stage_seconds_count", stage="first_token") == 1


def test_the_process_resident_memory_is_exposed():
    samples = scraped(Metrics().exposition())
    assert sample(samples, "process_resident_memory_bytes") > 10_000_000


def test_each_metrics_sink_keeps_its_own_counts():
    first, second = Metrics(), Metrics()
    first.emit(Error(t=0.0, stage="asr", code="failed", message="x"))
    assert sample(scraped(first.exposition()), "assistant_errors_total", stage="asr", code="failed") == 1
    assert sample(scraped(second.exposition()), "assistant_errors_total", stage="asr", code="failed") == 0


def test_metrics_are_served_over_http_until_the_run_ends():
    metrics, port = Metrics(), free_port()
    with serving(metrics, f"127.0.0.1:{port}"), metrics.session():
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert response.status_code == 200
        assert sample(scraped(response.text), "assistant_sessions_open") == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert threading.active_count() < 50  # the server's thread was joined, not left behind


def test_a_port_in_use_is_a_config_error_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        refused = pytest.raises(ConfigError, match=r"\[metrics\] listen = '127\.0\.0\.1:\d+': cannot listen there")
        with refused, serving(Metrics(), listen):
            pass


def test_replay_with_its_metrics_port_in_use_stops_with_status_78_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = tmp_path / "config.toml"
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        config.write_text(f'[metrics]\nlisten = "{listen}"\n')
        result = run_cli("replay", str(FIXTURES / "wake_time.wav"), "--config", str(config))
    assert_one_line_error(result, 78, f"[metrics] listen = '{listen}'", "cannot listen")


@pytest.mark.parametrize("listen", ["9464", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "http://127.0.0.1:9464",
                                    "[::1:9464", "my host:9464"])
def test_a_listen_address_that_is_not_host_and_port_is_refused_naming_the_key(tmp_path, listen):
    config = tmp_path / "config.toml"
    config.write_text(f"[metrics]\nlisten = {json.dumps(listen)}\n")
    result = run_cli("config", "check", str(config))
    assert_one_line_error(result, 78, str(config), "[metrics] listen")
