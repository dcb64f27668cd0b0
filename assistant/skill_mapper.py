"""Free phrasing onto the skills: the local LLM names one allowed skill with valid slots, or none.

The templates catch the phrasings someone wrote down; "could you go a bit louder" or "what
do you get when you add 45 and 55" slip past them. Here the local model reads the request
and answers with JSON confined to the skills that exist: an intent with a handler, its own
slot names in order, digits for numbers, a list's `out` values, a short text for a
wildcard, or `{"intent": "none"}` for small talk and questions.

Everything the model is told and allowed comes from the loaded hassil `Intents`: the
slots each intent's templates use and their lists' types, which slots every template
requires, one example per intent rendered from its first template, and the distinctive
words of its templates. So a new skill needs no change here.

Guards, because a skill run by mistake is worse than a question left to the chat model:
- the model is asked only about intents whose template words the request shares (none
  shared: no model call at all);
- decoding is confined to the allowed answers (`Answers`), so an unknown intent, a slot
  of another intent, or text outside a value cannot be written;
- the answer is checked again in Python: the allow-list, types, ranges, and values the
  request really holds (a number said in digits or words, a list value's words, a
  wildcard's words); anything else gives None.
Nothing here can do more than name a skill: the handlers are the only effects.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hassil import Intents
from hassil.expression import (Alternative, Expression, Group, ListReference, Permutation, RuleReference,
                               Sentence, TextChunk)
from hassil.intents import IntentData, RangeSlotList, SlotList, TextSlotList, WildcardSlotList

log = logging.getLogger(__name__)

NONE = "none"
"""The model's answer when the request is not a skill."""
MAX_TEXT_CHARS = 200
"""Longer requests are cut: a spoken command is short, and this bounds the mapping time."""
MAX_WILDCARD_CHARS = 40
_MAX_OUTPUT_TOKENS = 48
_REQUEST_ROOM_TOKENS = 160
"""Context left after the mapper's prompt for a request (MAX_TEXT_CHARS) and its answer."""
_CANDIDATES = 40
"""How many of the model's likeliest tokens are tried against the allowed answers at each step."""
_RULE_DEPTH = 16
_WORD = re.compile(r"[a-z0-9']+")
# Words that say nothing about which skill is meant (the wake phrase, courtesy, grammar).
_FILLER = frozenset("""
a about am an and any are at be by can could did do does for from get got had has have hey how i i'd i'll
i'm in is it it's jarvis let me my of oh ok okay on or our please so some that that's the then there this
to up us was what what's whats when where which who will with would you your
tell make give let know now right all much just need want
""".split())
# Few-shot examples that are no skill, shown after the skills' own examples.
NONE_EXAMPLES = ("why is the sky blue", "what time does the bakery close", "set the table for four people",
                 "turn left at the next corner", "how long is the river nile", "what's the name of that song",
                 "say something nice about cats")
# Example values for the skills' slots: numbers as Whisper writes them, a word for a wildcard.
_EXAMPLE_NUMBERS = (30, 5, 12, 45, 8, 20, 3)
_EXAMPLE_WORD = "pasta"


@dataclass(frozen=True)
class SlotSpec:
    """One slot an intent's templates fill, and the values it may take."""

    name: str
    kind: str
    """`integer` (a range list), `number` (a range with fractions or a multiplier), `enum`
    (a values list: its `out` values) or `text` (a wildcard)."""
    required: bool
    """Every template of the intent fills it."""
    minimum: float | None = None
    maximum: float | None = None
    step: int = 1
    values: tuple[Any, ...] = ()
    """An enum's allowed values."""
    words: dict[Any, str] = field(default_factory=dict)
    """An enum value's first spoken form ("+": "plus"), for the example."""
    said_as: dict[Any, frozenset[str]] = field(default_factory=dict)
    """An enum value's words in its list ("+": plus, add); one of them, or the value, must be said."""

    def describe(self) -> str:
        if self.kind in ("integer", "number"):
            shown = f"{_number_text(self.minimum)}-{_number_text(self.maximum)}"
        elif self.kind == "enum":
            shown = "|".join(json.dumps(v) for v in self.values)
        else:
            shown = "words from the request"
        return f"{self.name}{'' if self.required else '?'}: {shown}"

    def json_schema(self) -> dict[str, Any]:
        if self.kind == "integer":
            return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        if self.kind == "number":
            return {"type": "number", "minimum": self.minimum, "maximum": self.maximum}
        if self.kind == "enum":
            return {"enum": list(self.values)}
        return {"type": "string", "minLength": 1, "maxLength": MAX_WILDCARD_CHARS}


