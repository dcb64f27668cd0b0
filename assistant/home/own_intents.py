"""Your own intents, without Python: YAML files in `[intents] dir`, in hassil's sentence
syntax (the same as Home Assistant's custom sentences), each with a reply and one action:

    language: en
    intents:
      OpenGarage:
        data:
          - sentences: ["open the garage [door]", "(raise|lift) the garage door"]
        reply: "The garage is opening."
        action:
          http: {method: POST, url: "http://192.168.1.40/garage", json: {"open": true}}
      MovieNight:
        data:
          - sentences: ["movie night [in the] {room}"]
        reply: "Movie night in the {room}."
        action:
          mqtt: {topic: "home/{room}/scene", payload: "movie"}
      BackUp:
        data:
          - sentences: ["back up the laptop"]
        reply: "The backup is done."
        action:
          command: {argv: ["/usr/local/bin/backup", "--quick"], timeout_s: 60}
    lists:
      room: {values: ["lounge", "bedroom"]}

The reply is said only once the action succeeded (HTTP 2xx, the broker acknowledged, the
command exited 0); otherwise what failed. Slots fill the reply, the JSON body, the MQTT
topic and payload and the command's arguments (each slot one argument, never a shell).
Everything is checked at load: a problem names its file and line.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import yaml
from hassil import Intents, recognize_best
from hassil.expression import Expression, ListReference, RuleReference
from hassil.parse_expression import parse_sentence
from hassil.util import merge_dict

from assistant.config import IntentsSettings, is_local_network
from assistant.errors import ConfigError
from assistant.home.mqtt import MqttLink
from assistant.understand.audit import AuditLog

log = logging.getLogger(__name__)

ACTIONS = ("http", "mqtt", "command")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class HttpAction:
    url: str
    method: str = "POST"
    json_body: Any = None
    timeout_s: float = 5.0


@dataclass(frozen=True)
class MqttAction:
    topic: str
    payload: str = ""
    retain: bool = False
    timeout_s: float = 5.0


@dataclass(frozen=True)
class CommandAction:
    argv: tuple[str, ...]
    timeout_s: float = 10.0


Action = HttpAction | MqttAction | CommandAction
_ACTION_CLASSES: dict[str, type[Action]] = {"http": HttpAction, "mqtt": MqttAction, "command": CommandAction}


@dataclass(frozen=True)
class OwnIntent:
    name: str
    reply: str
    action: Action
    where: str
    """FILE:LINE of its definition, for messages."""


Publish = Callable[[str, str, bool, float], str | None]
"""Publishes (topic, payload, retain, timeout_s) on the MQTT link: None once the broker
acknowledged it, else why not."""


@dataclass
class OwnIntents:
    intents: Intents
    settings: IntentsSettings
    """Where they were loaded from."""
    defined: dict[str, OwnIntent] = field(default_factory=dict)
    audit: AuditLog | None = None
    """Where HTTP actions are recorded before they are sent."""
    publish: Publish | None = None
    """The MQTT link's publish, once there is one ([mqtt] url)."""

    def match(self, text: str) -> tuple[str, dict[str, Any]] | None:
        found = recognize_best(text, self.intents)
        if found is None or found.intent.name not in self.defined:
            return None
        return found.intent.name, {name: _plain(entity.value) for name, entity in found.entities.items()}

    def carry_out(self, name: str, slots: dict[str, Any]) -> str:
        """Run the intent's action; its reply once it succeeded, else what failed (worker thread)."""
        intent = self.defined[name]
        audit, publish = self.audit, self.publish
        action = intent.action
        try:
            if isinstance(action, HttpAction):
                problem = _http(action, slots, audit)
            elif isinstance(action, MqttAction):
                problem = "there is no MQTT link here (the daemon keeps one, with [mqtt] enabled)" if publish is None else publish(
                    _filled(action.topic, slots), _filled(action.payload, slots), action.retain, action.timeout_s)
            else:
                problem = _command(action, slots)
        except OSError as err:
            problem = str(err)
        if problem is not None:
            log.warning("intent %s (%s): %s", name, intent.where, problem)
            return f"Sorry, that didn't work: {problem}."
        return _filled(intent.reply, slots)


