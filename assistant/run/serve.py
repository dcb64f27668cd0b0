"""`assistant serve`: the assistant's models as Wyoming services, for Home Assistant and satellites.

One engine (the models, loaded once) and one `Connection` per client, each with its own
session, so clients never hear each other's audio. Wyoming has no request ids: a
connection is one strict sequence of events, and the protocol is the state machine:

- asr: `transcribe`, then `audio-start`, `audio-chunk`s, `audio-stop` → `transcript`
  (with `transcript-start`/`-chunk`/`-stop` around it for clients that stream);
- tts: `synthesize` → `audio-start`, `audio-chunk`s, `audio-stop`; or streamed, the text
  in `synthesize-chunk`s, spoken a sentence at a time, then `synthesize-stopped`;
- wake: `detect`, then audio → `detection` (as often as the words are heard), and
  `not-detected` at `audio-stop` when none was; Home Assistant never sends `audio-stop`
  and just closes;
- handle: `transcript` → `handled` or `not-handled`, with the reply's text;
- `describe` → `info`, at any time.

Model calls run in threads of their own (`in_daemon_thread`): a wake stream's next chunk
never queues behind other clients' transcriptions, and a stop signal ends the process at
once, leaving a call in flight to the exit.

The wyoming library reads events without any limit (a header may announce a 100 MB
payload and it waits for all of it), so events are read here, with caps on each part and
on a session's audio, and a deadline for each event's body; a client that breaks them is
sent an `error` and closed. Home Assistant waits for a reply without a timeout of its own,
so every failure ends with the connection closed, never a silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import version as _version
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import soxr
from wyoming.asr import Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk as WyomingChunk
from wyoming.audio import AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_write_event
from wyoming.handle import Handled, NotHandled
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    HandleModel,
    HandleProgram,
    Info,
    TtsProgram,
    TtsVoice,
    WakeModel,
    WakeProgram,
)
from wyoming.ping import Ping, Pong
from wyoming.tts import SynthesizeStopped
from wyoming.wake import Detection, NotDetected

from assistant.config import ServeSettings, is_loopback, parse_serve_uri
from assistant.errors import ConfigError, UsageError
from assistant.events import EventSink, NoEvents, Served
from assistant.hear.audio import AudioChunk
from assistant.run.engine import RATE_HZ, Engine, Session
from assistant.run.stopping import in_daemon_thread
from assistant.run.worker import ms
from assistant.speak.sentences import SentenceSplitter

if TYPE_CHECKING:
    from assistant.run.metrics import Metrics

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
"""An event's JSON header line (the StreamReader's limit)."""
MAX_DATA_BYTES = 64 * 1024
"""An event's JSON data block: what any event's fields need, many times over."""
MAX_PAYLOAD_BYTES = 4 * 1024 * 1024
"""An event's payload: an audio chunk (Home Assistant sends a few kB)."""
MAX_AUDIO_S = 300
"""The longest audio one transcription takes, in s (at 16 kHz, 16-bit: 9.6 MB held)."""
MAX_TEXT_CHARS = 10_000
"""The longest text one synthesis takes."""
IDLE_S = 300.0
"""A connection with no event for this long is closed, in s."""
BODY_S = 30.0
"""Time an event's data and payload may take to arrive after its header, in s."""
CHUNK_SAMPLES = 4096
"""Synthesised audio is sent in chunks of this many samples."""
VERSION = _version("assistant")
ATTRIBUTION = Attribution(name="assistant", url="https://github.com/")
PROGRAMS = {"asr": "assistant-asr", "tts": "assistant-tts", "wake": "assistant-wake", "handle": "assistant"}
"""Each service's program name; Home Assistant names its entities after them (stt.assistant_asr)."""


