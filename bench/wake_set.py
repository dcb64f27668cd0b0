"""The wake-word benchmark set: labelled audio for measuring "hey jarvis" detection (issue 15).

    .venv/bin/python -m bench.wake_set [--out DIR]

builds the set if it is not already complete, and prints where it is and a summary. It lives
outside git, in $ASSISTANT_BENCH_CACHE/wake-set-v1 (else ~/.cache/assistant/bench/wake-set-v1):

    DIR/positives/*.wav   each holds exactly one "hey jarvis"
    DIR/negatives/*.wav   no wake phrase at all
    DIR/manifest.json     every file, with what is in it; and the totals
    DIR/complete          written last: a set without it is not finished

All WAVs are 16 kHz mono 16-bit PCM. A positive is a short lead-in, the wake phrase, maybe a
command (at once or after a pause), and a tail of at least 1.5 s, clean or in pink, babble or
household noise at 20, 10 or 5 dB SNR. Its `phrase_start_s` and `phrase_end_s` are the true
bounds of the words "hey jarvis": the phrase is synthesised on its own, its padding trimmed and
the pieces joined, so the times come from how the file was built, never from a detector.
Negatives are speech, near misses ("hey Travis"), TV-like babble, music, household noise and
the assistant's own replies.

Voices: the bundled piper voice at several speeds and noise settings and pitch-shifted by
resampling (other speakers, roughly), and espeak-ng voices and variants. The choices are
seeded; piper's own synthesis samples noise, so its audio is not bit-reproducible.
The manifest holds a hash of this file: a changed generator rebuilds the set.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

VERSION = "wake-set-v1"
RATE_HZ = 16000
SEED = 15  # the number; every file draws from its own stream of it
WAKE_PHRASE = "Hey Jarvis."
WAKE_PHRASE_LEADING = "Hey Jarvis,"
"""Said when a command follows at once: a comma's continuing intonation."""
COMMANDS = [
    "What time is it?", "Set a timer for five minutes.", "Turn the volume up.", "What's the weather like?",
    "What's the date today?", "Stop.", "Tell me a joke.", "Turn off the kitchen lights.",
    "Wake me up at seven in the morning.", "What is seventeen times three?",
]
SNRS_DB = (20, 10, 5)
NOISES = ("pink", "babble", "household")
CONDITIONS = [("clean", None)] + [(noise, snr) for noise in NOISES for snr in SNRS_DB]
FOLLOWS = ("none", "at_once", "after_pause")
SLOTS_PER_VOICE = 12
"""Positives per voice: each follow type 4 times, the conditions rotating across voices."""
NEGATIVE_MINUTES = {"speech": 25, "near_miss": 7, "babble": 12, "music": 9, "household": 9, "own_replies": 6}
_FLOOR = 1e-4
"""A quiet room's noise floor (-80 dBFS): no file is digital zero anywhere."""


# ---------------------------------------------------------------- voices

@dataclass(frozen=True)
class Voice:
    name: str
    engine: str
    """piper or espeak-ng."""
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w_scale: float = 0.8
    semitones: float = 0.0
    """piper only: pitch and formants shifted by resampling (which also speeds it up)."""
    espeak_voice: str = ""
    words_per_minute: int = 175
    pitch: int = 50

    def settings(self) -> dict:
        if self.engine == "piper":
            return {"length_scale": self.length_scale, "noise_scale": self.noise_scale,
                    "noise_w_scale": self.noise_w_scale, "semitones": self.semitones}
        return {"espeak_voice": self.espeak_voice, "words_per_minute": self.words_per_minute, "pitch": self.pitch}


def piper_voice(name: str, length_scale: float = 1.0, noise: float = 0.667, noise_w: float = 0.8,
                semitones: float = 0.0) -> Voice:
    """The bundled voice (its own noise defaults are 0.667 and 0.8)."""
    # A shift up also speeds the speech up; a longer length_scale keeps the tempo.
    tempo = 2 ** (semitones / 12)
    return Voice(name, "piper", round(length_scale * tempo, 3), noise, noise_w, semitones)


def espeak_voice(voice: str, words_per_minute: int, pitch: int) -> Voice:
    return Voice(f"espeak-{voice}-s{words_per_minute}-p{pitch}", "espeak-ng", espeak_voice=voice,
                 words_per_minute=words_per_minute, pitch=pitch)


