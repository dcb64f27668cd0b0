"""Giving freed memory back to the system between turns.

glibc's malloc keeps what a turn freed (Whisper's encoder buffers, piper's per-sentence
tensors, each thread's arena) for the next allocation instead of returning it: after a
few turns the process holds its largest turn's working set for good (bench memory: ~150 MB
over the loaded models). `malloc_trim(0)` hands the free pages of every arena back; it
takes ~20 ms, so it runs when a turn is over, on the stage thread (never during a step,
and never on the event loop). Allocating them again costs a little in the next turn; a
fixed mmap threshold (M_MMAP_THRESHOLD) would have kept memory lower still, but slowed
synthesis by half (every large tensor a fresh mmap). On a C library without
`malloc_trim` (musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import logging
from concurrent.futures import Executor

log = logging.getLogger(__name__)

try:
    _trim = ctypes.CDLL(None).malloc_trim
    _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
except (AttributeError, OSError):  # not glibc
    _trim = None


def release() -> None:
    """Return the free memory of every malloc arena to the system (glibc), now."""
    if _trim is not None:
        _trim(0)


def release_after(executor: Executor) -> None:
    """`release`, queued behind the steps already given to `executor`; returns at once."""
    if _trim is not None:
        executor.submit(release)
