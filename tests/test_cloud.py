"""The cloud tier: answers streamed from an OpenAI-compatible endpoint within deadlines,
behind a circuit breaker, with the fallback answering whenever the cloud cannot."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import httpx
import pytest
from cloud_endpoint import (
    NUL_INSIDE,
    TERMINAL_ATTACK,
    TEST_KEY,
    Endpoint,
    chunk,
    client_for,
    endless,
    events,
    nothing_listening,
    stall,
    status,
    streamed,
)
from conftest import FIXTURES, ROOT
from test_cli import run as run_cli

from assistant.config import CloudSettings, Settings, describe, load_settings
from assistant.errors import ConfigError
from assistant.events import Event, EventSink, Fanout, Recorder
from assistant.hear.audio import WavSink, as_stream, file_chunks
from assistant.models import llm_model
from assistant.run.pipeline import replay_pipeline
from assistant.run.stages import load_cloud, load_own_voice, load_wake
from assistant.understand.cloud import CircuitBreaker, load_api_key
from assistant.understand.router import CLOUD_FAILED_REPLY, Router
from assistant.understand.skills import SkillRequest, load_skills

QUESTION = "Why is the sky blue?"


def knowledge(text: str) -> str | None:
    return "a knowledge question"


class Clock:
    """A clock the test moves by hand, so no test sleeps through a cooldown."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def endpoint():
    made: list[Endpoint] = []

    def make(*answers) -> Endpoint:
        made.append(Endpoint(*answers))
        return made[-1]

    yield make
    for e in made:
        e.close()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server on loopback, serving the bundled model with our key."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log_path = tmp_path_factory.mktemp("llama_server") / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(llm_model("bundled")), "--host", "127.0.0.1",
             "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "1024",
             "--api_key", TEST_KEY], stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_ready(server, url, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _wait_until_ready(server: subprocess.Popen, url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"llama_cpp.server exited ({server.returncode}): {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"llama_cpp.server not ready within 120 s: {log_path.read_text()[-2000:]}")


def ask(router: Router, text: str = QUESTION) -> tuple[list[str], str]:
    """Route and answer `text` as a turn does: the sentences, and who produced them."""
    decision = router.route(text)
    whole = router.whole_reply(decision, SkillRequest())
    if whole is not None:
        return [whole], decision.answered_by
    reply = router.streamed_reply(text, threading.Event(), decision)
    return list(reply), reply.tier


def cloud_router(client, llm=None, belongs_in_cloud=knowledge) -> Router:
    return Router(*load_skills(), llm, cloud=client, belongs_in_cloud=belongs_in_cloud)


def replay_with(stages, settings: Settings, router: Router, tmp_path: Path,
                events: EventSink | None = None) -> list[Event]:
    """Replay the push-to-talk LLM fixture through the whole pipeline with this router; `events`
    (with a Recorder among its sinks) also gets every event."""
    fresh = dataclasses.replace(stages, router=router, wake=load_wake(settings), own_voice=load_own_voice(settings))
    recorder = Recorder()
    sink = WavSink(tmp_path / "reply.wav", fresh.tts.rate_hz)
    pipeline = replay_pipeline(fresh, settings, Fanout(recorder, events) if events else recorder, sink)
    asyncio.run(pipeline.run(as_stream(file_chunks(FIXTURES / "ptt_llm.wav")), ptt=True))
    sink.close()
    return recorder.events


def named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.name == name]


# A real OpenAI-compatible server

@pytest.fixture(scope="module")
def cloud_replay(stages, llama_server, tmp_path_factory):
    """The LLM fixture replayed with the cloud enabled (key from a file) and every logger at debug level."""
    tmp = tmp_path_factory.mktemp("cloud_replay")
    (tmp / "key").write_text(TEST_KEY + "\n")
    cloud = CloudSettings(enabled=True, url=llama_server, api_key_file=str(tmp / "key"), first_words_s=30.0,
                          timeout_s=90.0)
    settings = Settings(state_dir=str(tmp / "state"), cloud=cloud)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        events = replay_with(stages, settings, cloud_router(load_cloud(settings)), tmp)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    logs = "\n".join(f"{r.name}: {r.getMessage()}" for r in records)
    return events, logs, settings.resolved_state_dir() / "audit.jsonl"


def test_a_question_for_the_cloud_is_answered_by_a_real_server_through_the_pipeline(cloud_replay):
    events, _, _ = cloud_replay
    route, reply = named(events, "route")[0], named(events, "reply")[0]
    assert (route.tier, route.fallback) == ("cloud", None)
    assert reply.tier == "cloud" and reply.text.strip()
    assert named(events, "turn")[0].outcome == "answered"


def test_the_key_never_appears_in_logs_events_or_the_audit_log(cloud_replay):
    events, logs, audit = cloud_replay
    assert "httpx" in logs or "httpcore" in logs  # debug logging really was on
    assert TEST_KEY not in logs
    assert TEST_KEY not in json.dumps([e.to_dict() for e in events])
    assert audit.read_text() and TEST_KEY not in audit.read_text()


def test_a_real_server_streams_the_answer_as_sentences(llama_server, tmp_path):
    client = client_for(llama_server, tmp_path, model="", first_words_s=30.0, timeout_s=90.0)
    sentences = list(client.sentences("Why is the sky blue?", threading.Event()))
    assert sentences and all(s.strip() for s in sentences)
    outcome = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert (outcome["outcome"], outcome["status"]) == ("answered", 200)


# Streaming

def test_the_first_sentence_arrives_before_the_answer_is_complete(endpoint, tmp_path):
    first_taken = threading.Event()
    server = endpoint(events(chunk("The first sentence comes right away. "), lambda: first_taken.wait(10),
                             chunk("The second one only once the first was taken."), chunk("", "stop"), "[DONE]"))
    sentences = client_for(server.url, tmp_path).sentences(QUESTION, threading.Event())
    assert next(sentences) == "The first sentence comes right away."
    first_taken.set()
    assert list(sentences) == ["The second one only once the first was taken."]


def test_only_the_transcript_and_the_system_prompt_leave_the_device(endpoint, tmp_path):
    server = endpoint(streamed("Because of Rayleigh scattering."))
    list(client_for(server.url, tmp_path).sentences(QUESTION, threading.Event()))
    body = json.loads(server.received[0].body)
    assert set(body) == {"model", "messages", "max_tokens", "stream"} and body["stream"] is True
    assert body["messages"] == [{"role": "system", "content": "Answer briefly."},
                                {"role": "user", "content": QUESTION}]
    assert server.received[0].path == "/v1/chat/completions"
    assert server.received[0].headers["Authorization"] == f"Bearer {TEST_KEY}"


# What the device takes from an answer, whatever the server sends

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What must never reach a terminal or the voice (a newline may end a line of output)."""


ON_AND_ON = "The moon keeps drifting away from the earth, a little every year."


def test_an_answer_that_never_ends_is_cut_at_max_reply_chars_and_the_stream_closed(endpoint, tmp_path):
    server = endpoint(endless(ON_AND_ON + " "))
    sentences = list(client_for(server.url, tmp_path, max_reply_chars=300).sentences(QUESTION, threading.Event()))
    assert " ".join(sentences) == " ".join([ON_AND_ON] * 4)  # the fifth, cut off at 300 characters, is not said
    outcome = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert (outcome["outcome"], outcome["status"]) == ("answered", 200)


def test_an_answer_that_never_ends_is_said_for_at_most_max_reply_speech_s(stages, endpoint, tmp_path):
    server = endpoint(endless(ON_AND_ON + " "))
    client = client_for(server.url, tmp_path, max_reply_chars=100000, max_reply_speech_s=8.0)
    events = replay_with(stages, Settings(), cloud_router(client), tmp_path)
    with wave.open(str(tmp_path / "reply.wav")) as spoken:
        assert 0 < spoken.getnframes() / spoken.getframerate() <= 8.0
    [reply], [turn] = named(events, "reply"), named(events, "turn")
    assert reply.tier == "cloud" and reply.text and " ".join([ON_AND_ON] * 10).startswith(reply.text)
    assert turn.outcome == "answered"


def test_a_nul_in_an_answer_is_removed_and_the_words_on_both_sides_are_said(stages, endpoint, tmp_path):
    server = endpoint(streamed(*NUL_INSIDE))
    events = replay_with(stages, Settings(), cloud_router(client_for(server.url, tmp_path)), tmp_path)
    [reply] = named(events, "reply")
    assert reply.text == "The moon is about four billion years old. It is drifting away from the earth, slowly."
    with wave.open(str(tmp_path / "reply.wav")) as spoken:
        spoken_s = spoken.getnframes() / spoken.getframerate()
    both_s = sum(c.duration_s for c in stages.tts.synthesize(reply.text))
    assert spoken_s > 0.8 * both_s


@pytest.mark.parametrize("as_json", [False, True], ids=["human", "json"])
def test_control_characters_in_an_answer_reach_neither_the_terminal_nor_the_voice(endpoint, tmp_path, as_json):
    server = endpoint(streamed(*TERMINAL_ATTACK))
    (tmp_path / "key").write_text(TEST_KEY)
    (tmp_path / "c.toml").write_text(f'state_dir = "state"\n[cloud]\nenabled = true\nurl = "{server.url}"\n'
                                     'api_key_file = "key"\nfirst_words_s = 20\ntimeout_s = 60\n')
    result = run_cli("replay", str(FIXTURES / "ptt_llm.wav"), "--ptt", "--out", str(tmp_path / "reply.wav"),
                     "--config", str(tmp_path / "c.toml"), *(["--json"] if as_json else []))
    assert result.returncode == 0, result.stderr
    said = "The moon is about four billion years old. It is drifting away slowly, a little every year."
    assert not CONTROL.search(result.stdout) and "pwned" not in result.stdout
    if as_json:
        [reply] = [e for line in result.stdout.splitlines() if (e := json.loads(line))["event"] == "reply"]
        assert (reply["text"], reply["tier"]) == (said, "cloud")
    else:
        assert f"reply (cloud): {said}\n" in result.stdout


# Failures: the fallback answers

def test_a_server_that_is_down_costs_little_and_the_fallback_answers(tmp_path):
    router = cloud_router(client_for(nothing_listening(), tmp_path, first_words_s=2.0))
    started = time.monotonic()
    assert ask(router) == ([CLOUD_FAILED_REPLY], "offline")
    assert time.monotonic() - started < 2.0 + 2


def test_a_server_that_stalls_is_given_up_at_the_first_words_deadline(endpoint, tmp_path):
    released = threading.Event()
    server = endpoint(stall(released))
    router = cloud_router(client_for(server.url, tmp_path, first_words_s=1.0))
    try:
        started = time.monotonic()
        assert ask(router) == ([CLOUD_FAILED_REPLY], "offline")
        assert time.monotonic() - started < 1.0 + 2
    finally:
        released.set()
    assert len(server.received) == 1  # a stall is not retried: the deadline has been spent


def test_a_server_that_sends_only_keepalives_is_given_up_at_the_first_words_deadline(endpoint, tmp_path):
    released = threading.Event()
    # Bytes keep arriving, so no read ever times out: only the deadline ends it.
    keepalives = [lambda: released.wait(0.1)] * 300
    server = endpoint(events(*(item for pause in keepalives for item in (pause, chunk("")))))
    router = cloud_router(client_for(server.url, tmp_path, first_words_s=1.0))
    try:
        started = time.monotonic()
        assert ask(router) == ([CLOUD_FAILED_REPLY], "offline")
        assert time.monotonic() - started < 1.0 + 2
    finally:
        released.set()


def test_an_answer_that_stalls_midway_ends_at_the_whole_answer_deadline_keeping_what_was_said(endpoint, tmp_path):
    released = threading.Event()
    server = endpoint(events(chunk("This sentence arrives in good time. "), lambda: released.wait(30)))
    router = cloud_router(client_for(server.url, tmp_path, first_words_s=1.0, timeout_s=2.0))
    try:
        started = time.monotonic()
        assert ask(router) == (["This sentence arrives in good time."], "cloud")
        assert time.monotonic() - started < 2.0 + 2
    finally:
        released.set()


def test_a_stopped_turn_ends_a_stalled_request_at_once_without_counting_it_as_a_failure(endpoint, tmp_path):
    released = threading.Event()
    server = endpoint(stall(released))
    client = client_for(server.url, tmp_path, first_words_s=20.0, timeout_s=30.0)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()  # a wake word, "stop" or SIGTERM
    try:
        started = time.monotonic()
        assert list(client.sentences(QUESTION, stop)) == []
        assert time.monotonic() - started < 0.5 + 2
    finally:
        released.set()
    assert client.breaker.state == "closed"
    outcome = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[-1])
    assert outcome["outcome"] == "stopped"


def test_http_500s_are_retried_then_the_fallback_answers(endpoint, tmp_path):
    server = endpoint(status(500))
    router = cloud_router(client_for(server.url, tmp_path, retries=2))
    assert ask(router) == ([CLOUD_FAILED_REPLY], "offline")
    assert len(server.received) == 3


def test_a_500_then_an_answer_is_answered_by_the_cloud(endpoint, tmp_path):
    server = endpoint(status(503), streamed("Because air scatters blue light more."))
    router = cloud_router(client_for(server.url, tmp_path))
    assert ask(router) == (["Because air scatters blue light more."], "cloud")
    assert len(server.received) == 2


def test_a_refused_request_is_not_retried(endpoint, tmp_path):
    server = endpoint(status(401))
    assert ask(cloud_router(client_for(server.url, tmp_path))) == ([CLOUD_FAILED_REPLY], "offline")
    assert len(server.received) == 1


@pytest.mark.parametrize("answer", [
    events("{this is not json"),
    events(json.dumps({"answer": "the wrong shape"})),
    events(json.dumps({"choices": [{"delta": {"content": 42}}]})),
    events(chunk("A stream that ends before its answer does.")),
    status(200),  # JSON, not an event stream
], ids=["bad_json", "wrong_shape", "content_not_text", "no_end", "not_a_stream"])
def test_a_malformed_answer_falls_back_without_retrying(endpoint, tmp_path, answer):
    server = endpoint(answer)
    assert ask(cloud_router(client_for(server.url, tmp_path))) == ([CLOUD_FAILED_REPLY], "offline")
    assert len(server.received) == 1


def test_the_fallback_can_be_the_local_llm(stages, tmp_path):
    client = client_for(nothing_listening(), tmp_path, fallback="local_llm")
    sentences, tier = ask(cloud_router(client, llm=stages.llm))
    assert tier == "local_llm" and sentences and sentences != [CLOUD_FAILED_REPLY]


# The circuit breaker

def test_after_a_failure_the_breaker_sends_requests_straight_to_the_fallback(endpoint, tmp_path):
    server = endpoint(status(500))
    router = cloud_router(client_for(server.url, tmp_path, clock=Clock(), breaker_cooldown_s=60.0))
    ask(router)
    tried = len(server.received)
    decision = router.route(QUESTION)
    assert (decision.tier, decision.fallback) == ("cloud", "offline") and "circuit breaker" in decision.reason
    assert ask(router) == (
        ["I can't answer that on this device, and I can't reach the cloud right now."], "offline")
    assert len(server.received) == tried


def test_after_the_cooldown_one_trial_request_closes_the_breaker_when_it_succeeds(endpoint, tmp_path):
    clock = Clock()
    server = endpoint(status(500), status(500), streamed("The endpoint is back."))
    router = cloud_router(client_for(server.url, tmp_path, clock=clock, breaker_cooldown_s=60.0))
    ask(router)
    clock.now += 59
    assert router.route(QUESTION).fallback == "offline"
    clock.now += 1
    assert router.route(QUESTION).fallback is None
    assert ask(router) == (["The endpoint is back."], "cloud")
    assert router.cloud.breaker.state == "closed"


def test_a_failed_trial_opens_the_breaker_for_another_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(failures_to_open=2, cooldown_s=30.0, clock=clock)
    breaker.failed()
    assert breaker.state == "closed"
    breaker.failed()
    assert breaker.state == "open"
    clock.now += 30
    assert breaker.state == "half_open" and breaker.allows()
    breaker.failed()
    assert breaker.state == "open"
    clock.now += 30
    breaker.succeeded()
    assert breaker.state == "closed" and breaker.failures == 0


# Routing

@pytest.mark.parametrize("url, enabled, key", [
    ("https://api.example.com/v1", False, TEST_KEY), ("", True, TEST_KEY), ("https://api.example.com/v1", True, None),
], ids=["disabled", "no_url", "no_key"])
def test_a_request_for_the_cloud_gets_the_offline_fallback_when_the_cloud_cannot_take_it(tmp_path, url, enabled, key):
    client = client_for(url, tmp_path, key=key, enabled=enabled)
    router = cloud_router(client)
    decision = router.route(QUESTION)
    assert (decision.tier, decision.fallback) == ("cloud", "offline")
    assert decision.reason.startswith("a knowledge question; ")
    assert ask(router)[1] == "offline"
    assert ask(router)[0][0].startswith("I can't answer that on this device, and ")


def test_the_fallback_setting_can_prefer_a_local_try(stages, tmp_path):
    client = client_for("https://api.example.com/v1", tmp_path, enabled=False, fallback="local_llm")
    assert cloud_router(client, llm=stages.llm).route(QUESTION).fallback == "local_llm"
    assert cloud_router(client, llm=None).route(QUESTION).fallback == "offline"


def test_a_live_data_question_goes_to_the_cloud_when_it_is_on(endpoint, tmp_path):
    server = endpoint(streamed("Light rain this afternoon."))
    router = cloud_router(client_for(server.url, tmp_path), belongs_in_cloud=lambda text: None)
    decision = router.route("What's the weather like this afternoon?")
    assert (decision.tier, decision.fallback, decision.slots) == ("cloud", None, {"topic": "the weather"})
    assert ask(router, "What's the weather like this afternoon?") == (["Light rain this afternoon."], "cloud")
    assert json.loads(server.received[0].body)["messages"][-1]["content"] == "What's the weather like this afternoon?"


def test_a_live_data_question_says_why_it_cannot_be_answered_when_the_cloud_is_off(endpoint, tmp_path):
    server = endpoint(streamed("Light rain."))
    router = cloud_router(client_for(server.url, tmp_path, enabled=False))
    assert ask(router, "Will it rain today?") == (
        ["I can't check the weather without an internet connection, and the cloud is turned off."], "offline")
    assert server.received == []


def test_templates_still_come_first(tmp_path):
    router = cloud_router(client_for("https://api.example.com/v1", tmp_path))
    assert router.route("What time is it?").tier == "fast_path"


def test_requests_that_do_not_belong_in_the_cloud_stay_local(stages, tmp_path):
    router = cloud_router(client_for("https://api.example.com/v1", tmp_path), llm=stages.llm,
                          belongs_in_cloud=lambda text: None)
    assert (router.route("How are you?").tier, router.route("How are you?").fallback) == ("local_llm", None)


def test_with_the_cloud_disabled_a_whole_turn_opens_no_connection(stages, tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    (tmp_path / "key").write_text(TEST_KEY)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    settings = Settings(state_dir=str(tmp_path / "state"),
                        cloud=CloudSettings(enabled=False, url=url, api_key_file=str(tmp_path / "key")))
    with listener:
        events = replay_with(stages, settings, cloud_router(load_cloud(settings), llm=stages.llm), tmp_path)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected, not even briefly
    assert (named(events, "route")[0].tier, named(events, "route")[0].fallback) == ("cloud", "offline")
    assert (named(events, "reply")[0].text, named(events, "reply")[0].tier) == (
        "I can't answer that on this device, and the cloud is turned off.", "offline")
    assert not (tmp_path / "state" / "audit.jsonl").exists()


# The key

def test_the_key_comes_from_the_key_file_then_the_credential_then_the_environment(tmp_path):
    (tmp_path / "file").write_text("from-file\n")
    (tmp_path / "credentials").mkdir()
    (tmp_path / "credentials" / "cloud-api-key").write_text("from-credential")
    environ = {"CREDENTIALS_DIRECTORY": str(tmp_path / "credentials"), "MY_KEY": "from-env"}
    with_file = CloudSettings(api_key_file=str(tmp_path / "file"), api_key_env="MY_KEY")
    without = CloudSettings(api_key_env="MY_KEY")
    assert load_api_key(with_file, environ) == "from-file"
    assert load_api_key(without, environ) == "from-credential"
    assert load_api_key(without, {"MY_KEY": "from-env"}) == "from-env"
    assert load_api_key(without, {}) is None


@pytest.mark.parametrize("content", [None, "", "two\nlines"], ids=["missing", "empty", "two_lines"])
def test_a_bad_key_file_is_a_config_error_naming_the_file_not_the_key(tmp_path, content):
    key_file = tmp_path / "key"
    if content is not None:
        key_file.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_api_key(CloudSettings(api_key_file=str(key_file)))
    assert str(key_file) in caught.value.message and "\n" not in caught.value.message
    assert "lines" not in caught.value.message


# Settings

@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1", "http://127.1.2.3/v1", "http://[::1]:8080/v1",
                                 "http://localhost/v1", "http://LOCALHOST/v1", "http://[::ffff:127.0.0.1]/v1",
                                 "https://api.example.com/v1"])
def test_plain_http_is_accepted_for_loopback(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[cloud]\nenabled = true\nurl = "{url}"\n')
    assert load_settings(tmp_path / "c.toml").cloud.url == url


@pytest.mark.parametrize("url", ["http://127.example.com/v1", "http://10.0.0.2/v1", "http://[::2]/v1",
                                 "http://localhost.example.com/v1", "https://user:secret@api.example.com/v1"])
def test_plain_http_elsewhere_and_credentials_in_the_url_are_refused(tmp_path, url):
    (tmp_path / "c.toml").write_text(f'[cloud]\nenabled = true\nurl = "{url}"\n')
    with pytest.raises(ConfigError, match=r"\[cloud\] url"):
        load_settings(tmp_path / "c.toml")


def test_the_first_words_deadline_cannot_exceed_the_whole_answer_deadline(tmp_path):
    (tmp_path / "c.toml").write_text("[cloud]\nfirst_words_s = 12\ntimeout_s = 5\n")
    with pytest.raises(ConfigError, match="first_words_s"):
        load_settings(tmp_path / "c.toml")


def test_the_docs_document_every_cloud_setting():
    docs = (ROOT / "docs" / "settings.md").read_text() + (ROOT / "docs" / "pipeline.md").read_text()
    for section, key, _default, _doc in describe():
        if section == "cloud":
            assert f"`cloud.{key}`" in docs, key
