"""The microphone and the speakers, through sounddevice (PortAudio).

The only module that imports sounddevice: replay and the tests run without PortAudio.
The sound card's callback only copies bytes onto the event loop; no model runs there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np

from .audio import RATE_HZ, AudioChunk, Framer, apply_gain, float_to_int16, int16_to_float
from .config import AudioSettings
from .errors import DeviceError

log = logging.getLogger(__name__)


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as err:  # the Python package is there but not the PortAudio library
        raise DeviceError(f"no sound system: PortAudio is not installed ({err}); "
                          "on Debian: apt-get install libportaudio2", code="no_portaudio") from None
    return sounddevice


def _device(name: str) -> str | int | None:
    if name == "default":
        return None
    return int(name) if name.isdigit() else name


class Microphone:
    """16 kHz mono chunks from an input device, stamped with their stream time."""

    def __init__(self, settings: AudioSettings) -> None:
        self.settings = settings
        self.sd = _sounddevice()

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        blocks: asyncio.Queue[np.ndarray] = asyncio.Queue()

        def on_audio(data: np.ndarray, _frames: int, _time: Any, status: Any) -> None:
            if status:
                log.warning("microphone: %s", status)
            loop.call_soon_threadsafe(blocks.put_nowait, data[:, 0].copy())

        try:
            stream = self.sd.InputStream(samplerate=RATE_HZ, channels=1, dtype="float32",
                                         blocksize=RATE_HZ * self.settings.block_ms // 1000,
                                         device=_device(self.settings.input_device), callback=on_audio)
        except (self.sd.PortAudioError, ValueError) as err:
            raise DeviceError(f"cannot open the microphone '{self.settings.input_device}' "
                              f"(audio.input_device): {err}", code="no_input") from None
        framer = Framer()
        with stream:
            while True:
                for chunk in framer.push(apply_gain(await blocks.get(), self.settings.input_gain_db)):
                    yield chunk


class Speaker:
    """Plays reply chunks on an output device; `write` blocks, so call it off the event loop."""

    def __init__(self, settings: AudioSettings, rate_hz: int) -> None:
        sd = _sounddevice()
        self.volume = settings.output_volume
        try:
            self.stream = sd.OutputStream(samplerate=rate_hz, channels=1, dtype="int16",
                                          device=_device(settings.output_device))
            self.stream.start()
        except (sd.PortAudioError, ValueError) as err:
            raise DeviceError(f"cannot open the speakers '{settings.output_device}' "
                              f"(audio.output_device): {err}", code="no_output") from None

    def write(self, chunk: AudioChunk) -> None:
        samples = chunk.as_int16()
        if self.volume != 1.0:
            samples = float_to_int16(int16_to_float(samples) * self.volume)
        self.stream.write(samples.reshape(-1, 1))

    def close(self) -> None:
        """Wait for what is queued to play, then release the device."""
        self.stream.stop()
        self.stream.close()
