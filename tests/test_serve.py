"""`assistant serve` as Wyoming clients meet it: the real server process, the wyoming client library,
real models and real audio."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
import socket
import subprocess
import sys
import time
import wave

import pytest
from conftest import FIXTURES, JFK, MANIFEST, ROOT
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk
from wyoming.client import AsyncTcpClient
from wyoming.event import read_event
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop
from wyoming.wake import Detect

from assistant.hear.asr import words_of
from bench.serve import (
    ServeProcess,
    audio_events,
    exchange,
    free_port,
    pcm16k,
    transcribe,
)

WAKE_POSITIVES = sorted((FIXTURES / "wake_tune" / "positives").glob("*.wav"))
WAKE_NEGATIVES = [FIXTURES / "noise_only.wav", *sorted((FIXTURES / "wake_tune" / "negatives").glob("*.wav"))]


@pytest.fixture(scope="module")
def server():
    with ServeProcess() as process:
        yield process
        assert process.alive, process.process.stderr.read()[-3000:]


def run(coroutine):
    return asyncio.run(coroutine)


def served_transcript(port: int, path) -> str:
    return run(transcribe(port, pcm16k(path)))


def test_describe_names_each_service_with_its_models_and_languages(server):
    [event] = run(exchange(server.port, [Describe().event()], ("info",)))
    info = Info.from_event(event)
    assert [p.name for p in info.asr] == ["assistant-asr"] and info.asr[0].models[0].languages == ["en"]
    assert info.tts[0].voices[0].name == "en_US-joe-medium" and info.tts[0].voices[0].languages == ["en"]
    assert [(m.name, m.phrase) for m in info.wake[0].models] == [("hey_jarvis", "Hey Jarvis")]
    assert info.handle[0].models[0].languages == ["en"]
    assert info.satellite is None  # Home Assistant would take the server for a satellite and use none of it
    assert all(p.installed for p in (*info.asr, *info.tts, *info.wake, *info.handle))


def test_asr_transcribes_real_speech_as_assistant_transcribe_does(server):
    offline = subprocess.run([sys.executable, "-m", "assistant.cli", "transcribe", str(JFK)], capture_output=True,
                             text=True, timeout=300, cwd=ROOT, check=False)
    assert offline.returncode == 0, offline.stderr
    assert words_of(served_transcript(server.port, JFK)) == words_of(offline.stdout)


def test_asr_takes_a_wav_upload_in_odd_sized_chunks_as_home_assistant_forwards_it(server):
    body = io.BytesIO()
    with wave.open(body, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(pcm16k(JFK))
    data = body.getvalue()
    chunks = [line for line in io.BytesIO(data)]  # aiohttp's request.content iterates by line, as HA reads it
    assert any(len(c) % 2 for c in chunks)
    events = [Transcribe(language="en").event(), *audio_events(b"", stop=False),
              *(AudioChunk(16000, 2, 1, c).event() for c in chunks), *audio_events(b"")[-1:]]
    [*_, transcript] = run(exchange(server.port, events, ("transcript",)))
    assert words_of(transcript.data["text"]) == words_of(served_transcript(server.port, JFK))


def test_asr_hears_audio_at_another_rate_and_channel_count(server):
    import numpy as np
    import soxr

    mono = np.frombuffer(pcm16k(JFK), np.int16)
    at_44k = soxr.resample(mono.astype(np.float32), 16000, 44100).astype(np.int16)
    stereo = np.repeat(at_44k, 2).tobytes()
    events = [Transcribe(language="en").event(), *audio_events(stereo, rate=44100, channels=2, chunk_bytes=4410)]
    [*_, transcript] = run(exchange(server.port, events, ("transcript",)))
    assert "ask not what your country can do for you" in " ".join(words_of(transcript.data["text"]))


def test_tts_returns_the_piper_voice_at_its_rate(server):
    got = run(exchange(server.port, [Synthesize(text="It's 7:05 PM.").event()], ("audio-stop",)))
    chunks = [e for e in got if e.type == "audio-chunk"]
    assert got[0].type == "audio-start" and got[0].data["rate"] == 22050 and got[-1].type == "audio-stop"
    assert {(c.data["rate"], c.data["width"], c.data["channels"]) for c in chunks} == {(22050, 2, 1)}
    seconds = sum(len(c.payload) for c in chunks) / 2 / 22050
    assert 0.8 < seconds < 5
    # what it says is what was asked: Whisper hears the time in it
    import numpy as np
    import soxr

    speech = soxr.resample(np.frombuffer(b"".join(c.payload for c in chunks), np.int16).astype(np.float32), 22050,
                           16000).astype(np.int16).tobytes()
    assert "seven" in words_of(run(transcribe(server.port, speech))) or "7" in run(transcribe(server.port, speech))


def test_tts_streams_one_answer_per_sentence_as_the_text_comes(server):
    events = [SynthesizeStart().event(), SynthesizeChunk(text="Hello there. How ").event(),
              SynthesizeChunk(text="are you today? Fine").event(), SynthesizeChunk(text=", thanks.").event(),
              Synthesize(text="Hello there. How are you today? Fine, thanks.").event(),  # compat copy: not said again
              SynthesizeStop().event()]
    got = run(exchange(server.port, events, ("synthesize-stopped",)))
    assert [e.type for e in got].count("audio-start") == 3 and got[-1].type == "synthesize-stopped"


def detected(port: int, path, names: list[str] | None = None) -> list[str]:
    """The detections a whole file gets, streamed in 1024-sample chunks; "not-detected" when none."""
    # A stream with a detection ends without a word more: a describe after it marks the end.
    events = [Detect(names=names).event(), *audio_events(pcm16k(path)), Describe().event()]
    got = run(exchange(port, events, ("info",), timeout_s=120))
    return [e.data["name"] for e in got if e.type == "detection"] or [e.type for e in got if e.type == "not-detected"]


@pytest.mark.parametrize("path", WAKE_POSITIVES, ids=lambda p: p.stem)
def test_wake_finds_hey_jarvis_in_every_voice(server, path):
    assert detected(server.port, path, ["hey_jarvis"]) == ["hey_jarvis"]


@pytest.mark.parametrize("path", WAKE_NEGATIVES, ids=lambda p: p.stem)
def test_wake_stays_quiet_on_noise_and_near_misses(server, path):
    assert detected(server.port, path) == ["not-detected"]


def test_wake_finds_each_wake_in_a_longer_stream(server):
    name = "wake_two_turns_noisy.wav"
    assert detected(server.port, FIXTURES / name) == ["hey_jarvis"] * MANIFEST[name]["wake_count"]


def test_wake_refuses_a_word_it_does_not_have(server):
    got = run(exchange(server.port, [Detect(names=["okay_computer"]).event()], ("error",)))
    assert got[-1].type == "error" and "hey_jarvis" in got[-1].data["text"]


@pytest.mark.parametrize("text", ["what time is it", "Hey Jarvis, what time is it?"])
def test_handle_answers_what_time_is_it(server, text):
    """Also after the wake phrase, which a satellite's transcript may keep: the router knows the loaded models' name."""
    [reply] = run(exchange(server.port, [Transcript(text=text).event()], ("handled", "not-handled")))
    assert reply.type == "handled" and reply.data["text"].startswith("It's ")


def test_handle_says_what_it_cannot_do_as_not_handled(server):
    [reply] = run(exchange(server.port, [Transcript(text="set a timer for five minutes").event()],
                           ("handled", "not-handled")))
    assert reply.type == "not-handled" and reply.data["text"]


def test_four_clients_at_once_each_get_their_own_transcript(server):
    paths = [JFK, FIXTURES / "ptt_time.wav", FIXTURES / "ptt_llm.wav", FIXTURES / "wake_volume.wav"]
    alone = [served_transcript(server.port, path) for path in paths]

    async def together():
        return await asyncio.gather(*(transcribe(server.port, pcm16k(path)) for path in paths))

    assert run(together()) == alone
    assert len(set(alone)) == 4


def raw_exchange(port: int, data: bytes, timeout_s: float = 30) -> list[dict]:
    """Send raw bytes; the events that come back until the server closes (or `timeout_s` passes
    without a word), each as its type and data."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        try:
            s.sendall(data)
            while chunk := s.recv(65536):
                received += chunk
        except ConnectionResetError:  # closed with our bytes unread: what came before still counts
            pass
        except TimeoutError:  # served, and kept open: what came so far
            pass
    stream, events = io.BytesIO(received), []
    while (event := read_event(stream)) is not None:
        events.append({"type": event.type, **event.data})
    return events


