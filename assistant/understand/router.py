"""Who answers a request, and the answer: a deterministic skill first, then a model.

Tiers, cheapest first: `fast_path` (hassil intent templates + a skill, including the
skill that says what the assistant cannot do), `local_llm` (small talk only: the chat
model invents anything else), and `cloud` (a request no template matched that
`belongs_in_cloud` says needs more than the device knows, or live data). When the decided
tier is disabled or down, `fallback` names who answers instead, and the reply says why;
when the cloud fails during a request, before saying anything, the fallback answers and
the reply's tier says so. A request that is none of these is told plainly what the
assistant can do. The canned replies live here too, so the decision and what is said for
it are in one place.

In the follow-up after a question a skill asked ("For how long?"), the templates that
require that question's context are tried first, with what the question knew.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hassil import Intents, recognize_best

from assistant.hear.asr import without_misheard_tail
from assistant.hear.wake_phrase import alternatives, wake_names
from assistant.home.control import HomeControl
from assistant.home.own_intents import OwnIntents
from assistant.home.sentences import HOME_INTENTS, HomeCommand
from assistant.understand.cloud import CloudClient, CloudError
from assistant.understand.escalation import (
    is_small_talk,
    live_data_topic,
    looks_like_injection,
)
from assistant.understand.honesty import (
    HOME_ABILITY,
    cannot_answer_reply,
    chat_sentences,
    live_data_reply,
    not_understood,
    spoken_reason,
)
from assistant.understand.llm import LocalLlm, Progress
from assistant.understand.near_match import NearMatcher
from assistant.understand.skill_mapper import SkillMapper
from assistant.understand.skills import (
    Awaiting,
    Skill,
    SkillReply,
    SkillRequest,
    abilities,
    as_reply,
    template_text,
)
from assistant.understand.skills.timers import senseless_length_intent

FAST_PATH = "fast_path"
HOME = "home"
"""Home Assistant's own conversation agent (a request the templates miss that names an entity)."""
LOCAL_LLM = "local_llm"
CLOUD = "cloud"
OFFLINE = "offline"

OFFLINE_REPLY = "Sorry, I can't answer that on this device."
NO_ANSWER_REPLY = "Sorry, I don't have an answer to that."
CLOUD_FAILED_REPLY = "Sorry, I couldn't reach the cloud to answer that."
NOT_SMALL_TALK = "no intent matched, and it is not small talk (the chat model answers only that)"
LIVE_DATA = "needs live data"
SMALL_TALK = "small talk"
HOME_TEMPLATE = "matched a home template"
OWN_TEMPLATE = "matched one of your intents"
_CORRECTED = "matched an intent template as"
SENSELESS_LENGTH = "a length below zero or zero, which no template takes: the skill says it can't"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteDecision:
    tier: str
    intent: str | None
    fallback: str | None
    reason: str
    slots: dict[str, Any] = field(default_factory=dict)
    """The matched template's slot values, for a skill."""
    then: tuple[RouteDecision, ...] = ()
    """Further requests said in the same sentence ("... and a fish timer for 12 minutes"),
    each a skill's, done in order after this one."""

    @property
    def answered_by(self) -> str:
        return self.fallback or self.tier


class StreamedReply:
    """A model's reply, sentence by sentence as it is written (iterate it in a worker thread).
    `tier` is who wrote it, final once the sentences end: the cloud's fallback when the cloud
    failed before saying anything."""

    def __init__(self, tier: str, sentences: Callable[[StreamedReply], Iterator[str]]) -> None:
        self.tier = tier
        self.progress = Progress()
        """When the first token came, and what was sent to the cloud."""
        self._sentences = sentences(self)

    def __iter__(self) -> Iterator[str]:
        return self._sentences