@dataclass(frozen=True)
class IntentSpec:
    """What the model may say for one intent, derived from its templates."""

    name: str
    slots: tuple[SlotSpec, ...]
    keywords: frozenset[str]
    """Its templates' words less filler, with its required slots' list words; the request must share one."""
    example: str
    """One request its first template accepts, with example slot values."""
    example_slots: dict[str, Any]
    needs_a_slot: bool = False
    """Every template fills some slot, though none in particular (a length in hours, minutes or
    seconds): an answer with no slot is not one of its requests."""

    def json_schema(self) -> dict[str, Any]:
        properties: dict[str, Any] = {"intent": {"const": self.name}}
        properties.update({slot.name: slot.json_schema() for slot in self.slots})
        return {"type": "object", "properties": properties, "additionalProperties": False,
                "required": ["intent"] + [slot.name for slot in self.slots if slot.required]}


def intent_specs(intents: Intents, handlers: Mapping[str, Any]) -> list[IntentSpec]:
    """The allow-list: every intent that has templates and a handler, with its slots."""
    specs = []
    for name, intent in intents.intents.items():
        if name not in handlers:
            continue
        spec = _intent_spec(intents, name, intent.data)
        if spec is not None:
            specs.append(spec)
    return specs


def json_schema(specs: Iterable[IntentSpec]) -> dict[str, Any]:
    """The answers allowed, as a JSON Schema (for readers and tests; `Answers` and `check_answer` enforce it)."""
    none = {"type": "object", "properties": {"intent": {"const": NONE}}, "required": ["intent"],
            "additionalProperties": False}
    return {"oneOf": [spec.json_schema() for spec in specs] + [none]}


class Answers:
    """The answers allowed after `{"intent": "`, as text: an intent's name and `"`, its slots in
    the spec's order (`, "name": value`; an optional one may be left out), then `}`.

    Numbers are confined to digits of the range's width, not to the range itself: confining
    them to 0-100 would turn "500" into "50", where `check_answer` turns it into None.
    """

    def __init__(self, specs: Iterable[IntentSpec]) -> None:
        self.slots = {spec.name + '"': spec.slots for spec in specs}
        self.slots[NONE + '"'] = ()
        chars = set(_TEXT_CHARS) | set('0123456789-.,:"{} ')
        for name, slots in self.slots.items():
            chars |= set(name) | {c for slot in slots for c in slot.name + "".join(map(json.dumps, slot.values))}
        self._alphabet = "".join(sorted(chars))

    def allows(self, text: str) -> bool:
        """`text` begins an allowed answer, or is one."""
        return self._read(text) != _INVALID

    def complete(self, text: str) -> bool:
        return self._read(text) == _COMPLETE

    def forced(self, text: str) -> str:
        """What every allowed answer that begins with `text` writes next ("" at a choice)."""
        forced = ""
        while self._read(text + forced) == _PREFIX:
            following = [c for c in self._alphabet if self._read(text + forced + c) != _INVALID]
            if len(following) != 1:
                break
            forced += following[0]
        return forced

    def _read(self, text: str) -> int:
        best = _INVALID
        for name, slots in self.slots.items():
            if name.startswith(text) and len(text) < len(name):
                best = max(best, _PREFIX)
            elif text.startswith(name):
                best = max(best, _read_slots(text[len(name):], slots, 0))
        return best


_INVALID, _PREFIX, _COMPLETE = 0, 1, 2
_TEXT_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789' -"
"""What a wildcard's value may hold: words, never quotes, braces or backslashes."""


