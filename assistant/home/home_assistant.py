"""Home Assistant's REST and WebSocket APIs, every request bounded in time and audited.

REST does what a turn needs (call a service, read a state, ask the conversation agent);
the WebSocket reads the registries (areas, devices, entities and what is exposed to
Assist) and tells when they change. Every message is written to the audit log before it
is sent; the token is never recorded, logged or shown.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import ClientConnection, connect

from assistant.config import HomeAssistantSettings, is_local_network
from assistant.errors import ConfigError, StageError
from assistant.home.house import Area, HomeEntity, House
from assistant.understand.audit import AuditedRequest, AuditLog
from assistant.understand.secrets import SecretSource

log = logging.getLogger(__name__)

CREDENTIAL_NAME = "home-assistant-token"
"""The systemd credential the token is read from: `LoadCredential=home-assistant-token:/path`."""

REGISTRY_EVENTS = ("entity_registry_updated", "area_registry_updated", "device_registry_updated")
"""Events after which what the assistant may control is read again (exposing an entity to
Assist updates its entity registry entry)."""


class HomeAssistantError(StageError):
    """Home Assistant could not be reached, refused the token, stalled, or answered nonsense.
    `code`: unreachable, unauthorized, timeout, refused (a 4xx/5xx), not_in_home (the
    address resolved outside the home network over plain HTTP), audit, or bad_reply."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__("home_assistant", message, code=code)