class Router:
    def __init__(self, intents: Intents, skills: dict[str, Skill], llm: LocalLlm | None,
                 cloud: CloudClient | None = None, belongs_in_cloud: Callable[[str], str | None] | None = None,
                 mapper: SkillMapper | None = None, home: HomeControl | None = None,
                 own: OwnIntents | None = None, wake_words: Sequence[str] = ()) -> None:
        """`wake_words`: the configured wake phrases ("Hey Jarvis"); the name in them is taken
        as the wake phrase's remnant wherever a request may open with courtesy."""
        self.intents = intents
        self.skills = skills
        self.llm = llm
        self.cloud = cloud
        self.belongs_in_cloud = belongs_in_cloud
        """Given a request no template matched, why it needs the cloud (e.g. "a knowledge question"), or None."""
        self.mapper = mapper
        """Maps free phrasing onto a skill with the local LLM (llm.skill_mapping), or None."""
        self.home = home
        """Home Assistant (home_assistant.url), or None."""
        self.own = own
        """The user's own intents (intents.dir), or None: matched before anything else."""
        self.abilities = ((HOME_ABILITY,) if home is not None else ()) + abilities(skills)
        """What the loaded skills can do, in words ("set timers"), for "what can you do?"."""
        self.wake_words = tuple(wake_words)
        self.wake_names = wake_names(wake_words)
        """The assistant's names ("jarvis"), from the wake phrases, with Whisper's spellings of them."""
        self.near = NearMatcher(intents, skills, self.wake_names)
        """Matches a transcript that misses the templates by a misheard word."""
        self._questions = sorted({str(block.requires_context["awaiting"]) for intent in intents.intents.values()
                                  for block in intent.data if "awaiting" in block.requires_context})
        """Every question's context that some templates answer ("timer_duration")."""

    def route(self, text: str, awaiting: Awaiting | None = None) -> RouteDecision:
        """Who answers `text`; `awaiting`: the question the last reply asked, if this answers it."""
        if self.own is not None and (mine := self.own.match(text)) is not None:
            return RouteDecision(FAST_PATH, mine[0], None, OWN_TEMPLATE, mine[1])
        plain = self._template_match(text)
        if awaiting is not None and (match := self._template_match(text, awaiting)) is not None:
            if not (_has_wildcard(match) and plain is not None):  # "never mind" is not a timer's name
                slots = {**awaiting.slots, **_slots(match)}
                return RouteDecision(FAST_PATH, match.intent.name, None, "answered the question asked", slots)
        if (home := self._home_command(text, plain)) is not None:
            return home
        if (parts := self._several_requests(text, plain)) is not None:
            first, *rest = (_matched(match) for match in parts)
            return replace(first, reason="matched several intent templates", then=tuple(rest))
        if (match := plain) is not None:
            return _matched(match)
        if (intent := senseless_length_intent(text)) is not None and intent in self.skills:
            return RouteDecision(FAST_PATH, intent, None, SENSELESS_LENGTH)
        if (near := self._near_match(text)) is not None:
            return near
        if (home := self._home_conversation(text)) is not None:
            return home
        if self.mapper is not None and not looks_like_injection(text) and (mapped := self.mapper.map(text)):
            intent, slots = mapped
            return RouteDecision(LOCAL_LLM, intent, None, "the local LLM mapped it onto a skill", slots)
        if (topic := live_data_topic(text, self.wake_names)) is not None:
            return self._cloud_route(f"{LIVE_DATA} ({topic})", {"topic": topic})
        if self.belongs_in_cloud is not None and (why := self.belongs_in_cloud(text)):
            return self._cloud_route(why)
        if not is_small_talk(text, self.wake_names):
            return RouteDecision(LOCAL_LLM, None, OFFLINE, NOT_SMALL_TALK)
        if self.llm is None:
            return RouteDecision(LOCAL_LLM, None, OFFLINE, f"{SMALL_TALK}; the local LLM is disabled")
        return RouteDecision(LOCAL_LLM, None, None, SMALL_TALK)

    @staticmethod
    def wants_second_guess(first: RouteDecision) -> bool:
        """Whether Whisper's other readings are worth asking for: the transcript went to no
        skill and was no small talk."""
        return first.tier not in (FAST_PATH, HOME) and not first.reason.startswith(SMALL_TALK)

    def second_guess(self, guesses: list[str], awaiting: Awaiting | None = None) -> RouteDecision | None:
        """The route of the first of Whisper's other readings that a skill's template matches
        as it is (for a transcript `wants_second_guess` says may have one); else None."""
        for guess in guesses:
            decision = self.route(guess, awaiting)
            if decision.tier == FAST_PATH and not decision.reason.startswith(_CORRECTED):  # no guess on a guess
                return replace(decision, reason=f"{decision.reason}, as Whisper's second guess \"{guess}\"")
        return None

    def _home_command(self, text: str, plain) -> RouteDecision | None:
        """A home command Home Assistant's templates match against the exposed names, in the
        sentence or one of its clauses; only when no skill's template matched (the refusal of
        an action no skill can take aside)."""
        if self.home is None or (plain is not None and plain.intent.name != CANNOT_DO):
            return None
        if (command := self.home.match(text)) is not None:
            return RouteDecision(FAST_PATH, command.intent, None, HOME_TEMPLATE, command.as_slots())
        if (both := self._two_home_commands(text)) is not None:
            return both
        # A clause's "the light" is in the room the sentence names ("It's dark in the hallway, can
        # you put the light on?"), never the speaker's own by default: the rest may have named another.
        named = self.home.mentioned_area(text)
        for clause in request_clauses(text, self.wake_names):
            if (command := self.home.match(clause, here=named or False)) is not None:
                return RouteDecision(FAST_PATH, command.intent, None, HOME_TEMPLATE, command.as_slots())
        what = str(_slots(plain).get("what") or "") if plain is not None else ""
        if what and (name := self.home.closest_name(what)) is not None:  # a misheard name: "the kitchen lite"
            corrected = text.replace(what, name)
            if (command := self.home.match(corrected)) is not None:
                return RouteDecision(FAST_PATH, command.intent, None, f"{HOME_TEMPLATE} as \"{corrected}\"",
                                     command.as_slots())
        return None

    def _two_home_commands(self, text: str) -> RouteDecision | None:
        """Two home commands joined by "and", each whole ("turn on the kitchen light and turn off
        the fan"), or the second sharing the first's opening words ("turn on the kitchen light
        and the coffee machine"); the second is done after the first."""
        assert self.home is not None
        for joint in _AND.finditer(text):
            first = self.home.match(text[:joint.start()])
            if first is None:
                continue
            rest = text[joint.end():]
            opening = text[:joint.start()].split()
            for said in (rest, *(" ".join([*opening[:words], rest]) for words in (1, 2, 3))):
                second = self.home.match(said)
                if second is not None and (said == rest or second.intent == first.intent):
                    then = RouteDecision(FAST_PATH, second.intent, None, HOME_TEMPLATE, second.as_slots())
                    return RouteDecision(FAST_PATH, first.intent, None, "matched two home templates",
                                         first.as_slots(), then=(then,))
        return None

    def _home_conversation(self, text: str) -> RouteDecision | None:
        """A request no template matched that names an exposed entity goes to Home Assistant's
        own conversation agent (home_assistant.conversation)."""
        if self.home is None or not self.home.conversation or is_small_talk(text, self.wake_names):
            return None
        entity = self.home.mentioned_entity(text)
        if entity is None:
            return None
        return RouteDecision(HOME, None, None, f"names {entity.name!r} in your home; Home Assistant's conversation "
                             "agent answers", {"entity": entity.entity_id})

    def _several_requests(self, text: str, plain) -> list | None:
        """Two or more requests joined by "and", each a whole template's ("set a rice timer for
        18 minutes and a fish timer for 12 minutes"); tried only when the sentence as a whole
        matches nothing, or matches only by a wildcard that swallowed the "and"."""
        if plain is not None and not _wildcard_holds_and(plain):
            return None
        for joint in _AND.finditer(text):
            first = self._template_match(text[:joint.start()])
            if first is None or _has_wildcard_with_and(first) or _requires_context(first):
                continue
            rest = text[joint.end():]
            then = self._several_requests(rest, None) or [self._template_match(rest)]
            if all(m is not None and not _has_wildcard_with_and(m) and not _requires_context(m) for m in then):
                return [first, *then]
        return None

    def _near_match(self, text: str) -> RouteDecision | None:
        """A skill's template matched once a misheard word is corrected; never small talk."""
        if is_small_talk(text, self.wake_names):
            return None
        for corrected_text, intent in self.near.corrections(text):
            match = self._template_match(corrected_text)
            if match is not None and match.intent.name == intent:
                return _corrected(corrected_text, match)
        for corrected_text in self.near.first_word_corrections(text):
            match = self._template_match(corrected_text)
            if match is not None and not (match.intent_metadata or {}).get("not_mapped"):
                return _corrected(corrected_text, match)  # never a refusal from a guessed word
        return None

    def matches_template(self, text: str) -> bool:
        """Whether a skill's template matches the text, or an answer to a skill's question
        ("five minutes") does: a whole request, for the end-of-turn judge (cheap: no model).
        A wildcard that holds only small words ("we need some ...") is a request still being said."""
        if (match := self._template_match(text)) is not None:
            return not any(entity.is_wildcard and _only_small_words(str(entity.value))
                           for entity in match.entities.values())
        if self.own is not None and self.own.match(text) is not None:
            return True
        if self.home is not None and self.home.match(text) is not None:
            return True
        answers = (self._template_match(text, Awaiting(question)) for question in self._questions)
        return any(match is not None and not _has_wildcard(match) for match in answers)

    def _template_match(self, text: str, awaiting: Awaiting | None = None):
        """The best template match (most literal words, fewest wildcards); with `awaiting`, only
        the templates that answer that question. The whole text first, then without a misheard
        wake-word tail, then what follows a preamble ("I've put the rice on, so can you ...").
        Kept for the last few hundred texts: the end-of-turn judge and the route ask about the same one."""
        return self._cached_match(text, None if awaiting is None else awaiting.context)

    @functools.lru_cache(maxsize=256)  # noqa: B019 (the router lives as long as the process)
    def _cached_match(self, text: str, question: str | None):
        context = None if question is None else {"awaiting": question}
        clauses = [] if looks_like_injection(text) else request_clauses(text, self.wake_names)  # no skill from a clause of one
        whole = (text, without_misheard_tail(text))
        swallowing = []
        in_clauses = []
        for candidate in (*whole, *clauses):
            if candidate is None:
                continue
            match = recognize_best(template_text(candidate), self.intents, intent_context=context)
            if match is None or match.intent.name not in self.skills:
                continue
            if question is not None and not _requires_context(match):
                continue
            if _long_wildcard(match):
                swallowing.append(match)  # a name that swallowed a preamble: a shorter clause may do better
            elif candidate in whole:
                return match
            else:
                in_clauses.append((len(candidate.split()), match))
        if in_clauses:  # the longest clause that is a request: "I don't need the 6:30 alarm, cancel it"
            return max(in_clauses, key=lambda found: found[0])[1]
        # of the long wildcards, the one that left the most to other slots: a reminder's message
        # without the "in 45 minutes" a trailing "what you..." pushed into it
        return max(swallowing, key=_slots_filled, default=None)

    def whole_reply(self, decision: RouteDecision, context: SkillRequest) -> str | None:
        """The reply's text when it is known at once (a skill, given `context` and the matched
        slots, or a canned reply); None when a model answers."""
        reply = self.skill_reply(decision, context)
        return None if reply is None else reply.text

    def skill_reply(self, decision: RouteDecision, context: SkillRequest) -> SkillReply | None:
        """As `whole_reply`, with the question the reply asks, if any. Several requests in one
        sentence are done in order, and their replies said one after the other."""
        if self.own is not None and decision.intent in self.own.defined and decision.reason == OWN_TEMPLATE:
            return SkillReply(self.own.carry_out(decision.intent, decision.slots))
        if (home := self._home_reply(decision, context)) is not None:
            return SkillReply(home)
        if decision.intent is not None:
            context = replace(context, abilities=self.abilities,
                              wake_phrase=self.wake_words[0] if self.wake_words else "")
            replies = [as_reply(self.skills[part.intent](replace(context, slots=part.slots)))
                       for part in (decision, *decision.then)]
            asked = [reply.awaiting for reply in replies if reply.awaiting is not None]
            return SkillReply(" ".join(reply.text for reply in replies if reply.text), asked[-1] if asked else None)
        if decision.answered_by == OFFLINE or (decision.answered_by == LOCAL_LLM and self.llm is None):
            return SkillReply(self._offline_reply(decision))
        return None

    def _home_reply(self, decision: RouteDecision, context: SkillRequest) -> str | None:
        """What Home Assistant did, or says, for a home command or question (it calls Home Assistant)."""
        if self.home is None:
            return None
        if decision.intent in HOME_INTENTS:
            return " ".join(self.home.carry_out(HomeCommand.from_slots(part.intent, part.slots, self.home.house)).text
                            for part in (decision, *decision.then))
        if decision.tier == HOME:
            return self.home.converse(context.said)
        if decision.intent == CANNOT_DO and decision.slots.get("action") == "devices":
            return self.home.not_found_reply(str(decision.slots.get("what") or ""))
        return None

    def _offline_reply(self, decision: RouteDecision) -> str:
        """Why the request gets no answer, honestly: live data and cloud questions say what
        stops them; anything else that is not small talk hears what the assistant can do."""
        unavailable = decision.slots.get("unavailable")
        if decision.tier == CLOUD and unavailable:
            topic = decision.slots.get("topic")
            reason = spoken_reason(unavailable)
            return live_data_reply(topic, reason) if topic else cannot_answer_reply(reason)
        if decision.reason == NOT_SMALL_TALK:
            return not_understood(self.abilities)
        return OFFLINE_REPLY

    def streamed_reply(self, text: str, stop: threading.Event, decision: RouteDecision | None = None) -> StreamedReply:
        """A model's reply, sentence by sentence as it is generated: from the cloud when `decision`
        sends it there with no fallback, else from the local LLM."""
        if decision is not None and self._cloud_answers(decision):
            return StreamedReply(CLOUD, lambda reply: self._from_cloud(text, stop, reply))
        return StreamedReply(LOCAL_LLM, lambda reply: self._from_local_llm(text, stop, reply.progress))

    def speech_limit_s(self, decision: RouteDecision) -> float | None:
        """How long the streamed reply to `decision` may speak: cloud.max_reply_speech_s when the
        cloud answers it (the local model's tokens bound its own); None: no limit."""
        if self.cloud is not None and self._cloud_answers(decision):
            return self.cloud.settings.max_reply_speech_s
        return None

    def _cloud_answers(self, decision: RouteDecision) -> bool:
        return decision.tier == CLOUD and decision.fallback is None and self.cloud is not None

    def _from_local_llm(self, text: str, stop: threading.Event, progress: Progress | None = None) -> Iterator[str]:
        """The chat model's answer, as far as `chat_sentences` lets it be said."""
        assert self.llm is not None
        for sentence in chat_sentences(self.llm.sentences(text, stop, progress)):
            if stop.is_set():
                return
            yield sentence

    def _cloud_route(self, why: str, slots: dict[str, Any] | None = None) -> RouteDecision:
        unavailable = "the cloud is not set up" if self.cloud is None else self.cloud.unavailable()
        if unavailable is None:
            return RouteDecision(CLOUD, None, None, why, slots or {})
        return RouteDecision(CLOUD, None, self._cloud_fallback(), f"{why}; {unavailable}",
                             {**(slots or {}), "unavailable": unavailable})

    def _cloud_fallback(self) -> str:
        """Who answers what belongs in the cloud when the cloud cannot: cloud.fallback, if it can."""
        prefers_local = self.cloud is not None and self.cloud.settings.fallback == LOCAL_LLM
        return LOCAL_LLM if prefers_local and self.llm is not None else OFFLINE

    def _from_cloud(self, text: str, stop: threading.Event, reply: StreamedReply) -> Iterator[str]:
        assert self.cloud is not None
        said = False
        try:
            for sentence in self.cloud.sentences(text, stop, reply.progress):
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
            yield from self._from_local_llm(text, stop, reply.progress)
        else:
            yield CLOUD_FAILED_REPLY