def still_serving(server) -> bool:
    return run(exchange(server.port, [Describe().event()], ("info",)))[-1].type == "info"


@pytest.mark.parametrize("garbage", [
    b"this is not json\n", b"[1, 2, 3]\n", b'{"no_type": 1}\n', b'{"type": "audio-chunk", "data_length": "5"}\n',
    b'{"type": "transcript", "data_length": 4}\n[42]', b"\xff\xfe\x00garbage\x00\n", b"{" * 70000 + b"\n",
    b'{"type": "synthesize", "data": {"text": 5}}\n', b'{"type": "audio-start", "data": {"rate": -1}}\n'],
    ids=["text", "array", "no-type", "string-length", "data-not-object", "binary", "long-line", "text-not-string",
         "bad-rate"])
def test_garbage_gets_an_error_and_the_server_serves_the_next_client(server, garbage):
    replies = raw_exchange(server.port, garbage)
    assert [r["type"] for r in replies] == ["error"]
    assert still_serving(server)


def test_a_100_mb_payload_header_is_refused_before_any_of_it_is_read(server):
    replies = raw_exchange(server.port, b'{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}, '
                                        b'"payload_length": 100000000}\n' + b"\0" * 65536)
    assert [(r["type"], r["code"]) for r in replies] == [("error", "too-large")]
    assert "payload_length 100000000" in replies[0]["text"]
    assert still_serving(server)


