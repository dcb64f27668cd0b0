"""Has the person finished? Asked at a short pause, and the transcript started meanwhile.

At every pause of `endpoint.pause_s` the pipeline starts a `PauseCheck`: a judge says
whether the command so far is complete (smart-turn hears it; or the transcript is read),
and the command so far is transcribed speculatively. A yes ends the command at once; if
no more speech follows, the speculative transcript is the command's, ready or nearly so
when the turn starts. Speech that resumes makes the check stale: it is dropped.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from assistant.hear.asr import Recognition, SpeechRecognizer, words_of
from assistant.hear.turn_detector import SmartTurn
from assistant.run.worker import in_thread

_TRAILING_WORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "so", "to", "for", "at", "of", "in", "on", "by", "with", "from",
    "about", "my", "your", "is", "are", "me", "um", "uh", "er", "like", "then", "until", "set",
    "plus", "minus", "times", "divided", "multiplied"})
"""Words a finished request hardly ends on ("set a timer for." is someone pausing)."""
_OPENING_WORDS = frozenset({
    "right", "so", "okay", "ok", "well", "oh", "now", "alright", "and", "hey", "listen", "actually",
    "um", "uh", "er", "erm", "hmm", "look", "anyway"})
"""Words that open a request ("Right, the cake's going in ..."): said alone, the person has
only drawn breath."""
_SKILL_OPENINGS = re.compile(r"^(set (a|an|the|my)|wake me|cancel|start (a|an|the)|turn (the|it))\b", re.IGNORECASE)
"""How the skills' commands begin: one that begins so but matches no template yet is not done
("set an alarm for it." is Whisper filling a hesitation after "for")."""


@dataclass(frozen=True)
class Verdict:
    complete: bool
    score: float | None
    """The judge's probability that the command is complete, when it has one."""
    by: str
    """smart_turn, transcript or both."""
    wait_s: float | None = None
    """When not complete: the silence after which the command may end anyway; None: the full
    `endpoint.silence_s`."""


class Judge(Protocol):
    name: str
    needs_transcript: bool

    def judge(self, audio: np.ndarray, heard: Recognition | None) -> Verdict: ...


class SmartTurnJudge:
    """smart-turn v3.2 hears whether the words and intonation sound finished."""

    name = "smart_turn"
    needs_transcript = False

    def __init__(self, model: SmartTurn, threshold: float) -> None:
        self.model = model
        self.threshold = threshold

    def judge(self, audio: np.ndarray, heard: Recognition | None) -> Verdict:
        score = self.model.probability(audio)
        return Verdict(score >= self.threshold, round(score, 3), self.name)


class TranscriptJudge:
    """The transcript so far is complete when a skill's template matches it, or when it ends
    a sentence on a word a finished request can end on and Whisper was not guessing at it
    ("Wake me up at," cut at a hesitation was heard as "Wait to need that.", log-prob -1.5),
    and it is more than an opening word ("Right.": a "yes" of that kind, to a question asked,
    waits for the full silence instead)."""

    name = "transcript"
    needs_transcript = True

    def __init__(self, matches_template: Callable[[str], bool], names: frozenset[str] = frozenset()) -> None:
        """`names`: the assistant's, from its wake phrases: said alone, they open a request too."""
        self.matches_template = matches_template
        self.opening_words = _OPENING_WORDS | names

    def reading(self, heard: Recognition | None) -> str | None:
        """How the words read: "template" (a skill's whole request), "sentence" (a finished
        sentence), or None (unfinished, or nothing said)."""
        text = "" if heard is None or heard.hallucinated() else heard.text
        if all(word in self.opening_words for word in words_of(text)):  # before the templates: "right" is also a yes
            return None
        if self.matches_template(text):
            return "template"
        if _SKILL_OPENINGS.match(text.strip()) or heard is None or heard.guessed:
            return None
        return "sentence" if text and ends_a_sentence(text) else None

    def judge(self, audio: np.ndarray, heard: Recognition | None) -> Verdict:
        return Verdict(self.reading(heard) is not None, None, self.name)


