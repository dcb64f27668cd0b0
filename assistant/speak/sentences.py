"""Cuts streamed text into sentences, so speech can start before an answer is complete.

Every reply, a skill's or a model's, is said and printed from these sentences, so control
characters and terminal escape sequences are removed here, once.

A sentence ends at `.`, `!` or `?` (and closing quotes or brackets after it) followed by
white space. Decimal numbers ("3.5"), times ("7:05 a.m. today") and common abbreviations
("Dr. Who", "e.g. this") do not end one. A long sentence is cut at a clause (a comma,
semicolon, colon or dash): synthesis of one piece cannot be interrupted, so a piece's
length bounds how long a stop or a shutdown waits, and how long the first words take.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)")
_ENDS_TEXT = re.compile(r"[.!?]+[\"')\]]*$")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e a.m p.m no approx dept fig mt ft".split())
_MIN_CHARS = 12
"""A shorter piece (e.g. "Sure.") joins the next sentence: piper pauses oddly on fragments."""
_MAX_CHARS = 80
"""A longer piece is cut at its last clause break (about 5 s of speech, 0.5 s to synthesise)."""
_FIRST_MAX_CHARS = 24
"""The first piece is cut at its first clause break past this: the sooner it is
complete and synthesised, the sooner the answer starts to play."""
_HARD_MAX_CHARS = 160
"""A longer piece with no clause break is cut at a word."""
_CLAUSE = re.compile(r"[,;:]\s|\s[-\u2013\u2014]\s")
_TERMINAL_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: cursor, colours, clear screen
    r"|(?:\x1b[]P^_X]|[\x90\x98\x9d-\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC and other strings: window title
    r"|\x1b[ -/]*[0-~]?")  # any other escape
_LINE_BREAKS = re.compile(r"[\t-\r]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""C0, DEL and C1 controls (NUL among them), and the bidi overrides and isolates that make
text display other than it reads."""


def without_control_characters(text: str) -> str:
    """Text safe to print on a terminal and to speak: escape sequences and control characters
    removed, tabs and line breaks made spaces."""
    return _CONTROL.sub("", _LINE_BREAKS.sub(" ", _TERMINAL_SEQUENCE.sub("", text)))


class SentenceSplitter:
    """Feed text as it arrives; take back each sentence as soon as it is complete."""

    def __init__(self) -> None:
        self._pending = ""
        self._first = True

    def push(self, text: str) -> list[str]:
        self._pending += without_control_characters(text)  # every reply's words pass here, whoever wrote them
        sentences = []
        start = 0
        for match in _END.finditer(self._pending):
            end = match.end()
            piece = self._pending[start:end].strip()
            if len(piece) < _MIN_CHARS or _ends_in_abbreviation(piece):
                continue
            sentences += _clauses(piece, self._first and not sentences)
            start = end
        self._pending = self._pending[start:]
        first = self._first and not sentences
        if len(self._pending) > (_FIRST_MAX_CHARS if first else _MAX_CHARS) and (
                cut := _clause_cut(self._pending, first)):
            sentences.append(self._pending[:cut].strip())
            self._pending = self._pending[cut:]
        self._first = self._first and not sentences
        return sentences

    def flush(self) -> list[str]:
        """Whatever is left once the text has ended."""
        rest, self._pending = self._pending.strip(), ""
        return _clauses(rest, self._first) if rest else []


def ends_sentence(text: str) -> bool:
    """Does this text end as a sentence does (not cut off mid-way)?"""
    return _ENDS_TEXT.search(text) is not None


def _clause_cut(text: str, first: bool = False) -> int | None:
    """Where to cut a long piece: after its last clause break (its first, for the first
    piece of an answer), or its last word when too long."""
    breaks = [m.end() for m in _CLAUSE.finditer(text, _FIRST_MAX_CHARS if first else _MIN_CHARS, _HARD_MAX_CHARS)]
    if breaks:
        return breaks[0] if first else breaks[-1]
    if len(text) > _HARD_MAX_CHARS:
        return text.rfind(" ", _MIN_CHARS, _HARD_MAX_CHARS) + 1 or None
    return None


def _clauses(sentence: str, first: bool = False) -> list[str]:
    """A whole sentence in pieces of at most about _MAX_CHARS (the first of an answer shorter)."""
    pieces = []
    while len(sentence) > (_FIRST_MAX_CHARS if first and not pieces else _MAX_CHARS) and (
            cut := _clause_cut(sentence[:-1], first and not pieces)):
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return pieces + [sentence]


def _ends_in_abbreviation(piece: str) -> bool:
    last_word = piece.rsplit(None, 1)[-1].lower().rstrip(".!?\"')]")
    return piece.endswith(".") and last_word in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """A whole text as sentences."""
    splitter = SentenceSplitter()
    return splitter.push(text) + splitter.flush()
