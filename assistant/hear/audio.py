"""Audio values and pure functions: decoding, resampling, chunking, WAV output.

Everything inside the pipeline is 16 kHz mono 16-bit; files of any rate, width and
channel count are converted on the way in (soundfile decodes, soxr resamples).
"""

from __future__ import annotations

import os
import tempfile
import wave
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr

from assistant.errors import AudioInputError

RATE_HZ = 16000
WIDTH_BYTES = 2
CHANNELS = 1
FRAME_SAMPLES = 512  # 32 ms: Silero VAD's fixed window; the wake models take any size
_READ_BLOCK_FRAMES = 65536
_QUIET_SAMPLES = RATE_HZ // 10
"""100 ms: a pause between words is at least this long."""
_QUIET_HOP_SAMPLES = RATE_HZ // 100
_UNKNOWN_LENGTH = 0x7FFF0000
"""A WAV data size from here up is a placeholder (ffmpeg writes 0xFFFFFFFF to a pipe, sox and
arecord just under 2 GiB), not a promise."""
_LOWEST_RATE_HZ = 8000
"""Telephone audio's rate; nothing that holds speech is recorded at less."""


@dataclass(frozen=True)
class AudioChunk:
    """A piece of PCM audio that knows its format and where it sits in the input."""

    audio: bytes
    """Signed little-endian PCM samples, interleaved by channel."""
    rate_hz: int = RATE_HZ
    width_bytes: int = WIDTH_BYTES
    channels: int = CHANNELS
    timestamp_s: float = 0.0
    """Input-audio time of the first sample, in s from the start of the stream."""
    received_wall: float | None = None
    """perf_counter() when a live device delivered the last sample; None for files."""

    @property
    def samples(self) -> int:
        return len(self.audio) // (self.width_bytes * self.channels)

    @property
    def duration_s(self) -> float:
        return self.samples / self.rate_hz

    @property
    def end_s(self) -> float:
        return self.timestamp_s + self.duration_s

    def as_int16(self) -> np.ndarray:
        return np.frombuffer(self.audio, dtype=np.int16)


def float_to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] to int16, clipping what is out of range."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def int16_to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def open_audio_file(path: Path) -> soundfile.SoundFile:
    """Open a sound file for reading, or raise AudioInputError naming it and why."""
    if not path.exists():
        raise AudioInputError(f"{path}: no such file")
    if path.is_dir():
        raise AudioInputError(f"{path}: is a directory, not an audio file")
    if not path.is_file():  # reading a pipe or a device could wait forever
        raise AudioInputError(f"{path}: is not a regular file (a pipe, socket or device); give an audio file")
    if path.stat().st_size == 0:
        raise AudioInputError(f"{path}: empty file, not audio (expected WAV, FLAC or OGG)")
    try:
        with open(path, "rb"):  # a file it may not read, libsndfile calls only "System error"
            pass
        sound = soundfile.SoundFile(str(path))
    except (soundfile.LibsndfileError, RuntimeError) as err:
        raise AudioInputError(f"{path}: not a readable audio file ({_short(err)}); "
                              "expected WAV, FLAC or OGG") from None
    except OSError as err:
        raise AudioInputError(f"{path}: cannot read: {err.strerror or err}") from None
    if sound.frames == 0:
        sound.close()
        raise AudioInputError(f"{path}: holds no audio frames")
    if sound.samplerate < _LOWEST_RATE_HZ:
        # A header claiming a rate of a few Hz turns a small file into hours of 16 kHz audio
        # (a 6 KB file at 1 Hz: 100 MB of samples, half an hour of replay): refused, not resampled.
        sound.close()
        raise AudioInputError(f"{path}: a sample rate of {sound.samplerate} Hz is not recorded sound "
                              f"(expected {_LOWEST_RATE_HZ} Hz or more)")
    return sound


def _wav_shortfall(path: Path) -> tuple[int, int] | None:
    """(bytes promised, bytes held) when a WAV's data chunk runs past the end of the file; None
    otherwise, for other formats, and for the sizes a streaming writer puts in before it knows."""
    size = path.stat().st_size
    with path.open("rb") as f:
        if f.read(12)[8:] != b"WAVE":
            return None
        while len(head := f.read(8)) == 8:
            chunk, length = head[:4], int.from_bytes(head[4:], "little")
            if chunk == b"data":
                held = size - f.tell()
                return (length, held) if held < length < _UNKNOWN_LENGTH else None
            f.seek(length + (length & 1), os.SEEK_CUR)  # chunks are padded to an even length
    return None


