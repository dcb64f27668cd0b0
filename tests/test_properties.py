"""Properties over hostile input, found by Hypothesis: any settings file gives valid Settings
or a ConfigError naming the file and a key on every line; any bytes given as audio give
finite 16 kHz float32 samples or an AudioInputError (status 2). Never another exception,
never a hang."""

from __future__ import annotations

import dataclasses
import datetime
import io
import math
import signal
import tomllib
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from conftest import FIXTURES
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from assistant.config import Settings, describe, load_settings
from assistant.errors import EXIT_USAGE, AudioInputError, ConfigError
from assistant.hear.audio import RATE_HZ, check_audio_file, file_chunks, iter_file_audio

# Deterministic in CI: the same examples every run, none replayed from a local database; fast.
EXAMPLES = hypothesis_settings(max_examples=200, deadline=None, derandomize=True, database=None,
                               suppress_health_check=[HealthCheck.too_slow])
_HANG_S = 20
"""Liveness deadline for one example: reading a small file takes milliseconds."""

SCHEMA = describe()
SECTIONS = sorted({section for section, *_ in SCHEMA if section})
KEYS = sorted({key for _, key, *_ in SCHEMA})
_FIELDS = {(section, f.name): f for section in SECTIONS
           for f in dataclasses.fields(type(getattr(Settings(), section)))}
_FIELDS.update({("", f.name): f for f in dataclasses.fields(Settings) if not f.metadata.get("internal")})
PATHS = ["bundled", "auto", "", "model.onnx", "sub/dir/model.gguf", "~/m.onnx", "~nobody_here/m.onnx", "/dev/null",
         "/", ".", "..", "a\x00b", "line\nbreak", "/proc/self/fd/0", "x" * 300, "é/ü.onnx", "hey_jarvis", "gemma3-270m"]


@contextmanager
def no_hang(seconds: int = _HANG_S):
    """Fail, rather than wait forever, when one example takes far too long."""
    def give_up(*_):
        raise AssertionError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ---- settings --------------------------------------------------------------------------

_scalars = st.one_of(
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 5e-324, 0.0, -0.0]),
    st.text(max_size=20),
    st.sampled_from(PATHS),
    st.booleans(),
    st.datetimes(timezones=st.none() | st.just(datetime.timezone.utc)),
    st.dates(),
    st.times(),
)
_keys = st.one_of(st.sampled_from(KEYS), st.sampled_from(SECTIONS), st.text(min_size=1, max_size=12))
toml_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_keys, inner, max_size=3)), max_leaves=6)


def value_for(section: str, key: str) -> st.SearchStrategy:
    """Any TOML value, or one of the setting's own type near what it accepts."""
    f = _FIELDS.get((section, key))
    if f is None:
        return toml_values
    meta, kind = f.metadata, type(f.default)
    if meta.get("items") is not None:  # [[wake.extra_words]]
        item_keys = [i.name for i in dataclasses.fields(meta["items"])]
        table = st.dictionaries(st.sampled_from(item_keys) | _keys,
                                st.sampled_from(PATHS) | st.floats(-0.5, 1.5) | toml_values, max_size=5)
        return st.lists(table, max_size=3) | toml_values
    low, high = meta.get("min"), meta.get("max")
    if kind is bool:
        own = st.booleans()
    elif kind in (int, float):
        lo, hi = (low if low is not None else -1000) - 2, (high if high is not None else 1000) + 2
        own = st.integers(int(lo), int(hi)) | (st.floats(lo, hi) if kind is float else st.nothing())
    elif meta.get("choices"):
        own = st.sampled_from(meta["choices"])
    elif meta.get("path"):
        own = st.sampled_from([*PATHS, *meta["names"]])
    else:
        own = st.text(max_size=30)
    return st.one_of(own, toml_values)


@st.composite
def documents(draw) -> dict:
    """A settings document: real and made-up keys, in real and made-up sections."""
    doc: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(["state_dir", "log_transcripts"]) | _keys, max_size=3)):
        doc[key] = draw(value_for("", key))
    for section in draw(st.lists(st.sampled_from(SECTIONS) | _keys, max_size=4)):
        keys = [key for s, key, *_ in SCHEMA if s == section]
        table = doc.setdefault(section, {}) if isinstance(doc.get(section), dict) else {}
        for key in draw(st.lists(st.sampled_from(keys) | _keys if keys else _keys, max_size=4)):
            table[key] = draw(value_for(section, key))
        doc[section] = table
    return doc


