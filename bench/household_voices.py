"""The household benchmark's speech: each utterance of fixtures/household_set.json said by a voice.

Synthesis reuses bench/wake_set.py's voices (the bundled piper voice at other speeds and
pitches, espeak-ng voices). Every clip is made once and cached outside git, in
$ASSISTANT_BENCH_CACHE/household-v1 (else ~/.cache/assistant/bench/household-v1), one WAV
per (voice, text), named by a hash of the voice's settings, the text and this generator
(this file and bench/wake_set.py): a changed generator makes new clips, a changed set only
the clips it lacks. A clip is written beside its name and renamed into place, so a killed
run never leaves half a clip.

    .venv/bin/python -m bench.household_voices      # makes every clip of the set, prints a summary

The wake phrase is always the bundled piper voice at its own settings (the voice the wake
models hear best): this benchmark measures understanding, not waking.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from .wake_set import RATE_HZ, Synthesizer, Voice, espeak_voice, piper_voice, require_espeak

VERSION = "household-v1"
WAKE_TEXT = "Hey Jarvis."
WAKE_VOICE = piper_voice("piper")

VOICES = [
    piper_voice("piper"),
    piper_voice("piper-fast", 0.85),
    piper_voice("piper-slow", 1.2),
    piper_voice("piper-up3", semitones=3),
    piper_voice("piper-down2", semitones=-2),
    espeak_voice("en-us", 160, 50),
    espeak_voice("en-gb", 165, 50),
    espeak_voice("en-us+m3", 155, 40),
    espeak_voice("en-us+f2", 165, 60),
    espeak_voice("en-gb-x-rp", 160, 55),
]
"""Every voice, in the order a conversation of no special style takes them (by its index)."""

STYLE_VOICES = {
    "child": [piper_voice("piper-child", 0.9, semitones=4), espeak_voice("en-us+f2", 175, 85)],
    "elderly": [piper_voice("piper-slow", 1.2), espeak_voice("en-gb", 130, 40), piper_voice("piper-down2", semitones=-2)],
}
"""Styles with voices of their own: a child's higher and quicker, an elderly person's slower."""


def family(voice: Voice) -> str:
    return "piper" if voice.engine == "piper" else "espeak"


def voice_for(index: int, style: str) -> Voice:
    """The voice of the set's `index`-th conversation: its style's own voices, else all in turn."""
    pool = STYLE_VOICES.get(style.split("/")[0], VOICES)
    return pool[index % len(pool)]


def generator_hash() -> str:
    here = Path(__file__).resolve()
    digest = hashlib.sha256(here.read_bytes())
    digest.update((here.parent / "wake_set.py").read_bytes())
    return digest.hexdigest()


def default_dir() -> Path:
    cache = os.environ.get("ASSISTANT_BENCH_CACHE")
    return (Path(cache) if cache else Path.home() / ".cache" / "assistant" / "bench") / VERSION


@dataclass
class Clip:
    audio: np.ndarray
    """Float32 at 16 kHz, trimmed of the synthesiser's silence, at -20 dBFS while speaking."""
    voice: str
    text: str

    @property
    def duration_s(self) -> float:
        return len(self.audio) / RATE_HZ


class Clips:
    """Clips from the cache, synthesised into it when missing."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or default_dir()).expanduser()
        self._hash = generator_hash()
        self._synth: Synthesizer | None = None
        self.made = 0

    def path(self, voice: Voice, text: str) -> Path:
        key = json.dumps([self._hash, voice.engine, voice.settings(), text], sort_keys=True)
        return self.directory / f"{voice.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.wav"

    def say(self, voice: Voice, text: str) -> Clip:
        path = self.path(voice, text)
        if not path.exists():
            if self._synth is None:
                require_espeak()
                self._synth = Synthesizer()
            audio = self._synth.say(voice, text)
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.directory)
            os.close(fd)
            try:
                soundfile.write(partial, audio, RATE_HZ, subtype="FLOAT", format="WAV")
                os.replace(partial, path)
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
            self.made += 1
        audio, rate_hz = soundfile.read(path, dtype="float32")
        assert rate_hz == RATE_HZ
        return Clip(audio, voice.name, text)

    def wake(self) -> Clip:
        return self.say(WAKE_VOICE, WAKE_TEXT)


def utterances(conversation: dict) -> list[str]:
    return [turn if isinstance(turn, str) else turn["say"] for turn in conversation["turns"]]


def main() -> int:
    from .household import load_set

    conversations = load_set()
    clips = Clips()
    clips.wake()
    seconds = 0.0
    for index, conversation in enumerate(conversations):
        voice = voice_for(index, conversation["style"])
        for text in utterances(conversation):
            seconds += clips.say(voice, text).duration_s
    print(f"{clips.directory}: {len(conversations)} conversations, {seconds / 60:.1f} min of speech, "
          f"{clips.made} clips made now")
    return 0


if __name__ == "__main__":
    sys.exit(main())