def _short(err: Exception) -> str:
    return str(err).splitlines()[0].split(": ", 1)[-1] if str(err) else type(err).__name__


def iter_file_audio(path: Path) -> Iterator[np.ndarray]:
    """Decode a file into float32 blocks at 16 kHz mono, streaming (any length of file)."""
    with open_audio_file(path) as sound:
        resampler = None if sound.samplerate == RATE_HZ else soxr.ResampleStream(
            sound.samplerate, RATE_HZ, 1, dtype="float32", quality="HQ")
        while True:
            try:
                block = sound.read(_READ_BLOCK_FRAMES, dtype="float32", always_2d=True)
            except (soundfile.LibsndfileError, RuntimeError) as err:
                raise AudioInputError(f"{path}: truncated or corrupt audio ({_short(err)})") from None
            last = len(block) < _READ_BLOCK_FRAMES
            if not np.isfinite(block).all():
                raise AudioInputError(_not_finite(path, sound.tell() - len(block), block, sound.samplerate))
            mono = block.mean(axis=1, dtype=np.float32)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield mono
            if last:
                return


def _not_finite(path: Path, first_frame: int, block: np.ndarray, rate_hz: int) -> str:
    at_s = (first_frame + int(np.argmin(np.isfinite(block).all(axis=1)))) / rate_hz
    return f"{path}: holds samples that are not numbers (NaN or infinity), the first at {at_s:.3f} s"


def file_duration_s(path: Path) -> float:
    """How long the file plays, without decoding it."""
    with open_audio_file(path) as sound:
        return sound.frames / sound.samplerate


def windows(blocks: Iterable[np.ndarray], window_samples: int, cut_within: int) -> Iterator[tuple[int, np.ndarray]]:
    """Audio of any length as consecutive windows of at most `window_samples`, each with the
    index of its first sample. Each window ends at the quietest point of its last `cut_within`
    samples, so a cut falls between words rather than in one; at most a window and a block are held."""
    start = 0
    held: list[np.ndarray] = []
    held_samples = 0
    for block in blocks:
        held.append(block)
        held_samples += len(block)
        while held_samples > window_samples:
            audio = np.concatenate(held)
            search_from = window_samples - cut_within
            cut = search_from + quietest_point(audio[search_from:window_samples])
            yield start, audio[:cut]
            start += cut
            held, held_samples = [audio[cut:]], len(audio) - cut
    if held_samples:
        yield start, np.concatenate(held)


def quietest_point(audio: np.ndarray) -> int:
    """The middle of the quietest 100 ms of `audio` (the first, if several are as quiet)."""
    if len(audio) <= _QUIET_SAMPLES:
        return len(audio) // 2
    energy_before = np.concatenate([[0.0], np.cumsum(np.square(audio, dtype=np.float64))])
    starts = np.arange(0, len(audio) - _QUIET_SAMPLES + 1, _QUIET_HOP_SAMPLES)
    energy = energy_before[starts + _QUIET_SAMPLES] - energy_before[starts]
    return int(starts[np.argmin(energy)]) + _QUIET_SAMPLES // 2


def check_audio_file(path: Path) -> None:
    """Everything `iter_file_audio` would refuse, found before any model loads: a file that
    cannot be opened, float samples that are not finite (integer formats cannot hold them),
    and a WAV cut short of what its header promises (a copy or a download that did not
    finish: replaying part of it would answer part of what was said)."""
    with open_audio_file(path) as sound:
        if (short := _wav_shortfall(path)) is not None:
            raise AudioInputError("{}: truncated: its header promises {} bytes of audio, the file holds {}".format(
                path, *short))
        if sound.subtype not in ("FLOAT", "DOUBLE"):
            return
    for _ in iter_file_audio(path):
        pass


def read_file_audio(path: Path) -> np.ndarray:
    """A whole file as float32 samples at 16 kHz mono."""
    blocks = list(iter_file_audio(path))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


