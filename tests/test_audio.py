"""Files of any rate, width and channel count become 16 kHz mono 16-bit chunks."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import soundfile
from conftest import FIXTURES, JFK

from assistant.errors import AudioInputError
from assistant.hear.audio import (
    FRAME_SAMPLES,
    RATE_HZ,
    AudioChunk,
    WavSink,
    check_audio_file,
    frames,
    iter_file_audio,
    read_file_audio,
)


def tone(rate_hz: int, seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    mono = 0.5 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono] * channels, axis=1) if channels > 1 else mono


@pytest.mark.parametrize("rate_hz, channels, subtype", [
    (8000, 1, "PCM_U8"), (22050, 1, "PCM_16"), (44100, 2, "PCM_24"), (48000, 6, "FLOAT"), (16000, 1, "PCM_32"),
])
def test_any_format_is_converted_to_16k_mono_keeping_its_length_and_pitch(tmp_path, rate_hz, channels, subtype):
    path = tmp_path / "tone.wav"
    soundfile.write(path, tone(rate_hz, 2.0, channels), rate_hz, subtype=subtype)
    audio = read_file_audio(path)
    assert abs(len(audio) - 2 * RATE_HZ) <= 32
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * RATE_HZ / len(audio) - 440) < 5


def test_real_speech_in_flac_at_44k_stereo_is_read():
    if not JFK.exists():
        pytest.skip(f"{JFK} is not beside this repository")
    audio = read_file_audio(JFK)
    assert 10.5 < len(audio) / RATE_HZ < 11.5 and np.abs(audio).max() > 0.1


def test_chunks_are_fixed_size_and_stamped_with_their_input_time():
    chunks = list(frames(iter_file_audio(FIXTURES / "ptt_time.wav")))
    assert all(c.samples == FRAME_SAMPLES and (c.rate_hz, c.width_bytes, c.channels) == (16000, 2, 1) for c in chunks)
    assert [c.timestamp_s for c in chunks[:3]] == [0.0, 0.032, 0.064]


def test_the_last_partial_frame_is_padded_not_dropped():
    chunks = list(frames([np.ones(FRAME_SAMPLES + 10, dtype=np.float32) * 0.5]))
    assert len(chunks) == 2 and chunks[1].as_int16()[:10].min() > 0 and chunks[1].as_int16()[10:].max() == 0


def test_a_wav_sink_with_nothing_written_is_a_valid_empty_wav(tmp_path):
    sink = WavSink(tmp_path / "r.wav", 22050)
    sink.close()
    with wave.open(str(tmp_path / "r.wav")) as w:
        assert (w.getnframes(), w.getframerate(), w.getnchannels()) == (0, 22050, 1)


def test_a_wav_sink_keeps_replies_in_order(tmp_path):
    sink = WavSink(tmp_path / "r.wav", 22050)
    for value in (100, 200):
        sink.write(AudioChunk(np.full(50, value, dtype=np.int16).tobytes(), rate_hz=22050))
    sink.close()
    with wave.open(str(tmp_path / "r.wav")) as w:
        samples = np.frombuffer(w.readframes(100), dtype=np.int16)
    assert list(samples[[0, 49, 50, 99]]) == [100, 100, 200, 200]


@pytest.mark.parametrize("content", [b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"hello"])
def test_unreadable_files_raise_an_error_naming_the_file(tmp_path, content):
    path = tmp_path / "x.wav"
    path.write_bytes(content)
    with pytest.raises(AudioInputError, match="x.wav"):
        read_file_audio(path)


def test_a_wav_whose_data_was_cut_off_is_refused_as_truncated(tmp_path):
    path = tmp_path / "cut.wav"
    soundfile.write(path, tone(16000, 2.0, 1), 16000)
    path.write_bytes(path.read_bytes()[:20000])
    with pytest.raises(AudioInputError, match="cut.wav: truncated: its header promises 64000 bytes"):
        check_audio_file(path)