class BadEvent(Exception):
    """A client broke the protocol or a limit: it gets an `error` with this code, then is closed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


async def read_event(reader: asyncio.StreamReader, idle_s: float = IDLE_S) -> Event | None:
    """The next event, or None when the client has gone (or said nothing for `idle_s`);
    BadEvent for anything that is not a well-formed event within the limits."""
    try:
        # asyncio.timeout, not wait_for: in 3.11 wait_for loses a cancellation that arrives as the
        # line does, and a client streaming audio would then keep its session past a stop
        async with asyncio.timeout(idle_s):
            line = await reader.readline()
    except TimeoutError:
        log.info("a client said nothing for %.0f s: closed", idle_s)
        return None
    except ValueError:  # the StreamReader's limit: a line longer than MAX_HEADER_BYTES
        raise BadEvent("bad-event", f"an event's header is longer than {MAX_HEADER_BYTES} bytes") from None
    except ConnectionError:
        return None
    if not line.endswith(b"\n"):  # the client went mid-line
        return None
    try:
        header = json.loads(line)
    except ValueError:
        raise BadEvent("bad-event", "an event's header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise BadEvent("bad-event", "an event's header must be a JSON object with a string \"type\"")
    data = header.get("data") if header.get("data") is not None else {}
    if not isinstance(data, dict):
        raise BadEvent("bad-event", "an event's data must be a JSON object")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    try:
        async with asyncio.timeout(BODY_S):
            if data_length:
                block = await reader.readexactly(data_length)
                try:
                    more = json.loads(block)
                except ValueError:
                    raise BadEvent("bad-event", "an event's data block is not JSON") from None
                if not isinstance(more, dict):
                    raise BadEvent("bad-event", "an event's data block must be a JSON object")
                data.update(more)
            payload = await reader.readexactly(payload_length) if payload_length else None
    except TimeoutError:
        raise BadEvent("timeout", f"an event's data and payload did not arrive within {BODY_S:.0f} s") from None
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    return Event(type=header["type"], data=data, payload=payload)


def _length(header: dict, key: str, limit: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if type(value) is not int:
        raise BadEvent("bad-event", f"{key} must be an integer")
    if value > limit:
        raise BadEvent("too-large", f"{key} {value} is over the limit of {limit} bytes")
    return max(value, 0)  # the library reads none for 0 or less


# --- audio


@dataclass(frozen=True)
class AudioFormat:
    rate_hz: int = RATE_HZ
    width_bytes: int = 2
    channels: int = 1

    @classmethod
    def of(cls, data: dict) -> AudioFormat:
        """The format an audio-start or audio-chunk names; BadEvent when it cannot be used."""
        rate, width, channels = data.get("rate"), data.get("width"), data.get("channels")
        if not (type(rate) is int and 8000 <= rate <= 192_000):
            raise BadEvent("bad-audio", f"audio rate {rate!r}: must be an integer from 8000 to 192000 (Hz)")
        if width not in (1, 2, 4):
            raise BadEvent("bad-audio", f"audio width {width!r}: must be 1, 2 or 4 (bytes)")
        if not (type(channels) is int and 1 <= channels <= 8):
            raise BadEvent("bad-audio", f"audio channels {channels!r}: must be an integer from 1 to 8")
        return cls(rate, width, channels)

    @property
    def frame_bytes(self) -> int:
        return self.width_bytes * self.channels


def to_float_mono(pcm: bytes, fmt: AudioFormat) -> np.ndarray:
    """Whole frames of signed little-endian PCM as float32 mono at the format's rate."""
    kind = {1: np.int8, 2: np.int16, 4: np.int32}[fmt.width_bytes]
    samples = np.frombuffer(pcm, dtype=kind).astype(np.float32) / float(np.iinfo(kind).max + 1)
    return samples.reshape(-1, fmt.channels).mean(axis=1) if fmt.channels > 1 else samples


class Converter:
    """A stream of client audio in any format as 16 kHz mono int16, chunk by chunk: a chunk
    may end mid-frame (the rest comes with the next one)."""

    def __init__(self, fmt: AudioFormat) -> None:
        self.fmt = fmt
        self._rest = b""
        self._resampler = soxr.ResampleStream(fmt.rate_hz, RATE_HZ, 1, dtype="float32") \
            if fmt.rate_hz != RATE_HZ else None

    def convert(self, pcm: bytes, last: bool = False) -> np.ndarray:
        pcm = self._rest + pcm
        whole = len(pcm) - len(pcm) % self.fmt.frame_bytes
        pcm, self._rest = pcm[:whole], pcm[whole:]
        if self.fmt == AudioFormat() and not last:
            return np.frombuffer(pcm, dtype=np.int16)
        audio = to_float_mono(pcm, self.fmt)
        if self._resampler is not None:
            audio = self._resampler.resample_chunk(audio, last=last)
        return np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)