def dump_toml(doc: dict) -> str:
    """A tiny TOML writer (tomli_w is not installed): tables as [sections], the rest inline."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for name, table in doc.items():
        if isinstance(table, dict):
            lines += [f"[{_key(name)}]", *(f"{_key(k)} = {_value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key) else _string(key)


def _string(text: str) -> str:
    return '"' + "".join(c if c.isprintable() and c not in '"\\' else
                         f"\\u{ord(c):04x}" if ord(c) < 0x10000 else f"\\U{ord(c):08x}" for c in text) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"


def assert_valid(settings: Any) -> None:
    """Every number finite and within its bounds, every choice one of its choices, every type its default's."""
    for f in dataclasses.fields(settings):
        if f.metadata.get("internal"):
            continue
        value, meta = getattr(settings, f.name), f.metadata
        if dataclasses.is_dataclass(value):
            assert_valid(value)
        elif meta.get("items") is not None:
            for item in value:
                assert_valid(item)
        else:
            assert type(value) is type(f.default), (f.name, value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert math.isfinite(value), (f.name, value)
                assert meta["min"] is None or value >= meta["min"], (f.name, value)
                assert meta["max"] is None or value <= meta["max"], (f.name, value)
            if meta.get("choices"):
                assert value in meta["choices"], (f.name, value)


def names_of(doc: Any) -> set[str]:
    """Every key in a document, as written and as an error message would show it."""
    found: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            found |= {key, repr(key)} | names_of(value)
    elif isinstance(doc, list):
        for value in doc:
            found |= names_of(value)
    return found


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """One folder for every example's file (a module fixture: Hypothesis runs many examples per test)."""
    return tmp_path_factory.mktemp("properties")


@EXAMPLES
@given(documents())
def test_any_settings_file_is_valid_settings_or_a_config_error_naming_file_and_key(work, doc):
    path = work / "config.toml"
    text = dump_toml(doc)
    assert tomllib.loads(text) is not None  # the writer itself wrote TOML
    path.write_text(text, encoding="utf-8")
    try:
        with no_hang():
            loaded = load_settings(path)
    except ConfigError as err:
        keys = names_of(doc) | set(KEYS) | set(SECTIONS)
        for line in err.message.splitlines():
            assert line.startswith(f"{path}: "), line
            assert any(key and key in line for key in keys), line
    else:
        assert_valid(loaded)


def test_the_toml_writer_round_trips_every_kind_of_value():
    doc = {"a": 1, "s": 'x"\\\n\x00é', "wake": {"f": 1.5, "l": [1, {"k": True}], "d": datetime.date(2020, 1, 2),
                                              "quoted key": "nan"}}
    assert tomllib.loads(dump_toml(doc)) == doc


# ---- audio decoding --------------------------------------------------------------------

def _small_files() -> list[bytes]:
    """The same 0.1 s of a real fixture in several formats, and the fixture's own header with
    that audio (cut short: its header promises 4.4 s)."""
    head = (FIXTURES / "wake_time.wav").read_bytes()[:44 + 3200]
    audio, _ = soundfile.read(FIXTURES / "wake_time.wav", frames=1600, dtype="float32")
    made = []
    for rate, channels, form, subtype in [(16000, 1, "WAV", "PCM_16"), (44100, 2, "WAV", "FLOAT"),
                                          (8000, 1, "WAV", "PCM_U8"), (16000, 1, "FLAC", "PCM_16"),
                                          (22050, 1, "WAV", "DOUBLE")]:
        buffer = io.BytesIO()
        soundfile.write(buffer, np.stack([audio] * channels, axis=1), rate, format=form, subtype=subtype)
        made.append(buffer.getvalue())
    return [*made, head]


SMALL_FILES = _small_files()
_MOST_SAMPLES_PER_BYTE = 16
"""GSM 6.10 holds ~5 frames a byte, and at 8 kHz and up a frame is at most 2 samples at 16 kHz."""
_HEADER_FIELDS = [4, 16, 20, 22, 24, 28, 32, 34, 40]
"""Offsets of the WAV header's sizes, format code, channels, rate, byte rate, block align, bits, data size."""


@st.composite
def mutated_files(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SMALL_FILES)))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.sampled_from(_HEADER_FIELDS) | st.integers(0, len(data) - 1))
        data[at:at + 4] = draw(st.sampled_from([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x00\x00\x01\x00",
                                                b"\x03\x00\x02\x00", b"\x01\x00\x00\x00"]) | st.binary(min_size=1,
                                                                                                       max_size=4))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return bytes(data + draw(st.binary(max_size=64)))


def assert_decodes_or_refuses(work: Path, data: bytes) -> None:
    path = work / "input.wav"
    path.write_bytes(data)
    try:
        with no_hang():
            check_audio_file(path)
            blocks = list(iter_file_audio(path))
            chunks = list(file_chunks(path))
    except AudioInputError as err:
        assert err.exit_status == EXIT_USAGE
        assert len(err.message.splitlines()) == 1 and str(path) in err.message
        return
    for block in blocks:
        assert block.dtype == np.float32 and block.ndim == 1 and np.isfinite(block).all()
    # No format packs more than a few samples into a byte: a small file is never hours of audio.
    assert sum(len(block) for block in blocks) <= _MOST_SAMPLES_PER_BYTE * len(data) + RATE_HZ
    assert all(chunk.rate_hz == RATE_HZ and chunk.channels == 1 for chunk in chunks)


@EXAMPLES
@given(st.binary(max_size=2048))
def test_any_bytes_decode_to_finite_16k_samples_or_are_refused_with_status_2(work, data):
    assert_decodes_or_refuses(work, data)


def _with_rate(data: bytes, rate_hz: int) -> bytes:
    return data[:24] + rate_hz.to_bytes(4, "little") + data[28:]


@EXAMPLES
@given(mutated_files())
# Found by Hypothesis: 3 KB claiming 1 Hz decoded to 25 million samples (16 kHz mono PCM_16: a plain 44-byte header).
@example(_with_rate(SMALL_FILES[0], 1))
def test_a_damaged_real_file_decodes_to_finite_16k_samples_or_is_refused_with_status_2(work, data):
    assert_decodes_or_refuses(work, data)


@pytest.mark.parametrize("index", range(len(SMALL_FILES)))
def test_the_small_files_decode(work, index):
    path = work / f"whole{index}.wav"
    path.write_bytes(SMALL_FILES[index])
    assert sum(len(block) for block in iter_file_audio(path)) > 0