class Framer:
    """Cuts float blocks of any size into fixed-size 16-bit chunks stamped with their input time."""

    def __init__(self, frame_samples: int = FRAME_SAMPLES, start_s: float = 0.0) -> None:
        self.frame_samples = frame_samples
        self.start_s = start_s
        self._pending = np.zeros(0, dtype=np.float32)
        self._sent = 0

    def push(self, block: np.ndarray, received_wall: float | None = None) -> list[AudioChunk]:
        pending = np.concatenate([self._pending, block]) if len(self._pending) else block
        whole = len(pending) // self.frame_samples * self.frame_samples
        chunks = [self._chunk(pending[start:start + self.frame_samples], received_wall)
                  for start in range(0, whole, self.frame_samples)]
        self._pending = pending[whole:]
        return chunks

    def flush(self) -> list[AudioChunk]:
        """The last partial frame, padded with silence so no audio is lost."""
        if not len(self._pending):
            return []
        padding = np.zeros(self.frame_samples - len(self._pending), dtype=np.float32)
        return self.push(padding)

    def _chunk(self, samples: np.ndarray, received_wall: float | None) -> AudioChunk:
        chunk = AudioChunk(float_to_int16(samples).tobytes(), timestamp_s=self.start_s + self._sent / RATE_HZ,
                           received_wall=received_wall)
        self._sent += len(samples)
        return chunk


def frames(blocks: Iterable[np.ndarray], frame_samples: int = FRAME_SAMPLES,
           start_s: float = 0.0) -> Iterator[AudioChunk]:
    """Fixed-size chunks from float blocks; the last partial frame is padded, not dropped."""
    framer = Framer(frame_samples, start_s)
    for block in blocks:
        yield from framer.push(block)
    yield from framer.flush()


def file_chunks(path: Path) -> Iterator[AudioChunk]:
    """A file as the pipeline hears it: 32 ms chunks stamped with their input time."""
    return frames(iter_file_audio(path))


async def as_stream(chunks: Iterable[AudioChunk]) -> AsyncIterator[AudioChunk]:
    """Chunks from a file as the async stream a microphone gives."""
    for chunk in chunks:
        yield chunk


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    return samples if gain_db == 0 else samples * np.float32(10 ** (gain_db / 20))


class NullSink:
    """Discards replies: a replay with nowhere to play them."""

    def write(self, chunk: AudioChunk) -> None:
        pass

    def close(self) -> None:
        pass


class WavSink:
    """Writes every reply of a run, in order, into one mono 16-bit WAV file.

    The file is written beside its final name and renamed over it on `close`, so the path
    holds either what was there before or a whole, valid WAV, never a half-written one."""

    def __init__(self, path: Path, rate_hz: int) -> None:
        self.path = path
        self.rate_hz = rate_hz
        check_output_path(path)
        self._partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            # Opened here, not by wave.open(name): a Wave_write whose open failed prints a
            # traceback from its destructor.
            self._file = open(self._partial, "wb")
        except OSError as err:
            raise AudioInputError(f"{path}: cannot write: {err.strerror or err}") from None
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate_hz)

    def write(self, chunk: AudioChunk) -> None:
        assert chunk.rate_hz == self.rate_hz and chunk.channels == 1, chunk
        self._wav.writeframes(chunk.audio)

    def abandon(self) -> None:
        """The run failed: leave whatever the path held before, and no partial file."""
        self._wav.close()
        self._file.close()
        self._partial.unlink(missing_ok=True)

    def close(self) -> None:
        self._wav.close()
        self._file.close()
        try:
            os.replace(self._partial, self.path)
        except OSError as err:
            self._partial.unlink(missing_ok=True)
            raise AudioInputError(f"{self.path}: cannot write: {err.strerror or err}") from None


def check_output_path(path: Path, source: Path | None = None) -> None:
    """Refuse, naming the path, an output that is a directory, a device, a FIFO or a socket,
    sits in no directory, or would overwrite `source` (the input being read)."""
    if path.is_dir():
        raise AudioInputError(f"{path}: is a directory; give a file name for the output")
    if path.exists() and not path.is_file():  # the finished file is renamed over it: as root, even /dev/null
        raise AudioInputError(f"{path}: is not a regular file (a pipe, socket or device); "
                              "give a regular file or a new name for the output")
    if not path.parent.is_dir():
        raise AudioInputError(f"{path}: no such directory: {path.parent}")
    if source is not None and path.exists() and os.path.samefile(path, source):
        raise AudioInputError(f"{path}: is the input file; the output would overwrite it")
    try:  # a directory that takes no new files (/proc, read-only, full) is found before any model loads
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as err:
        raise AudioInputError(f"{path}: cannot write there: {err.strerror or err}") from None
