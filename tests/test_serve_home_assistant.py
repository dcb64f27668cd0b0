"""Home Assistant adopts `assistant serve`: a real Home Assistant core (2025.4.4, its own wyoming
1.5.4 client) adds the server through the Wyoming integration's config flow, and its speech-to-text,
text-to-speech, conversation and wake word entities answer through the assistant."""

from __future__ import annotations

import io
import subprocess
import sys
import time
import wave

import pytest
from conftest import FIXTURES, JFK, ROOT

from assistant.hear.asr import words_of
from bench.serve import ServeProcess, pcm16k


@pytest.fixture(scope="module")
def server():
    with ServeProcess() as process:
        yield process


@pytest.fixture
def adopted(home_assistant_up, server):
    """Home Assistant with the server added as a Wyoming integration (once); its entities by domain."""
    ha = home_assistant_up
    entries = ha.request("GET", "/api/config/config_entries/entry?domain=wyoming").json()
    if not any(entry.get("title") == "assistant-asr" and entry.get("state") == "loaded" for entry in entries):
        flow = ha.request("POST", "/api/config/config_entries/flow", {"handler": "wyoming"}).json()
        assert flow["type"] == "form" and flow["step_id"] == "user", flow
        done = ha.request("POST", f"/api/config/config_entries/flow/{flow['flow_id']}",
                          {"host": "127.0.0.1", "port": server.port}).json()
        assert done["type"] == "create_entry", done
        assert done["title"] == "assistant-asr"  # the first service it names: the server was described
    wanted = {"stt", "tts", "wake_word", "conversation"}
    deadline = time.monotonic() + 30
    while True:
        found = {s["entity_id"].split(".")[0]: s["entity_id"] for s in ha.states()
                 if s["entity_id"].split(".")[0] in wanted and "assistant" in s["entity_id"]}
        if set(found) == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(found) == wanted, (found, ha.log_tail())
    return ha, found


def wav_bytes(pcm: bytes) -> bytes:
    body = io.BytesIO()
    with wave.open(body, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return body.getvalue()


def test_home_assistant_adopts_the_server_with_each_service_an_entity(adopted):
    _ha, entities = adopted
    assert entities == {"stt": "stt.assistant_asr", "tts": "tts.assistant_tts",
                        "wake_word": "wake_word.assistant_wake", "conversation": "conversation.assistant"}


def test_home_assistant_speech_to_text_hears_what_assistant_transcribe_hears(adopted):
    ha, entities = adopted
    reply = ha.request_bytes("POST", f"/api/stt/{entities['stt']}", wav_bytes(pcm16k(JFK)), headers={
        "X-Speech-Content": "format=wav; codec=pcm; sample_rate=16000; bit_rate=16; channel=1; language=en"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"] == "success"
    offline = subprocess.run([sys.executable, "-m", "assistant.cli", "transcribe", str(JFK)], capture_output=True,
                             text=True, timeout=300, cwd=ROOT, check=False)
    assert words_of(reply.json()["text"]) == words_of(offline.stdout)


def test_home_assistant_text_to_speech_returns_the_piper_voice(adopted):
    ha, entities = adopted
    reply = ha.request("POST", "/api/tts_get_url", {"engine_id": entities["tts"], "message": "Hello from the assistant.",
                                                     "options": {"preferred_format": "wav"}})
    assert reply.status_code == 200, reply.text
    audio = ha.request_bytes("GET", reply.json()["path"])
    assert audio.status_code == 200
    with wave.open(io.BytesIO(audio.content)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (22050, 1, 2)
        assert w.getnframes() / w.getframerate() > 0.8


def test_home_assistant_conversation_answers_through_the_assistant(adopted):
    ha, entities = adopted
    reply = ha.request("POST", "/api/conversation/process",
                       {"text": "what time is it", "language": "en", "agent_id": entities["conversation"]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["response"]["speech"]["plain"]["speech"].startswith("It's ")


def test_home_assistant_lists_the_wake_word_the_server_detects(adopted):
    ha, entities = adopted
    words = ha.ws({"type": "wake_word/info", "entity_id": entities["wake_word"]})
    assert [(w["id"], w["name"]) for w in words["wake_words"]] == [("hey_jarvis", "Hey Jarvis")]


def test_a_home_assistant_pipeline_wakes_hears_answers_and_speaks_through_the_assistant(adopted):
    """A voice satellite's whole run, every stage on the server: "Hey Jarvis, what time is it?"."""
    ha, entities = adopted
    pipelines = ha.ws({"type": "assist_pipeline/pipeline/list"})["pipelines"]
    pipeline = next((p for p in pipelines if p["name"] == "assistant serve"), None) or ha.ws({
        "type": "assist_pipeline/pipeline/create", "name": "assistant serve", "language": "en",
        "conversation_engine": entities["conversation"], "conversation_language": "en",
        "stt_engine": entities["stt"], "stt_language": "en", "tts_engine": entities["tts"], "tts_language": "en",
        "tts_voice": None, "wake_word_entity": entities["wake_word"], "wake_word_id": "hey_jarvis"})
    events = ha.run_pipeline({"type": "assist_pipeline/run", "start_stage": "wake_word", "end_stage": "tts",
                              "pipeline": pipeline["id"],
                              # the detection comes once the verifier agrees, a few tenths of a second after
                              # the phrase; Home Assistant hands STT what it buffered from before it
                              "input": {"sample_rate": 16000, "timeout": 10, "audio_seconds_to_buffer": 1.5}},
                             pcm16k(FIXTURES / "wake_time.wav") + bytes(16000 * 2 * 2))  # and 2 s of quiet
    by_type = {event["type"]: event.get("data") or {} for event in events}
    assert "error" not in by_type, by_type.get("error")
    assert by_type["wake_word-end"]["wake_word_output"]["wake_word_id"] == "hey_jarvis"
    assert "time" in words_of(by_type["stt-end"]["stt_output"]["text"])
    assert by_type["intent-end"]["intent_output"]["response"]["speech"]["plain"]["speech"].startswith("It's ")
    assert by_type["tts-end"]["tts_output"]["url"]