class HomeAssistantClient:
    """One Home Assistant; thread-safe (httpx's client is), each call within `timeout_s`."""

    def __init__(self, settings: HomeAssistantSettings, token: str, audit: AuditLog) -> None:
        self.settings = settings
        self.audit = audit
        self._token = token
        parts = urllib.parse.urlsplit(settings.url.rstrip("/"))
        self.base_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.host = parts.netloc.rsplit("@", 1)[-1]
        self._hostname = parts.hostname or ""
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._plain_http = parts.scheme == "http"
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        self.websocket_url = urllib.parse.urlunsplit((ws_scheme, parts.netloc, f"{parts.path}/api/websocket", "", ""))
        self._http = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"},
                                  timeout=settings.timeout_s, follow_redirects=False, trust_env=False)
        self._address_checked_at = 0.0

    def close(self) -> None:
        self._http.close()

    # REST: what a turn does

    def call_service(self, domain: str, service: str, data: dict[str, Any], deadline: float) -> list[dict]:
        """Call a service; the states it changed while it ran."""
        changed = self._request("POST", f"/api/services/{domain}/{service}", data, deadline)
        return changed if isinstance(changed, list) else []

    def state(self, entity_id: str, deadline: float) -> dict[str, Any]:
        state = self._request("GET", f"/api/states/{entity_id}", None, deadline)
        if not isinstance(state, dict) or "state" not in state:
            raise HomeAssistantError(f"Home Assistant sent no state for {entity_id}", code="bad_reply")
        return state

    def converse(self, text: str, language: str, deadline: float) -> str:
        """What Home Assistant's own conversation agent answers (it acts itself; the words are its)."""
        answer = self._request("POST", "/api/conversation/process", {"text": text, "language": language}, deadline)
        try:
            return str(answer["response"]["speech"]["plain"]["speech"]).strip()
        except (KeyError, TypeError):
            raise HomeAssistantError("Home Assistant's conversation agent sent no answer", code="bad_reply") from None

    def _request(self, method: str, path: str, body: dict[str, Any] | None, deadline: float) -> Any:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HomeAssistantError("Home Assistant did not answer in time", code="timeout")
        self._check_address()
        sent = json.dumps(body, ensure_ascii=False) if body is not None else ""
        request = self._audited(f"{method} {path}" + (f" {sent}" if sent else ""))
        outcome, status, detail = "failed", None, None
        try:
            response = self._http.request(method, path, content=sent.encode() if sent else None,
                                          headers={"Content-Type": "application/json"} if sent else None,
                                          timeout=remaining)
            status = response.status_code
            if status == 401:
                raise HomeAssistantError("Home Assistant refused the token (HTTP 401)", code="unauthorized")
            if status >= 400:
                raise HomeAssistantError(f"Home Assistant refused {method} {path} (HTTP {status})", code="refused")
            outcome = "answered"
            return response.json() if response.content else None
        except httpx.TimeoutException:
            detail = "timed out"
            raise HomeAssistantError("Home Assistant did not answer in time", code="timeout") from None
        except httpx.HTTPError as err:
            detail = type(err).__name__
            raise HomeAssistantError(f"cannot reach Home Assistant at {self.host}: {err}", code="unreachable") from None
        except ValueError:
            detail = "not JSON"
            raise HomeAssistantError("Home Assistant's answer was not JSON", code="bad_reply") from None
        finally:
            request.end(outcome, status=status, detail=detail)

    # WebSocket: what the assistant may control, and when that changes

    def learn(self) -> House:
        """Read the areas, entities and their exposure to Assist (one connection, a few seconds at most)."""
        with self._websocket() as ws:
            return self._read_house(ws)

    def watch(self, on_house: Callable[[House], None], stopping: Callable[[], bool]) -> None:
        """Read the house, then again each time a registry changes, calling `on_house` each time,
        until `stopping()` or the connection fails (HomeAssistantError)."""
        with self._websocket() as ws:
            on_house(self._read_house(ws))
            for event_type in REGISTRY_EVENTS:
                self._command(ws, {"type": "subscribe_events", "event_type": event_type})
            while not stopping():
                if self._event_arrived(ws, wait_s=1.0):
                    while self._event_arrived(ws, wait_s=0.5):  # a burst of changes: read the house once
                        pass
                    on_house(self._read_house(ws))

    def _read_house(self, ws: ClientConnection) -> House:
        areas = self._command(ws, {"type": "config/area_registry/list"})
        devices = self._command(ws, {"type": "config/device_registry/list"})
        states = self._command(ws, {"type": "get_states"})
        entity_ids = [state["entity_id"] for state in states if isinstance(state, dict) and "entity_id" in state]
        entries = self._command(ws, {"type": "config/entity_registry/get_entries", "entity_ids": entity_ids})
        exposure = self._admin_command(ws, {"type": "homeassistant/expose_entity/list"}, {})
        expose_new = self._admin_command(ws, {"type": "homeassistant/expose_new_entities/get",
                                              "assistant": "conversation"}, {"expose_new": True})
        config = self._command(ws, {"type": "get_config"})
        return house_from(areas, [entry for entry in (entries or {}).values() if entry], devices, exposure, states,
                          str(config.get("language") or "en"), bool(expose_new.get("expose_new", True)))

    def _admin_command(self, ws: ClientConnection, message: dict[str, Any], otherwise: Any) -> Any:
        """A command only an administrator's token may send: `otherwise` when the token's user is not one."""
        try:
            return self._command(ws, message)
        except HomeAssistantError as err:
            if err.code != "refused":
                raise
            return otherwise

    @contextlib.contextmanager
    def _websocket(self) -> Iterator[ClientConnection]:
        """A connection, authenticated; closed when the block ends."""
        self._check_address(force=True)
        deadline = time.monotonic() + max(self.settings.timeout_s, 5.0)
        try:
            ws = connect(self.websocket_url, open_timeout=self.settings.timeout_s, close_timeout=1.0,
                         max_size=64 * 1024 * 1024)
        except (OSError, WebSocketException, TimeoutError) as err:
            raise HomeAssistantError(f"cannot reach Home Assistant at {self.host}: {err}", code="unreachable") from None
        with ws:
            self._expect(ws, "auth_required", deadline)
            request = self._audited('WebSocket {"type": "auth", "access_token": "(the token)"}')
            ws.send(json.dumps({"type": "auth", "access_token": self._token}))
            reply = self._receive(ws, deadline)
            request.end("answered" if reply.get("type") == "auth_ok" else "failed")
            if reply.get("type") != "auth_ok":
                raise HomeAssistantError("Home Assistant refused the token", code="unauthorized")
            ws.next_id = 1  # type: ignore[attr-defined]
            yield ws

    def _command(self, ws: ClientConnection, message: dict[str, Any]) -> Any:
        deadline = time.monotonic() + max(self.settings.timeout_s, 5.0)  # a registry can be large
        message = {"id": ws.next_id, **message}  # type: ignore[attr-defined]
        ws.next_id += 1  # type: ignore[attr-defined]
        text = json.dumps(message)
        request = self._audited(f"WebSocket {text}")
        try:
            ws.send(text)
            while True:
                reply = self._receive(ws, deadline)
                if reply.get("id") == message["id"] and reply.get("type") == "result":
                    break
        except HomeAssistantError as err:
            request.end("failed", detail=err.code)
            raise
        if not reply.get("success"):
            request.end("failed", detail=str((reply.get("error") or {}).get("code")))
            raise HomeAssistantError(f"Home Assistant refused {message['type']}: "
                                     f"{(reply.get('error') or {}).get('message')}", code="refused")
        request.end("answered")
        return reply.get("result")

    def _event_arrived(self, ws: ClientConnection, wait_s: float) -> bool:
        try:
            message = json.loads(ws.recv(timeout=wait_s))
        except TimeoutError:
            return False
        except (WebSocketException, OSError, ValueError) as err:
            raise HomeAssistantError(f"lost the connection to Home Assistant: {err}", code="unreachable") from None
        return isinstance(message, dict) and message.get("type") == "event"

    def _expect(self, ws: ClientConnection, kind: str, deadline: float) -> None:
        if self._receive(ws, deadline).get("type") != kind:
            raise HomeAssistantError(f"{self.host} does not speak Home Assistant's WebSocket API", code="bad_reply")

    def _receive(self, ws: ClientConnection, deadline: float) -> dict[str, Any]:
        try:
            message = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        except TimeoutError:
            raise HomeAssistantError("Home Assistant did not answer in time", code="timeout") from None
        except (WebSocketException, OSError, ValueError) as err:
            raise HomeAssistantError(f"lost the connection to Home Assistant: {err}", code="unreachable") from None
        return message if isinstance(message, dict) else {}

    # The rules every request follows

    def _check_address(self, force: bool = False) -> None:
        """Plain HTTP goes only to an address inside the home: a name ("homeassistant.local") is
        checked once resolved, at each (re)connection of the WebSocket and then each minute."""
        if not self._plain_http or (not force and time.monotonic() - self._address_checked_at < 60.0):
            return
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(self._hostname, self._port, type=socket.SOCK_STREAM)}
        except OSError as err:
            raise HomeAssistantError(f"cannot find {self._hostname}: {err}", code="unreachable") from None
        outside = sorted(address for address in addresses if not is_local_network(address.split("%")[0]))
        if outside:
            raise HomeAssistantError(f"{self._hostname} is {outside[0]}, outside the home network: plain http "
                                     "is only for this machine and the home network; use https", code="not_in_home")
        self._address_checked_at = time.monotonic()

    def _audited(self, text: str) -> AuditedRequest:
        try:
            return self.audit.start(self.host, text.encode("utf-8"))
        except OSError as err:
            raise HomeAssistantError(self.audit.refusal(err), code="audit") from None


