"""Streamed text is cut into whole sentences as soon as each is complete."""

import pytest

from assistant.speak.sentences import SentenceSplitter, split_sentences


def test_a_sentence_is_given_back_once_the_next_one_begins():
    splitter = SentenceSplitter()
    assert splitter.push("The moon is about four") == []
    assert splitter.push(" billion years old. It formed") == ["The moon is about four billion years old."]
    assert splitter.flush() == ["It formed"]


def test_text_arriving_token_by_token_gives_the_same_sentences_as_a_whole():
    text = "Hello there, my friend! Do you want to hear a story? Once upon a time, a dragon slept."
    splitter = SentenceSplitter()
    pieces = [text[i:i + 3] for i in range(0, len(text), 3)]
    streamed = [s for piece in pieces for s in splitter.push(piece)] + splitter.flush()
    assert streamed == split_sentences(text) == [
        "Hello there, my friend!", "Do you want to hear a story?", "Once upon a time, a dragon slept."]


@pytest.mark.parametrize("text", [
    "Pi is about 3.14 and that is plenty for most sums.",
    "Dr. Smith lives on Baker Street with his cat.",
    "It opens at 7:05 a.m. every single day of the week.",
])
def test_numbers_times_and_abbreviations_do_not_end_a_sentence(text):
    assert split_sentences(text) == [text]


def test_a_very_short_piece_joins_the_next_sentence():
    assert split_sentences("Sure. The capital of France is Paris.") == ["Sure. The capital of France is Paris."]


def test_a_long_sentence_is_cut_at_its_clauses_whole_or_streamed():
    text = ("Once upon a time, in a land of tall mountains and deep green valleys, there lived a brave little "
            "dragon who loved to read books by the fire.")
    whole = split_sentences(text)
    splitter = SentenceSplitter()
    streamed = [s for i in range(0, len(text), 5) for s in splitter.push(text[i:i + 5])] + splitter.flush()
    assert " ".join(whole) == " ".join(streamed) == text
    assert len(whole) > 1 and all(len(piece) <= 160 for piece in whole + streamed)
    assert all(piece.endswith((",", ".")) for piece in whole)


@pytest.mark.parametrize("text", [
    "\x1b[2J\x1b]0;title\x07It's 7:05 PM.\x07",  # a skill's reply with a name from elsewhere in it
    "It's \u202e7:05\u202c PM.\x00",
    "It's\t7:05\x9b31m PM.\x7f",
])
def test_no_reply_of_any_tier_keeps_control_characters_escape_sequences_or_bidi_overrides(text):
    splitter = SentenceSplitter()
    streamed = [s for character in text for s in splitter.push(character)] + splitter.flush()  # as a model writes
    assert split_sentences(text) == ["It's 7:05 PM."]
    assert "".join(streamed).isprintable()