def _read_slots(rest: str, slots: tuple[SlotSpec, ...], index: int) -> int:
    if rest == "":
        return _PREFIX
    if rest[0] == "}":
        missing = any(slot.required for slot in slots[index:])
        return _COMPLETE if rest == "}" and not missing else _INVALID
    best = _INVALID
    for position in range(index, len(slots)):
        key = f", {json.dumps(slots[position].name)}: "
        if key.startswith(rest) and len(rest) < len(key):
            best = max(best, _PREFIX)
        elif rest.startswith(key):
            value = rest[len(key):]
            for length in _value_lengths(slots[position], value):
                best = max(best, _PREFIX if length is None else _read_slots(value[length:], slots, position + 1))
        if slots[position].required:
            break  # a required slot cannot be skipped
    return best


def _value_lengths(slot: SlotSpec, text: str) -> list[int | None]:
    """Lengths of the whole values `text` begins with; None when all of `text` may begin one."""
    if slot.kind in ("integer", "number"):
        pattern = _INTEGER if slot.kind == "integer" else _NUMBER
        width = len(str(int(max(abs(slot.minimum), abs(slot.maximum)))))
        match = pattern.match(text)
        digits = match.group(0) if match else ""
        if len(digits.lstrip("-").split(".")[0]) > width or (digits.startswith("-") and slot.minimum >= 0):
            return []
        if len(digits) == len(text):
            return [None]
        whole = digits not in ("", "-") and not digits.endswith(".")
        return [len(digits)] if whole else []
    if slot.kind == "enum":
        literals = [json.dumps(value) for value in slot.values]
        return ([None] if any(lit.startswith(text) and len(text) < len(lit) for lit in literals) else []) + [
            len(lit) for lit in literals if text.startswith(lit)]
    match = _TEXT_VALUE.match(text)
    if match is None:
        return []
    if match.group(2) is None:
        return [None] if len(match.group(0)) == len(text) and len(match.group(1)) <= MAX_WILDCARD_CHARS else []
    return [len(match.group(0))] if 0 < len(match.group(1)) <= MAX_WILDCARD_CHARS else []


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)?")
_NUMBER = re.compile(r"-?((0|[1-9][0-9]*)(\.[0-9]{0,2})?)?")
_TEXT_VALUE = re.compile(r'"([a-zA-Z0-9\' -]*)(")?')


def check_answer(answer: str, specs: Mapping[str, IntentSpec], text: str) -> tuple[str, dict[str, Any]] | None:
    """The (intent, slots) an answer names, if every part is allowed; None for "none" or anything else."""
    try:
        found = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(found, dict) or not isinstance(found.get("intent"), str):
        return None
    spec = specs.get(found.pop("intent"))
    if spec is None:
        return None
    allowed = {slot.name: slot for slot in spec.slots}
    if not set(found) <= set(allowed):
        return None
    if any(slot.required and slot.name not in found for slot in spec.slots) or (spec.needs_a_slot and not found):
        return None
    words = " ".join(_words(text))
    for name, value in found.items():
        if not _valid(allowed[name], value, words) or not _said(allowed[name], value, words):
            return None
    return spec.name, found


