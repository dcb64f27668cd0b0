"""The audit log: what left the device, recorded before it left, exactly as sent."""

from __future__ import annotations

import json
import stat
import threading

import pytest
from cloud_endpoint import TEST_KEY, Endpoint, client_for, status, streamed

from assistant.errors import AuditLogError
from assistant.understand.audit import AuditLog, human_line, read_records
from assistant.understand.cloud import CloudError

QUESTION = "Why is the sky blue?"


@pytest.fixture
def endpoint():
    server = Endpoint(streamed("Because air scatters blue light more than red."))
    yield server
    server.close()


def ask(client) -> list[str]:
    return list(client.sentences(QUESTION, threading.Event()))


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_request_is_recorded_before_it_is_sent(endpoint, tmp_path):
    seen_on_arrival: list[list[dict]] = []
    endpoint.on_request = lambda: seen_on_arrival.append(lines(tmp_path / "audit.jsonl"))
    ask(client_for(endpoint.url, tmp_path))
    assert [r["record"] for r in seen_on_arrival[0]] == ["request"]


def test_the_log_holds_exactly_the_bytes_the_server_received(endpoint, tmp_path):
    ask(client_for(endpoint.url, tmp_path))
    request = lines(tmp_path / "audit.jsonl")[0]
    assert request["text"].encode("utf-8") == endpoint.received[0].body
    assert request["bytes"] == len(endpoint.received[0].body)
    assert request["host"] == endpoint.url.split("/")[2]


def test_the_log_never_holds_the_key_or_any_header(endpoint, tmp_path):
    ask(client_for(endpoint.url, tmp_path))
    text = (tmp_path / "audit.jsonl").read_text()
    assert TEST_KEY not in text and "Authorization" not in text and "Bearer" not in text


def test_the_outcome_is_appended_after_the_request_line_which_stays_as_it_was(endpoint, tmp_path):
    client = client_for(endpoint.url, tmp_path)
    seen_on_arrival: list[str] = []
    endpoint.on_request = lambda: seen_on_arrival.append((tmp_path / "audit.jsonl").read_text())
    ask(client)
    after = (tmp_path / "audit.jsonl").read_text()
    assert after.startswith(seen_on_arrival[0])
    request, outcome = lines(tmp_path / "audit.jsonl")
    assert (outcome["record"], outcome["id"], outcome["outcome"], outcome["status"]) == (
        "outcome", request["id"], "answered", 200)


def test_every_attempt_is_recorded_with_how_it_ended(tmp_path):
    server = Endpoint(status(503), streamed("The second attempt is answered."))
    try:
        ask(client_for(server.url, tmp_path))
    finally:
        server.close()
    records = lines(tmp_path / "audit.jsonl")
    assert [(r["record"], r.get("outcome"), r.get("status")) for r in records] == [
        ("request", None, None), ("outcome", "failed", 503), ("request", None, None), ("outcome", "answered", 200)]


def test_times_are_local_with_their_offset(endpoint, tmp_path):
    ask(client_for(endpoint.url, tmp_path))
    when = lines(tmp_path / "audit.jsonl")[0]["time"]
    assert when[10] == "T" and when[-6] in "+-" and when[-3] == ":"


def test_the_state_directory_and_the_log_are_private(endpoint, tmp_path):
    state = tmp_path / "state" / "assistant"
    ask(client_for(endpoint.url, state))
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "audit.jsonl").stat().st_mode) == 0o600


def test_a_request_that_cannot_be_recorded_is_not_sent(endpoint, tmp_path):
    (tmp_path / "not_a_directory").write_text("")
    client = client_for(endpoint.url, tmp_path / "not_a_directory")
    with pytest.raises(CloudError, match="cannot write the audit log"):
        ask(client)
    assert endpoint.received == []


def test_appends_from_many_threads_never_mix_lines(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    body = ("x" * 5000).encode()
    threads = [threading.Thread(target=lambda: [log.request("h", body) for _ in range(50)]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    records = read_records(tmp_path / "audit.jsonl")
    assert len(records) == 400 and all(r["text"] == body.decode() for r in records)


def test_text_with_unusual_line_breaks_reads_back_whole(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.request("h", "one\u2028two\r\nthree".encode())
    assert read_records(tmp_path / "audit.jsonl")[0]["text"] == "one\u2028two\r\nthree"


def test_no_log_yet_reads_as_none(tmp_path):
    assert read_records(tmp_path / "audit.jsonl") is None


@pytest.mark.parametrize("line", ["{not json", "[1, 2]", '{"record": "request", "id": "a"}',
                                  '{"record": "something else"}'])
def test_a_corrupt_line_is_an_error_naming_the_file_and_line(tmp_path, line):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.request("h", b"{}")
    with (tmp_path / "audit.jsonl").open("a") as f:
        f.write(line + "\n")
    with pytest.raises(AuditLogError) as caught:
        read_records(tmp_path / "audit.jsonl")
    assert f"{tmp_path / 'audit.jsonl'}:2:" in caught.value.message and "\n" not in caught.value.message


def test_a_human_line_says_when_where_how_much_and_what(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    record_id = log.request("api.example.com", b'{"messages": "hello"}')
    log.outcome(record_id, "api.example.com", "answered", status=200, ms=812.4)
    request, outcome = (human_line(r) for r in read_records(tmp_path / "audit.jsonl"))
    assert request.endswith('sent 21 bytes to api.example.com: {"messages": "hello"}')
    assert outcome.endswith("answered (HTTP 200) from api.example.com in 812 ms")
