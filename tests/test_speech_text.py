"""Reply text keeps digits; what piper is given says them as a person would."""

import threading

import pytest

from assistant.hear.asr import strip_wake_remnant, wake_remnant
from assistant.speak.tts import speakable
from assistant.understand.llm import spoken_sentences


@pytest.mark.parametrize("text, spoken", [
    ("It's 7:05 PM.", "It's seven oh five P.M."),
    ("It's 12:00 AM.", "It's twelve A.M."),
    ("It's 10:45 AM.", "It's ten forty-five A.M."),
    ("Today is Wednesday, November 25, 2026.", "Today is Wednesday, November twenty-fifth, twenty twenty-six."),
    ("I have 3 cats.", "I have three cats."),
    ("7 divided by 2 is 3.5.", "seven divided by two is three point five."),
    ("3 minus 5 is -2.", "three minus five is minus two."),
])
def test_numbers_times_and_dates_become_words(text, spoken):
    assert speakable(text) == spoken


def _spoken(text: str, finish_reason: str) -> list[str]:
    tokens = [(text[i:i + 4], None) for i in range(0, len(text), 4)] + [("", finish_reason)]
    return list(spoken_sentences(tokens, threading.Event()))


def test_llm_markup_is_removed_and_a_cut_off_sentence_dropped():
    assert _spoken("**Paris** is the capital.\n\nIt has the Eiffel", "length") == ["Paris is the capital."]
    assert _spoken("No full stop here", "length") == ["No full stop here"]
    assert _spoken("Paris is the capital. It has the Eiffel Tower", "stop") == [
        "Paris is the capital.", "It has the Eiffel Tower"]


@pytest.mark.parametrize("heard, command", [
    ("Jarvis, what time is it?", "what time is it?"),
    ("Hey Jarvis what's the date", "what's the date"),
    ("What time is it?", "What time is it?"),
    ("Tell Jarvis I said hi", "Tell Jarvis I said hi"),
])
def test_a_leftover_wake_phrase_is_removed_only_at_the_start(heard, command):
    assert strip_wake_remnant(heard, wake_remnant(["Hey Jarvis"])) == command


@pytest.mark.parametrize("heard, command", [
    ("Okay Nabu, what time is it?", "what time is it?"),
    ("Naboo. Set a timer.", "Set a timer."),
    ("Jarvis, what time is it?", "Jarvis, what time is it?"),  # not a configured word here
])
def test_the_leftover_removed_is_the_configured_wake_words(heard, command):
    assert strip_wake_remnant(heard, wake_remnant(["Okay Nabu"])) == command


def test_a_long_last_sentence_is_spoken_in_clause_sized_pieces_too():
    last = ("Once upon a time, in a land of tall mountains and deep green valleys, there lived a brave "
            "little dragon who loved to read books by the fire.")
    pieces = _spoken("The story begins in the far north. " + last, "stop")
    assert pieces[0] == "The story begins in the far north." and " ".join(pieces[1:]) == last
    assert len(pieces) > 2 and all(len(piece) <= 160 for piece in pieces)


def test_the_voice_keeps_no_memory_per_sentence_shape():
    """Each sentence has its own tensor shapes; onnxruntime's arena and memory patterns
    would keep memory for each, growing ~260 MB over an hour (`bench soak`)."""
    from assistant.config import Settings
    from assistant.run.stages import load_tts

    options = load_tts(Settings()).voice.session.get_session_options()
    assert not options.enable_cpu_mem_arena and not options.enable_mem_pattern
