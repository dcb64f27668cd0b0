"""WebRTC noise suppression on real fixture audio: any block size, and noise down with speech kept."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile
from conftest import FIXTURES, MANIFEST

from assistant.hear.audio import AudioChunk
from assistant.hear.noise import FRAME_SAMPLES, NoiseCleaner

NOISY = "wake_two_turns_noisy.wav"  # two requests 8 s apart in pink noise at 20 dB SNR, 16 kHz mono


def _cleaned(audio: np.ndarray, block: int, cleaner: NoiseCleaner) -> tuple[np.ndarray, list[int]]:
    out, sizes = [], []
    for start in range(0, len(audio), block):
        chunk = AudioChunk(audio[start:start + block].tobytes(), timestamp_s=start / 16000)
        cleaned = cleaner.process(chunk)
        assert cleaned.timestamp_s == chunk.timestamp_s
        sizes.append(cleaned.samples - chunk.samples)
        out.append(cleaned.as_int16())
    return np.concatenate(out), sizes


def _level_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(samples.astype(np.float64) ** 2) + 1e-9))


@pytest.fixture(scope="module")
def noisy() -> np.ndarray:
    audio, rate = soundfile.read(FIXTURES / NOISY, dtype="int16")
    assert rate == 16000 and audio.ndim == 1
    return audio


def test_any_block_size_gives_the_same_audio_chunk_for_chunk(noisy: np.ndarray) -> None:
    cleaner = NoiseCleaner(suppression_level=2, auto_gain_dbfs=31)
    framed, _ = _cleaned(noisy, FRAME_SAMPLES, cleaner)
    assert not framed[:FRAME_SAMPLES].any(), "the stream starts with the 10 ms the frames lag by"
    for block in (1, 37, 161, 512, 4000):
        cleaner.reset()
        cleaned, size_changes = _cleaned(noisy, block, cleaner)
        assert set(size_changes) == {0}, f"block {block}: a chunk changed length"
        assert np.array_equal(cleaned, framed), f"block {block}: the leftover samples were not carried over"


def test_noise_drops_while_speech_stays(noisy: np.ndarray) -> None:
    second = MANIFEST[NOISY]["turns"][1]
    noise_only = slice(4 * 16000, 9 * 16000)  # between the two requests, once the estimate has settled
    command = slice(int(second["wake_end_s"] * 16000), int(second["speech_end_s"] * 16000))
    cleaned, _ = _cleaned(noisy, 512, NoiseCleaner(suppression_level=2, auto_gain_dbfs=0))
    noise_drop = _level_db(noisy[noise_only]) - _level_db(cleaned[noise_only])
    speech_drop = _level_db(noisy[command]) - _level_db(cleaned[command])
    assert noise_drop > 10, f"the noise fell by only {noise_drop:.1f} dB"
    assert abs(speech_drop) < 3, f"the command's level changed by {speech_drop:.1f} dB"


def test_refuses_audio_it_cannot_process() -> None:
    cleaner = NoiseCleaner()
    with pytest.raises(ValueError, match="16000 Hz mono 16-bit"):
        cleaner.process(AudioChunk(bytes(640), rate_hz=16000, channels=2))


def test_with_noise_suppression_on_the_pipeline_still_hears_both_requests_in_noise(replay):
    events = replay(FIXTURES / NOISY, changed={"audio": {"noise_suppression": 2, "auto_gain_dbfs": 31}})
    assert [r.intent for r in events.named("route")] == [t["intent"] for t in MANIFEST[NOISY]["turns"]]
