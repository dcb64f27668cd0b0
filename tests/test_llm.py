"""The local LLM answers in streamed sentences and stops between tokens when told."""

import threading

from assistant.sentences import split_sentences


def test_an_answer_arrives_as_plain_whole_sentences(stages):
    sentences = list(stages.llm.sentences("Why is the sky blue?", threading.Event()))
    assert sentences
    for sentence in sentences:
        assert split_sentences(sentence) == [sentence]
        assert not any(mark in sentence for mark in "*#`")


def test_setting_stop_ends_the_answer_at_the_next_token(stages):
    stop = threading.Event()
    stream = stages.llm.sentences("Tell me a long story about a brave little dragon.", stop)
    first = next(stream)
    stop.set()
    assert first and list(stream) == []