def acknowledged(link: MqttLink) -> Publish:
    """The MQTT link's publish for actions: None once the broker acknowledged the message."""
    def publish(topic: str, payload: str, retain: bool, timeout_s: float) -> str | None:
        try:
            publication = link.publish(topic, payload, retain=retain)
        except ValueError as err:  # a slot made the topic unusable ("home/#")
            return str(err)
        if publication.wait(timeout_s):
            return None
        return publication.detail or f"the MQTT broker did not acknowledge it within {timeout_s:g} s"
    return publish


def load_own_intents(settings: IntentsSettings, home_rule: Callable[[str], bool] = is_local_network) -> OwnIntents | None:
    """Every `*.yaml` in `settings.dir`, checked: ConfigError listing each problem as FILE:LINE."""
    if not settings.dir:
        return None
    folder = Path(settings.dir)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder of intents (intents.dir)")
    problems: list[str] = []
    merged: dict[str, Any] = {"language": "en", "intents": {}}
    defined: dict[str, OwnIntent] = {}
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        for data, intents in _file(path, settings, home_rule, problems):
            merge_dict(merged, data)
            for intent in intents:
                if intent.name in defined:
                    problems.append(f"{intent.where}: intent {intent.name} is also defined at {defined[intent.name].where}")
                defined[intent.name] = intent
    if problems:
        raise ConfigError("\n".join(problems))
    return OwnIntents(Intents.from_dict(merged), settings, defined)


def _file(path: Path, settings: IntentsSettings, home_rule, problems: list[str]) -> Iterator[tuple[dict, list[OwnIntent]]]:
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path}: cannot read: {err}")
        return
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problems.append(f"{path}:{mark.line + 1 if mark else 1}: not valid YAML: {getattr(err, 'problem', err)}")
        return
    lines = _lines(node)

    def where(*keys: Any) -> str:
        """FILE:LINE of a key, or of the nearest enclosing one when it is missing."""
        while keys and keys not in lines:
            keys = keys[:-1]
        return f"{path}:{lines.get(keys, 1)}"

    if not isinstance(raw, dict) or not isinstance(raw.get("intents"), dict):
        problems.append(f"{where()}: needs an `intents:` mapping (hassil's format, with a reply and an action each)")
        return
    if raw.get("language", "en") != "en":
        problems.append(f"{where('language')}: language {raw.get('language')!r}: only en is understood")
    lists = raw.get("lists") or {}
    rules = raw.get("expansion_rules") or {}
    intents: list[OwnIntent] = []
    hassil_data: dict[str, Any] = {"language": "en", "intents": {}, "lists": lists, "expansion_rules": rules}
    for name, body in raw["intents"].items():
        at = lambda *keys, name=name: where("intents", name, *keys)  # noqa: E731
        checked = _intent(str(name), body, lists, rules, settings, home_rule, at, problems)
        if checked is not None:
            intents.append(checked)
            hassil_data["intents"][name] = {"data": body["data"]}
    yield hassil_data, intents


def _intent(name: str, body: Any, lists: dict, rules: dict, settings: IntentsSettings, home_rule,
            at: Callable[..., str], problems: list[str]) -> OwnIntent | None:
    if not isinstance(body, dict):
        problems.append(f"{at()}: intent {name}: must be a mapping with data, reply and action")
        return None
    unknown = sorted(set(body) - {"data", "reply", "action"})
    if unknown:
        problems.append(f"{at(unknown[0])}: intent {name}: unknown key {unknown[0]!r}; allowed: data, reply, action")
    slots = _sentence_slots(name, body.get("data"), lists, rules, at, problems)
    reply = body.get("reply")
    if not isinstance(reply, str) or not reply.strip():
        problems.append(f"{at('reply')}: intent {name}: needs a reply (what is said once the action succeeded)")
        reply = ""
    _check_slots(reply, slots, f"{at('reply')}: intent {name}: the reply", problems)
    action = _action(name, body.get("action"), slots, settings, home_rule, at, problems)
    if slots is None or action is None:
        return None
    return OwnIntent(name, reply, action, at())


