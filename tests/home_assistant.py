"""A real Home Assistant core for the tests: a small house on loopback, driven over REST and WebSocket.

Home Assistant 2025.4.4 needs Python 3.13 (the project's venv may be older), so it is
pip-installed once into its own venv in the user's cache (outside git), made with
pyenv's or the system's python3.13, with every requirement of the integrations it loads:
it starts with `--skip-pip`, so a start never downloads anything and a missing package
fails at once, with its name in the log, instead of half-way through a test.

Each `HomeAssistant` gets a fresh config directory, starts the core on a free loopback
port, onboards it over HTTP as the frontend does (an owner, then a long-lived token) and
furnishes the house through the registries over WebSocket (areas, aliases). It can be
stopped and started again on the same port and directory, keeping its token, its
registries and its helpers' states, to test Home Assistant going away and coming back.
Every wait has a deadline, so a test can fail but never hang; a start that fails says why
with the tail of the core's log. `bench home` (bench/home.py) runs its requests against the
same house.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from websockets.sync.client import connect

VERSION = "2025.4.4"
FRONTEND = "20250411.0"
PYTHON = "3.13"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assistant"
MARKER = "installed.json"  # written last: a venv without it is an interrupted build

# What configuration.yaml sets up besides what Home Assistant always loads (its
# DEFAULT_INTEGRATIONS: frontend, analytics, person, automation, the helpers...).
INTEGRATIONS = ("api", "websocket_api", "config", "conversation", "template", "input_boolean", "input_number",
                "climate", "generic_thermostat", "fan", "cover", "lock", "scene", "wyoming")
# The `requirements` of every manifest.json those load (with their dependencies), at the
# versions 2025.4.4 pins in package_constraints.txt. Most come with homeassistant itself;
# listing them keeps the install honest if that changes. `_check_requirements` proves the list.
REQUIREMENTS = (
    f"homeassistant=={VERSION}",
    f"home-assistant-frontend=={FRONTEND}",  # frontend
    "hassil==2.2.3",  # conversation
    "home-assistant-intents==2025.3.28",  # conversation
    "Pillow==11.1.0",  # image_upload, for person, for onboarding
    "cronsim==2.6",  # backup
    "securetar==2025.2.1",  # backup
    "ifaddr==0.2.0",  # network
    "psutil-home-assistant==0.0.1",  # hardware
    # wyoming (tests/test_serve_home_assistant.py adds it through its config flow) and what it loads
    "wyoming==1.5.4",  # wyoming
    "pymicro-vad==1.0.1",  # assist_pipeline
    "pyspeex-noise==1.0.2",  # assist_pipeline
    "ha-ffmpeg==3.2.2",  # ffmpeg, for tts
    "mutagen==1.47.0",  # tts
)
# Named by its requirements: test sessions of branches with other lists each keep their own
# install, instead of rebuilding one another's.
VENV = CACHE / (f"home-assistant-{VERSION}-py{PYTHON}-"
                + hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:8])

OWNER = {"name": "Test Owner", "username": "owner", "password": "correct horse battery staple", "language": "en"}
LOG = "hass.log"  # the core's stdout and stderr, appended across starts
TOKEN = "token.json"  # the long-lived token, kept with the config it belongs to
FURNISHED = "furnished"  # written once the registries hold the house's areas, aliases and hidden helpers
CONFIGURATION = """\
homeassistant:
  name: Test House
  latitude: 52.52
  longitude: 13.405
  elevation: 34
  unit_system: metric
  currency: EUR
  country: DE
  language: en
  time_zone: UTC
  internal_url: http://127.0.0.1:{port}

http:
  server_host: 127.0.0.1
  server_port: {port}

api:
websocket_api:
config:
conversation:

