"""Decides which tier answers a request: a deterministic skill first, then the local LLM.

Tiers, cheapest first: `fast_path` (hassil intent templates + a skill), `local_llm`,
and `cloud` (not chosen yet in this first form). When the decided tier is disabled,
`fallback` names who answers instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from hassil import Intents, recognize

from .skills import clock

FAST_PATH = "fast_path"
LOCAL_LLM = "local_llm"
CLOUD = "cloud"
OFFLINE = "offline"

Skill = Callable[[datetime], str]

SKILLS: dict[str, Skill] = {
    "GetTime": clock.time_reply,
    "GetDate": clock.date_reply,
}

OFFLINE_REPLY = "Sorry, I can't answer that on this device."


@dataclass(frozen=True)
class RouteDecision:
    tier: str
    intent: str | None
    fallback: str | None
    reason: str

    @property
    def answered_by(self) -> str:
        return self.fallback or self.tier


def load_intents() -> Intents:
    with resources.files("assistant.skills").joinpath("intents.yaml").open(encoding="utf-8") as f:
        return Intents.from_yaml(f)


class Router:
    def __init__(self, intents: Intents, llm_enabled: bool) -> None:
        self.intents = intents
        self.llm_enabled = llm_enabled

    def route(self, text: str) -> RouteDecision:
        match = recognize(text, self.intents)
        if match is not None and match.intent.name in SKILLS:
            return RouteDecision(FAST_PATH, match.intent.name, None, "matched an intent template")
        if not self.llm_enabled:
            return RouteDecision(LOCAL_LLM, None, OFFLINE, "no intent matched; the local LLM is disabled")
        return RouteDecision(LOCAL_LLM, None, None, "no intent matched")

    @staticmethod
    def run_skill(intent: str, now: datetime) -> str:
        return SKILLS[intent](now)