def test_a_client_that_vanishes_mid_stream_leaves_the_server_serving(server):
    async def vanish():
        client = AsyncTcpClient("127.0.0.1", server.port)
        await client.connect()
        for event in [Transcribe().event(), *audio_events(pcm16k(JFK)[:64000], stop=False)]:
            await client.write_event(event)
        await client.disconnect()
        # and one that stops half-way through an event's payload
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            s.sendall(b'{"type": "audio-chunk", "data": {"rate": 16000, "width": 2, "channels": 1}, '
                      b'"payload_length": 4000}\n' + b"\0" * 100)

    run(vanish())
    assert still_serving(server)
    assert served_transcript(server.port, FIXTURES / "ptt_time.wav")


def test_sigterm_ends_the_server_with_status_0_within_2_s_even_mid_request():
    with ServeProcess() as process:
        assert still_serving(process)

        async def busy_then_stopped():
            clients = [AsyncTcpClient("127.0.0.1", process.port) for _ in range(5)]
            for number, client in enumerate(clients):
                await client.connect()
                first = Detect().event() if number == 0 else Transcribe().event()
                for event in [first, *audio_events(pcm16k(JFK) * 5, stop=number != 0)]:  # ~1 min each: seconds of work
                    await client.write_event(event)
            await asyncio.sleep(1)  # transcriptions queued and running, a wake stream open
            process.process.send_signal(signal.SIGTERM)
            started = time.monotonic()
            while process.alive and time.monotonic() - started < 2:
                await asyncio.sleep(0.05)
            for client in clients:
                with contextlib.suppress(ConnectionError):  # the server has gone
                    await client.disconnect()

        run(busy_then_stopped())
        assert not process.alive, "still running 2 s after SIGTERM"
        assert process.process.returncode == 0