# The lights' and the switch's state, as a real device would hold it. Hidden in the entity
# registry, so neither the frontend nor Assist shows them; input_boolean is not exposed
# to Assist by default anyway.
input_boolean:
  guest_mode:
    name: Guest Mode
    icon: mdi:account-multiple
  kitchen_light_power:
    name: Kitchen Light Power
  living_room_lamp_power:
    name: Living Room Lamp Power
  hallway_light_power:
    name: Hallway Light Power
  coffee_machine_power:
    name: Coffee Machine Power
  kitchen_heater:
    name: Kitchen Heater
  floor_lamp_power:
    name: Floor Lamp Power
  bedside_lamp_power:
    name: Bedside Lamp Power
  bedroom_fan_power:
    name: Bedroom Fan Power
  front_door_locked:
    name: Front Door Locked
    initial: true

input_number:
  kitchen_light_level:
    name: Kitchen Light Level
    min: 0
    max: 255
    step: 1
  bedside_lamp_level:
    name: Bedside Lamp Level
    min: 0
    max: 255
    step: 1
  bedside_lamp_hue:
    name: Bedside Lamp Hue
    min: 0
    max: 360
    step: 0.1
  bedside_lamp_saturation:
    name: Bedside Lamp Saturation
    min: 0
    max: 100
    step: 0.1
  living_room_blinds_position:
    name: Living Room Blinds Position
    min: 0
    max: 100
    step: 1

template:
  - light:
{lights}
  - switch:
      - name: Coffee Machine
        unique_id: coffee_machine
        state: "{{{{ is_state('input_boolean.coffee_machine_power', 'on') }}}}"
        turn_on:
          - action: input_boolean.turn_on
            target: {{entity_id: input_boolean.coffee_machine_power}}
        turn_off:
          - action: input_boolean.turn_off
            target: {{entity_id: input_boolean.coffee_machine_power}}
  - sensor:
      - name: Kitchen Temperature
        unique_id: kitchen_temperature
        device_class: temperature
        state_class: measurement
        unit_of_measurement: "°C"
        state: "21.5"

# Assist answers "what's the temperature in the kitchen" from a climate entity in the area.
climate:
  - platform: generic_thermostat
    name: Kitchen Thermostat
    unique_id: kitchen_thermostat
    heater: input_boolean.kitchen_heater
    target_sensor: sensor.kitchen_temperature
    target_temp: 20
    initial_hvac_mode: heat

# Kinds of thing the modern template format lacks in 2025.4, in the legacy one.
fan:
  - platform: template
    fans:
      bedroom_fan:
        friendly_name: Bedroom Fan
        unique_id: bedroom_fan
        value_template: "{{{{ states('input_boolean.bedroom_fan_power') }}}}"
        turn_on:
          - action: input_boolean.turn_on
            target: {{entity_id: input_boolean.bedroom_fan_power}}
        turn_off:
          - action: input_boolean.turn_off
            target: {{entity_id: input_boolean.bedroom_fan_power}}

cover:
  - platform: template
    covers:
      living_room_blinds:
        friendly_name: Living Room Blinds
        unique_id: living_room_blinds
        device_class: blind
        position_template: "{{{{ states('input_number.living_room_blinds_position') | int(0) }}}}"
        open_cover:
          - action: input_number.set_value
            target: {{entity_id: input_number.living_room_blinds_position}}
            data: {{value: 100}}
        close_cover:
          - action: input_number.set_value
            target: {{entity_id: input_number.living_room_blinds_position}}
            data: {{value: 0}}
        set_cover_position:
          - action: input_number.set_value
            target: {{entity_id: input_number.living_room_blinds_position}}
            data: {{value: "{{{{ position }}}}"}}

# A lock is not exposed to Assist by default: it must be refused like Guest Mode.
lock:
  - platform: template
    name: Front Door
    unique_id: front_door
    value_template: "{{{{ is_state('input_boolean.front_door_locked', 'on') }}}}"
    lock:
      - action: input_boolean.turn_on
        target: {{entity_id: input_boolean.front_door_locked}}
    unlock:
      - action: input_boolean.turn_off
        target: {{entity_id: input_boolean.front_door_locked}}

