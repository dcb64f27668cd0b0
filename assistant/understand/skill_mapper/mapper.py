"""The mapper itself: the request, the model's constrained answer, the checks."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hassil import Intents

from assistant.hear.wake_phrase import wake_names
from assistant.understand.skill_mapper.answers import Answers, check_answer
from assistant.understand.skill_mapper.kv_state import KvState, evaluate, starts_with
from assistant.understand.skill_mapper.prompt import (
    ANSWER_START,
    REQUEST,
    mapping_prompt,
)
from assistant.understand.skill_mapper.specs import (
    MAX_TEXT_CHARS,
    NONE,
    IntentSpec,
    intent_specs,
    json_schema,
    shares_keyword,
)

log = logging.getLogger(__name__)

_MAX_OUTPUT_TOKENS = 48
_REQUEST_ROOM_TOKENS = 160
"""Context left after the mapper's prompt for a request (MAX_TEXT_CHARS) and its answer."""
_CANDIDATES = 40
"""How many of the model's likeliest tokens are tried against the allowed answers at each step."""

class SkillMapper:
    """Maps a request the templates missed onto a skill with the local LLM, or says it is none.

    `llm`: a `LocalLlm`, whose llama.cpp context and lock are then shared (a mapping waits
    for a reply being generated, and the other way round), or a llama_cpp `Llama` of its own.
    `intents`, `handlers`: as `skills.load_skills()` returns them.
    `min_confidence`: the least probability of the intent's name among the allowed tokens
    (off by default: on the routing set SmolLM2 was as sure of its wrong skills as of its right ones).
    `require_keyword`: only intents whose distinctive template words the request shares are
    candidates.
    `keep_chat_state`: on a shared context, the mapper's prompt and the chat's are saved
    and restored around each request, so neither is evaluated again (the mapper's prompt
    is about 1,000 tokens: seconds on a small CPU).
    `wake_words`: the configured wake phrases; their names are no skill's words.
    `prompt_style`: `chat` uses the model's chat template when its file has one; else plain text.
    """

    def __init__(self, llm: Any, intents: Intents, handlers: Mapping[str, Any], *, min_confidence: float = 0.0,
                 require_keyword: bool = True, keep_chat_state: bool = True, prompt_style: str = "chat",
                 command_list: bool = False, wake_words: Sequence[str] = ()) -> None:
        from llama_cpp import Llama

        self.model = llm if isinstance(llm, Llama) else llm.model
        # A shared context is shared with its lock: the replies and the mapper take turns on it.
        self._lock = threading.Lock() if isinstance(llm, Llama) else llm.lock
        self.specs = {spec.name: spec for spec in intent_specs(intents, handlers, wake_names(wake_words))}
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
        self._prefix_state: KvState | None = None
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
        if self.keep_chat_state and model.n_tokens and not starts_with(model, self._prefix_tokens):
            chat_state = KvState.save(model)
            if self._prefix_state is not None:
                self._prefix_state.load(model)
        answer, logprob, named = "", 0.0, False
        n_vocab = model.n_vocab()
        try:
            evaluate(model, tokens)
            if self.keep_chat_state and self._prefix_state is None:
                self._prefix_state = KvState.save(model, keep=len(self._prefix_tokens))
                evaluate(model, tokens)
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
    return [spec for spec in specs if shares_keyword(text, spec.keywords)]

