"""A transcript that misses every template by a misheard word, matched to the template it nearly is.

Whisper slips on a word, and the words then match no template: "cancelled the timer",
"set the value to 4", "a timer for 1 hour in 10 minutes". Here each template is written
out as its sentences (numbers as `#`, a wildcard as `*`), the transcript is written the
same way, and rapidfuzz finds the closest sentence. When it is close enough and they
share a word that names the skill (not "the", "what", "you"), the transcript is
corrected to that sentence, keeping its own numbers and wildcard words, and the
templates are asked again. Only the corrected text's own match counts, so nothing can
name a skill the templates would not.

Guards, because a skill run by mistake is worse than a plain "I can't help with that":
a close score (NEAR, measured on `bench routing`'s labelled set, where small talk and
questions stay unmatched), a shared distinctive word, and at most two words changed, each a
small word or one spelt nearly alike (no word that names a skill is added or dropped).
"""

from __future__ import annotations

import difflib
import functools
import itertools
import math
import random
import re
from collections.abc import Iterator, Mapping

from hassil import Intents
from hassil.expression import (
    Alternative,
    Expression,
    Group,
    ListReference,
    RuleReference,
    Sentence,
    TextChunk,
)
from hassil.intents import RangeSlotList, TextSlotList, WildcardSlotList
from rapidfuzz import fuzz, process

from assistant.hear.wake_phrase import alternatives

NEAR = 86
"""The least rapidfuzz ratio (0-100) between the transcript and a template's sentence."""
MOST_CHANGED_WORDS = 2
ALIKE = 60
"""The least rapidfuzz ratio between a replaced word (not a small one) and its replacement."""
_PER_TEMPLATE = 1000
"""Sentences written out per template at most (the rest differ only in optional words)."""
_NUMBER, _WILDCARD = "#", "*"
_WORD = re.compile(r"[a-z0-9']+|#|\*")
_SKIPPED_RULES = ("courtesy", "please")
"""Politeness before a request (rules named so, or ending so): left out of the sentences, and
taken off the transcript."""


@functools.cache
def _polite(names: frozenset[str]) -> re.Pattern[str]:
    """Courtesy before a request, with the assistant's `names` (the wake phrases')."""
    return re.compile(rf"^((hey|okay|ok|please|can you|could you|would you|will you|{alternatives(names)})\s+)+")


# Words that name no skill: a match must share another.
_FILLER = frozenset("""
a an the and or of to for in on at by with from is are was be it its it's this that my me i you your we our
what what's how who when where which do does did can could would will please hey okay ok so some
there here up down off out all any no not now just
""".split())


class NearMatcher:
    """The templates' sentences, written out once; `correct` finds a transcript's nearest."""

    def __init__(self, intents: Intents, handlers: Mapping[str, object], names: frozenset[str] = frozenset()) -> None:
        """`names`: the assistant's, from its wake phrases: courtesy, like "please"."""
        self._polite = _polite(names)
        self._filler = _FILLER | names
        sentences: dict[str, str] = {}
        for name, intent in intents.intents.items():
            if name not in handlers:
                continue
            for block in intent.data:
                if block.requires_context:
                    continue  # an answer to a question is never matched out of its context
                rules = {**intents.expansion_rules, **block.expansion_rules}
                lists = {**intents.slot_lists, **block.slot_lists}
                for template in block.sentences:
                    for text in itertools.islice(_written(template.expression, rules, lists), _PER_TEMPLATE):
                        sentences.setdefault(" ".join(text.split()), name)
        self.sentences = list(sentences)
        self.intent_of = sentences
        self.first_words = sorted({text.split()[0] for text in sentences if text.split()[0] not in self._filler
                                   and text.split()[0] not in (_NUMBER, _WILDCARD)})
        """The words a request begins with ("add", "cancel", "remind"), for a misheard first word."""

    def first_word_corrections(self, transcript: str) -> list[str]:
        """The transcript with its first word replaced by each request's first word spelt
        alike ("but renew the insurance on the to-do list" -> "put renew ..."; "council the
        reminder" -> "cancel the reminder"), best first; none when the first word is one."""
        words = self._polite.sub("", " ".join(_words(transcript))).split()
        if len(words) < 3 or words[0] in self.first_words or _is_number(words[0]):
            return []
        alike = process.extract(words[0], self.first_words, scorer=fuzz.ratio, score_cutoff=ALIKE, limit=3)
        return [" ".join([word, *words[1:]]) for word, _score, _index in alike]

    def corrections(self, transcript: str, most: int = 5) -> list[tuple[str, str]]:
        """(the corrected transcript, the intent of the sentence it was corrected to) for the
        nearest few sentences that are near enough, nearest first."""
        said = self._polite.sub("", " ".join(_words(transcript)))
        abstract = [_NUMBER if _is_number(w) else w for w in said.split()]
        if not abstract:
            return []
        found = []
        for sentence, _score, _index in process.extract(" ".join(abstract), self.sentences, scorer=fuzz.ratio,
                                                        score_cutoff=NEAR, limit=most):
            shared = (set(abstract) & set(sentence.split())) - self._filler - {_NUMBER, _WILDCARD}
            corrected = _aligned(said.split(), abstract, sentence.split()) if shared else None
            if corrected is not None:
                found.append((corrected, self.intent_of[sentence]))
        return found

    def correct(self, transcript: str) -> tuple[str, str] | None:
        """The nearest correction, or None."""
        found = self.corrections(transcript, most=1)
        return found[0] if found else None