scene:
  - name: Movie Night
    id: movie_night
    entities:
      light.living_room_lamp: "off"
      light.floor_lamp: "on"
      cover.living_room_blinds: closed
"""



@dataclass(frozen=True)
class Thing:
    """One entity of the house, as the tests expect to find it."""

    entity_id: str
    name: str
    area: str | None
    """The area's id in the area registry; None: no area."""
    aliases: tuple[str, ...] = ()
    exposed: bool = True
    """Exposed to Assist (the `conversation` assistant), as Home Assistant decides by default."""


HOUSE = (
    Thing("light.kitchen_light", "Kitchen Light", "kitchen", aliases=("ceiling light",)),
    Thing("light.living_room_lamp", "Living Room Lamp", "living_room"),
    Thing("light.hallway_light", "Hallway Light", "hallway"),
    Thing("switch.coffee_machine", "Coffee Machine", "kitchen"),
    Thing("sensor.kitchen_temperature", "Kitchen Temperature", "kitchen"),
    Thing("climate.kitchen_thermostat", "Kitchen Thermostat", "kitchen"),
    Thing("input_boolean.guest_mode", "Guest Mode", None, exposed=False),
    # For the benchmark's varied requests (bench/home.py); the kitchen keeps its one light.
    Thing("light.floor_lamp", "Floor Lamp", "living_room", aliases=("standing lamp",)),
    Thing("cover.living_room_blinds", "Living Room Blinds", "living_room"),
    Thing("light.bedside_lamp", "Bedside Lamp", "bedroom", aliases=("reading lamp",)),
    Thing("fan.bedroom_fan", "Bedroom Fan", "bedroom"),
    Thing("scene.movie_night", "Movie Night", "living_room"),
    Thing("lock.front_door", "Front Door", "hallway", exposed=False),
)
AREAS = {"kitchen": "Kitchen", "living_room": "Living Room", "hallway": "Hallway", "bedroom": "Bedroom"}
AREA_ALIASES = {"living_room": ("lounge",), "hallway": ("hall",)}
# The template entities' backing state, hidden like a real house's helpers.
HELPERS = ("input_boolean.kitchen_light_power", "input_boolean.living_room_lamp_power",
           "input_boolean.hallway_light_power", "input_boolean.coffee_machine_power",
           "input_boolean.kitchen_heater", "input_number.kitchen_light_level",
           "input_boolean.floor_lamp_power", "input_boolean.bedside_lamp_power", "input_boolean.bedroom_fan_power",
           "input_boolean.front_door_locked", "input_number.bedside_lamp_level", "input_number.bedside_lamp_hue",
           "input_number.bedside_lamp_saturation", "input_number.living_room_blinds_position")

LIGHTS = {"light.kitchen_light": ("level",), "light.living_room_lamp": (), "light.hallway_light": (),
          "light.floor_lamp": (), "light.bedside_lamp": ("level", "colour")}
"""The template lights, and what each does besides on and off (its helpers hold the level and colour)."""
LIGHT = """\
      - name: {name}
        unique_id: {key}
        state: "{{{{ is_state('input_boolean.{key}_power', 'on') }}}}"
        turn_on:
          - action: input_boolean.turn_on
            target: {{entity_id: input_boolean.{key}_power}}
        turn_off:
          - action: input_boolean.turn_off
            target: {{entity_id: input_boolean.{key}_power}}
"""
LIGHT_CAN = {
    "level": """\
        level: "{{{{ states('input_number.{key}_level') | int(0) }}}}"
        set_level:
          - action: input_number.set_value
            target: {{entity_id: input_number.{key}_level}}
            data: {{value: "{{{{ brightness }}}}"}}
          - action: input_boolean.turn_on
            target: {{entity_id: input_boolean.{key}_power}}
""",
    "colour": """\
        hs: "{{{{ (states('input_number.{key}_hue') | float(0),
                  states('input_number.{key}_saturation') | float(0)) }}}}"
        set_hs:
          - action: input_number.set_value
            target: {{entity_id: input_number.{key}_hue}}
            data: {{value: "{{{{ h }}}}"}}
          - action: input_number.set_value
            target: {{entity_id: input_number.{key}_saturation}}
            data: {{value: "{{{{ s }}}}"}}
          - action: input_boolean.turn_on
            target: {{entity_id: input_boolean.{key}_power}}
""",
}