CANNOT_DO = "CannotDo"


def _matched(match) -> RouteDecision:
    return RouteDecision(FAST_PATH, match.intent.name, None, "matched an intent template", _slots(match))


def _corrected(text: str, match) -> RouteDecision:
    return RouteDecision(FAST_PATH, match.intent.name, None, f"{_CORRECTED} \"{text}\"",
                         _slots(match))


def _slots(match) -> dict[str, Any]:
    return {name: _plain(entity.value) for name, entity in match.entities.items()}


_SMALL_WORDS = frozenset("a an the some more of to it that this uh um er erm like for my our".split())


def _only_small_words(text: str) -> bool:
    return all(word.strip(".,?!").lower() in _SMALL_WORDS for word in text.split())


_CLAUSE_START = re.compile(r"(?:[.,;:!?]\s+|\s+(?:so|but|then)\s+)(?=\S)", re.IGNORECASE)


@functools.cache
def _opener(names: frozenset[str]) -> re.Pattern[str]:
    """Courtesy and hesitation before a request, with the assistant's `names`."""
    return re.compile(rf"^(?:(?:so|but|and|then|oh|okay|ok|right|now|just|well|you can|please|hey|{alternatives(names)}"
                      r"|(?:can|could|would|will) you|i want you to|i'd like you to|i'd like to|i would like to|i want to"
                      r"|i can't remember|i forget|i forgot|do you know|i wonder|i was wondering)[,\s]+)+", re.IGNORECASE)