def _sentence_slots(name: str, data: Any, lists: dict, rules: dict, at, problems: list[str]) -> set[str] | None:
    """The slots the sentences can fill (lists referenced, and fixed `slots:`), or None on a problem."""
    if not isinstance(data, list) or not data:
        problems.append(f"{at('data')}: intent {name}: needs data: a list of blocks with sentences")
        return None
    slots: set[str] = set()
    ok = True
    for index, block in enumerate(data):
        sentences = block.get("sentences") if isinstance(block, dict) else None
        if not isinstance(sentences, list) or not sentences or not all(isinstance(s, str) for s in sentences):
            problems.append(f"{at('data', index)}: intent {name}: each data block needs sentences: a list of strings")
            ok = False
            continue
        slots |= set((block.get("slots") or {}).keys())
        for number, sentence in enumerate(sentences):
            try:
                expression = parse_sentence(sentence).expression
            except Exception as err:  # hassil's ParseError, or worse on nonsense
                problems.append(f"{at('data', index, 'sentences', number)}: intent {name}: {sentence!r}: {err}")
                ok = False
                continue
            for reference in _walk(expression):
                if isinstance(reference, ListReference):
                    if reference.list_name not in lists:
                        problems.append(f"{at('data', index, 'sentences', number)}: intent {name}: {sentence!r}: "
                                        f"no list {reference.list_name!r} under lists:")
                        ok = False
                    slots.add(reference.slot_name)
                elif isinstance(reference, RuleReference) and reference.rule_name not in rules:
                    problems.append(f"{at('data', index, 'sentences', number)}: intent {name}: {sentence!r}: "
                                    f"no rule <{reference.rule_name}> under expansion_rules:")
                    ok = False
    return slots if ok else None


def _action(name: str, spec: Any, slots: set[str] | None, settings: IntentsSettings, home_rule, at,
            problems: list[str]) -> Action | None:
    kinds = [kind for kind in ACTIONS if isinstance(spec, dict) and kind in spec]
    if not isinstance(spec, dict) or len(kinds) != 1 or len(spec) != 1:
        problems.append(f"{at('action')}: intent {name}: needs exactly one action: http, mqtt or command")
        return None
    kind = kinds[0]
    options = spec[kind]
    here = f"{at('action', kind)}: intent {name}: {kind}"
    if not isinstance(options, dict):
        problems.append(f"{here}: must be a mapping")
        return None
    before = len(problems)
    timeout_s = options.get("timeout_s", _ACTION_CLASSES[kind].timeout_s)  # the class's default
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or not 0.1 <= timeout_s <= 300:
        problems.append(f"{here}: timeout_s = {timeout_s!r}: must be a number of seconds from 0.1 to 300")
    if kind == "http":
        action = _http_action(options, here, home_rule, problems)
        _check_slots(json.dumps(options.get("json")), slots, f"{here}: the json body", problems)
    elif kind == "mqtt":
        action = _mqtt_action(options, here, problems)
        _check_slots(options.get("topic", "") + str(options.get("payload", "")), slots, f"{here}: the topic or payload",
                     problems)
    else:
        action = _command_action(options, here, settings, problems)
        _check_slots(" ".join(map(str, options.get("argv") or [])), slots, f"{here}: argv", problems)
    if action is None or len(problems) > before:
        return None
    return replace(action, timeout_s=float(timeout_s))


def _http_action(options: dict, here: str, home_rule, problems: list[str]) -> HttpAction | None:
    unknown = sorted(set(options) - {"url", "method", "json", "timeout_s"})
    if unknown:
        problems.append(f"{here}: unknown key {unknown[0]!r}; allowed: url, method, json, timeout_s")
    url = options.get("url")
    method = str(options.get("method", "POST")).upper()
    if method not in HTTP_METHODS:
        problems.append(f"{here}: method {options.get('method')!r}: must be one of {', '.join(HTTP_METHODS)}")
    if not isinstance(url, str) or not url:
        problems.append(f"{here}: needs a url")
        return None
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if not (parts.scheme == "https" and host or parts.scheme == "http" and home_rule(host)):
        problems.append(f"{here}: url {url!r}: must be https://, or http:// to this machine or the home network "
                        "(a private, ULA or link-local address, or a .local name)")
        return None
    return HttpAction(url, method, options.get("json"))