def test_a_bad_uri_is_one_line_naming_it_with_status_2():
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "serve", "--uri", "http://nowhere"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert result.returncode == 2 and "http://nowhere" in result.stderr and "tcp://HOST:PORT" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_zeroconf_on_loopback_is_refused_by_name(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[serve]\nzeroconf = true\n')
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "config", "check", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert result.returncode == 78 and "[serve] zeroconf" in result.stderr and "loopback" in result.stderr


def test_zeroconf_announces_the_server_where_home_assistant_looks(tmp_path):
    from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

    config = tmp_path / "config.toml"
    config.write_text('[serve]\nuri = "tcp://0.0.0.0:10700"\nzeroconf = true\n')
    found: list[tuple[str, int]] = []

    class Listener(ServiceListener):
        def add_service(self, zc, kind, name):
            info = zc.get_service_info(kind, name, timeout=3000)
            if info is not None:
                found.append((name, info.port))

        update_service = remove_service = lambda *_: None

    with ServeProcess("--config", str(config), uri_host="0.0.0.0") as process:
        zeroconf = Zeroconf()
        try:
            ServiceBrowser(zeroconf, "_wyoming._tcp.local.", Listener())
            deadline = time.monotonic() + 10
            while not any(port == process.port for _, port in found) and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            zeroconf.close()
    assert any(name.startswith("assistant-") and port == process.port for name, port in found), found


@pytest.mark.parametrize("uri", ["tcp://127.0.0.1", "udp://127.0.0.1:10700", "tcp://127.0.0.1:99999", "127.0.0.1:10700",
                                 "tcp://[::1:10700", "tcp://bad host:10700"])
def test_a_bad_serve_uri_in_the_config_is_refused_naming_the_key(tmp_path, uri):
    config = tmp_path / "config.toml"
    config.write_text(f'[serve]\nuri = "{uri}"\n')
    result = subprocess.run([sys.executable, "-m", "assistant.cli", "config", "check", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert result.returncode == 78 and f"[serve] uri = {uri!r}" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_client_over_max_clients_is_told_the_server_is_busy(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[serve]\nmax_clients = 1\n")
    with ServeProcess("--config", str(config)) as process:
        with socket.create_connection(("127.0.0.1", process.port)) as holder:
            holder.sendall(b'{"type": "ping"}\n')
            holder.recv(4096)  # its pong: it is being served
            assert [(r["type"], r["code"]) for r in raw_exchange(process.port, b"")] == [("error", "busy")]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the first has gone: its place is free again
            replies = raw_exchange(process.port, b'{"type": "ping"}\n', timeout_s=0.5)
            if [r["type"] for r in replies] == ["pong"]:
                break
        assert [r["type"] for r in replies] == ["pong"]


def test_metrics_show_each_served_stage_and_the_wakes_heard(tmp_path):
    import urllib.request

    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "config.toml"
    config.write_text(f'[metrics]\nlisten = "{listen}"\n')
    with ServeProcess("--config", str(config)) as process:
        served_transcript(process.port, JFK)
        run(exchange(process.port, [Synthesize(text="Hello there.").event()], ("audio-stop",)))
        [reply] = run(exchange(process.port, [Transcript(text="what time is it").event()], ("handled", "not-handled")))
        detected(process.port, WAKE_POSITIVES[0])
        with urllib.request.urlopen(f"http://{listen}/metrics", timeout=10) as response:
            exposed = response.read().decode()
    assert reply.type == "handled"
    for sample in ('assistant_served_requests_total{outcome="answered",service="asr"} 1.0',
                   'assistant_served_requests_total{outcome="answered",service="tts"} 1.0',
                   'assistant_served_requests_total{outcome="answered",service="handle"} 1.0',
                   'assistant_stage_seconds_count{stage="asr"} 1.0',
                   'assistant_stage_seconds_count{stage="tts"} 1.0',
                   'assistant_stage_seconds_count{stage="fast_path"} 1.0',
                   'assistant_wakes_total{word="hey jarvis"} 1.0'):
        assert sample in exposed, sample
