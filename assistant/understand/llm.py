"""The local language model (llama.cpp through llama-cpp-python), loaded once.

Answers stream as sentences, so speech starts while the rest is generated. The system
prompt is evaluated once at start-up and llama.cpp keeps it in its cache: llama-cpp-python
reuses the longest prefix of the previous prompt, so a request costs only its own tokens.

One llama.cpp context serves every caller (the replies, the skill mapper, each session of
`assistant serve`), so `LocalLlm.lock` is held for any generation or change to its cache:
two requests never interleave their tokens on it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from assistant.config import LlmSettings
from assistant.errors import ModelError, StageError
from assistant.speak.sentences import SentenceSplitter, ends_sentence

_MARKUP = re.compile(r"[*_#`>|~]+")


@dataclass
class Progress:
    """What a streamed answer has done so far, written by the worker thread that streams it."""

    first_token_wall: float | None = None
    """perf_counter() when the first piece of text arrived, from the local model or the cloud."""
    sent_bytes: list[int] = field(default_factory=list)
    """The body size of each request sent to the cloud (a retry is another request)."""

    def pieces(self, pieces: Iterable[tuple[str, str | None]]) -> Iterator[tuple[str, str | None]]:
        """`pieces`, noting when the first one with text arrives."""
        for piece in pieces:
            if piece[0] and self.first_token_wall is None:
                self.first_token_wall = time.perf_counter()
            yield piece


class LocalLlm:
    def __init__(self, model_path: Path, settings: LlmSettings, chat_format: str | None = None) -> None:
        """`chat_format`: a llama-cpp-python chat format for a model whose file has no chat
        template (`models.llm_chat_format`); None: the file's own template."""
        from llama_cpp import Llama

        self.settings = settings
        self.lock = threading.Lock()
        """Held while anything evaluates on the model or changes its cache (a Lock, not an RLock:
        a stream closed from another thread releases it there)."""
        # Gemma's format has no system turn: the instructions open the user's turn instead.
        self._system_in_user = chat_format == "gemma"
        try:
            self.model = Llama(model_path=str(model_path), n_ctx=settings.context_tokens,
                               n_threads=settings.threads, n_threads_batch=settings.threads,
                               chat_format=chat_format, verbose=False)
        except Exception as err:  # native loaders raise many types; all mean a bad file
            raise ModelError(f"{model_path}: llama.cpp cannot load this model (llm.model): {err}",
                             code="corrupt_model") from None

    def warm(self) -> None:
        """Evaluate the system prompt now, so the first request does not pay for it."""
        for _ in self.tokens("Hello.", threading.Event(), max_tokens=1):
            pass

    def forget(self) -> None:
        """Drop the cached prompt state (benchmarks compare with and without it)."""
        with self.lock:
            self.model.reset()

    def sentences(self, request: str, stop: threading.Event, progress: Progress | None = None) -> Iterator[str]:
        """A short spoken answer, sentence by sentence, as the tokens arrive; ends between
        tokens once `stop` is set. `progress` notes when the first token came."""
        tokens = self.tokens(request, stop, self.settings.max_reply_tokens)
        return spoken_sentences(tokens if progress is None else progress.pieces(tokens), stop)

    def tokens(self, request: str, stop: threading.Event, max_tokens: int) -> Iterator[tuple[str, str | None]]:
        """(text, finish reason) pieces as they are generated; the model is locked from the first
        piece until the last, or until the consumer stops or closes the stream."""
        messages = [{"role": "system", "content": self.settings.system_prompt},
                    {"role": "user", "content": request}]
        if self._system_in_user:
            messages = [{"role": "user", "content": f"{self.settings.system_prompt}\n\n{request}"}]
        with self.lock:
            try:
                stream = self.model.create_chat_completion(
                    messages=messages, max_tokens=max_tokens, temperature=self.settings.temperature,
                    seed=0, stream=True)
                try:
                    for chunk in stream:
                        if stop.is_set():
                            return
                        choice = chunk["choices"][0]
                        yield choice["delta"].get("content") or "", choice.get("finish_reason")
                finally:
                    stream.close()  # ends llama.cpp's generation before the lock is let go
            except (ValueError, RuntimeError) as err:
                raise StageError("llm", f"the local LLM failed: {err}") from err


def spoken_sentences(pieces: Iterable[tuple[str, str | None]], stop: threading.Event) -> Iterator[str]:
    """Plain sentences from streamed (text, finish reason) pieces. A last piece cut off by
    the token limit is dropped when a whole sentence came before it."""
    splitter = SentenceSplitter()
    said = False
    finish_reason = None
    for piece, finish_reason in pieces:
        for sentence in splitter.push(piece):
            if stop.is_set():
                return
            if plain := plain_text(sentence):
                said = True
                yield plain
    if stop.is_set():
        return
    rest = [plain for piece in splitter.flush() if (plain := plain_text(piece))]
    if rest and (finish_reason != "length" or not said or ends_sentence(rest[-1])):
        yield from rest  # in clause-sized pieces, as everything before it


def plain_text(text: str) -> str:
    """Plain text for speech: no markup, one line."""
    return " ".join(_MARKUP.sub("", text).split())