class BothJudge:
    """A skill's whole request (a template matches) is complete; any other text is complete
    when it reads as a finished sentence and smart-turn hears it finished. The model alone
    takes a synthetic "set a timer for" for a whole request; the words alone miss how a
    question was said."""

    name = "both"
    needs_transcript = True

    def __init__(self, model: SmartTurnJudge, words: TranscriptJudge, sentence_silence_s: float) -> None:
        self.model = model
        self.words = words
        self.sentence_silence_s = sentence_silence_s
        """How long a finished-looking sentence waits when the model does not hear it finished."""

    def judge(self, audio: np.ndarray, heard: Recognition | None) -> Verdict:
        reading = self.words.reading(heard)
        if reading != "sentence":
            return Verdict(reading == "template", None, self.name)
        return replace(self.model.judge(audio, heard), by=self.name, wait_s=self.sentence_silence_s)


def ends_a_sentence(text: str) -> bool:
    text = text.strip()
    if not re.search(r"[.?!]$", text) or text.endswith("..."):
        return False
    words = words_of(text)
    return bool(words) and words[-1] not in _TRAILING_WORDS


@dataclass
class PauseCheck:
    """The judgement and the speculative transcript of the command as it was at one pause."""

    pause: int
    """The endpointer's number for the pause."""
    t: float
    """Input time at which the pause reached `pause_s`."""
    verdict: asyncio.Future[Verdict]
    recognition: asyncio.Future[Recognition]
    task: asyncio.Task
    started_wall: float = field(default_factory=time.perf_counter)

    @classmethod
    def start(cls, pause: int, t: float, audio: np.ndarray, judge: Judge | None, asr: SpeechRecognizer,
              heard: asyncio.Future[Recognition] | None = None) -> "PauseCheck":
        """`heard`: the transcript an earlier check of this pause made (the audio since is silence)."""
        loop = asyncio.get_running_loop()
        verdict, recognition = loop.create_future(), heard or loop.create_future()
        check = cls(pause, t, verdict, recognition, task=None)  # type: ignore[arg-type]
        check.task = loop.create_task(check._run(audio, judge, asr, transcribe=heard is None))
        return check

    async def _run(self, audio: np.ndarray, judge: Judge | None, asr: SpeechRecognizer, transcribe: bool) -> None:
        try:
            if judge is not None and not judge.needs_transcript:  # first: the decision waits on it alone
                _settle(self.verdict, await in_thread(judge.judge, audio, None))
            if transcribe:
                _settle(self.recognition, await in_thread(asr.recognize, audio))
            heard = await asyncio.shield(self.recognition)
            if judge is not None and judge.needs_transcript:
                _settle(self.verdict, await in_thread(judge.judge, audio, heard))
        except asyncio.CancelledError:
            self._cancel_results()
            raise
        except Exception as err:  # a stage failure: handed to whoever awaits the results
            for future in (self.verdict, self.recognition):
                if not future.done():
                    future.set_exception(err)

    @property
    def computing(self) -> bool:
        return not self.task.done()

    def decided(self) -> Verdict | None:
        """The verdict, once there is one (a failed judge counts as no verdict)."""
        if not self.verdict.done() or self.verdict.cancelled() or self.verdict.exception() is not None:
            return None
        return self.verdict.result()

    async def transcript(self) -> Recognition:
        """The speculative transcript; cancelling the wait stops the check and waits for its thread."""
        try:
            return await asyncio.shield(self.recognition)
        except asyncio.CancelledError:
            self.cancel()
            await asyncio.wait([self.task])
            raise

    def cancel(self) -> None:
        self.task.cancel()
        self._cancel_results()

    def _cancel_results(self) -> None:
        for future in (self.verdict, self.recognition):
            if not future.done():
                future.cancel()


def _settle(future: asyncio.Future, value) -> None:
    if not future.done():
        future.set_result(value)
