"""Smart Turn v3.2: does the audio so far sound like a finished turn?

A pause alone cannot tell "set a timer for ..." from a finished request; pipecat's
smart-turn model (BSD-2-Clause) judges from the words and intonation of the last 8 s.
The input is prepared exactly as pipecat's LocalSmartTurnAnalyzerV3 does, except that
the Whisper log-mel features come from faster-whisper's extractor (already a dependency)
instead of transformers' WhisperFeatureExtractor. The features agree within 1e-5; the
model quantizes its last layer, so now and then the probability lands one step apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.errors import ModelError

SAMPLE_RATE = 16_000
WINDOW_S = 8
_WINDOW = SAMPLE_RATE * WINDOW_S
_N_MELS = 80
_FRAMES = _WINDOW // 160  # 10 ms hops: 800 frames
_NORM_EPS = 1e-7  # transformers' zero-mean unit-variance epsilon


class SmartTurn:
    """The probability that the speaker has finished, from 16 kHz mono float32 audio."""

    def __init__(self, model_path: Path, threads: int) -> None:
        import onnxruntime
        from faster_whisper.feature_extractor import FeatureExtractor

        try:
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # onnxruntime's arena kept ~30 MB of one call's buffers for good; without it they go
            # back to malloc, and to the system after the turn (assistant/run/memory.py), as fast.
            options.enable_cpu_mem_arena = False
            options.enable_mem_pattern = False
            self.session = onnxruntime.InferenceSession(
                str(model_path), providers=["CPUExecutionProvider"], sess_options=options)
            inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
            # One input of [batch, 80 mels, 800 frames] and one output: not some other model.
            if len(inputs) != 1 or len(outputs) != 1 or list(inputs[0].shape[1:]) != [_N_MELS, _FRAMES]:
                raise ValueError(f"inputs {[(i.name, i.shape) for i in inputs]} and {len(outputs)} output(s), "
                                 f"not one input [batch, {_N_MELS}, {_FRAMES}] and one output")
        except Exception as err:  # onnxruntime raises its own types; all mean a bad file
            raise ModelError(f"{model_path}: cannot load this Smart Turn v3 model (endpoint.turn_model): "
                             f"{type(err).__name__}: {err}", code="corrupt_model") from None
        self.input_name, self.output_name = inputs[0].name, outputs[0].name
        self.features = FeatureExtractor(feature_size=_N_MELS, sampling_rate=SAMPLE_RATE, chunk_length=WINDOW_S)

    def probability(self, audio: np.ndarray) -> float:
        """The model's probability (0..1) that the turn is complete; pipecat's threshold is 0.5."""
        # The last 8 s, zero-padded at the start when shorter.
        tail = np.asarray(audio, dtype=np.float32)[-_WINDOW:]
        window = np.zeros(_WINDOW, dtype=np.float32)
        window[_WINDOW - len(tail):] = tail
        # Zero mean, unit variance over the whole padded window, before the spectrogram.
        window = (window - window.mean()) / np.sqrt(window.var() + _NORM_EPS)
        # No extra end padding: 8 s gives 801 STFT frames, the extractor drops the last.
        mel = self.features(window, padding=0)
        # The graph ends in a sigmoid: its output (named "logits") is already a probability.
        (out,) = self.session.run([self.output_name], {self.input_name: mel[np.newaxis].astype(np.float32)})
        return float(out[0, 0])
