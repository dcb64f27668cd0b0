"""The assistant's name as the configured wake phrases give it, for reading transcripts.

"Hey Jarvis" names the assistant "jarvis"; "Okay Nabu" names it "nabu". Said before or
inside a request, the name is the wake phrase's remnant, not part of the request, so the
stages that read a transcript (routing, escalation, end of turn, the skill mapper) are
told the names of the loaded wake models rather than assuming one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

GREETINGS = ("hey", "hi", "okay", "ok")
"""Words that may open a wake phrase before the name."""
HEARD_AS = {"jarvis": ("jervis",), "nabu": ("naboo", "nabo")}
"""How Whisper tends to spell a wake word's name."""
_WORD = re.compile(r"[a-z0-9']+")


def phrase_words(phrase: str) -> list[str]:
    return _WORD.findall(phrase.lower().replace("_", " "))


def wake_names(wake_words: Sequence[str]) -> frozenset[str]:
    """The last word of each wake phrase ("jarvis" of "Hey Jarvis"), with Whisper's spellings of it."""
    names: set[str] = set()
    for phrase in wake_words:
        if words := phrase_words(phrase):
            names.update((words[-1], *HEARD_AS.get(words[-1], ())))
    return frozenset(names)


def alternatives(words: Iterable[str]) -> str:
    """A regex alternation of `words`, longest first; one that matches nothing when there are none."""
    ordered = sorted(map(re.escape, words), key=len, reverse=True)
    return "|".join(ordered) if ordered else "(?!)"
