"""The local language model (llama.cpp through llama-cpp-python), loaded once."""

from __future__ import annotations

import re
from pathlib import Path

from .config import LlmSettings
from .errors import ModelError, StageError

_MARKUP = re.compile(r"[*_#`>|~]+")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


class LocalLlm:
    def __init__(self, model_path: Path, settings: LlmSettings) -> None:
        from llama_cpp import Llama

        self.settings = settings
        try:
            self.model = Llama(model_path=str(model_path), n_ctx=settings.context_tokens,
                               n_threads=settings.threads, n_threads_batch=settings.threads,
                               verbose=False)
        except Exception as err:  # native loaders raise many types; all mean a bad file
            raise ModelError(f"{model_path}: llama.cpp cannot load this model (llm.model): {err}",
                             code="corrupt_model") from None

    def reply(self, request: str) -> str:
        """A short spoken answer to one request."""
        messages = [{"role": "system", "content": self.settings.system_prompt},
                    {"role": "user", "content": request}]
        try:
            out = self.model.create_chat_completion(
                messages=messages, max_tokens=self.settings.max_reply_tokens,
                temperature=self.settings.temperature, seed=0)
        except (ValueError, RuntimeError) as err:
            raise StageError("llm", f"the local LLM failed: {err}") from err
        choice = out["choices"][0]
        return speakable_reply(choice["message"]["content"] or "", cut=choice["finish_reason"] == "length")


def speakable_reply(text: str, cut: bool) -> str:
    """Plain text for speech: no markup, one line, and no half sentence at a token limit."""
    text = " ".join(_MARKUP.sub("", text).split())
    if cut:
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends:
            text = text[:ends[-1]]
    return text
