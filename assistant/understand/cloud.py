"""Tier 3: an OpenAI-compatible Chat Completions endpoint, used only when allowed.

Only the transcript and the system prompt leave the device, and each request is written
to the audit log before it is sent. The answer streams (server-sent events), so its first
sentence is spoken while the rest arrives. Time is bounded three ways: a deadline for the
first words (retries included), a deadline for the whole answer, and a circuit breaker
that, once the endpoint has failed, sends requests straight to the fallback for a
cooldown, then lets one trial request through.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from assistant.config import CloudSettings
from assistant.errors import StageError
from assistant.understand.audit import AuditLog
from assistant.understand.llm import Progress, spoken_sentences
from assistant.understand.secrets import SecretSource

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "cloud-api-key"
"""The systemd credential the key is read from: `LoadCredential=cloud-api-key:/path/to/key`."""


class CloudError(StageError):
    """The endpoint failed. `retry`: nothing came back yet and another attempt may succeed."""

    def __init__(self, message: str, *, code: str = "failed", retry: bool = False) -> None:
        super().__init__("cloud", message, code=code)
        self.retry = retry


def load_api_key(settings: CloudSettings, environ: Mapping[str, str] = os.environ) -> str | None:
    """The API key from `api_key_file`, else the systemd credential, else `api_key_env`; None if none."""
    return SecretSource("API key", settings.api_key_file, "cloud.api_key_file", CREDENTIAL_NAME,
                        settings.api_key_env, "cloud.api_key_env").read(environ)


@dataclass
class CircuitBreaker:
    """Closed: requests go out. Open, after `failures_to_open` failed requests in a row: none
    go out until `cooldown_s` has passed; then one trial request decides (success closes it,
    failure opens it for another cooldown). `clock` is injectable so tests never sleep."""

    failures_to_open: int
    cooldown_s: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state(self) -> str:
        """closed, open, or half_open (the cooldown is over: the next request is a trial)."""
        with self._lock:
            if self.opened_at is None:
                return "closed"
            return "half_open" if self.clock() - self.opened_at >= self.cooldown_s else "open"

    def allows(self) -> bool:
        return self.state != "open"

    def succeeded(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None

    def failed(self) -> None:
        with self._lock:
            self.failures += 1
            if self.opened_at is not None or self.failures >= self.failures_to_open:
                self.opened_at = self.clock()


class _Attempt:
    """One HTTP attempt: its deadlines, its socket, and a watchdog thread that shuts the
    socket when a deadline passes or the turn stops.

    A per-read timeout alone would let an endpoint that trickles bytes, or goes quiet
    after its headers, hold the turn past the deadline, and a stopped turn would wait for
    the blocked read; shutting the socket ends that read at once, in any thread."""

    POLL_S = 0.05

    def __init__(self, stop: threading.Event, first_words_by: float, whole_by: float) -> None:
        self.stop = stop
        self.first_words_by = first_words_by
        self.whole_by = whole_by
        self.got_words = False
        self.status: int | None = None
        self.cut: str | None = None
        """Why the watchdog shut the socket: stopped, first_words or whole; None if it did not."""
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="cloud-watchdog", daemon=True)

    def timeout(self) -> httpx.Timeout:
        """httpx's own timeouts, as a backstop; connecting has no socket to shut yet."""
        now = time.monotonic()
        return httpx.Timeout(max(self.whole_by - now, 0.05), connect=max(self.first_words_by - now, 0.05))

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: keep the socket as soon as it is connected."""
        if event == "connection.connect_tcp.complete":
            with self._lock:
                self._socket = info["return_value"].get_extra_info("socket")
                if self.cut:
                    self._shut()

    def __enter__(self) -> _Attempt:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(self.POLL_S):
            if (why := self._due()) is not None:
                with self._lock:
                    self.cut = why
                    self._shut()
                return

    def _due(self) -> str | None:
        now = time.monotonic()
        if self.stop.is_set():
            return "stopped"
        if not self.got_words and now >= self.first_words_by:
            return "first_words"
        return "whole" if now >= self.whole_by else None

    def _shut(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to end
                self._socket.shutdown(socket.SHUT_RDWR)


class CloudClient:
    """Streams answers from an OpenAI-compatible endpoint, within deadlines, behind a circuit breaker."""

    def __init__(self, settings: CloudSettings, system_prompt: str, api_key: str | None, audit: AuditLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.system_prompt = system_prompt
        self._api_key = api_key
        self.audit = audit
        self.breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s, clock)
        self.host = _host(settings.url)
        self._endpoint = settings.url.rstrip("/") + "/chat/completions"
        # Built now when it can be used: loading the CA certificates takes a few hundred ms,
        # which the first request would otherwise pay. Building it connects nowhere.
        self._http = _http_client() if self.unavailable() is None else None

    def unavailable(self) -> str | None:
        """Why no request may go out now, or None when one may."""
        if not self.settings.enabled:
            return "the cloud is disabled (cloud.enabled)"
        if not self.settings.url:
            return "no cloud endpoint is set (cloud.url)"
        if self._api_key is None:
            return "no cloud API key"
        if not self.breaker.allows():
            return "the cloud endpoint failed recently (circuit breaker open)"
        return None

    def sentences(self, text: str, stop: threading.Event, progress: Progress | None = None) -> Iterator[str]:
        """The answer, sentence by sentence as it streams in; raises CloudError when the endpoint
        fails, and ends quietly once `stop` is set. `progress` notes each request sent and the first text."""
        pieces = self.pieces(text, stop, progress)
        return spoken_sentences(pieces if progress is None else progress.pieces(pieces), stop)

    def pieces(self, text: str, stop: threading.Event,
               progress: Progress | None = None) -> Iterator[tuple[str, str | None]]:
        """The answer's streamed (text, finish reason) pieces; each request's size goes to `progress`."""
        if (why := self.unavailable()) is not None:
            raise CloudError(why, code="unavailable")
        try:
            yield from self._retried(self._body(text), stop, progress)
        except CloudError as err:
            self.breaker.failed()
            if not self.breaker.allows():
                log.warning("%s; the fallback answers for the next %.0f s", err.message,
                            self.settings.breaker_cooldown_s)
            raise
        if not stop.is_set():
            self.breaker.succeeded()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def _body(self, text: str) -> bytes:
        """The whole request: the system prompt and the transcript, nothing else about the device."""
        body: dict[str, Any] = {"model": self.settings.model} if self.settings.model else {}
        body.update(messages=[{"role": "system", "content": self.system_prompt}, {"role": "user", "content": text}],
                    max_tokens=self.settings.max_reply_tokens, stream=True)
        return json.dumps(body, ensure_ascii=False).encode("utf-8")

    def _retried(self, body: bytes, stop: threading.Event,
                 progress: Progress | None) -> Iterator[tuple[str, str | None]]:
        started = time.monotonic()
        first_words_by, whole_by = started + self.settings.first_words_s, started + self.settings.timeout_s
        for attempt in itertools.count():
            try:
                yield from self._attempt(body, _Attempt(stop, first_words_by, whole_by), progress)
                return
            except CloudError as err:
                wait_s = self.settings.retry_backoff_s * 2 ** attempt
                if not err.retry or attempt >= self.settings.retries or time.monotonic() + wait_s >= first_words_by:
                    raise
                log.info("%s; trying again in %.2f s", err.message, wait_s)
                if stop.wait(wait_s):
                    return

    def _attempt(self, body: bytes, attempt: _Attempt,
                 progress: Progress | None = None) -> Iterator[tuple[str, str | None]]:
        try:
            request = self.audit.start(self.host, body)  # before anything leaves
        except OSError as err:
            raise CloudError(self.audit.refusal(err), code="audit") from None
        if progress is not None:
            progress.sent_bytes.append(len(body))
        outcome, detail = "answered", None
        try:
            with attempt:
                yield from self._exchange(body, attempt)
            outcome = "stopped" if attempt.cut == "stopped" else outcome
        except CloudError as err:
            outcome, detail = "failed", err.message
            raise
        except GeneratorExit:
            outcome = "stopped"
            raise
        finally:
            request.end(outcome, status=attempt.status, detail=detail)

    def _exchange(self, body: bytes, attempt: _Attempt) -> Iterator[tuple[str, str | None]]:
        headers = {"Authorization": f"Bearer {self._api_key}", "Content-Type": "application/json",
                   "Accept": "text/event-stream"}
        try:
            with self._client().stream("POST", self._endpoint, content=body, headers=headers,
                                       timeout=attempt.timeout(), extensions={"trace": attempt.trace}) as response:
                attempt.status = response.status_code
                self._check(response)
                yield from self._deltas(response, attempt)
        except httpx.HTTPError as err:
            if attempt.cut != "stopped":
                raise self._failure(err, attempt) from None

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status >= 500:
            raise CloudError(f"{self.host} answered HTTP {status}", code="server_error", retry=True)
        if status != 200:
            # The body is not quoted: some services echo part of the key in it.
            raise CloudError(f"{self.host} refused the request: HTTP {status}"
                             + (" (is the API key right?)" if status in (401, 403) else ""), code="refused")
        kind = response.headers.get("content-type", "")
        if not kind.startswith("text/event-stream"):
            raise CloudError(f"{self.host} did not stream its answer (content type {kind or 'none'!r})",
                             code="malformed")

    def _deltas(self, response: httpx.Response, attempt: _Attempt) -> Iterator[tuple[str, str | None]]:
        finished = False
        chars_left = self.settings.max_reply_chars
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, comments such as ": ping", event names
            data = line[5:].strip()
            if data == "[DONE]":
                return
            piece, finish_reason = self._delta(data)
            attempt.got_words = attempt.got_words or bool(piece)
            if len(piece) > chars_left:  # the device's own bound: a server may ignore max_tokens
                log.warning("the answer from %s reached %d characters (cloud.max_reply_chars); the rest is not "
                            "taken", self.host, self.settings.max_reply_chars)
                yield piece[:chars_left], "length"  # ends as a token limit would: a cut-off sentence is not said
                return
            chars_left -= len(piece)
            finished = finished or finish_reason is not None
            yield piece, finish_reason
        if attempt.cut is not None:
            if attempt.cut == "stopped":
                return
            raise self._failure(None, attempt)
        if not finished:
            raise CloudError(f"{self.host} ended the stream before the answer was complete", code="malformed")

    def _delta(self, data: str) -> tuple[str, str | None]:
        """The text and finish reason of one streamed chunk."""
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise CloudError(f"{self.host} sent an event that is not JSON: {data[:60]!r}", code="malformed") from None
        if isinstance(chunk, dict) and chunk.get("choices") == []:
            return "", None  # e.g. a closing usage chunk
        try:
            choice = chunk["choices"][0]
            content, finish_reason = choice["delta"].get("content") or "", choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError):
            content = finish_reason = None
        if not isinstance(content, str):
            raise CloudError(f"{self.host} sent an event that is not a chat completion chunk: {data[:60]!r}",
                             code="malformed")
        return content, finish_reason

    def _failure(self, err: httpx.HTTPError | None, attempt: _Attempt) -> CloudError:
        """What went wrong, in words; the watchdog's cut explains an error it caused."""
        if attempt.cut == "first_words":
            return CloudError(f"{self.host} said nothing within {self.settings.first_words_s} s "
                              "(cloud.first_words_s)", code="deadline")
        if attempt.cut == "whole":
            return CloudError(f"the answer from {self.host} took longer than {self.settings.timeout_s} s "
                              "(cloud.timeout_s)", code="deadline")
        if isinstance(err, httpx.ConnectError):
            return CloudError(f"cannot connect to {self.host}: {err}", code="unreachable", retry=True)
        if isinstance(err, httpx.TimeoutException):
            return CloudError(f"{self.host} did not answer in time", code="deadline")
        return CloudError(f"the connection to {self.host} failed: {err or 'closed'}", code="broken")

    def _client(self) -> httpx.Client:
        if self._http is None:
            self._http = _http_client()
        return self._http


def _http_client() -> httpx.Client:
    # No kept-alive connections: each request opens its own, so the watchdog always holds
    # the socket it may have to shut (requests are minutes apart anyway). TLS is verified
    # (httpx's default); redirects are not followed, so nothing goes to a host not configured.
    return httpx.Client(limits=httpx.Limits(max_keepalive_connections=0), follow_redirects=False)


def _host(url: str) -> str:
    """host or host:port, for the audit log (never the URL's path or query)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{parts.port}" if parts.port else host
