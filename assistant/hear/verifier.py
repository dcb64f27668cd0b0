"""The second pass: openWakeWord, run on its own TFLite models through `tflite`.

openWakeWord is three models in a row. A melspectrogram (32 bands every 10 ms), a
shared speech embedding (96 features from each 76 mel frames, every 8 frames: 80 ms),
and a small wake head per word that scores the last 16 or so embeddings. The streaming
arithmetic below follows pyopen-wakeword 1.1's, so the scores equal its own; mel frames
and embeddings are computed in batches when more than one is due (a primed window).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from assistant.errors import ModelError
from assistant.hear import tflite

SAMPLES_PER_STEP = 1280  # 80 ms: 8 mel frames, one embedding
_MEL_SAMPLES = 1760  # a step plus the three 10 ms hops of look-ahead the mel model needs
_MEL_BANDS = 32
_MEL_WINDOW = 76  # mel frames in one embedding (775 ms)
_MEL_STEP = 8
_EMBEDDING = 96


class OpenWakeWordFeatures:
    """Audio to speech embeddings, streaming."""

    def __init__(self, library: Path, models_dir: Path, threads: int) -> None:
        lib = tflite.library(library)
        self._mel = tflite.Interpreter(lib, models_dir / "melspectrogram.tflite", threads, (1, _MEL_SAMPLES))
        self._embedding = tflite.Interpreter(lib, models_dir / "embedding_model.tflite", threads)
        self._silences: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.reset()

    def reset(self) -> None:
        self._audio = np.zeros(0, dtype=np.float32)
        """Samples not yet turned into mel frames, from the next mel window's start."""
        self._mels = np.zeros((0, _MEL_BANDS), dtype=np.float32)
        """Mel frames from the next embedding window's start."""

    def reset_to_silence(self, samples: int) -> np.ndarray:
        """Start afresh as after `samples` of silence; the embeddings that silence gave.
        Computed once per length: the padding is the same for every stream, and for many
        short files (wake-tune's) it cost more than the files themselves."""
        if samples not in self._silences:
            self.reset()
            given = self.embeddings(np.zeros(samples, dtype=np.int16))
            self._silences[samples] = (self._audio, self._mels, given)
        # Shared safely: the buffers are replaced as audio comes, never written in place.
        self._audio, self._mels, given = self._silences[samples]
        return given

    def embeddings(self, audio: np.ndarray) -> np.ndarray:
        """Embeddings (n, 96) completed by this int16 audio; n may be 0."""
        self._audio = np.concatenate([self._audio, audio.astype(np.float32)])
        steps = (len(self._audio) - _MEL_SAMPLES) // SAMPLES_PER_STEP + 1
        if steps < 1:
            return np.zeros((0, _EMBEDDING), dtype=np.float32)
        span = (steps - 1) * SAMPLES_PER_STEP + _MEL_SAMPLES
        # One call over all whole steps gives the same frames as one call per step.
        mels = self._mel.run(self._audio[None, :span]).reshape(-1, _MEL_BANDS) / 10 + 2
        self._audio = self._audio[steps * SAMPLES_PER_STEP:]
        self._mels = np.concatenate([self._mels, mels])
        count = (len(self._mels) - _MEL_WINDOW) // _MEL_STEP + 1
        if count < 1:
            return np.zeros((0, _EMBEDDING), dtype=np.float32)
        windows = [self._mels[i * _MEL_STEP:i * _MEL_STEP + _MEL_WINDOW, :, None] for i in range(count)]
        self._mels = self._mels[count * _MEL_STEP:]
        # One window at a time, as when streaming: a batch of a primed window's ~30 grew
        # TFLite's arena by ~20 MB for good, and was no faster.
        return np.concatenate([self._embedding.run(window[None]) for window in windows]).reshape(-1, _EMBEDDING)


class WakeHead(Protocol):
    def reset(self) -> None: ...

    def scores(self, embeddings: np.ndarray) -> list[float]: ...


class OpenWakeWordHead:
    """One word's wake model over the embeddings, streaming: one score per embedding.
    A `.tflite` runs on TFLite; an `.onnx` (openWakeWord's other export) on onnxruntime."""

    def __init__(self, library: Path, model: Path, threads: int) -> None:
        if model.suffix == ".onnx":
            self._model: tflite.Interpreter | _OnnxModel = _OnnxModel(model, threads)
        else:
            self._model = tflite.Interpreter(tflite.library(library), model, threads)
        shape = self._model.input_shape
        if len(shape) != 3 or shape[2] != _EMBEDDING:
            raise ModelError(f"{model}: not an openWakeWord wake model: its input is {list(shape)}, "
                             f"not [1, windows, {_EMBEDDING}] embeddings", code="corrupt_model")
        self.windows = shape[1]
        self.reset()

    def reset(self) -> None:
        self._embeddings = np.zeros((0, _EMBEDDING), dtype=np.float32)

    def scores(self, embeddings: np.ndarray) -> list[float]:
        self._embeddings = np.concatenate([self._embeddings, embeddings])
        found = [self._model.run(self._embeddings[None, i:i + self.windows]).item()
                 for i in range(len(self._embeddings) - self.windows + 1)]
        self._embeddings = self._embeddings[-(self.windows - 1):]
        return found


class _OnnxModel:
    """A wake head exported to ONNX, with the Interpreter's `run` and `input_shape`."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        try:
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own error types, one per kind of damage
            raise ModelError(f"{path}: onnxruntime cannot load this model: {str(err)[:200]}",
                             code="corrupt_model") from None
        self._input = self._session.get_inputs()[0]
        self.input_shape = tuple(d if isinstance(d, int) else 1 for d in self._input.shape)

    def run(self, data: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input.name: data.astype(np.float32)})[0]