def _lights() -> str:
    """The template lights' configuration."""
    names = {t.entity_id: t.name for t in HOUSE}
    parts = []
    for entity_id, can in LIGHTS.items():
        key = entity_id.split(".")[1]
        parts += [LIGHT.format(name=names[entity_id], key=key), *(LIGHT_CAN[c].format(key=key) for c in can)]
    return "".join(parts)


class HomeAssistantError(RuntimeError):
    """Home Assistant refused a request, or did not start."""


def python313() -> Path | None:
    """pyenv's newest 3.13, else python3.13 on PATH."""
    found = sorted(Path.home().glob(".pyenv/versions/3.13*/bin/python3.13"),
                   key=lambda p: [int(n) if n.isdigit() else 0 for n in p.parent.parent.name.split(".")])
    if found:
        return found[-1]
    on_path = shutil.which("python3.13")
    return Path(on_path) if on_path else None


def missing() -> list[str]:
    """What these tests need and this machine lacks: Python 3.13 for Home Assistant 2025.4."""
    return [] if python313() or _installed() else ["python3.13 (pyenv or the system's)"]


def _installed() -> dict | None:
    """The marker of a finished install that matches REQUIREMENTS and whose Python still exists."""
    try:
        marker = json.loads((VENV / MARKER).read_text())
    except (OSError, ValueError):
        return None
    python = VENV / "bin" / "python"
    return marker if marker.get("requirements") == list(REQUIREMENTS) and python.exists() else None


def _say(message: str) -> None:
    """A line the person running the tests sees, even under pytest's capture: an install takes minutes."""
    print(f"home assistant: {message}", file=sys.__stderr__, flush=True)