def house_from(areas: list[dict], entries: list[dict], devices: list[dict], exposure: dict,
               states: list[dict], language: str = "en", expose_new: bool = True) -> House:
    """The house as the registries describe it: names and aliases from the entity registry
    (else the state's friendly name), areas from the entity (else its device), exposure to
    Assist as Home Assistant decides it (`exposed_to_assist`)."""
    listed = {entity_id: bool(assistants.get("conversation"))
              for entity_id, assistants in (exposure or {}).get("exposed_entities", {}).items()}
    device_area = {device["id"]: device.get("area_id") for device in devices or []}
    entry_of = {entry["entity_id"]: entry for entry in entries or []}
    house_entities = []
    for state in states or []:
        entity_id = state.get("entity_id", "")
        entry = entry_of.get(entity_id, {})
        attributes = state.get("attributes") or {}
        name = entry.get("name") or attributes.get("friendly_name") or entry.get("original_name") or entity_id
        device_class = entry.get("device_class") or entry.get("original_device_class") or attributes.get("device_class")
        house_entities.append(HomeEntity(
            entity_id=entity_id, name=str(name), aliases=tuple(str(a) for a in entry.get("aliases") or () if a),
            area_id=entry.get("area_id") or device_area.get(entry.get("device_id")),
            exposed=exposed_to_assist(entity_id, entry, device_class, listed, expose_new),
            device_class=device_class))
    house_areas = tuple(Area(area["area_id"], str(area.get("name") or area["area_id"]),
                             tuple(str(a) for a in area.get("aliases") or () if a)) for area in areas or [])
    return House(tuple(house_entities), house_areas, language.split("-")[0].lower())


DEFAULT_EXPOSED_DOMAINS = frozenset({"climate", "cover", "fan", "humidifier", "light", "media_player", "scene",
                                     "switch", "todo", "vacuum", "water_heater"})
DEFAULT_EXPOSED_DEVICE_CLASSES = {
    "binary_sensor": frozenset({"door", "garage_door", "lock", "motion", "opening", "presence", "window"}),
    "sensor": frozenset({"aqi", "carbon_monoxide", "carbon_dioxide", "humidity", "pm10", "pm25", "temperature",
                         "volatile_organic_compounds"}),
}


def exposed_to_assist(entity_id: str, entry: dict, device_class: str | None, listed: dict[str, bool],
                      expose_new: bool) -> bool:
    """Home Assistant's own rule (homeassistant/exposed_entities.py): the user's setting for
    Assist if there is one; else, when new entities are exposed, the default: lights,
    switches, covers and the like, and sensors of a few classes (temperature, humidity, doors),
    never a hidden entity or a configuration or diagnostic one."""
    setting = ((entry.get("options") or {}).get("conversation") or {}).get("should_expose")
    if setting is not None:
        return bool(setting)
    if entity_id in listed:
        return listed[entity_id]
    if not expose_new or entry.get("hidden_by") or entry.get("entity_category"):
        return False
    domain = entity_id.split(".", 1)[0]
    return domain in DEFAULT_EXPOSED_DOMAINS or device_class in DEFAULT_EXPOSED_DEVICE_CLASSES.get(domain, ())


def load_token(settings: HomeAssistantSettings, environ: Mapping[str, str] = os.environ) -> str:
    """The long-lived token from `token_file`, else the systemd credential, else `token_env`;
    a ConfigError naming where it was looked for when there is none."""
    token = SecretSource("Home Assistant token", settings.token_file, "home_assistant.token_file", CREDENTIAL_NAME,
                         settings.token_env, "home_assistant.token_env").read(environ)
    if token is None:
        raise ConfigError(f"[home_assistant] url is set, but there is no token: put a long-lived access token in "
                          f"token_file, the systemd credential {CREDENTIAL_NAME}, or ${settings.token_env}")
    return token
