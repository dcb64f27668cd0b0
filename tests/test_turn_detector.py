"""Smart Turn hears a whole command as finished and the same command cut short as not."""

from pathlib import Path

import pytest
from conftest import FIXTURES, MANIFEST

from assistant import models
from assistant.errors import ModelError
from assistant.hear.audio import read_file_audio
from assistant.hear.turn_detector import SAMPLE_RATE, SmartTurn


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn(models.turn_model("bundled"), threads=1)


def test_a_whole_command_is_finished_and_the_same_command_cut_short_is_not(smart_turn):
    name = "wake_interrupts_llm_reply.wav"  # "Tell me a long story about a brave little dragon."
    turn = MANIFEST[name]["turns"][0]
    audio = read_file_audio(FIXTURES / name)
    start, end = turn["wake_end_s"], turn["speech_end_s"]
    command = audio[int(start * SAMPLE_RATE):int((end + 0.2) * SAMPLE_RATE)]
    cut = audio[int(start * SAMPLE_RATE):int((start + 0.6 * (end - start)) * SAMPLE_RATE)]
    assert smart_turn.probability(command) > 0.5
    assert smart_turn.probability(cut) < 0.5


@pytest.mark.parametrize("bad", ["not_onnx", "another_model"])
def test_a_bad_model_file_is_a_model_error_naming_the_path_and_the_setting(bad, tmp_path):
    if bad == "not_onnx":
        path = tmp_path / "turn.onnx"
        path.write_bytes(b"not an onnx model" * 100)
    else:  # a valid ONNX model with other inputs: Silero VAD
        path: Path = models.vad_model("bundled")
    with pytest.raises(ModelError) as err:
        SmartTurn(path, threads=1)
    assert str(path) in err.value.message and "endpoint.turn_model" in err.value.message
    assert err.value.code == "corrupt_model"