def ensure_installed(timeout_s: float = 1800) -> Path:
    """The venv with Home Assistant and its integrations' requirements; built once (about 3 minutes).

    The marker file is written last, so an interrupted build is taken as not done and
    built again from scratch; a lock keeps two test sessions from building at once."""
    if _installed():
        return VENV
    python = python313()
    if python is None:
        raise HomeAssistantError(f"Home Assistant {VERSION} needs Python {PYTHON}: install it with "
                                 f"`pyenv install {PYTHON}` or the system's package manager")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build finishes first, then we find it done
        if _installed():
            return VENV
        _say(f"installing {VERSION} with {python} into {VENV} (once, about 3 minutes)")
        started = time.monotonic()
        shutil.rmtree(VENV, ignore_errors=True)
        _run([str(python), "-m", "venv", str(VENV)], 120, "python3.13 -m venv")
        pip = [str(VENV / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        _run([*pip, "install", "--quiet", *REQUIREMENTS], timeout_s, "pip install homeassistant")
        _check_requirements()
        seconds = round(time.monotonic() - started, 1)
        (VENV / MARKER).write_text(json.dumps({"requirements": list(REQUIREMENTS), "python": str(python),
                                               "install_s": seconds}, indent=1))
        _say(f"installed in {seconds} s")
    return VENV


# Run in the HA venv: every requirement of every integration the house loads, by the
# same test Home Assistant uses before it would pip-install one.
_CHECK = """
import json, sys
from pathlib import Path
from homeassistant import bootstrap
from homeassistant.util.package import is_installed
components = Path(bootstrap.__file__).parent / "components"
todo = [*bootstrap.CORE_INTEGRATIONS, *bootstrap.DEFAULT_INTEGRATIONS, *sys.argv[1:]]
seen, absent = set(), []
while todo:
    domain = todo.pop()
    if domain in seen:
        continue
    seen.add(domain)
    manifest = json.loads((components / domain / "manifest.json").read_text())
    todo += manifest.get("dependencies", [])
    absent += [f"{r} ({domain})" for r in manifest.get("requirements", []) if not is_installed(r)]
print("\\n".join(absent))
"""


def _check_requirements() -> None:
    result = subprocess.run([str(VENV / "bin" / "python"), "-c", _CHECK, *INTEGRATIONS],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0 or result.stdout.strip():
        raise HomeAssistantError(f"requirements missing from the Home Assistant venv (add them to REQUIREMENTS): "
                                 f"{result.stdout.strip()} {result.stderr[-2000:]}")


def _run(command: list[str], timeout_s: float, what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if result.returncode != 0:
        raise HomeAssistantError(f"{what} failed ({result.returncode}): {(result.stdout + result.stderr)[-3000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HomeAssistant:
    """One Home Assistant core serving the house from `config_dir`, on loopback.

    `start()` the first time writes the configuration, onboards and furnishes the house;
    later it only starts the core again, with what the directory kept (token, registries,
    helpers' states). The process runs in its own process group; `stop()` ends it
    gracefully, as a shutdown would, so what it had not saved yet is saved."""

    def __init__(self, config_dir: Path, port: int | None = None) -> None:
        self.config_dir = Path(config_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.config_dir / LOG
        self._process: subprocess.Popen | None = None
        self.start_seconds: list[float] = []
        """How long each start took, onboarding included, in order."""
        atexit.register(self._kill)  # a session interrupted before its teardown leaves no core behind

    # --- the process

    @property
    def token(self) -> str:
        """A long-lived access token of the owner, an administrator."""
        try:
            return json.loads((self.config_dir / TOKEN).read_text())["token"]
        except (OSError, ValueError, KeyError):
            raise HomeAssistantError(f"{self.config_dir} is not onboarded yet: start() first") from None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 300) -> None:
        """Start the core and return once the API answers and the house's entities exist.

        Measured on 2 cores: the first start, onboarding and furnishing included, about 4 s
        (even right after the install); later ones about 3.5 s; a stop about 1 s."""
        if self.running:
            return
        venv = ensure_installed()
        deadline = time.monotonic() + timeout_s
        started = time.monotonic()
        first = not (self.config_dir / TOKEN).exists()
        if first:
            self.config_dir.mkdir(parents=True, exist_ok=True)
            (self.config_dir / "configuration.yaml").write_text(CONFIGURATION.format(port=self.port,
                                                                                     lights=_lights()))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
        with open(self.log, "ab") as log:
            log.write(f"\n===== start {time.strftime('%Y-%m-%d %H:%M:%S')} on port {self.port}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                [str(venv / "bin" / "python"), "-m", "homeassistant", "--config", str(self.config_dir),
                 "--skip-pip", "--log-no-color"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            if first:
                self._wait("the onboarding API", deadline, lambda: self._get("/api/onboarding", auth=False))
                self._onboard()
            self._wait("the API", deadline, lambda: self._get("/api/"))
            self._wait("the core to run", deadline, lambda: self._get("/api/config")["state"] == "RUNNING")
            for thing in HOUSE:
                self._wait(thing.entity_id, deadline, lambda t=thing: self.state(t.entity_id))
            if not (self.config_dir / FURNISHED).exists():  # the first start, or one that failed furnishing
                self._furnish()
                (self.config_dir / FURNISHED).touch()
        except BaseException:
            self.stop()
            raise
        self.start_seconds.append(round(time.monotonic() - started, 1))

    def stop(self, timeout_s: float = 60) -> None:
        """Stop the core as a shutdown would (SIGTERM: it saves its registries first); SIGKILL at the deadline."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=timeout_s)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                pass
        self._kill(process)

    def ensure_running(self) -> None:
        """Start the core again if a test stopped it (or it died)."""
        if not self.running:
            self.stop()
            self.start()

    def _kill(self, process: subprocess.Popen | None = None) -> None:
        process = process or self._process
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)  # the group: anything the core started too
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def log_tail(self, chars: int = 3000) -> str:
        """The last start's errors (a broken config sends Home Assistant into recovery mode, which
        logs much more after them), then the log's end."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        errors = [line for line in self._last_start_log().splitlines() if " ERROR " in line or " CRITICAL " in line]
        return "errors:\n" + "\n".join(errors[:20]) + f"\n...\nthe log's end:\n{text[-chars:]}"

    def _last_start_log(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[text.rfind("\n===== start"):]

    def _wait(self, what: str, deadline: float, ready) -> None:
        """Poll `ready` until it returns something true; an error or a falsy value means not yet."""
        last = None
        while True:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise HomeAssistantError(f"Home Assistant exited ({code}) while waiting for {what}; "
                                         f"log {self.log}:\n{self.log_tail()}")
            if "Activating recovery mode" in self._last_start_log():  # it would wait for a config it will not load
                raise HomeAssistantError(f"Home Assistant could not load {self.config_dir / 'configuration.yaml'}; "
                                         f"log {self.log}:\n{self.log_tail()}")
            try:
                if ready():
                    return
            except (httpx.HTTPError, HomeAssistantError, KeyError, ValueError) as error:
                last = error
            if time.monotonic() > deadline:
                raise HomeAssistantError(f"Home Assistant: {what} not ready before the deadline (last: {last!r}); "
                                         f"log {self.log}:\n{self.log_tail()}")
            time.sleep(0.2)

    # --- onboarding and the house

    def _onboard(self) -> None:
        """As the frontend does: the owner (which also creates the default areas), a token for
        them, the analytics and integration steps, then a long-lived token. The core_config
        step is left out: finishing it starts config flows for Met weather, Google Translate
        TTS, Radio Browser and a shopping list, which need the network or add entities."""
        client_id = f"{self.url}/"
        with httpx.Client(base_url=self.url, timeout=30, trust_env=False) as http:
            reply = http.post("/api/onboarding/users", json={**OWNER, "client_id": client_id})
            _ok(reply, "onboarding the owner")
            reply = http.post("/auth/token", data={"grant_type": "authorization_code", "client_id": client_id,
                                                   "code": reply.json()["auth_code"]})
            _ok(reply, "the owner's token")
            access = reply.json()["access_token"]
            headers = {"Authorization": f"Bearer {access}"}
            _ok(http.post("/api/onboarding/analytics", headers=headers, json={}), "onboarding analytics")
            _ok(http.post("/api/onboarding/integration", headers=headers,
                          json={"client_id": client_id, "redirect_uri": f"{self.url}/?auth_callback=1"}),
                "onboarding integration")
        token = self._ws_with(access, {"type": "auth/long_lived_access_token", "client_name": "assistant tests",
                                       "lifespan": 3650})
        path = self.config_dir / TOKEN
        path.write_text(json.dumps({"token": token}))
        path.chmod(0o600)

    def _furnish(self) -> None:
        """Areas, the things in them and their aliases, through the registries as a user would set them.
        Each step may be done again, so a start that failed half-way through furnishes again."""
        present = {a["area_id"] for a in self.ws({"type": "config/area_registry/list"})}
        for area_id, name in AREAS.items():
            if area_id not in present:  # onboarding made Kitchen and Living Room (and Bedroom)
                created = self.ws({"type": "config/area_registry/create", "name": name})
                assert created["area_id"] == area_id, created
            if area_id in AREA_ALIASES:
                self.ws({"type": "config/area_registry/update", "area_id": area_id,
                         "aliases": list(AREA_ALIASES[area_id])})
        for thing in HOUSE:
            self.ws({"type": "config/entity_registry/update", "entity_id": thing.entity_id, "area_id": thing.area,
                     "aliases": list(thing.aliases)})
        for helper in HELPERS:
            self.ws({"type": "config/entity_registry/update", "entity_id": helper, "hidden_by": "user"})
        # Full brightness for a start; from then on the helper keeps its value across restarts.
        for level in ("input_number.kitchen_light_level", "input_number.bedside_lamp_level"):
            self.call_service("input_number", "set_value", {"entity_id": level, "value": 255})

    # --- REST

    def _get(self, path: str, auth: bool = True):
        headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
        reply = httpx.get(self.url + path, headers=headers, timeout=10, trust_env=False)
        _ok(reply, f"GET {path}")
        return reply.json()

    def request(self, method: str, path: str, json_body: dict | None = None, timeout_s: float = 30) -> httpx.Response:
        """Any REST call, with the owner's token; the response as it came."""
        return httpx.request(method, self.url + path, json=json_body, timeout=timeout_s, trust_env=False,
                             headers={"Authorization": f"Bearer {self.token}"})

    def request_bytes(self, method: str, path: str, body: bytes = b"", headers: dict | None = None,
                      timeout_s: float = 60) -> httpx.Response:
        """A REST call with a raw body (an upload to /api/stt) and extra headers, with the owner's token."""
        return httpx.request(method, self.url + path, content=body or None, timeout=timeout_s, trust_env=False,
                             headers={"Authorization": f"Bearer {self.token}", **(headers or {})})

    def state(self, entity_id: str) -> dict:
        """GET /api/states/ENTITY_ID: {entity_id, state, attributes, last_changed, ...}."""
        return self._get(f"/api/states/{entity_id}")

    def states(self) -> list[dict]:
        return self._get("/api/states")

    def call_service(self, domain: str, service: str, data: dict | None = None) -> list[dict]:
        """POST /api/services/DOMAIN/SERVICE; returns the states it changed. Waits for the service to finish."""
        reply = self.request("POST", f"/api/services/{domain}/{service}", data or {})
        _ok(reply, f"{domain}.{service}")
        return reply.json()

    def wait_for_state(self, entity_id: str, state: str, timeout_s: float = 10) -> dict:
        """The entity's state once it is `state`: a template entity follows its helper a moment later."""
        deadline = time.monotonic() + timeout_s
        while True:
            current = self.state(entity_id)
            if current["state"] == state:
                return current
            if time.monotonic() > deadline:
                raise HomeAssistantError(f"{entity_id} is {current['state']!r}, not {state!r}, after {timeout_s} s")
            time.sleep(0.1)

    def converse(self, text: str, language: str = "en", conversation_id: str | None = None) -> dict:
        """Home Assistant's own Assist: POST /api/conversation/process. The reply's speech is in
        ["response"]["speech"]["plain"]["speech"], its kind in ["response"]["response_type"]."""
        body = {"text": text, "language": language} | ({"conversation_id": conversation_id} if conversation_id else {})
        reply = self.request("POST", "/api/conversation/process", body)
        _ok(reply, f"conversation {text!r}")
        return reply.json()

    # --- WebSocket

    def ws(self, command: dict, timeout_s: float = 30):
        """One WebSocket command (without "id") on a connection of its own; its result, or HomeAssistantError."""
        return self._ws_with(self.token, command, timeout_s)

    def _ws_with(self, token: str, command: dict, timeout_s: float = 30):
        uri = f"ws://127.0.0.1:{self.port}/api/websocket"
        with connect(uri, open_timeout=timeout_s, close_timeout=5, proxy=None, max_size=None) as socket_:
            hello = json.loads(socket_.recv(timeout=timeout_s))
            if hello.get("type") != "auth_required":
                raise HomeAssistantError(f"unexpected greeting {hello}")
            socket_.send(json.dumps({"type": "auth", "access_token": token}))
            auth = json.loads(socket_.recv(timeout=timeout_s))
            if auth.get("type") != "auth_ok":
                raise HomeAssistantError(f"WebSocket authentication failed: {auth}")
            socket_.send(json.dumps({"id": 1, **command}))
            deadline = time.monotonic() + timeout_s
            while True:
                message = json.loads(socket_.recv(timeout=max(0.1, deadline - time.monotonic())))
                if message.get("id") == 1 and message.get("type") == "result":
                    break
        if not message["success"]:
            error = message.get("error", {})
            raise HomeAssistantError(f"{command['type']}: {error.get('code')}: {error.get('message')}")
        return message["result"]

    def run_pipeline(self, command: dict, audio: bytes, chunk_bytes: int = 2048, timeout_s: float = 60) -> list[dict]:
        """`assist_pipeline/run` (without "id") fed 16 kHz mono 16-bit `audio` as binary messages,
        in real time as a satellite streams it; the run's events ({"type", "data"}) until `run-end` or `error`."""
        uri = f"ws://127.0.0.1:{self.port}/api/websocket"
        deadline = time.monotonic() + timeout_s
        events: list[dict] = []

        def receive(socket_) -> dict:
            return json.loads(socket_.recv(timeout=max(0.1, deadline - time.monotonic())))

        with connect(uri, open_timeout=timeout_s, close_timeout=5, proxy=None, max_size=None) as socket_:
            receive(socket_)
            socket_.send(json.dumps({"type": "auth", "access_token": self.token}))
            if receive(socket_).get("type") != "auth_ok":
                raise HomeAssistantError("WebSocket authentication failed")
            socket_.send(json.dumps({"id": 1, **command}))
            handler: int | None = None
            while handler is None:
                message = receive(socket_)
                if message.get("type") == "result" and not message.get("success"):
                    raise HomeAssistantError(f"assist_pipeline/run: {message.get('error')}")
                if message.get("type") == "event":
                    events.append(message["event"])
                    handler = (message["event"].get("data") or {}).get("runner_data", {}).get("stt_binary_handler_id")
            prefix = bytes([handler])
            started = time.monotonic()
            for start in range(0, len(audio), chunk_bytes):
                # at the pace a microphone gives it: Home Assistant ends a wake stream when the audio ends
                time.sleep(max(0.0, started + start / 32000 - time.monotonic()))
                socket_.send(prefix + audio[start:start + chunk_bytes])
            socket_.send(prefix)  # the end of the audio
            while not events or events[-1]["type"] not in ("run-end", "error"):
                message = receive(socket_)
                if message.get("type") == "event":
                    events.append(message["event"])
        return events

    def expose(self, entity_id: str, exposed: bool = True) -> None:
        """Expose the entity to Assist, or stop exposing it."""
        self.ws({"type": "homeassistant/expose_entity", "assistants": ["conversation"], "entity_ids": [entity_id],
                 "should_expose": exposed})

    def exposed(self) -> set[str]:
        """The entities exposed to Assist."""
        listed = self.ws({"type": "homeassistant/expose_entity/list"})["exposed_entities"]
        return {entity_id for entity_id, to in listed.items() if to.get("conversation")}

    def entity(self, entity_id: str) -> dict:
        """The entity's registry entry: area_id, aliases, hidden_by, options..."""
        return self.ws({"type": "config/entity_registry/get", "entity_id": entity_id})

    def __enter__(self) -> HomeAssistant:
        self.start()
        return self

    def __exit__(self, *_) -> None:
        self.stop()


def _ok(reply: httpx.Response, what: str) -> None:
    if reply.status_code >= 300:
        raise HomeAssistantError(f"{what}: HTTP {reply.status_code}: {reply.text[:500]}")


def describe() -> str:
    """The house, one line a thing, for a failing test's message or a README."""
    return "\n".join(f"{t.entity_id:28} {t.name:20} {t.area or '-':12} {', '.join(t.aliases) or '-':14} "
                     f"{'exposed' if t.exposed else 'not exposed'}" for t in HOUSE)


if __name__ == "__main__":  # python tests/home_assistant.py: install, start, print the house, stop
    import tempfile

    with tempfile.TemporaryDirectory() as scratch, HomeAssistant(Path(scratch)) as house:
        print(f"{house.url} started in {house.start_seconds[-1]} s\n{describe()}")
