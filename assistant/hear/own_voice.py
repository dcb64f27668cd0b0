"""Keeps the assistant's own voice from waking it.

The output is known exactly, so each synthesised sentence is scored by a private copy of
the first-pass wake model before it plays. While a sentence that scored wake-like plays
(and for a short tail after it, for the room's echo and the detector's lag), a wake
candidate heard at the microphone is the speaker's, and is turned down unverified.
Sentences that don't sound like the wake word leave barge-in untouched.
"""

from __future__ import annotations

import threading

import numpy as np
import soxr

from assistant.hear.audio import (
    FRAME_SAMPLES,
    RATE_HZ,
    AudioChunk,
    float_to_int16,
    int16_to_float,
)
from assistant.hear.wake import FirstPass


class OwnVoiceGuard:
    def __init__(self, first_pass: FirstPass, threshold: float, tail_s: float) -> None:
        self.first_pass = first_pass
        self.threshold = threshold
        """A reply scoring this high on the first pass counts as wake-like (set below the
        wake threshold: the microphone may hear the echo louder than the clean signal)."""
        self.tail_s = tail_s
        self._lock = threading.Lock()  # TTS threads of two turns may overlap briefly

    def wake_like(self, chunk: AudioChunk) -> bool:
        """Would this reply speech, played into the room, look like the wake word?"""
        audio = int16_to_float(chunk.as_int16())
        if chunk.rate_hz != RATE_HZ:
            audio = soxr.resample(audio, chunk.rate_hz, RATE_HZ)
        # A little silence after it: the model scores a phrase just after it ends.
        padded = float_to_int16(np.concatenate([audio, np.zeros(RATE_HZ // 2, dtype=np.float32)]))
        with self._lock:
            self.first_pass.reset()
            peak = 0.0
            for start in range(0, len(padded), FRAME_SAMPLES):
                piece = AudioChunk(padded[start:start + FRAME_SAMPLES].tobytes())
                peak = max(peak, self.first_pass.score(piece))
        return peak >= self.threshold