_QUESTION_START = re.compile(r"(?<=\s)(?:what|what's|how|when|which|can you|could you|would you|will you)\s+(?=\S+\s+\S)",
                             re.IGNORECASE)
"""Where a question may begin when Whisper wrote no comma before it ("I'm new to this what sort of
things can you do"): at least three words before the end."""
_CLOSER = re.compile(r"(?:[,\s]+(?:for me|for us|please|thanks|thank you|if you can|if you could|will you|would you"
                     r"|could you))+[.!?]*$", re.IGNORECASE)


def request_clauses(text: str, names: frozenset[str] = frozenset()) -> list[str]:
    """What may be the request in a longer sentence: from each clause to the end (a clause
    begins after a comma, a full stop, "so", "but" or "then"), then up to each clause's end,
    then each run of clauses in the middle, then from each question word ("what", "can you")
    inside it;
    without a leading "oh", "just", "you can" or "I'd like to", and without a closing "for
    me" or "please" ("Okay, so I've just put the rice on. Can you set a timer for 20 minutes
    for me?" -> "Can you set a timer for 20 minutes"). Not at "and": "a hundred and forty-four"."""
    opener = _opener(names)
    bounds = list(_CLAUSE_START.finditer(text))
    starts = [0] + [m.end() for m in bounds]
    clauses = [opener.sub("", text[start:]).strip() for start in starts]
    leading = [opener.sub("", text[:m.start()]).strip() for m in bounds]  # "We need milk, but ..."
    middle = [opener.sub("", text[start:m.start()]).strip()  # "I always forget, so remind me ..., what you"
              for i, start in enumerate(starts[1:], 1) for m in bounds[i:]]
    asked = [text[m.start():] for m in _QUESTION_START.finditer(text) if m.start() > 0]  # no comma written
    found = [_CLOSER.sub("", clause).strip() for clause in [text, *clauses, *leading, *middle, *asked]]
    return [clause for clause in dict.fromkeys(found) if len(clause.split()) >= 2 and clause != text]


_LONG_WILDCARD_WORDS = 5


def _long_wildcard(match) -> bool:
    return any(entity.is_wildcard and len(str(entity.value).split()) >= _LONG_WILDCARD_WORDS
               for entity in match.entities.values())


_AND = re.compile(r",?\s+and(?:\s+then|\s+also)?\s+", re.IGNORECASE)


def _wildcard_holds_and(match) -> bool:
    return any(entity.is_wildcard and " and " in f" {entity.value} " for entity in match.entities.values())


def _has_wildcard_with_and(match) -> bool:
    return _long_wildcard(match) or _wildcard_holds_and(match)


def _slots_filled(match) -> int:
    return sum(not entity.is_wildcard for entity in match.entities.values())


def _has_wildcard(match) -> bool:
    return any(entity.is_wildcard for entity in match.entities.values())


def _requires_context(match) -> bool:
    return bool(match.intent_data is not None and match.intent_data.requires_context)


def _plain(value: Any) -> Any:
    """hassil gives digits as floats ("50" -> 50.0) and words as ints; a whole number is an int."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
