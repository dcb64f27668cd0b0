"""The user's own intents: YAML in hassil's sentence syntax with a reply and one action,
checked at load with each problem named by file and line, matched before anything else,
and replied to only once the action succeeded (a real HTTP server, real programs)."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, run

from assistant.config import IntentsSettings
from assistant.errors import ConfigError
from assistant.home.own_intents import load_own_intents
from assistant.understand.audit import AuditLog, read_records
from assistant.understand.router import Router
from assistant.understand.skills import SkillRequest, load_skills


class Recorder(http.server.BaseHTTPRequestHandler):
    """A real HTTP server's handler that keeps what it was sent, and answers with `status`."""

    received: list[tuple[str, str, bytes]] = []
    status = 200

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).received.append((self.command, self.path, self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    do_POST = do_PUT = do_GET = _handle

    def log_message(self, *_) -> None:
        pass


@pytest.fixture
def server():
    Recorder.received = []
    Recorder.status = 200
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def intents_dir(tmp_path: Path, text: str) -> IntentsSettings:
    folder = tmp_path / "intents"
    folder.mkdir(exist_ok=True)
    (folder / "mine.yaml").write_text(text)
    return IntentsSettings(dir=str(folder), allowed_commands=("/bin/true", "/bin/false", "/bin/sleep"))


def garage(url: str) -> str:
    return f"""\
language: en
intents:
  OpenGarage:
    data:
      - sentences:
          - "open the garage [door]"
          - "(raise|lift) the garage door [to {{level}} percent]"
    reply: "The garage door is opening."
    action:
      http:
        url: "{url}/garage"
        json: {{"open": true, "level": "{{level}}"}}
lists:
  level:
    range: {{from: 0, to: 100}}
"""


def routed(own, text: str, tmp_path: Path) -> tuple[str | None, str]:
    own.audit = AuditLog(tmp_path / "audit.jsonl")
    router = Router(*load_skills(), llm=None, own=own)
    decision = router.route(text)
    return decision.intent, router.whole_reply(decision, SkillRequest(said=text))


def test_an_http_intent_calls_its_url_with_the_slots_and_then_says_its_reply(server, tmp_path):
    own = load_own_intents(intents_dir(tmp_path, garage(server)))
    intent, reply = routed(own, "lift the garage door to fifty percent", tmp_path)
    assert (intent, reply) == ("OpenGarage", "The garage door is opening.")
    assert Recorder.received == [("POST", "/garage", json.dumps({"open": True, "level": 50}).encode())]


def test_a_failed_action_is_said_and_the_reply_is_not(server, tmp_path):
    Recorder.status = 500
    own = load_own_intents(intents_dir(tmp_path, garage(server)))
    _, reply = routed(own, "open the garage", tmp_path)
    assert reply.startswith("Sorry, that didn't work:") and "HTTP 500" in reply


def test_an_http_action_is_audited_before_it_is_sent(server, tmp_path):
    own = load_own_intents(intents_dir(tmp_path, garage(server)))
    routed(own, "open the garage door", tmp_path)
    records = read_records(tmp_path / "audit.jsonl")
    assert records[0]["record"] == "request" and records[0]["text"].startswith(f"POST {server}/garage")
    assert records[1]["outcome"] == "answered"


COMMANDS = """\
language: en
intents:
  Succeed:
    data: [{sentences: ["run the good job"]}]
    reply: "The good job ran."
    action: {command: {argv: ["/bin/true"]}}
  Fail:
    data: [{sentences: ["run the bad job"]}]
    reply: "The bad job ran."
    action: {command: {argv: ["/bin/false"]}}
  Hang:
    data: [{sentences: ["run the slow job"]}]
    reply: "The slow job ran."
    action: {command: {argv: ["/bin/sleep", "30"], timeout_s: 0.5}}
"""


@pytest.mark.parametrize("said, reply", [
    ("run the good job", "The good job ran."),
    ("run the bad job", "Sorry, that didn't work: false failed (status 1)."),
    ("run the slow job", "Sorry, that didn't work: sleep took longer than 0.5 s and was stopped."),
])
def test_a_command_intent_says_its_reply_only_when_the_program_succeeded(tmp_path, said, reply):
    own = load_own_intents(intents_dir(tmp_path, COMMANDS))
    assert routed(own, said, tmp_path)[1] == reply


def test_own_intents_are_matched_before_the_skills(tmp_path):
    own = load_own_intents(intents_dir(tmp_path, """\
language: en
intents:
  Bedtime:
    data: [{sentences: ["what time is it"]}]
    reply: "Bedtime."
    action: {command: {argv: ["/bin/true"]}}
"""))
    assert routed(own, "what time is it", tmp_path) == ("Bedtime", "Bedtime.")


BROKEN = """\
language: en
intents:
  Bad:
    data:
      - sentences:
          - "open [the garage"
          - "open the {door} door"
    reply: "Opened the {gate}."
    action:
      command: {argv: ["/usr/bin/rm", "-rf", "/"]}
  Public:
    data: [{sentences: ["ping the internet"]}]
    reply: "Pinged."
    action:
      http: {url: "http://example.com/ping"}
  Two:
    data: [{sentences: ["do two things"]}]
    reply: "Done."
    action:
      http: {url: "http://127.0.0.1/a"}
      mqtt: {topic: "a/b"}
"""


def test_every_problem_in_an_intents_file_is_named_by_file_and_line(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_own_intents(intents_dir(tmp_path, BROKEN))
    path = tmp_path / "intents" / "mine.yaml"
    problems = caught.value.message.splitlines()
    assert problems == [
        f"{path}:6: intent Bad: 'open [the garage': Unable to find end of optional ']' from index 0 in: [the garage",
        f"{path}:7: intent Bad: 'open the {{door}} door': no list 'door' under lists:",
        f"{path}:10: intent Bad: command: '/usr/bin/rm' is not in intents.allowed_commands; add its absolute path "
        "there to let intents run it",
        f"{path}:15: intent Public: http: url 'http://example.com/ping': must be https://, or http:// to this "
        "machine or the home network (a private, ULA or link-local address, or a .local name)",
        f"{path}:19: intent Two: needs exactly one action: http, mqtt or command",
    ]


def test_config_check_reports_a_broken_intents_file_with_status_78(tmp_path):
    intents_dir(tmp_path, "language: en\nintents:\n  X:\n    data: [{sentences: ['go']}]\n    reply: 'Gone.'\n")
    config = tmp_path / "c.toml"
    config.write_text('[intents]\ndir = "intents"\n')
    result = run("config", "check", str(config))
    assert_one_line_error(result, 78, f"{tmp_path}/intents/mine.yaml:3", "needs exactly one action")


def test_a_reply_slot_no_sentence_fills_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"mine.yaml:6: intent X: the reply uses \{room\}, which no sentence fills"):
        load_own_intents(intents_dir(tmp_path, """\
language: en
intents:
  X:
    data: [{sentences: ["lights on"]}]
    action: {command: {argv: ["/bin/true"]}}
    reply: "Lights on in the {room}."
"""))