def _mqtt_action(options: dict, here: str, problems: list[str]) -> MqttAction | None:
    unknown = sorted(set(options) - {"topic", "payload", "retain", "timeout_s"})
    if unknown:
        problems.append(f"{here}: unknown key {unknown[0]!r}; allowed: topic, payload, retain, timeout_s")
    topic = options.get("topic")
    if not isinstance(topic, str) or not topic or any(c in topic for c in "#+\0"):
        problems.append(f"{here}: topic {topic!r}: must be a topic to publish to (no wildcards # or +)")
        return None
    payload = options.get("payload", "")
    payload = payload if isinstance(payload, str) else json.dumps(payload)
    return MqttAction(topic, payload, bool(options.get("retain", False)))


def _command_action(options: dict, here: str, settings: IntentsSettings, problems: list[str]) -> CommandAction | None:
    unknown = sorted(set(options) - {"argv", "timeout_s"})
    if unknown:
        problems.append(f"{here}: unknown key {unknown[0]!r}; allowed: argv, timeout_s")
    argv = options.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, (str, int, float)) for a in argv):
        problems.append(f"{here}: argv must be a list: the program, then its arguments (no shell)")
        return None
    if str(argv[0]) not in settings.allowed_commands:
        problems.append(f"{here}: {argv[0]!r} is not in intents.allowed_commands; add its absolute path there "
                        "to let intents run it")
        return None
    return CommandAction(tuple(str(a) for a in argv))


def _check_slots(template: str, slots: set[str] | None, what: str, problems: list[str]) -> None:
    if slots is None:
        return
    unknown = sorted(set(_SLOT.findall(template)) - slots)
    if unknown:
        problems.append(f"{what} uses {{{unknown[0]}}}, which no sentence fills"
                        + (f" (slots: {', '.join(sorted(slots))})" if slots else ""))


def _walk(expression: Expression) -> Iterator[Expression]:
    yield expression
    for item in getattr(expression, "items", None) or ():
        yield from _walk(item)


def _lines(node: yaml.Node | None, path: tuple = ()) -> dict[tuple, int]:
    """Each key path's line in the file (1-based), for messages."""
    if node is None:
        return {}
    found = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            found |= _lines(value, (*path, key.value))
            found[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found |= _lines(item, (*path, index))
    return found


def _filled(template: str, slots: dict[str, Any]) -> str:
    return _SLOT.sub(lambda m: str(slots.get(m.group(1), m.group(0))), template)


def _filled_json(value: Any, slots: dict[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _SLOT.fullmatch(value)
        return slots.get(whole.group(1), value) if whole else _filled(value, slots)  # "{level}" stays a number
    if isinstance(value, list):
        return [_filled_json(item, slots) for item in value]
    if isinstance(value, dict):
        return {key: _filled_json(item, slots) for key, item in value.items()}
    return value


def _http(action: HttpAction, slots: dict[str, Any], audit: AuditLog | None) -> str | None:
    body = None if action.json_body is None else json.dumps(_filled_json(action.json_body, slots))
    host = urllib.parse.urlsplit(action.url).netloc
    try:
        request = audit.start(host, f"{action.method} {action.url}{' ' + body if body else ''}".encode()) \
            if audit else None
    except OSError as err:
        return audit.refusal(err)
    outcome, status, problem = "failed", None, None
    try:
        response = httpx.request(action.method, action.url, content=body,
                                 headers={"Content-Type": "application/json"} if body else None,
                                 timeout=action.timeout_s, follow_redirects=False, trust_env=False)
        status = response.status_code
        if 200 <= status < 300:
            outcome = "answered"
        else:
            problem = f"{host} answered HTTP {status}"
    except httpx.TimeoutException:
        problem = f"{host} did not answer in time"
    except httpx.HTTPError as err:
        problem = f"cannot reach {host}: {type(err).__name__}"
    if request is not None:
        request.end(outcome, status=status, detail=problem)
    return problem


def _command(action: CommandAction, slots: dict[str, Any]) -> str | None:
    argv = [_filled(arg, slots) for arg in action.argv]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=action.timeout_s, stdin=subprocess.DEVNULL,
                              check=False)
    except subprocess.TimeoutExpired:
        return f"{Path(argv[0]).name} took longer than {action.timeout_s:g} s and was stopped"
    except FileNotFoundError:
        return f"{argv[0]} does not exist"
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"{Path(argv[0]).name} failed (status {done.returncode}){': ' + said[-1][:120] if said else ''}"
    return None


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value
