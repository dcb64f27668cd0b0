"""A real HTTP server on loopback that plays an OpenAI-compatible endpoint badly or well.

Each request gets the next scripted answer (the last one repeats) and is kept, headers and
body byte for byte, so a test can compare what left the client with what arrived.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from assistant.config import CloudSettings
from assistant.understand.audit import AuditLog
from assistant.understand.cloud import CloudClient

Answer = Callable[[BaseHTTPRequestHandler], None]

TEST_KEY = "sk-test-4f1c9a7e2b-do-not-log"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Endpoint:
    """Serves the scripted answers on 127.0.0.1 until closed."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.received: list[Received] = []
        self.on_request: Callable[[], None] = lambda: None
        """Called as each request arrives, before it is answered."""
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint._lock:
                    endpoint.received.append(Received(self.path, dict(self.headers), body))
                    answer = endpoint.answers[min(len(endpoint.received), len(endpoint.answers)) - 1]
                endpoint.on_request()
                answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def chunk(text: str, finish_reason: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish_reason}]})


def events(*items: str | Callable[[], object]) -> Answer:
    """An event stream: each string is sent as a `data:` line; each callable is called in between
    (to wait for the test, or to stall)."""
    return lambda handler: _send_events(handler, items)


def endless(sentence: str = "The moon keeps drifting away from the earth, a little every year. ") -> Answer:
    """Valid chunks, one sentence each, for as long as the client reads: a server that ignores max_tokens."""
    return lambda handler: _send_events(handler, itertools.repeat(chunk(sentence)))


TERMINAL_ATTACK = ("\x1b[2J\x1b[H\x1b]0;pwned\x07The moon is about \x07four billion years old. ",
                   "It is \u202edrifting\u202c away \x1b[31mslowly\x1b[0m, \u2066a little\u2069 every \x9b1myear.")
"""Clear screen, cursor home, a window title, bells, a bidi override and isolate, colours (7-bit and C1)."""
NUL_INSIDE = ("The moon is about four billion years old. ", "\x00", "It is drifting away from the earth, slowly.")


def _send_events(handler: BaseHTTPRequestHandler, items: Iterable[str | Callable[[], object]]) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    for item in items:
        if callable(item):
            item()
            continue
        try:
            handler.wfile.write(f"data: {item}\n\n".encode())
            handler.wfile.flush()
        except OSError:  # the client gave up
            return


def streamed(*pieces: str) -> Answer:
    """A well-formed streamed answer made of these pieces."""
    return events(*(chunk(p) for p in pieces), chunk("", "stop"), "[DONE]")


def status(code: int) -> Answer:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(b'{"error": {"message": "scripted failure"}}')
    return answer


def stall(released: threading.Event, at_most_s: float = 30.0) -> Answer:
    """Accept the request and say nothing until released."""
    return lambda handler: released.wait(at_most_s)


def nothing_listening() -> str:
    """A loopback URL where no server listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def client_for(url: str, state_dir: Path, clock: Callable[[], float] | None = None, key: str | None = TEST_KEY,
               **changed: object) -> CloudClient:
    """A client for `url` with test-sized deadlines and (unless told otherwise) the test key."""
    values = {"enabled": True, "url": url, "model": "test-model", "first_words_s": 2.0, "timeout_s": 20.0,
              "retries": 1, "retry_backoff_s": 0.05, **changed}
    settings = CloudSettings(**values)  # type: ignore[arg-type]
    extra = {"clock": clock} if clock is not None else {}
    return CloudClient(settings, "Answer briefly.", key, AuditLog(state_dir / "audit.jsonl"), **extra)
