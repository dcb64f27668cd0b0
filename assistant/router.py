"""Who answers a request, and the answer: a deterministic skill first, then the local LLM.

Tiers, cheapest first: `fast_path` (hassil intent templates + a skill), `local_llm`,
and `cloud` (not chosen yet in this first form). When the decided tier is disabled,
`fallback` names who answers instead. The canned replies live here too, so the decision
and what is said for it are in one place.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from hassil import Intents, recognize

from .llm import LocalLlm
from .skills import Skill, SkillRequest

FAST_PATH = "fast_path"
LOCAL_LLM = "local_llm"
CLOUD = "cloud"
OFFLINE = "offline"

OFFLINE_REPLY = "Sorry, I can't answer that on this device."
NO_ANSWER_REPLY = "Sorry, I don't have an answer to that."


@dataclass(frozen=True)
class RouteDecision:
    tier: str
    intent: str | None
    fallback: str | None
    reason: str
    slots: dict[str, Any] = field(default_factory=dict)
    """The matched template's slot values, for a skill."""

    @property
    def answered_by(self) -> str:
        return self.fallback or self.tier


class Router:
    def __init__(self, intents: Intents, skills: dict[str, Skill], llm: LocalLlm | None) -> None:
        self.intents = intents
        self.skills = skills
        self.llm = llm

    def route(self, text: str) -> RouteDecision:
        match = recognize(text, self.intents)
        if match is not None and match.intent.name in self.skills:
            slots = {name: _plain(entity.value) for name, entity in match.entities.items()}
            return RouteDecision(FAST_PATH, match.intent.name, None, "matched an intent template", slots)
        if self.llm is None:
            return RouteDecision(LOCAL_LLM, None, OFFLINE, "no intent matched; the local LLM is disabled")
        return RouteDecision(LOCAL_LLM, None, None, "no intent matched")

    def whole_reply(self, decision: RouteDecision, context: SkillRequest) -> str | None:
        """The reply when it is known at once (a skill, given `context` and the matched slots, or a
        canned reply); None when a model answers."""
        if decision.intent is not None:
            return self.skills[decision.intent](replace(context, slots=decision.slots))
        if decision.answered_by == OFFLINE or self.llm is None:
            return OFFLINE_REPLY
        return None

    def streamed_reply(self, text: str, stop: threading.Event) -> Iterator[str]:
        """A model's reply, sentence by sentence as it is generated (call it in a worker thread)."""
        assert self.llm is not None
        said = False
        for sentence in self.llm.sentences(text, stop):
            said = True
            yield sentence
        if not said and not stop.is_set():
            yield NO_ANSWER_REPLY


def _plain(value: Any) -> Any:
    """hassil gives digits as floats ("50" -> 50.0) and words as ints; a whole number is an int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