def _aligned(said: list[str], abstract: list[str], sentence: list[str]) -> str | None:
    """The sentence's words, with the transcript's own numbers and wildcard words in their
    places; None when they cannot be placed or too many words change."""
    out: list[str] = []
    changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=abstract, b=sentence, autojunk=False).get_opcodes():
        ours, theirs = said[i1:i2], sentence[j1:j2]
        if tag == "equal":
            out += ours
        elif theirs == [_WILDCARD]:
            out += ours  # the transcript's words fill the wildcard
        elif _NUMBER in theirs or _WILDCARD in theirs or _NUMBER in abstract[i1:i2]:
            return None  # a number or a name that cannot be placed is not guessed
        elif not _sounds_alike(ours, theirs):
            return None  # "colour" is not a misheard "joke"
        else:
            changed += max(len(ours), len(theirs))
            out += theirs
    return " ".join(out) if changed <= MOST_CHANGED_WORDS else None


def _sounds_alike(ours: list[str], theirs: list[str]) -> bool:
    """Words put in, left out or replaced are small ones ("in" for "and"), or spelt nearly
    alike ("cancelled" for "cancel", "value" for "volume")."""
    if set(ours) <= _FILLER and set(theirs) <= _FILLER:
        return True
    return bool(ours and theirs) and fuzz.ratio(" ".join(ours), " ".join(theirs)) >= ALIKE


def _written(expression: Expression, rules: Mapping[str, Sentence], lists: Mapping[str, object],
             depth: int = 0) -> Iterator[str]:
    """Every sentence the expression can say (lazily: callers take the first few thousand)."""
    if isinstance(expression, TextChunk):
        yield expression.text.lower()
    elif isinstance(expression, ListReference):
        yield from _list_words(lists.get(expression.list_name))
    elif isinstance(expression, RuleReference):
        rule = rules.get(expression.rule_name)
        if rule is None or depth > 16 or expression.rule_name.endswith(_SKIPPED_RULES):
            yield ""
        else:
            yield from _written(rule.expression, rules, lists, depth + 1)
    elif isinstance(expression, Alternative):
        for item in expression.items:
            yield from _written(item, rules, lists, depth + 1)
    elif isinstance(expression, Group):
        parts = [list(itertools.islice(_written(item, rules, lists, depth + 1), _PER_TEMPLATE))
                 for item in expression.items]
        if math.prod(len(part) for part in parts) <= _PER_TEMPLATE:
            for combination in itertools.product(*parts):
                yield "".join(combination)
            return
        # Too many to write out: a fixed sample, so every part's choices are represented.
        rng = random.Random(0)
        for _ in range(_PER_TEMPLATE):
            yield "".join(rng.choice(part) for part in parts)
    else:
        yield ""


def _list_words(slot_list: object) -> Iterator[str]:
    if isinstance(slot_list, RangeSlotList):
        yield f" {_NUMBER} "
    elif isinstance(slot_list, WildcardSlotList):
        yield f" {_WILDCARD} "
    elif isinstance(slot_list, TextSlotList):
        for value in slot_list.values:
            yield f" {next(_written(value.text_in, {}, {}), '')} "
    else:
        yield ""


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))


def _is_number(word: str) -> bool:
    return bool(re.fullmatch(r"\d+(\.\d+)?", word)) or word in _NUMBER_WORDS


_NUMBER_WORDS = frozenset("""one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred""".split())