def wav_body(data: bytes, fmt: AudioFormat) -> tuple[bytes, AudioFormat]:
    """The PCM inside a WAV file and its format, when `data` is one (Home Assistant's
    /api/stt forwards the upload whole, header and all); else `data` as it is."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return data, fmt
    at = 12
    while at + 8 <= len(data):
        kind, size = data[at:at + 4], struct.unpack_from("<I", data, at + 4)[0]
        body = at + 8
        if kind == b"fmt " and size >= 16:
            _tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = AudioFormat.of({"rate": rate, "width": bits // 8, "channels": channels})
        elif kind == b"data":
            pcm = data[body:body + size] if size < 0xFFFFFFF0 else data[body:]  # streamed WAVs leave it unset
            return pcm, fmt
        at = body + size + (size & 1)
    raise BadEvent("bad-audio", "the audio starts with a WAV header but has no data chunk")


# --- the services


def describe(engine: Engine) -> Info:
    """What this server offers; every artifact `installed`, and no satellite (Home Assistant
    would take the server for one and offer none of its services)."""
    language = engine.settings.asr.language
    asr_model = engine.settings.asr.model
    return Info(
        asr=[AsrProgram(
            name=PROGRAMS["asr"], attribution=ATTRIBUTION, installed=True, version=VERSION,
            description="the assistant's speech recognition (faster-whisper)",
            models=[AsrModel(name="whisper-tiny.en" if asr_model == "bundled" else Path(asr_model).name,
                             attribution=ATTRIBUTION,
                             installed=True, description="Whisper (CTranslate2)", version=None, languages=[language])],
            supports_transcript_streaming=True)],
        tts=[TtsProgram(
            name=PROGRAMS["tts"], attribution=ATTRIBUTION, installed=True, version=VERSION,
            description="the assistant's voice (piper)",
            voices=[TtsVoice(name=engine.voice_name, attribution=ATTRIBUTION, installed=True,
                             description=engine.voice_name, version=None, languages=[engine.tts.language])],
            supports_synthesize_streaming=True)],
        wake=[WakeProgram(
            name=PROGRAMS["wake"], attribution=ATTRIBUTION, installed=True, version=VERSION,
            description="the assistant's two-pass wake word detection (microWakeWord, then openWakeWord)",
            models=[WakeModel(name=word.id, attribution=ATTRIBUTION, installed=True, description=word.phrase,
                              version=None, languages=list(word.languages), phrase=word.phrase)
                    for word in engine.wake_words])],
        handle=[HandleProgram(
            name=PROGRAMS["handle"], attribution=ATTRIBUTION, installed=True, version=VERSION,
            description="the assistant's skills, local model and cloud, as configured",
            models=[HandleModel(name="assistant", attribution=ATTRIBUTION, installed=True, version=None,
                                description="skills, then the local LLM or the cloud", languages=[language])],
            supports_home_control=engine.home is not None)])


@dataclass
class _Listening:
    """A stream of audio being heard: for recognition (kept whole) or for the wake word (fed as it comes)."""

    wake: bool
    fmt: AudioFormat
    names: set[str] | None = None
    """The wake words asked for (their ids); None: all."""
    pcm: bytearray = field(default_factory=bytearray)
    converter: Converter | None = None
    heard_s: float = 0.0
    detected: bool = False
    language: str | None = None


class Connection:
    """One client: a session on the engine, its events read and answered in order."""

    def __init__(self, engine: Engine, info: Event, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, events: EventSink | None = None) -> None:
        self.engine = engine
        self.events = events or NoEvents()
        """Where what was served is reported (the metrics): wake events, and a `served` event per request."""
        self._began = time.monotonic()
        self.info = info
        self.reader = reader
        self.writer = writer
        self.session: Session = engine.session()
        self.peer = _peer(writer)
        self._asked: tuple[str, object] | None = None
        """What the next audio is for: ("asr", language) after transcribe, ("wake", names) after detect."""
        self._listening: _Listening | None = None
        self._speaking: SentenceSplitter | None = None
        """The text of a streamed synthesis, between synthesize-start and synthesize-stop."""
        self._handlers: dict[str, Callable[[Event], Awaitable[None]]] = {
            "describe": self._describe, "ping": self._ping, "transcribe": self._transcribe, "detect": self._detect,
            "audio-start": self._audio_start, "audio-chunk": self._audio_chunk, "audio-stop": self._audio_stop,
            "synthesize": self._synthesize, "synthesize-start": self._synthesize_start,
            "synthesize-chunk": self._synthesize_chunk, "synthesize-stop": self._synthesize_stop,
            "transcript": self._handle}

    async def run(self) -> None:
        """Serve events until the client goes or breaks the protocol; never raises."""
        try:
            while (event := await read_event(self.reader)) is not None:
                handler = self._handlers.get(event.type)
                if handler is not None:  # a server drops what it does not know (the protocol's rule)
                    await handler(event)
            await self._stream_ended()
        except BadEvent as bad:
            log.warning("client %s: %s; closed", self.peer, bad.message)
            await self._send(Error(text=bad.message, code=bad.code).event())
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("client %s went away", self.peer)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # one session's failure is that session's, never the server's
            log.exception("client %s: internal error", self.peer)
            await self._send(Error(text=f"internal error: {type(err).__name__}", code="internal").event())
        finally:
            await in_daemon_thread(self.session.close)
            self.writer.close()

    def _served(self, service: str, outcome: str, stages_ms: dict[str, float]) -> None:
        self.events.emit(Served(t=time.monotonic() - self._began, service=service, outcome=outcome,
                                stages_ms=stages_ms))

    async def _send(self, event: Event) -> None:
        try:
            await async_write_event(event, self.writer)
        except (ConnectionError, RuntimeError):  # the client has gone; what it misses is nobody's
            pass

    async def _describe(self, _event: Event) -> None:
        await self._send(self.info)

    async def _ping(self, event: Event) -> None:
        await self._send(Pong(text=Ping.from_event(event).text).event())

    # --- asr and wake: the audio

    async def _transcribe(self, event: Event) -> None:
        language = event.data.get("language")
        self._asked = ("asr", language if isinstance(language, str) else None)

    async def _detect(self, event: Event) -> None:
        names = event.data.get("names")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise BadEvent("bad-event", "detect: names must be a list of strings")
        known = {word.id for word in self.engine.wake_words}
        if names and not known & set(names):
            raise BadEvent("unknown-wake-word", f"detect: no wake word {', '.join(names)}; "
                                                f"this server detects {', '.join(sorted(known))}")
        self._asked = ("wake", set(names) & known if names else None)

    async def _audio_start(self, event: Event) -> None:
        await self._start_listening(AudioFormat.of(event.data))

    async def _start_listening(self, fmt: AudioFormat) -> None:
        kind, what = self._asked or ("asr", None)
        if kind == "wake":
            self._listening = _Listening(True, fmt, names=what, converter=Converter(fmt))  # type: ignore[arg-type]
            await in_daemon_thread(self.session.restart_wake)  # a new stream: nothing carries over
        else:
            self._listening = _Listening(False, fmt, language=what)  # type: ignore[arg-type]

    async def _audio_chunk(self, event: Event) -> None:
        if self._listening is None:  # no audio-start: the chunk's own format starts the stream
            await self._start_listening(AudioFormat.of(event.data))
        listening = self._listening
        assert listening is not None
        pcm = event.payload or b""
        if not listening.wake:
            listening.pcm += pcm
            rate = listening.fmt.rate_hz * listening.fmt.frame_bytes
            if len(listening.pcm) > MAX_AUDIO_S * rate + 1024:  # room for a WAV header
                raise BadEvent("too-long", f"more than {MAX_AUDIO_S} s of audio to transcribe")
            return
        assert listening.converter is not None
        audio = listening.converter.convert(pcm)
        if len(audio):
            await self._hear_wake(listening, audio)

    async def _hear_wake(self, listening: _Listening, audio: np.ndarray) -> None:
        chunk = AudioChunk(audio.tobytes(), timestamp_s=listening.heard_s)
        listening.heard_s = chunk.end_s
        update = await in_daemon_thread(self.session.hear, chunk)
        await self._report_wakes(listening, update)

    async def _report_wakes(self, listening: _Listening, update) -> None:
        ids = {word.phrase.lower(): word.id for word in self.engine.wake_words}
        for event in update.events:
            self.events.emit(event)
            if event.name != "wake":
                continue
            name = ids.get(event.word, event.word)
            if listening.names is None or name in listening.names:
                listening.detected = True
                await self._send(Detection(name=name, timestamp=int(event.t * 1000)).event())

    async def _audio_stop(self, _event: Event) -> None:
        listening, self._listening = self._listening, None
        self._asked = None
        if listening is None:
            listening = _Listening(False, AudioFormat())  # audio-stop alone: an empty transcription
        if listening.wake:
            await self._end_wake(listening)
        else:
            await self._recognise(listening)

    async def _stream_ended(self) -> None:
        """The client closed while its wake stream ran (Home Assistant's way of ending one): nothing to say."""
        self._listening = None

    async def _end_wake(self, listening: _Listening) -> None:
        assert listening.converter is not None
        rest = listening.converter.convert(b"", last=True)
        if len(rest):
            await self._hear_wake(listening, rest)
        update = await in_daemon_thread(self.session.wake().verdict)
        await self._report_wakes(listening, update)
        if not listening.detected:
            await self._send(NotDetected().event())

    async def _recognise(self, listening: _Listening) -> None:
        pcm, fmt = wav_body(bytes(listening.pcm), listening.fmt)
        pcm = pcm[:len(pcm) - len(pcm) % fmt.frame_bytes]
        audio = to_float_mono(pcm, fmt)
        if fmt.rate_hz != RATE_HZ and len(audio):
            audio = soxr.resample(audio, fmt.rate_hz, RATE_HZ)
        started = time.perf_counter()
        heard = await in_daemon_thread(self.engine.transcribe, audio) if len(audio) else None
        text = heard.text if heard is not None else ""
        self._served("asr", "answered" if text else "no_speech", {"asr": ms(time.perf_counter() - started)})
        if heard is not None and heard.dropped:
            log.info("client %s: Whisper's words dropped (%s)", self.peer, heard.dropped)
        language = listening.language or self.engine.settings.asr.language
        await self._send(TranscriptStart(language=language).event())
        if text:
            await self._send(TranscriptChunk(text=text).event())
        await self._send(Transcript(text=text, language=language).event())
        await self._send(TranscriptStop().event())

    # --- tts

    async def _synthesize(self, event: Event) -> None:
        if self._speaking is not None:  # inside a stream: the whole text again, for older servers
            return
        await self._say(_text(event, "synthesize"))

    async def _synthesize_start(self, _event: Event) -> None:
        self._speaking = SentenceSplitter()

    async def _synthesize_chunk(self, event: Event) -> None:
        if self._speaking is None:
            raise BadEvent("bad-event", "synthesize-chunk without synthesize-start")
        for sentence in self._speaking.push(_text(event, "synthesize-chunk")):
            await self._say(sentence)

    async def _synthesize_stop(self, _event: Event) -> None:
        splitter, self._speaking = self._speaking, None
        if splitter is not None:
            for sentence in splitter.flush():
                await self._say(sentence)
        await self._send(SynthesizeStopped().event())

    async def _say(self, text: str) -> None:
        started = time.perf_counter()
        chunks = await in_daemon_thread(self.engine.speak, text) if text.strip() else []
        if chunks:
            self._served("tts", "answered", {"tts": ms(time.perf_counter() - started)})
        rate = self.engine.tts.rate_hz
        await self._send(AudioStart(rate=rate, width=2, channels=1).event())
        at_s = 0.0
        for chunk in chunks:
            for start in range(0, len(chunk.audio), CHUNK_SAMPLES * 2):
                piece = chunk.audio[start:start + CHUNK_SAMPLES * 2]
                await self._send(WyomingChunk(rate=rate, width=2, channels=1, audio=piece,
                                              timestamp=int(at_s * 1000)).event())
                at_s += len(piece) / 2 / rate
        await self._send(AudioStop(timestamp=int(at_s * 1000)).event())

    # --- handle

    async def _handle(self, event: Event) -> None:
        text = _text(event, "transcript")
        started = time.perf_counter()
        answer = await in_daemon_thread(self.session.answer, text)
        self._served("handle", "answered" if answer.handled else "not_handled",
                     {answer.tier: ms(time.perf_counter() - started)})
        context = event.data.get("context") if isinstance(event.data.get("context"), dict) else None
        reply = Handled(text=answer.text, context=context) if answer.handled else NotHandled(text=answer.text,
                                                                                            context=context)
        await self._send(reply.event())


def _text(event: Event, what: str) -> str:
    text = event.data.get("text")
    if not isinstance(text, str):
        raise BadEvent("bad-event", f"{what}: text must be a string")
    if len(text) > MAX_TEXT_CHARS:
        raise BadEvent("too-long", f"{what}: text longer than {MAX_TEXT_CHARS} characters")
    return text


def _peer(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return f"{address[0]}:{address[1]}" if isinstance(address, tuple) and len(address) >= 2 else "?"


# --- the server


class Server:
    """The listening socket and its connections; at most `max_clients` at once."""

    def __init__(self, settings: ServeSettings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        """Fed by every connection's events; counts the connections as open sessions."""
        self.engine: Engine | None = None
        self.info: Event | None = None
        self._connections: set[asyncio.Task] = set()
        self._server: asyncio.Server | None = None
        self._announcement: Announcement | None = None
        self.bound: list[tuple[str, int]] = []
        """The addresses listened on."""

    async def listen(self, host: str, port: int) -> list[tuple[str, int]]:
        """Bind, not yet accepting (OSError when the address is taken or not this machine's); the bound addresses."""
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_HEADER_BYTES,
                                                  reuse_address=True, start_serving=False)
        self.bound = [s.getsockname()[:2] for s in self._server.sockets]
        if self.settings.zeroconf:
            self._announcement = Announcement(host, port)
        return self.bound

    async def start(self, engine: Engine) -> None:
        """Accept clients (those that connected meanwhile waited in the backlog), and announce the
        server when `zeroconf` says so."""
        self.engine, self.info = engine, describe(engine).event()
        assert self._server is not None
        await self._server.start_serving()
        if (announcement := self._announcement) is not None:
            await announcement.start()
            log.warning("announced as %s on %s:%d", announcement.name, announcement.host, announcement.port)

    @property
    def where(self) -> str:
        """tcp://HOST:PORT for each bound address."""
        return ", ".join(f"tcp://{'[' + h + ']' if ':' in h else h}:{p}" for h, p in self.bound)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.engine is not None and self.info is not None
        if len(self._connections) >= self.settings.max_clients:
            log.warning("client %s refused: %d connections already (serve.max_clients)", _peer(writer),
                        len(self._connections))
            try:
                await async_write_event(Error(text="the server is busy: too many connections", code="busy").event(),
                                        writer)
            except ConnectionError:
                pass
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            with self.metrics.session() if self.metrics is not None else contextlib.nullcontext():
                await Connection(self.engine, self.info, reader, writer, self.metrics).run()
        except asyncio.CancelledError:  # the server is closing; asyncio 3.11 would log a cancelled handler
            pass
        finally:
            self._connections.discard(task)

    async def close(self) -> None:
        """Stop announcing and listening, and end every connection (within about a second)."""
        if self._announcement is not None:
            await self._announcement.stop()
        if self._server is not None:
            self._server.close()
        for _ in range(10):  # a library may swallow one cancellation: ask again until all have ended
            if not self._connections:
                return
            for task in list(self._connections):
                task.cancel()
            await asyncio.wait(list(self._connections), timeout=0.1)
        log.warning("%d connections did not end; left to the exit", len(self._connections))


class Announcement:
    """The server on mDNS as `_wyoming._tcp`, as Home Assistant's zeroconf discovery looks for it."""

    def __init__(self, host: str, port: int) -> None:
        self.host = _announced_address(host)
        self.port = port
        self.name = f"assistant-{socket.gethostname().split('.')[0]}"
        self._zeroconf = None
        self._info = None

    async def start(self) -> None:
        from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

        self._info = AsyncServiceInfo("_wyoming._tcp.local.", f"{self.name}._wyoming._tcp.local.",
                                      addresses=[socket.inet_pton(_family(self.host), self.host)], port=self.port)
        self._zeroconf = AsyncZeroconf()
        await self._zeroconf.async_register_service(self._info)

    async def stop(self) -> None:
        if self._zeroconf is not None:
            await self._zeroconf.async_unregister_service(self._info)
            await self._zeroconf.async_close()


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _announced_address(host: str) -> str:
    """The address other devices reach: the host's own, or for every interface (0.0.0.0, ::)
    the one this machine uses towards the mDNS group."""
    if host not in ("0.0.0.0", "::", ""):
        return socket.getaddrinfo(host, None)[0][4][0]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("224.0.0.251", 5353))  # no packet is sent: this only picks the route
        return probe.getsockname()[0]


async def serve(load_engine: Callable[[], Awaitable[Engine]], settings: ServeSettings, host: str, port: int,
                stopped: Awaitable[object], out: TextIO, metrics: Metrics | None = None) -> None:
    """Bind, load the models, serve until `stopped` completes (also while loading); then close
    every connection. UsageError when the address cannot be listened on; ConfigError for
    zeroconf on loopback."""
    check_zeroconf(settings, host)
    server = Server(settings, metrics)
    try:
        await server.listen(host, port)
    except OSError as err:
        raise UsageError(f"cannot listen on tcp://{host}:{port}: {why_not_bound(err)}") from None
    stop = asyncio.ensure_future(stopped)
    loading = asyncio.ensure_future(load_engine())
    try:
        await asyncio.wait({stop, loading}, return_when=asyncio.FIRST_COMPLETED)
        if not loading.done():
            return
        await server.start(loading.result())
        print(f"serving asr, tts, wake and handle on {server.where}", file=out, flush=True)
        await stop
    finally:
        loading.cancel()
        stop.cancel()
        await server.close()
        if server.engine is not None:
            await in_daemon_thread(server.engine.close)


def why_not_bound(err: OSError) -> str:
    """"Address already in use": the system's words (asyncio's own message repeats the address)."""
    return os.strerror(err.errno) if err.errno else str(err)


def check_zeroconf(settings: ServeSettings, host: str) -> None:
    """ConfigError when the server would announce an address no other device reaches."""
    if settings.zeroconf and is_loopback(host):
        raise ConfigError(f"[serve] zeroconf = true, but {host} is loopback, which no other device reaches: "
                          "serve on this machine's address (--uri tcp://0.0.0.0:PORT) or set zeroconf = false")


async def serve_beside(engine: Engine, settings: ServeSettings, metrics: Metrics | None = None) -> Server:
    """The Wyoming services on an engine already loaded (the daemon's, `serve.with_daemon`): its
    clients are sessions on the same models as the microphone. OSError when `settings.uri` cannot
    be listened on; ConfigError for zeroconf on loopback."""
    host, port = parse_serve_uri(settings.uri)
    check_zeroconf(settings, host)
    server = Server(settings, metrics)
    await server.listen(host, port)
    await server.start(engine)
    log.warning("serving asr, tts, wake and handle on %s", server.where)
    return server
