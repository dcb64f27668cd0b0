"""Cuts streamed text into sentences, so speech can start before an answer is complete.

A sentence ends at `.`, `!` or `?` (and closing quotes or brackets after it) followed by
white space. Decimal numbers ("3.5"), times ("7:05 a.m. today") and common abbreviations
("Dr. Who", "e.g. this") do not end one.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e a.m p.m no approx dept fig mt ft".split())
_MIN_CHARS = 12
"""A shorter piece (e.g. "Sure.") joins the next sentence: piper pauses oddly on fragments."""


class SentenceSplitter:
    """Feed text as it arrives; take back each sentence as soon as it is complete."""

    def __init__(self) -> None:
        self._pending = ""

    def push(self, text: str) -> list[str]:
        self._pending += text
        sentences = []
        start = 0
        for match in _END.finditer(self._pending):
            end = match.end()
            piece = self._pending[start:end].strip()
            if len(piece) < _MIN_CHARS or _ends_in_abbreviation(piece):
                continue
            sentences.append(piece)
            start = end
        self._pending = self._pending[start:]
        return sentences

    def flush(self) -> list[str]:
        """Whatever is left once the text has ended."""
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []


def _ends_in_abbreviation(piece: str) -> bool:
    last_word = piece.rsplit(None, 1)[-1].lower().rstrip(".!?\"')]")
    return piece.endswith(".") and last_word in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """A whole text as sentences."""
    splitter = SentenceSplitter()
    return splitter.push(text) + splitter.flush()