class SkillMapper:
    """Maps a request the templates missed onto a skill with the local LLM, or says it is none.

    `llm`: a `LocalLlm`, whose llama.cpp context is then shared (never call `map` while it
    generates; a turn does one after the other), or a llama_cpp `Llama` of its own.
    `intents`, `handlers`: as `skills.load_skills()` returns them.
    `min_confidence`: the least probability of the intent's name among the allowed tokens
    (off by default: on the routing set SmolLM2 was as sure of its wrong skills as of its right ones).
    `require_keyword`: only intents whose distinctive template words the request shares are
    candidates.
    `keep_chat_state`: on a shared context, the mapper's prompt and the chat's are saved
    and restored around each request, so neither is evaluated again (the mapper's prompt
    is about 1,000 tokens: seconds on a small CPU).
    `prompt_style`: `chat` uses the model's chat template when its file has one; else plain text.
    """

    def __init__(self, llm: Any, intents: Intents, handlers: Mapping[str, Any], *, min_confidence: float = 0.0,
                 require_keyword: bool = True, keep_chat_state: bool = True, prompt_style: str = "chat",
                 command_list: bool = False) -> None:
        from llama_cpp import Llama

        self.model = llm if isinstance(llm, Llama) else llm.model
        self.specs = {spec.name: spec for spec in intent_specs(intents, handlers)}
        self.schema = json_schema(self.specs.values())
        self.answers = Answers(list(self.specs.values()))
        self.min_confidence = min_confidence
        self.require_keyword = require_keyword
        self.keep_chat_state = keep_chat_state
        template = self.model.metadata.get("tokenizer.chat_template") if prompt_style == "chat" else None
        self.prefix, self.request_part = mapping_prompt(self.specs.values(), template, command_list)
        self._prefix_tokens = self.model.tokenize(self.prefix.encode(), add_bos=True, special=True)
        if len(self._prefix_tokens) + _REQUEST_ROOM_TOKENS > self.model.n_ctx():
            raise ValueError(f"the skill mapper's prompt takes {len(self._prefix_tokens)} tokens; the model's "
                             f"context ({self.model.n_ctx()}) needs {_REQUEST_ROOM_TOKENS} more (llm.context_tokens)")
        self._prefix_state: _KvState | None = None
        self._lock = threading.Lock()
        self.last: MappingTrace | None = None
        """How the last request went (for benchmarks and logs)."""

    def warm(self) -> None:
        """Evaluate the fixed prompt now, so the first request does not pay for it."""
        with self._lock:
            self._answer("hello", self.answers)

    def map(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """(intent, slots) for a request, or None when it is no skill or anything is doubtful.
        Blocking: call it in a worker thread."""
        possible = candidates(text, self.specs.values()) if self.require_keyword else list(self.specs.values())
        if not possible:  # no skill's words in it: the model is not asked
            self.last = MappingTrace(text=text, answer="", confidence=0.0, reason="no_keyword", proposed=None)
            return None
        with self._lock:
            answer, confidence = self._answer(text, Answers(possible))
        result = check_answer(ANSWER_START + answer, self.specs, text)
        reason = "ok"
        if result is None:
            reason = "none" if answer == NONE + '"}' else "invalid"
        elif confidence < self.min_confidence:
            reason = "unsure"
        self.last = MappingTrace(text=text, answer=ANSWER_START + answer, confidence=confidence, reason=reason,
                                 proposed=result)
        log.debug("skill mapping %r -> %s (%s, p=%.2f)", text, self.last.answer, reason, confidence)
        return result if reason == "ok" else None

    def _answer(self, text: str, answers: Answers) -> tuple[str, float]:
        """The model's answer after `{"intent": "`, confined to the allowed answers, and the
        probability the model gave the intent's name over its whole vocabulary.

        Decoding is done here rather than by llama.cpp's grammar sampler, which checks all of
        the vocabulary at every token (seconds per answer with 49k tokens): the model's
        best candidates are tried in order against `Answers`, text that the answers force
        (the rest of a name, a slot's key) is written without asking the model, and when
        none of its top candidates fits, the answer is "none".
        """
        import llama_cpp
        import numpy as np

        model = self.model
        request = " ".join(text.split())[:MAX_TEXT_CHARS]
        before, after = self.request_part.split(REQUEST)
        tokens = (self._prefix_tokens + model.tokenize(before.encode(), add_bos=False, special=True)
                  + model.tokenize(request.encode(), add_bos=False, special=False)  # no control tokens from a user
                  + model.tokenize((after + ANSWER_START).encode(), add_bos=False, special=True))
        chat_state = None
        if self.keep_chat_state and model.n_tokens and not _starts_with(model, self._prefix_tokens):
            chat_state = _KvState.save(model)
            if self._prefix_state is not None:
                self._prefix_state.load(model)
        answer, logprob, named = "", 0.0, False
        n_vocab = model.n_vocab()
        try:
            _evaluate(model, tokens)
            if self.keep_chat_state and self._prefix_state is None:
                self._prefix_state = _KvState.save(model, keep=len(self._prefix_tokens))
                _evaluate(model, tokens)
            for _ in range(_MAX_OUTPUT_TOKENS):
                forced = answers.forced(answer)
                if forced:
                    answer += forced
                    if answers.complete(answer):
                        break
                    named = named or '"' in answer
                    model.eval(model.tokenize(forced.encode(), add_bos=False, special=False))
                    continue
                logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(model.ctx, -1), shape=(n_vocab,))
                allowed = self._allowed(logits, answer, answers)
                if not allowed:  # nothing the model likes is allowed
                    return NONE + '"}', 0.0
                token, piece = allowed[0]
                if not named:  # the intent's name: how sure the model was among the allowed tokens
                    scores = np.array([logits[t] for t, _ in allowed], dtype=np.float64)
                    logprob += float(scores[0] - scores.max() - np.log(np.exp(scores - scores.max()).sum()))
                answer += piece
                named = named or '"' in answer
                if answers.complete(answer):
                    break
                model.eval([token])
        finally:
            if chat_state is not None:
                chat_state.load(model)
        return answer, math.exp(logprob)

    def _allowed(self, logits: Any, answer: str, answers: Answers) -> list[tuple[int, str]]:
        """The model's likeliest next tokens that keep the answer allowed, best first."""
        import numpy as np

        candidates = np.argpartition(logits, -_CANDIDATES)[-_CANDIDATES:]
        allowed = []
        for token in candidates[np.argsort(-logits[candidates])]:
            try:
                piece = self.model.detokenize([int(token)]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if piece and answers.allows(answer + piece):
                allowed.append((int(token), piece))
        return allowed


@dataclass(frozen=True)
class MappingTrace:
    text: str
    answer: str
    """What the model wrote, whole."""
    confidence: float
    """The probability of the intent's name among the tokens the allowed answers permitted."""
    reason: str
    """`ok`, `none` (the model said none), `invalid` (the answer failed the checks), `unsure`
    (below `min_confidence`) or `no_keyword` (the request shares no word with the intent)."""
    proposed: tuple[str, dict[str, Any]] | None
    """The valid skill the model named, even when it was not taken."""


def candidates(text: str, specs: Iterable[IntentSpec]) -> list[IntentSpec]:
    """The intents whose distinctive template words the request shares."""
    return [spec for spec in specs if _shares_keyword(text, spec.keywords)]


def mapping_prompt(specs: Iterable[IntentSpec], chat_template: str | None = None,
                   command_list: bool = False) -> tuple[str, str]:
    """The fixed part of every request (instructions, the skills, examples), and the request's
    own part with `REQUEST` where its text goes.

    With the model's chat template, the instructions are the system message and each
    example a user and an assistant turn; without one (a base model), the same in plain text.
    """
    specs = list(specs)
    lines = ["You map each request to one of a voice assistant's commands, with the values the request gives,",
             "or to none: questions, chat and anything else are none. Answer with JSON."]
    if command_list:
        lines += ["", "Commands:"]
        for spec in specs:
            slots = ", ".join(slot.describe() for slot in spec.slots)
            lines.append(f"- {spec.name}" + (f" ({slots})" if slots else ""))
        lines.append(f"- {NONE}")
    instructions = "\n".join(lines)
    examples = [(spec.example, {"intent": spec.name, **spec.example_slots}) for spec in specs]
    examples += [(text, {"intent": NONE}) for text in NONE_EXAMPLES]
    examples = _interleaved(examples, len(specs))
    if chat_template is None:
        shots = "".join(f"Request: {text}\nJSON: {json.dumps(answer)}\n" for text, answer in examples)
        return f"{instructions}\n\n{shots}", f"Request: {REQUEST}\nJSON: "
    messages = [{"role": "system", "content": instructions}]
    for text, answer in examples:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": json.dumps(answer)}]
    messages.append({"role": "user", "content": REQUEST})
    rendered = _render_chat(chat_template, messages)
    # The request's part begins after the line that ends the last example's answer.
    request_at = rendered.rindex(REQUEST)
    last_answer = rendered.rindex("}", 0, request_at) + 1
    newline = rendered.find("\n", last_answer, request_at)
    cut = newline + 1 if newline >= 0 else last_answer
    return rendered[:cut], rendered[cut:]


REQUEST = "\x00request\x00"
"""Where the request's text goes in the prompt."""
ANSWER_START = '{"intent": "'
"""Written for the model: its answer goes on from the intent's name."""


def _render_chat(template: str, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    import jinja2

    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                    bos_token="", eos_token="")


def _interleaved(examples: list, n_skills: int) -> list:
    """The none examples spread among the skills', so the last example is not always a skill."""
    skills, nones = examples[:n_skills], examples[n_skills:]
    if not nones:
        return skills
    every = max(1, len(skills) // len(nones))
    out = []
    for index, example in enumerate(skills):
        out.append(example)
        if (index + 1) % every == 0 and nones:
            out.append(nones.pop(0))
    return out + nones


class _KvState:
    """llama.cpp's evaluated state and the tokens it holds, without llama-cpp-python's copy of
    the logits (100 MB and more per state; unused here, as logits_all is off)."""

    def __init__(self, data: bytes, tokens: list[int]) -> None:
        self.data = data
        self.tokens = tokens

    @classmethod
    def save(cls, model: Any, keep: int | None = None) -> _KvState:
        import ctypes

        import llama_cpp

        n_tokens = model.n_tokens if keep is None else min(keep, model.n_tokens)
        if n_tokens < model.n_tokens:
            model._ctx.kv_cache_seq_rm(-1, n_tokens, -1)
            model.n_tokens = n_tokens
        size = llama_cpp.llama_state_get_size(model.ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(model.ctx, buffer, size)
        return cls(ctypes.string_at(buffer, written), model.input_ids[:n_tokens].tolist())

    def load(self, model: Any) -> None:
        import ctypes

        import llama_cpp

        buffer = (ctypes.c_uint8 * len(self.data)).from_buffer_copy(self.data)
        if llama_cpp.llama_state_set_data(model.ctx, buffer, len(self.data)) != len(self.data):
            raise RuntimeError("llama.cpp refused a saved state")
        model.input_ids[:len(self.tokens)] = self.tokens
        model.n_tokens = len(self.tokens)
        model._requires_eval = True  # no logits for the last token: generate() evaluates it again


def _evaluate(model: Any, tokens: list[int]) -> None:
    """Evaluate `tokens`, reusing the longest prefix already in llama.cpp's cache, so that the
    last token's logits are current."""
    common = 0
    for held, wanted in zip(model.input_ids[:model.n_tokens].tolist(), tokens):
        if held != wanted:
            break
        common += 1
    common = min(common, len(tokens) - 1)
    model.n_tokens = common  # eval() drops the cache beyond n_tokens
    model.eval(tokens[common:])


def _starts_with(model: Any, tokens: list[int]) -> bool:
    return model.n_tokens >= len(tokens) and model.input_ids[:len(tokens)].tolist() == tokens


def _balanced(answer: bytes) -> bool:
    text = answer.decode("utf-8", errors="replace")
    return text.count("{") + 1 == text.count("}")


# --- from templates to specs ------------------------------------------------------------


@dataclass
class _Template:
    slots: dict[str, set[str]]
    """slot name -> list names that fill it"""
    required: set[str]
    words: set[str]
    fills_a_slot: bool = False
    """Every way through it fills at least one slot."""


def _intent_spec(intents: Intents, name: str, data: list[IntentData]) -> IntentSpec | None:
    slot_sources: dict[str, list[SlotList | Any]] = {}
    required: set[str] | None = None
    words: set[str] = set()
    list_words: dict[str, set[str]] = {}
    first: tuple[Sentence, IntentData] | None = None
    needs_a_slot = True
    for block in data:
        if block.requires_context or (block.metadata or {}).get("not_mapped"):
            continue  # an answer to a skill's question, or a refusal: nothing to map a free request onto
        rules = {**intents.expansion_rules, **block.expansion_rules}
        lists = {**intents.slot_lists, **block.slot_lists}
        for sentence in block.sentences:
            first = first or (sentence, block)
            template = _walk(sentence.expression, rules, 0)
            for slot, list_names in template.slots.items():
                slot_sources.setdefault(slot, []).extend(lists.get(n) for n in list_names)
            for slot, value in block.slots.items():
                slot_sources.setdefault(slot, []).append(_Fixed(value))
            these = template.required | set(block.slots)
            required = these if required is None else required & these
            needs_a_slot = needs_a_slot and (template.fills_a_slot or bool(block.slots))
            words |= template.words
            for slot, list_names in template.slots.items():
                for list_name in list_names:
                    if isinstance(lists.get(list_name), TextSlotList):
                        list_words.setdefault(slot, set()).update(_list_words(lists[list_name], rules))
    if first is None:
        return None
    # A required slot's list words ("plus", "times") point at the intent; an optional one's
    # ("tomorrow", "morning") are everyday words that would let small talk through.
    for slot in required or set():
        words |= list_words.get(slot, set())
    slots = []
    for slot_name, sources in slot_sources.items():
        slot = _slot_spec(slot_name, sources, slot_name in (required or set()))
        if slot is None:
            if slot_name in (required or set()):
                log.warning("intent %s: slot %s has no list the model can fill; left out", name, slot_name)
                return None
            continue
        if slot.kind == "text" and slot.required:
            return None  # free words the whole request turns on (a list's item, a reminder's message): templates only
        slots.append(slot)
    specs = {slot.name: slot for slot in slots}
    example, example_slots = _example(first[0].expression, {**intents.expansion_rules, **first[1].expansion_rules},
                                      specs)
    example_slots.update({k: v for k, v in first[1].slots.items() if k in specs})
    keywords = frozenset(_stem(w) for w in words - _FILLER if len(w) > 1 and not w.isdigit())
    return IntentSpec(name=name, slots=tuple(slots), keywords=keywords, example=example,
                      example_slots=example_slots, needs_a_slot=needs_a_slot and bool(slots))


@dataclass(frozen=True)
class _Fixed:
    """A value an intent's data block sets without a template slot."""

    value: Any


def _walk(expression: Expression, rules: Mapping[str, Sentence], depth: int) -> _Template:
    if isinstance(expression, TextChunk):
        return _Template({}, set(), set(_words(expression.text)))
    if isinstance(expression, ListReference):
        return _Template({expression.slot_name: {expression.list_name}}, {expression.slot_name}, set(), True)
    if isinstance(expression, RuleReference):
        rule = rules.get(expression.rule_name)
        if rule is None or depth > _RULE_DEPTH:
            return _Template({}, set(), set())
        return _walk(rule.expression, rules, depth + 1)
    if isinstance(expression, Group):
        parts = [_walk(item, rules, depth + 1) for item in expression.items]
        slots: dict[str, set[str]] = {}
        for part in parts:
            for slot, list_names in part.slots.items():
                slots.setdefault(slot, set()).update(list_names)
        words = set().union(*(part.words for part in parts)) if parts else set()
        if isinstance(expression, Alternative):
            required = set() if expression.is_optional or not parts else set.intersection(
                *(part.required for part in parts))
            fills = bool(parts) and not expression.is_optional and all(part.fills_a_slot for part in parts)
        else:
            required = set().union(*(part.required for part in parts)) if parts else set()
            fills = any(part.fills_a_slot for part in parts)
        return _Template(slots, required, words, fills)
    return _Template({}, set(), set())


def _slot_spec(name: str, sources: list[Any], required: bool) -> SlotSpec | None:
    kinds, low, high, values, words, said_as, steps = set(), [], [], [], {}, {}, set()
    for source in sources:
        if isinstance(source, RangeSlotList):
            scale = source.multiplier or 1
            kinds.add("number" if source.fraction_type or source.multiplier else "integer")
            low.append(source.start * scale)
            high.append(source.stop * scale)
            steps.add(source.step)
        elif isinstance(source, TextSlotList):
            kinds.add("enum")
            for value in source.values:
                if value.value_out not in values:
                    values.append(value.value_out)
                    words[value.value_out] = _first_text(value.text_in, {})
                    said_as[value.value_out] = frozenset(_walk(value.text_in, {}, 0).words)
        elif isinstance(source, WildcardSlotList):
            kinds.add("text")
        elif isinstance(source, _Fixed):
            if isinstance(source.value, bool) or not isinstance(source.value, (int, float, str)):
                return None
            if isinstance(source.value, str):
                kinds.add("enum")
                if source.value not in values:
                    values.append(source.value)
            else:
                kinds.add("integer" if isinstance(source.value, int) else "number")
                low.append(source.value)
                high.append(source.value)
        else:
            return None  # a list given only at run time: the model cannot know its values
    if kinds == {"integer"} or kinds == {"number"} or kinds == {"integer", "number"}:
        kind = "integer" if kinds == {"integer"} else "number"
        return SlotSpec(name, kind, required, minimum=min(low), maximum=max(high),
                        step=min(steps) if len(steps) == 1 else 1)
    if kinds == {"enum"}:
        return SlotSpec(name, "enum", required, values=tuple(values), words=words, said_as=said_as)
    if kinds == {"text"}:
        return SlotSpec(name, "text", required)
    return None  # one slot filled by lists of different kinds: too loose to check


def _example(expression: Expression, rules: Mapping[str, Sentence],
             specs: Mapping[str, SlotSpec]) -> tuple[str, dict[str, Any]]:
    """The template's shortest reading: optional parts left out, the first alternative taken,
    each slot filled with an example value."""
    filled: dict[str, Any] = {}
    numbers = iter(_EXAMPLE_NUMBERS * 4)

    def render(exp: Expression, depth: int) -> str:
        if isinstance(exp, TextChunk):
            return exp.original_text
        if isinstance(exp, ListReference):
            slot = specs.get(exp.slot_name)
            if slot is None:
                return ""
            if slot.kind in ("integer", "number"):
                value = next((n for n in numbers if slot.minimum <= n <= slot.maximum), slot.minimum)
                value = int(value) if float(value).is_integer() else value
                filled[slot.name] = value
                return str(value)
            if slot.kind == "enum":
                filled[slot.name] = slot.values[0]
                return slot.words.get(slot.values[0], str(slot.values[0]))
            filled[slot.name] = _EXAMPLE_WORD
            return _EXAMPLE_WORD
        if isinstance(exp, RuleReference):
            rule = rules.get(exp.rule_name)
            return "" if rule is None or depth > _RULE_DEPTH else render(rule.expression, depth + 1)
        if isinstance(exp, Alternative):
            if exp.is_optional or not exp.items:
                return ""
            return render(exp.items[0], depth + 1)
        if isinstance(exp, (Group, Permutation)):
            return "".join(render(item, depth + 1) for item in exp.items)
        return ""

    return " ".join(render(expression, 0).split()), filled


def _first_text(expression: Expression, rules: Mapping[str, Sentence]) -> str:
    if isinstance(expression, TextChunk):
        return expression.original_text
    if isinstance(expression, Alternative):
        return "" if expression.is_optional or not expression.items else _first_text(expression.items[0], rules)
    if isinstance(expression, Group):
        return " ".join(" ".join(_first_text(item, rules) for item in expression.items).split())
    return ""


def _list_words(slot_list: TextSlotList, rules: Mapping[str, Sentence]) -> set[str]:
    words: set[str] = set()
    for value in slot_list.values:
        words |= _walk(value.text_in, rules, 0).words
    return words


# --- checks ---------------------------------------------------------------------------


def _valid(slot: SlotSpec, value: Any, request_words: str) -> bool:
    if slot.kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if slot.kind == "integer" and not isinstance(value, int):
            return False
        return slot.minimum <= value <= slot.maximum and (slot.kind == "number" or
                                                          (value - int(slot.minimum)) % slot.step == 0)
    if slot.kind == "enum":
        return any(value == allowed and type(value) is type(allowed) for allowed in slot.values)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_WILDCARD_CHARS:
        return False
    said = " ".join(_words(value))
    return bool(said) and f" {said} " in f" {request_words} "


def _said(slot: SlotSpec, value: Any, request_words: str) -> bool:
    """The request holds the value: a number in digits or words, one of an enum value's words.
    A value the request does not hold was made up (at the price of "half past six": 6:30)."""
    padded = f" {request_words} "
    if slot.kind in ("integer", "number"):
        from num2words import num2words

        return f" {_number_text(value)} " in padded or f" {' '.join(_words(num2words(value)))} " in padded
    if slot.kind == "enum":
        return any(f" {word} " in padded for word in slot.said_as.get(value, frozenset()) | {str(value).lower()})
    return True  # a wildcard's words were checked by _valid


def _shares_keyword(text: str, keywords: frozenset[str]) -> bool:
    return any(_stem(word) in keywords for word in _words(text))


def _stem(word: str) -> str:
    """A word without a plural's "s", so "timers" meets "timer"."""
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _words(text: str) -> list[str]:
    return [word for found in _WORD.findall(text.lower().replace("’", "'")) if (word := found.strip("'"))]


def _number_text(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