PIPER_REPLY_VOICE = piper_voice("piper")
VOICES = [
    PIPER_REPLY_VOICE,
    piper_voice("piper-fast", 0.75),
    piper_voice("piper-slow", 1.3),
    piper_voice("piper-flat", noise=0.333, noise_w=0.4),
    piper_voice("piper-lively", noise=0.9, noise_w=1.2),
    piper_voice("piper-brisk-varied", 0.85, noise=0.8, noise_w=1.0),
    piper_voice("piper-up2", semitones=2),
    piper_voice("piper-up3", semitones=3),
    piper_voice("piper-down2", semitones=-2),
    piper_voice("piper-down3", semitones=-3),
    espeak_voice("en-us", 150, 50),
    espeak_voice("en", 175, 45),
    espeak_voice("en-gb-scotland", 165, 50),
    espeak_voice("en-gb-x-rp", 160, 55),
    espeak_voice("en-029", 170, 50),
    espeak_voice("en-us+f3", 165, 60),
    espeak_voice("en-us+m3", 155, 40),
    espeak_voice("en+f4", 180, 65),
    espeak_voice("en-us+klatt", 150, 50),
    espeak_voice("en-us-nyc", 170, 45),
    espeak_voice("en-gb-x-gbclan", 150, 50),
    espeak_voice("en-us+Annie", 170, 70),
    espeak_voice("en-us+belinda", 160, 55),
    espeak_voice("en-us+david", 140, 35),
    espeak_voice("en-us+steph", 185, 55),
]
VOICE_BY_NAME = {voice.name: voice for voice in VOICES}


class WakeSetError(RuntimeError):
    """The set cannot be built here (a missing tool)."""


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise WakeSetError("espeak-ng not found: install Debian's espeak-ng package (apt-get install espeak-ng)")


class Synthesizer:
    """Speech from any voice: trimmed of padding, at 16 kHz, at a set loudness."""

    def __init__(self) -> None:
        require_espeak()
        self._piper = None
        self._said: dict[tuple[Voice, str], np.ndarray] = {}

    def say(self, voice: Voice, text: str, again: bool = False) -> np.ndarray:
        """`again`: the audio of the last time this voice said this text (kept only when asked),
        not a new synthesis; piper samples noise, so a new one differs a little."""
        key = (voice, text)
        if again and key in self._said:
            return self._said[key]
        audio = trim(self._piper_say(voice, text) if voice.engine == "piper" else _espeak_say(voice, text))
        audio = audio * np.float32(0.1 / max(active_rms(audio), 1e-6))  # -20 dBFS while speaking
        if again:
            self._said[key] = audio
        return audio

    def _piper_say(self, voice: Voice, text: str) -> np.ndarray:
        from piper import PiperVoice, SynthesisConfig

        from assistant.config import BUNDLED
        from assistant.models import tts_voice

        if self._piper is None:
            self._piper = PiperVoice.load(*tts_voice(BUNDLED))
        config = SynthesisConfig(length_scale=voice.length_scale, noise_scale=voice.noise_scale,
                                 noise_w_scale=voice.noise_w_scale)
        audio = np.concatenate([chunk.audio_float_array for chunk in self._piper.synthesize(text, config)])
        # Played as if recorded at a higher rate: higher pitch and formants, a different speaker.
        rate_hz = self._piper.config.sample_rate * 2 ** (voice.semitones / 12)
        return soxr.resample(audio, rate_hz, RATE_HZ).astype(np.float32)


def _espeak_say(voice: Voice, text: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
        subprocess.run(["espeak-ng", "-v", voice.espeak_voice, "-s", str(voice.words_per_minute),
                        "-p", str(voice.pitch), "-w", wav.name, "--", text], check=True, capture_output=True)
        audio, rate_hz = soundfile.read(wav.name, dtype="float32")
    return soxr.resample(audio, rate_hz, RATE_HZ).astype(np.float32)


def _frame_energy(audio: np.ndarray) -> np.ndarray:
    """Mean square of each 10 ms frame."""
    frame = RATE_HZ // 100
    frames = len(audio) // frame
    return (audio[:frames * frame].reshape(frames, frame).astype(np.float64) ** 2).mean(axis=1)


def _loud_frames(energy: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    return np.flatnonzero(energy > energy.max() * 10 ** (floor_db / 10))


def trim(audio: np.ndarray) -> np.ndarray:
    """Speech without the synthesiser's silence either end: the 10 ms frames within 40 dB of the
    loudest, and one frame more each side so a soft final consonant (Jarvis's s) stays whole."""
    loud = _loud_frames(_frame_energy(audio))
    frame = RATE_HZ // 100
    return audio[max(loud[0] - 1, 0) * frame:(loud[-1] + 2) * frame]


def active_rms(audio: np.ndarray) -> float:
    """RMS while speaking: over the frames within 40 dB of the loudest."""
    energy = _frame_energy(audio)
    if not np.any(energy):
        return 0.0
    return float(np.sqrt(energy[_loud_frames(energy)].mean()))


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE_HZ), dtype=np.float32)


# ---------------------------------------------------------------- text

