"""Who answers a request, and the answer: a deterministic skill first, then a model.

Tiers, cheapest first: `fast_path` (hassil intent templates + a skill), `local_llm`,
and `cloud` (a request no template matched that `belongs_in_cloud` says needs more than
the device knows). When the decided tier is disabled or down, `fallback` names who
answers instead; when the cloud fails during a request, before saying anything, the
fallback answers and the reply's tier says so. The canned replies live here too, so the
decision and what is said for it are in one place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from hassil import Intents, recognize

from .asr import without_misheard_tail
from .cloud import CloudClient, CloudError
from .escalation import looks_like_injection
from .llm import LocalLlm
from .skill_mapper import SkillMapper
from .skills import Skill, SkillRequest, template_text

FAST_PATH = "fast_path"
LOCAL_LLM = "local_llm"
CLOUD = "cloud"
OFFLINE = "offline"

OFFLINE_REPLY = "Sorry, I can't answer that on this device."
NO_ANSWER_REPLY = "Sorry, I don't have an answer to that."

log = logging.getLogger(__name__)


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


class StreamedReply:
    """A model's reply, sentence by sentence as it is written (iterate it in a worker thread).
    `tier` is who wrote it, final once the sentences end: the cloud's fallback when the cloud
    failed before saying anything."""

    def __init__(self, tier: str, sentences: Callable[[StreamedReply], Iterator[str]]) -> None:
        self.tier = tier
        self._sentences = sentences(self)

    def __iter__(self) -> Iterator[str]:
        return self._sentences


class Router:
    def __init__(self, intents: Intents, skills: dict[str, Skill], llm: LocalLlm | None,
                 cloud: CloudClient | None = None, belongs_in_cloud: Callable[[str], str | None] | None = None,
                 mapper: SkillMapper | None = None) -> None:
        self.intents = intents
        self.skills = skills
        self.llm = llm
        self.cloud = cloud
        self.belongs_in_cloud = belongs_in_cloud
        """Given a request no template matched, why it needs the cloud (e.g. "a knowledge question"), or None."""
        self.mapper = mapper
        """Maps free phrasing onto a skill with the local LLM (llm.skill_mapping), or None."""

    def route(self, text: str) -> RouteDecision:
        if (match := self._template_match(text)) is not None:
            slots = {name: _plain(entity.value) for name, entity in match.entities.items()}
            return RouteDecision(FAST_PATH, match.intent.name, None, "matched an intent template", slots)
        if self.mapper is not None and not looks_like_injection(text) and (mapped := self.mapper.map(text)):
            intent, slots = mapped
            return RouteDecision(LOCAL_LLM, intent, None, "the local LLM mapped it onto a skill", slots)
        if self.belongs_in_cloud is not None and (why := self.belongs_in_cloud(text)):
            return self._cloud_route(why)
        if self.llm is None:
            return RouteDecision(LOCAL_LLM, None, OFFLINE, "no intent matched; the local LLM is disabled")
        return RouteDecision(LOCAL_LLM, None, None, "no intent matched")

    def matches_template(self, text: str) -> bool:
        """Whether a skill's template matches the text (cheap: no model)."""
        return self._template_match(text) is not None

    def _template_match(self, text: str):
        for candidate in (text, without_misheard_tail(text)):
            match = None if candidate is None else recognize(template_text(candidate), self.intents)
            if match is not None and match.intent.name in self.skills:
                return match
        return None

    def whole_reply(self, decision: RouteDecision, context: SkillRequest) -> str | None:
        """The reply when it is known at once (a skill, given `context` and the matched slots, or a
        canned reply); None when a model answers."""
        if decision.intent is not None:
            return self.skills[decision.intent](replace(context, slots=decision.slots))
        if decision.answered_by == OFFLINE or (decision.answered_by == LOCAL_LLM and self.llm is None):
            return OFFLINE_REPLY
        return None

    def streamed_reply(self, text: str, stop: threading.Event, decision: RouteDecision | None = None) -> StreamedReply:
        """A model's reply, sentence by sentence as it is generated: from the cloud when `decision`
        sends it there with no fallback, else from the local LLM."""
        if decision is not None and decision.tier == CLOUD and decision.fallback is None and self.cloud is not None:
            return StreamedReply(CLOUD, lambda reply: self._from_cloud(text, stop, reply))
        return StreamedReply(LOCAL_LLM, lambda reply: self._from_local_llm(text, stop))

    def _from_local_llm(self, text: str, stop: threading.Event) -> Iterator[str]:
        assert self.llm is not None
        said = False
        for sentence in self.llm.sentences(text, stop):
            said = True
            yield sentence
        if not said and not stop.is_set():
            yield NO_ANSWER_REPLY

    def _cloud_route(self, why: str) -> RouteDecision:
        unavailable = "the cloud is not set up" if self.cloud is None else self.cloud.unavailable()
        if unavailable is None:
            return RouteDecision(CLOUD, None, None, why)
        return RouteDecision(CLOUD, None, self._cloud_fallback(), f"{why}; {unavailable}")

    def _cloud_fallback(self) -> str:
        """Who answers what belongs in the cloud when the cloud cannot: cloud.fallback, if it can."""
        prefers_local = self.cloud is not None and self.cloud.settings.fallback == LOCAL_LLM
        return LOCAL_LLM if prefers_local and self.llm is not None else OFFLINE

    def _from_cloud(self, text: str, stop: threading.Event, reply: StreamedReply) -> Iterator[str]:
        assert self.cloud is not None
        said = False
        try:
            for sentence in self.cloud.sentences(text, stop):
                said = True
                yield sentence
            if said or stop.is_set():
                return
            yield NO_ANSWER_REPLY
            return
        except CloudError as err:
            if said:  # what was heard cannot be taken back; the answer ends there
                log.warning("the cloud answer was cut short: %s", err.message)
                return
            reply.tier = self._cloud_fallback()
            log.warning("%s; %s answers instead", err.message, reply.tier)
        if reply.tier == LOCAL_LLM:
            yield from self._from_local_llm(text, stop)
        else:
            yield OFFLINE_REPLY


def _plain(value: Any) -> Any:
    """hassil gives digits as floats ("50" -> 50.0) and words as ints; a whole number is an int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
