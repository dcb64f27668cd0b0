"""WebRTC noise suppression and automatic gain on a stream of 16 kHz mono 16-bit chunks.

`webrtc-noise-gain` (the Home Assistant authors' wrapper of webrtc-audio-processing, as
HA's voice satellites use it) works on 10 ms frames only: 160 samples. A `NoiseCleaner`
takes chunks of any size, cuts them into frames and carries the leftover samples to the
next chunk. Each chunk comes back the same length as it went in, 10 ms late: the stream
starts with 10 ms of silence, and the last 10 ms stay inside until more audio comes (or
`reset()`). The processor adapts to the noise over the first second or so of a stream, so
run one cleaner on the whole stream rather than a new one per command.

`bench asr` measures what it does to recognition, by noise kind and level, and its cost.
"""

from __future__ import annotations

import dataclasses

from assistant.hear.audio import CHANNELS, RATE_HZ, WIDTH_BYTES, AudioChunk

FRAME_SAMPLES = RATE_HZ // 100
"""The processor's one frame size: 10 ms."""
_FRAME_BYTES = FRAME_SAMPLES * WIDTH_BYTES


class NoiseCleaner:
    def __init__(self, suppression_level: int = 2, auto_gain_dbfs: int = 0) -> None:
        """suppression_level: 0 (off) to 4 (most); auto_gain_dbfs: the gain control's target
        level in -dBFS, 1 to 31, or 0 for no gain control."""
        if not 0 <= suppression_level <= 4:
            raise ValueError(f"suppression_level {suppression_level}: expected 0 (off) to 4")
        if not 0 <= auto_gain_dbfs <= 31:
            raise ValueError(f"auto_gain_dbfs {auto_gain_dbfs}: expected 0 (off) to 31")
        from webrtc_noise_gain import (
            AudioProcessor,  # a 27 MB native library: only when asked for
        )

        self.suppression_level = suppression_level
        self.auto_gain_dbfs = auto_gain_dbfs
        self._new_processor = lambda: AudioProcessor(auto_gain_dbfs, suppression_level)
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the noise estimate, the gain, and the samples held back."""
        self._processor = self._new_processor()
        self._pending = b""
        self._ready = bytearray(_FRAME_BYTES)  # the 10 ms delay, as silence

    def process(self, chunk: AudioChunk) -> AudioChunk:
        """The chunk cleaned: as many samples, the same time stamp, the audio 10 ms late."""
        if (chunk.rate_hz, chunk.width_bytes, chunk.channels) != (RATE_HZ, WIDTH_BYTES, CHANNELS):
            raise ValueError(f"noise suppression takes {RATE_HZ} Hz mono 16-bit audio, not {chunk.rate_hz} Hz, "
                             f"{chunk.channels} channel(s), {8 * chunk.width_bytes}-bit")
        data = self._pending + chunk.audio if self._pending else chunk.audio
        whole = len(data) - len(data) % _FRAME_BYTES
        for start in range(0, whole, _FRAME_BYTES):
            self._ready += self._processor.Process10ms(data[start:start + _FRAME_BYTES]).audio
        self._pending = bytes(data[whole:])
        size = len(chunk.audio)
        cleaned = bytes(self._ready[:size])
        del self._ready[:size]
        return dataclasses.replace(chunk, audio=cleaned)