_STDLIB_MODULES = (
    "argparse", "asyncio", "bisect", "calendar", "collections", "configparser", "contextlib", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "email.message", "enum", "fnmatch", "fractions",
    "ftplib", "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "http.client",
    "http.server", "imaplib", "inspect", "io", "ipaddress", "json", "locale", "logging", "mailbox",
    "optparse", "os", "pathlib", "pickle", "platform", "poplib", "pprint", "pydoc", "queue", "random", "re",
    "sched", "secrets", "selectors", "shlex", "shutil", "smtplib", "socket", "socketserver", "sqlite3",
    "ssl", "statistics", "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap", "threading",
    "timeit", "tokenize", "trace", "traceback", "typing", "unittest", "urllib.parse", "urllib.request",
    "uuid", "warnings", "wave", "weakref", "xml.dom.minidom", "zipfile", "zoneinfo",
)
_PLAIN_SENTENCE = re.compile(r"[A-Z][a-z']*(?:,? [A-Za-z']+)*\.")


def _docstrings(module_name: str) -> Iterator[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return
    members = [module]
    for _, member in inspect.getmembers(module):
        if inspect.isclass(member) or inspect.isfunction(member):
            members.append(member)
            if inspect.isclass(member):
                members += [method for _, method in inspect.getmembers(member, inspect.isfunction)]
    for member in members:
        doc = getattr(member, "__doc__", None)
        if isinstance(doc, str):  # a few classes hold a descriptor there
            yield doc


def without_jarvis(text: str) -> str:
    return " ".join(re.sub(r"jarvis", "", text, flags=re.IGNORECASE).split())


def plain_sentences() -> list[str]:
    """Varied English with no network: plain sentences (5-25 words of letters) from the standard
    library's docstrings, and the requests of fixtures/routing_set.json; shuffled, seeded."""
    found: set[str] = set()
    with warnings.catch_warnings():  # importing and reading some modules warns of deprecations
        warnings.simplefilter("ignore")
        docs = [doc for name in _STDLIB_MODULES for doc in _docstrings(name)]
    for doc in docs:
        for sentence in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
            if _PLAIN_SENTENCE.fullmatch(sentence) and 5 <= len(sentence.split()) <= 25:
                found.add(sentence)
    routing = Path(__file__).resolve().parent.parent / "fixtures" / "routing_set.json"
    found.update(item["text"] for item in json.loads(routing.read_text(encoding="utf-8")))
    sentences = sorted({without_jarvis(s) for s in found} - {""})
    np.random.default_rng(SEED).shuffle(sentences)
    return sentences


NEAR_MISS_PHRASES = [
    "Hey Travis", "Jarvis", "Hey there", "Hey Jarvie", "Hey Marcus", "Hey service", "Harvest",
    "A jar of this", "Hey, are you there", "Charvis", "Hey Davis", "Hey jars", "Purvis", "Hey Harvey",
    "Hey Mavis", "Hey Jeeves", "Hey Artis", "Carvers",
]
NEAR_MISS_SENTENCES = [
    "Hey Travis, could you pass me the salt?", "Jarvis is a common surname in the north of England.",
    "We bought a jar of this jam at the harvest fair.", "Travis said hey to everyone at the party.",
    "Hey, are you there, Davis?", "The harvest festival starts on Sunday.", "Mister Purvis lives next door.",
    "Have you seen Mavis today?", "Hey there, how was the service?", "Charvis played football in college.",
    "Hey, the jars go on the top shelf.", "Ask Jarvie to bring the car around.", "Hey Marcus, what time is it?",
    "Harvey, are you there?", "Hey Davis, turn the volume up.", "The carvers finished the statue on Friday.",
    "Hey Travis, set a timer for five minutes.", "I asked Jarvis to water the plants.",
]


def near_miss_utterances() -> list[str]:
    """Each near miss alone, with a command after it, and in sentences."""
    with_command = [f"{phrase}, {COMMANDS[i % len(COMMANDS)][0].lower()}{COMMANDS[i % len(COMMANDS)][1:]}"
                    for i, phrase in enumerate(NEAR_MISS_PHRASES)]
    alone = [phrase + "." for phrase in NEAR_MISS_PHRASES]
    return [u for trio in zip(alone, with_command, NEAR_MISS_SENTENCES * 2, strict=False) for u in trio]


def own_replies() -> list[str]:
    """What the assistant says, as its skills word it (never its name reply, which says the wake phrase)."""
    from assistant.understand.skills import SkillRequest, abilities, load_skills
    from assistant.understand.skills.conversation import help_reply

    _, handlers = load_skills()
    said_help = help_reply(SkillRequest(abilities=abilities(handlers)))

    return [
        "It's 10:09 PM.", "It's 7:30 AM.", "It's 12:45 PM.", "Today is Tuesday, March 4, 2025.",
        "Today is Saturday, November 22, 2025.", "Timer set for five minutes.", "Timer set for 1 hour and 30 minutes.",
        "Pasta timer set for 12 minutes.", "The 5 minute timer has 3 minutes and 12 seconds left.",
        "You have 2 timers: the pasta timer and the tea timer.", "Your timer is cancelled.", "You have no timers.",
        "Alarm set for 7:00 AM tomorrow.", "You have one alarm, at 6:30 AM tomorrow.", "Your alarm is cancelled.",
        "Volume 70 percent.", "17 times 3 is 51.", "144 divided by 12 is 12.", "You can't divide by zero.",
        said_help, "I haven't said anything yet.",
        "It will be mostly sunny today with a high of 21 degrees and a light breeze in the afternoon.",
        "Expect rain this evening, around 8 millimetres, and a low of 9 degrees overnight.",
        "The Eiffel Tower is about 330 metres tall and was finished in 1889.",
        "The sky looks blue because air scatters short blue wavelengths of sunlight more than red ones.",
        "Mount Everest is the highest mountain above sea level, at 8,849 metres.",
        "A group of crows is called a murder.", "The moon is about 384,000 kilometres from Earth.",
        "Sorry, I couldn't reach the cloud just now. Please try again in a moment.",
        "Sorry, that isn't a time I can set an alarm for.",
        ("Here is a short story. Once upon a time, a brave little dragon lived at the edge of a quiet village, "
         "and every night it guarded the sheep."),
    ]


# ---------------------------------------------------------------- noise

def rms(audio: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def normalized(audio: np.ndarray) -> np.ndarray:
    return (audio / max(rms(audio), 1e-9)).astype(np.float32)


def colored_noise(samples: int, rng: np.random.Generator, exponent: float = 1.0,
                  low_hz: float = 20.0, high_hz: float = RATE_HZ / 2) -> np.ndarray:
    """Noise whose power falls as 1/f**exponent (1 pink, 2 brown, 0 white) within a band; RMS 1."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    freqs = np.fft.rfftfreq(samples, 1 / RATE_HZ)
    spectrum *= np.where((freqs >= low_hz) & (freqs <= high_hz), 1 / np.maximum(freqs, low_hz) ** (exponent / 2), 0)
    return normalized(np.fft.irfft(spectrum, samples))


def pink_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    return colored_noise(samples, rng, 1.0)


def _add(out: np.ndarray, sound: np.ndarray, at: int) -> None:
    """Add a sound into a buffer at a sample index, cut at its end."""
    if at < len(out):
        part = sound[:len(out) - at]
        out[at:at + len(part)] += part


def _decaying(samples: int, decay_s: float) -> np.ndarray:
    return np.exp(-np.arange(samples) / (decay_s * RATE_HZ)).astype(np.float32)


def hum(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum at 50 or 60 Hz with its harmonics."""
    mains = rng.choice([50.0, 60.0])
    t = np.arange(samples) / RATE_HZ
    wave = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k ** 1.3 for k in range(1, 8))
    return normalized(wave)


def clatter(samples: int, rng: np.random.Generator, per_s: float) -> np.ndarray:
    """Dishes and cutlery: short ringing clicks at random times (several high partials, fast decay)."""
    out = np.zeros(samples, np.float32)
    for at in rng.uniform(0, samples, rng.poisson(per_s * samples / RATE_HZ)).astype(int):
        length = int(0.15 * RATE_HZ)
        t = np.arange(length) / RATE_HZ
        ring = sum(np.sin(2 * np.pi * rng.uniform(1500, 7000) * t) for _ in range(3))
        _add(out, (ring * _decaying(length, rng.uniform(0.01, 0.05)) * rng.uniform(0.3, 1.0)).astype(np.float32), at)
    return out


def knocks(samples: int, rng: np.random.Generator, per_s: float) -> np.ndarray:
    """Door knocks: groups of 2-4 low thumps a fifth of a second apart."""
    out = np.zeros(samples, np.float32)
    for at in rng.uniform(0, samples, rng.poisson(per_s * samples / RATE_HZ)).astype(int):
        for i in range(rng.integers(2, 5)):
            length = int(0.08 * RATE_HZ)
            t = np.arange(length) / RATE_HZ
            thump = np.sin(2 * np.pi * rng.uniform(120, 300) * t) + 0.4 * colored_noise(length, rng, 1.0, 80, 2000)
            _add(out, (thump * _decaying(length, 0.015)).astype(np.float32), at + int(i * rng.uniform(0.15, 0.25) * RATE_HZ))
    return out


def water(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Running water: band noise swelling and fading, on for stretches of several seconds."""
    noise = colored_noise(samples, rng, 0.5, 400, 5000)
    swell = np.interp(np.arange(samples), np.linspace(0, samples, 50), rng.uniform(0.5, 1.5, 50))
    running = np.zeros(samples, np.float32)
    for start in rng.uniform(0, samples, max(1, samples // (20 * RATE_HZ))).astype(int):
        running[start:start + int(rng.uniform(3, 10) * RATE_HZ)] = 1
    return (noise * swell * running).astype(np.float32)


def household_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """A kitchen or living room: a fan (brown or pink noise), hum, clatter, water and knocks; RMS 1."""
    fan = colored_noise(samples, rng, rng.choice([1.0, 2.0]), 30, 6000)
    mix = (fan * rng.uniform(0.6, 1.0) + hum(samples, rng) * rng.uniform(0.05, 0.3)
           + clatter(samples, rng, rng.uniform(0.1, 0.5)) * rng.uniform(0.5, 2.0)
           + knocks(samples, rng, rng.uniform(0.01, 0.05)) * rng.uniform(1.0, 3.0))
    if rng.random() < 0.5:
        mix += water(samples, rng) * rng.uniform(0.5, 1.2)
    return normalized(mix)


def babble(samples: int, rng: np.random.Generator, pool: np.ndarray, streams: int | None = None) -> np.ndarray:
    """TV-like babble: 3-6 speech streams from random places in a pool of speech, summed; RMS 1."""
    streams = streams or int(rng.integers(3, 7))
    mix = sum(np.take(pool, np.arange(start, start + samples), mode="wrap") * rng.uniform(0.5, 1.0)
              for start in rng.integers(0, len(pool), streams))
    return normalized(mix)


def _tone(freq: float, seconds: float, harmonics: int, decay_s: float) -> np.ndarray:
    """A note: a few harmonics, a quick attack and an exponential decay."""
    length = int(min(seconds, 6 * decay_s) * RATE_HZ)  # by then it is 52 dB down
    t = np.arange(length) / RATE_HZ
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1))
    attack = np.minimum(1, t / 0.01)
    return (wave * attack * _decaying(length, decay_s)).astype(np.float32)


_PROGRESSIONS = ([0, 7, 9, 5], [0, 5, 7, 5], [9, 5, 0, 7], [0, 3, 8, 10])
_PENTATONIC = (0, 2, 4, 7, 9, 12, 14, 16)


def music(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic music: chords, a melody and (mostly) drums from filtered noise bursts; RMS 1."""
    beat = int(60 / rng.choice([72, 90, 104, 120, 132, 144]) * RATE_HZ)
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    progression = _PROGRESSIONS[rng.integers(len(_PROGRESSIONS))]
    drums = rng.random() < 0.75
    out = np.zeros(samples, np.float32)
    for bar, at in enumerate(range(0, samples, 4 * beat)):
        chord_root = root * 2 ** (progression[bar % 4] / 12)
        for step in (0, 4, 7, 12):
            _add(out, 0.25 * _tone(chord_root * 2 ** (step / 12), 4 * beat / RATE_HZ, 5, 1.2), at)
        _add(out, 0.4 * _tone(chord_root / 2, 2 * beat / RATE_HZ, 3, 0.5), at)
    at = 0
    while at < samples:
        length = beat // 2 * int(rng.choice([1, 1, 2, 2, 4]))
        if rng.random() < 0.8:
            note = root * 4 * 2 ** (_PENTATONIC[rng.integers(len(_PENTATONIC))] / 12)
            _add(out, 0.35 * _tone(note, length / RATE_HZ, 3, 0.3), at)
        at += length
    if drums:
        _add_drums(out, beat, rng)
    return normalized(out)


def _add_drums(out: np.ndarray, beat: int, rng: np.random.Generator) -> None:
    kick_len, snare_len, hat_len = int(0.25 * RATE_HZ), int(0.2 * RATE_HZ), int(0.05 * RATE_HZ)
    t = np.arange(kick_len) / RATE_HZ
    kick = np.sin(2 * np.pi * (50 * t + 120 * 0.04 * (1 - np.exp(-t / 0.04)))) * _decaying(kick_len, 0.08)
    for i, at in enumerate(range(0, len(out), beat)):
        if i % 2 == 0:
            _add(out, 0.8 * kick.astype(np.float32), at)
        else:
            _add(out, 0.3 * colored_noise(snare_len, rng, 0.0, 200, 6000) * _decaying(snare_len, 0.05), at)
        for half in (0, beat // 2):
            _add(out, 0.1 * colored_noise(hat_len, rng, 0.0, 6000, 8000) * _decaying(hat_len, 0.01), at + half)


def noise_of(kind: str, samples: int, rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    if kind == "pink":
        return pink_noise(samples, rng)
    if kind == "babble":
        return babble(samples, rng, pool)
    if kind == "household":
        return household_noise(samples, rng)
    raise ValueError(kind)


def in_noise(audio: np.ndarray, kind: str, snr_db: float | None, rng: np.random.Generator,
             pool: np.ndarray) -> np.ndarray:
    """Speech (or any sound) over a noise at an SNR against its active RMS; clean keeps a quiet floor."""
    floor = rng.standard_normal(len(audio)).astype(np.float32) * _FLOOR
    if kind == "clean":
        return audio + floor
    noise = noise_of(kind, len(audio), rng, pool)
    return audio + noise * np.float32(active_rms(audio) / 10 ** (snr_db / 20)) + floor


# ---------------------------------------------------------------- files

def write_wav(path: Path, audio: np.ndarray) -> None:
    peak = float(np.max(np.abs(audio)))
    if peak > 0.99:  # a loud mix is turned down whole rather than clipped
        audio = audio * np.float32(0.99 / peak)
    soundfile.write(path, np.round(audio * 32767).astype(np.int16), RATE_HZ, subtype="PCM_16")


def file_rng(*key: int) -> np.random.Generator:
    return np.random.default_rng([SEED, *key])


def rounded(seconds: float) -> float:
    return round(seconds, 3)


class Speech:
    """A clip being built, piece by piece, that knows where each piece lies."""

    def __init__(self) -> None:
        self.pieces: list[np.ndarray] = []
        self.samples = 0

    @property
    def at_s(self) -> float:
        return self.samples / RATE_HZ

    def add(self, audio: np.ndarray) -> tuple[float, float]:
        start = self.at_s
        self.pieces.append(audio)
        self.samples += len(audio)
        return start, self.at_s

    def pause(self, seconds: float) -> None:
        self.add(silence(seconds))

    def audio(self) -> np.ndarray:
        return np.concatenate(self.pieces) if self.pieces else silence(0)


def positive_clip(synth: Synthesizer, voice: Voice, follow: str, command: str, rng: np.random.Generator,
                  wake_phrase: str | None = None, tail_s: tuple[float, float] = (1.5, 2.5),
                  lead_s: tuple[float, float] = (0.5, 1.0)) -> tuple[np.ndarray, dict]:
    """Lead-in, "hey jarvis", maybe a command, a tail; and where the phrase lies."""
    clip = Speech()
    clip.pause(rng.uniform(*lead_s))
    phrase = wake_phrase or (WAKE_PHRASE_LEADING if follow == "at_once" else WAKE_PHRASE)
    start_s, end_s = clip.add(synth.say(voice, phrase))
    gap_s = None
    if follow != "none":
        gap_s = rng.uniform(0.0, 0.15) if follow == "at_once" else rng.uniform(0.8, 1.2)
        clip.pause(gap_s)
        clip.add(synth.say(voice, command))
    clip.pause(rng.uniform(*tail_s))
    info = {"text": phrase if follow == "none" else f"{phrase} {command}", "follow": follow,
            "command": command if follow != "none" else None, "gap_s": None if gap_s is None else rounded(gap_s),
            "phrase_start_s": rounded(start_s), "phrase_end_s": rounded(end_s)}
    return clip.audio(), info


def speech_stream(synth: Synthesizer, voices: list[Voice], texts: Iterator[str], seconds: float,
                  rng: np.random.Generator, gaps_s: tuple[float, float],
                  again: bool = False) -> tuple[np.ndarray, list[dict]]:
    """Utterances, voice after voice in turn, until `seconds` are filled; and what was said when."""
    clip = Speech()
    said = []
    clip.pause(rng.uniform(0.3, 1.0))
    while clip.at_s < seconds:
        voice = voices[len(said) % len(voices)]
        text = next(texts)
        start_s, end_s = clip.add(synth.say(voice, text, again))
        said.append({"text": text, "voice": voice.name, "start_s": rounded(start_s), "end_s": rounded(end_s)})
        clip.pause(rng.uniform(*gaps_s))
    return clip.audio(), said


def babble_pool(synth: Synthesizer, sentences: Iterator[str], seconds: float = 240) -> np.ndarray:
    """Several minutes of continuous speech, the voices taking turns, for babble."""
    audio, _ = speech_stream(synth, VOICES, sentences, seconds, file_rng(99), (0.05, 0.3))
    return audio


# ---------------------------------------------------------------- the set

def positive_plan() -> list[tuple[Voice, str, str, float | None, str]]:
    """(voice, follow, noise, snr, command) for every positive: each voice says the phrase 4 times
    per follow type, and the conditions rotate so every voice meets each of them."""
    plan = []
    for v, voice in enumerate(VOICES):
        for slot in range(SLOTS_PER_VOICE):
            follow = FOLLOWS[slot % len(FOLLOWS)]
            noise, snr = CONDITIONS[(v + slot) % len(CONDITIONS)]
            plan.append((voice, follow, noise, snr, COMMANDS[(v * 7 + slot) % len(COMMANDS)]))
    return plan


def build_positives(synth: Synthesizer, out: Path, pool: np.ndarray) -> list[dict]:
    (out / "positives").mkdir()
    entries = []
    plan = positive_plan()
    for i, (voice, follow, noise, snr, command) in enumerate(plan):
        rng = file_rng(1, i)
        speech, info = positive_clip(synth, voice, follow, command, rng)
        level_db = rng.uniform(-12, 0)  # louder and quieter talkers, or nearer and farther
        audio = in_noise(speech * np.float32(10 ** (level_db / 20)), noise, snr, rng, pool)
        name = f"positives/{i:03d}_{voice.name}_{follow}_{noise}{'' if snr is None else snr}.wav"
        write_wav(out / name, audio)
        entries.append({"file": name, "voice": voice.name, "engine": voice.engine, **voice.settings(),
                        "noise": noise, "snr_db": snr, **info, "level_db": round(level_db, 1),
                        "duration_s": rounded(len(audio) / RATE_HZ)})
        if (i + 1) % 50 == 0:
            _progress(f"positives: {i + 1}/{len(plan)}")
    return entries


Maker = Callable[[int, np.random.Generator, float], tuple[np.ndarray, dict]]
"""(file index, its rng, seconds wanted) -> (audio, the manifest fields of its kind)."""


def _minutes(kind: str, out: Path, entries: list[dict], make: Maker, lengths_s: tuple[float, float]) -> None:
    """Files of one kind, each `lengths_s` long or so, until the kind's minutes are filled."""
    total_s, index = 0.0, 0
    kind_code = list(NEGATIVE_MINUTES).index(kind)
    while total_s < NEGATIVE_MINUTES[kind] * 60:
        rng = file_rng(2, kind_code, index)
        audio, extra = make(index, rng, rng.uniform(*lengths_s))
        name = f"negatives/{kind}_{index:03d}.wav"
        write_wav(out / name, audio)
        duration_s = len(audio) / RATE_HZ
        entries.append({"file": name, "kind": kind, "duration_s": rounded(duration_s), **extra})
        total_s += duration_s
        index += 1
    _progress(f"negatives: {kind} {total_s / 60:.1f} min in {index} files")


def build_negatives(synth: Synthesizer, out: Path, pool: np.ndarray, sentences: Iterator[str]) -> list[dict]:
    (out / "negatives").mkdir()
    entries: list[dict] = []
    near_misses = near_miss_utterances()

    def speech(index, rng, seconds):  # one voice per file, every voice in turn, some rooms noisy
        voice = VOICES[index % len(VOICES)]
        if voice.engine == "piper":  # piper is slow here (a few times real time): shorter files
            seconds *= 0.6
        audio, said = speech_stream(synth, [voice], sentences, seconds, rng, (0.3, 1.0))
        noise, snr = [("clean", None), ("pink", 20), ("household", 15)][index % 3]
        return in_noise(audio, noise, snr, rng, pool), {"voice": voice.name, "noise": noise, "snr_db": snr,
                                                        "said": said}

    def near_miss(index, rng, seconds):  # three voices a file, the utterances spaced like separate tries
        voices = [VOICES[(index * 7 + k * 11) % len(VOICES)] for k in range(3)]
        texts = (near_misses[(index * 5 + k) % len(near_misses)] for k in range(10 ** 6))
        audio, said = speech_stream(synth, voices, texts, seconds, rng, (1.5, 3.0))
        return in_noise(audio, "clean", None, rng, pool), {"noise": "clean", "snr_db": None, "said": said}

    def babble_file(index, rng, seconds):
        samples = int(seconds * RATE_HZ)
        streams = int(rng.integers(3, 7))
        audio = babble(samples, rng, pool, streams) * np.float32(0.1)
        with_music = index % 2 == 1
        if with_music:
            audio += music(samples, rng) * np.float32(0.1 * rng.uniform(0.2, 0.5))
        return in_noise(audio, "clean", None, rng, pool), {"streams": streams, "music_under": with_music}

    def music_file(index, rng, seconds):
        return in_noise(music(int(seconds * RATE_HZ), rng) * np.float32(0.1), "clean", None, rng, pool), {}

    def household_file(index, rng, seconds):
        audio = household_noise(int(seconds * RATE_HZ), rng) * np.float32(0.1 * rng.uniform(0.3, 1.0))
        return in_noise(audio, "clean", None, rng, pool), {}

    replies = own_replies()

    def own_reply(index, rng, seconds):  # the assistant's own voice and wording
        from assistant.speak.tts import speakable

        texts = (speakable(replies[(index * 9 + k) % len(replies)]) for k in range(10 ** 6))
        # Replies come round again: each is synthesised once (piper is the slow part).
        audio, said = speech_stream(synth, [PIPER_REPLY_VOICE], texts, seconds, rng, (1.0, 3.0), again=True)
        return in_noise(audio, "clean", None, rng, pool), {"voice": PIPER_REPLY_VOICE.name, "said": said}

    _minutes("speech", out, entries, speech, (60, 70))
    _minutes("near_miss", out, entries, near_miss, (35, 50))
    _minutes("babble", out, entries, babble_file, (50, 70))
    _minutes("music", out, entries, music_file, (45, 75))
    _minutes("household", out, entries, household_file, (50, 70))
    _minutes("own_replies", out, entries, own_reply, (35, 50))
    return entries


def generator_hash() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def totals(positives: list[dict], negatives: list[dict]) -> dict:
    by_kind: dict[str, float] = {}
    for entry in negatives:
        by_kind[entry["kind"]] = by_kind.get(entry["kind"], 0.0) + entry["duration_s"] / 60
    return {"positives": len(positives), "positive_hours": round(sum(e["duration_s"] for e in positives) / 3600, 3),
            "negatives": len(negatives), "negative_hours": round(sum(by_kind.values()) / 60, 3),
            "negative_minutes_by_kind": {kind: round(minutes, 2) for kind, minutes in by_kind.items()}}


def build(out: Path) -> None:
    """Build the whole set into `out` (an empty directory); the manifest and marker last."""
    started = time.monotonic()
    synth = Synthesizer()
    sentences = iter(plain_sentences())
    _progress("babble pool: 4 min of speech")
    pool = babble_pool(synth, sentences)
    positives = build_positives(synth, out, pool)
    negatives = build_negatives(synth, out, pool, sentences)
    espeak_version = subprocess.run(["espeak-ng", "--version"], check=False, capture_output=True, text=True).stdout.strip()
    manifest = {"version": VERSION, "generator_sha256": generator_hash(), "rate_hz": RATE_HZ,
                "build_s": round(time.monotonic() - started, 1), "espeak_ng": espeak_version,
                "voices": {v.name: {"engine": v.engine, **v.settings()} for v in VOICES},
                "totals": totals(positives, negatives), "positives": positives, "negatives": negatives}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    (out / "complete").write_text(VERSION + "\n", encoding="utf-8")


def default_dir() -> Path:
    cache = os.environ.get("ASSISTANT_BENCH_CACHE")
    return (Path(cache) if cache else Path.home() / ".cache" / "assistant" / "bench") / VERSION


def is_complete(directory: Path) -> bool:
    try:
        manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (directory / "complete").is_file() and manifest.get("generator_sha256") == generator_hash()


def ensure_wake_set(directory: Path | None = None) -> Path:
    """The set's directory, built first unless already complete from this generator.

    Built in a temporary directory beside it and renamed into place when whole, so a killed
    build never looks complete; an out-of-date set is replaced only once the new one is ready.
    """
    directory = (directory or default_dir()).expanduser().resolve()
    if is_complete(directory):
        return directory
    require_espeak()
    directory.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_builds(directory)
    building = Path(tempfile.mkdtemp(prefix=f".{directory.name}.partial-{os.getpid()}-", dir=directory.parent))
    try:
        _progress(f"building {directory} (in {building.name})")
        build(building)
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            directory.rename(old)
            building.rename(directory)
            shutil.rmtree(old)
        else:
            building.rename(directory)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return directory


def _remove_abandoned_builds(directory: Path) -> None:
    """Partial builds left by a killed process (its pid is in the name and no longer runs)."""
    for partial in directory.parent.glob(f".{directory.name}.partial-*"):
        pid = int(partial.name.split("-")[-2]) if partial.name.split("-")[-2].isdigit() else None
        if pid is not None and not _running(pid):
            shutil.rmtree(partial, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_STARTED = time.monotonic()


def _progress(message: str) -> None:
    print(f"wake set: {time.monotonic() - _STARTED:4.0f} s: {message}", file=sys.stderr, flush=True)


def summary(directory: Path) -> str:
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    total = manifest["totals"]
    kinds = ", ".join(f"{kind} {minutes:.1f}" for kind, minutes in total["negative_minutes_by_kind"].items())
    return (f"{directory}\n"
            f"positives: {total['positives']} files, {total['positive_hours']:.2f} h, {len(manifest['voices'])} voices\n"
            f"negatives: {total['negatives']} files, {total['negative_hours']:.2f} h (minutes: {kinds})\n"
            f"built in {manifest['build_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.wake_set", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help=f"where the set goes (default {default_dir()})")
    args = parser.parse_args(argv)
    try:
        directory = ensure_wake_set(args.out)
    except WakeSetError as err:
        print(f"wake set: {err}", file=sys.stderr)
        return 1
    print(summary(directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
