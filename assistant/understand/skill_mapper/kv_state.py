"""llama.cpp's evaluated state saved and restored, so the mapper's prompt and the chat's
are each evaluated once, through llama-cpp-python's public API only."""

from __future__ import annotations

from typing import Any


class KvState:
    """llama.cpp's evaluated state and the tokens it holds, without llama-cpp-python's copy of
    the logits (100 MB and more per state; unused here, as logits_all is off)."""

    def __init__(self, data: bytes, tokens: list[int]) -> None:
        self.data = data
        self.tokens = tokens

    @classmethod
    def save(cls, model: Any, keep: int | None = None) -> KvState:
        import ctypes

        import llama_cpp

        n_tokens = model.n_tokens if keep is None else min(keep, model.n_tokens)
        if n_tokens < model.n_tokens:  # every sequence's cells from n_tokens on
            llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(model.ctx), -1, n_tokens, -1)
            model.n_tokens = n_tokens
        size = llama_cpp.llama_state_get_size(model.ctx)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_get_data(model.ctx, buffer, size)
        return cls(ctypes.string_at(buffer, written), model.input_ids[:n_tokens].tolist())

    def load(self, model: Any) -> None:
        import ctypes

        import llama_cpp

        # reset() marks the logits stale (the state has none for its last token), so generate()
        # evaluates that token again rather than sample from the logits of another prompt.
        model.reset()
        buffer = (ctypes.c_uint8 * len(self.data)).from_buffer_copy(self.data)
        if llama_cpp.llama_state_set_data(model.ctx, buffer, len(self.data)) != len(self.data):
            raise RuntimeError("llama.cpp refused a saved state")
        model.input_ids[:len(self.tokens)] = self.tokens
        model.n_tokens = len(self.tokens)


def evaluate(model: Any, tokens: list[int]) -> None:
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


def starts_with(model: Any, tokens: list[int]) -> bool:
    return model.n_tokens >= len(tokens) and model.input_ids[:len(tokens)].tolist() == tokens


