"""The local LLM answers in streamed sentences and stops between tokens when told."""

import threading

from assistant.speak.sentences import split_sentences


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


def _answer(llm, request: str) -> str:
    return " ".join(llm.sentences(request, threading.Event()))


def _at_once(*calls):
    """Each call's result, all started together in threads of their own (liveness: 120 s)."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait(timeout=10)
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_two_requests_at_once_each_get_their_whole_answer(stages):
    questions = ("Why is the sky blue?", "What is a good name for a cat?")
    alone = [_answer(stages.llm, question) for question in questions]
    together = _at_once(*(lambda q=question: _answer(stages.llm, q) for question in questions))
    assert together == alone


def test_a_skill_mapping_during_a_reply_changes_neither(stages):
    """The mapper shares the replies' model and its lock: asked while a reply streams, it waits."""
    from dataclasses import replace

    from assistant import models
    from assistant.config import BUNDLED
    from assistant.understand.llm import LocalLlm
    from assistant.understand.skill_mapper import SkillMapper
    from assistant.understand.skills import load_skills
    from assistant.understand.skills.volume import INTENTS

    # Greedy: how much of a prompt came from the cache must not change the words.
    llm = LocalLlm(models.llm_model(BUNDLED), replace(stages.llm.settings, context_tokens=2048, temperature=0.0))
    intents, _ = load_skills()
    mapper = SkillMapper(llm, intents, INTENTS)
    mapper.warm()
    question, request = "Why is the sky blue?", "could you go a bit louder"

    def mapped() -> tuple:
        return mapper.map(request), mapper.last.answer  # the model's whole answer, even when it was none

    _answer(llm, question)
    alone = [mapped(), _answer(llm, question)]  # the reply now reuses its cached prompt, as it will below
    assert mapper.last.reason != "no_keyword"  # the model was asked
    alone.reverse()
    assert _at_once(lambda: _answer(llm, question), mapped) == alone
