"""The local LLM tier, measured: SmolLM2-135M against Gemma 3 270M, and how the skill mapper
shares the chat model.

Configurations, each in its own process (so peak memory is its own):
- `smollm2`, `gemma3-270m`: the chat path (time to the first token with the system prompt
  kept, tokens per second, small-talk replies: words, plainness) and the skill mapper on the
  labelled routing set (`fixtures/routing_set.json`): accuracy on the local-LLM items that
  name a skill, and false skills on every item that names none.
- `share_evict`, `share_restore`, `second_instance` (SmolLM2): the mapper on the chat's own
  llama.cpp context, evicting its evaluated prompt; on the same context, saving and
  restoring both prompts' states; on a second context over the same mmapped file. Each:
  map() latency, the chat's next first token, memory added.

llama.cpp runs on `THREADS` threads: on this shared 2-core machine two threads stall
whenever another process runs (a token took 250 ms instead of 32 ms).
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import threading
import time
from pathlib import Path

from assistant import models
from assistant.config import BUNDLED, Settings
from assistant.speak.sentences import split_sentences
from assistant.understand.llm import LocalLlm
from assistant.understand.skill_mapper import SkillMapper
from assistant.understand.skills import load_skills

from .runner import peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
CONFIGURATIONS = ("smollm2", "gemma3-270m", "share_evict", "share_restore", "second_instance")
MODELS = {"smollm2": BUNDLED, "gemma3-270m": models.GEMMA3_270M}
THREADS = 1
CONTEXT_TOKENS = 2048
"""Room for the mapper's prompt (about 1,000 tokens with every skill) when it shares the context."""
CHAT_REQUESTS = ["Why is the sky blue?", "How do bees make honey?", "Give me a tip for sleeping better.",
                 "Why do cats purr?", "What should I cook for dinner tonight?", "How far away is the sun?"]
_MARKDOWN = re.compile(r"[*_#`|>~]|^\s*(?:[-•]|\d+[.)])\s", re.MULTILINE)
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF]")


def measure(configuration: str) -> dict:
    if configuration in MODELS:
        return _model(configuration)
    return _sharing(configuration)


def routing_set() -> list[dict]:
    return json.loads((ROOT / "fixtures" / "routing_set.json").read_text())


def _chat(setting: str, context_tokens: int = CONTEXT_TOKENS) -> LocalLlm:
    settings = dataclasses.replace(Settings().llm, threads=THREADS, context_tokens=context_tokens)
    llm = LocalLlm(models.llm_model(setting), settings, chat_format=models.llm_chat_format(setting))
    llm.warm()
    return llm


def _first_token_ms(llm: LocalLlm, text: str) -> float:
    started = time.perf_counter()
    for _ in llm.tokens(text, threading.Event(), max_tokens=1):
        break
    return (time.perf_counter() - started) * 1000


def _model(name: str) -> dict:
    started = time.perf_counter()
    llm = _chat(MODELS[name])
    load_s = time.perf_counter() - started
    first_token = [_first_token_ms(llm, text) for text in CHAT_REQUESTS]
    rates = []
    for text in CHAT_REQUESTS:
        count, first_at = 0, None
        for piece, _ in llm.tokens(text, threading.Event(), llm.settings.max_reply_tokens):
            count += 1
            first_at = first_at or time.perf_counter()
        if count > 1:
            rates.append((count - 1) / (time.perf_counter() - first_at))
    small_talk = [item for item in routing_set() if item["kind"] == "small_talk"]
    replies = [" ".join(llm.sentences(item["text"], threading.Event())) for item in small_talk]
    chat_rss_mb = _rss_mb()
    mapping = _mapping(SkillMapper(llm, *load_skills()))
    return {
        "model": str(models.llm_model(MODELS[name]).name),
        "load_and_warm_s": round(load_s, 2),
        "first_token_ms_kept_prompt": _spread(first_token),
        "tokens_per_s": round(statistics.median(rates), 1) if rates else None,
        "small_talk": _replies(small_talk, replies),
        "mapping": mapping,
        "rss_mb_chat_only": chat_rss_mb,
        "peak_rss_mb": peak_rss_mb(),
        "threads": THREADS,
    }


def _replies(items: list[dict], replies: list[str]) -> dict:
    words = [len(reply.split()) for reply in replies]
    plain = [bool(reply) and not _MARKDOWN.search(reply) and not _EMOJI.search(reply)
             and len(split_sentences(reply)) <= 2 for reply in replies]
    return {"replies": len(replies), "words_median": statistics.median(words), "words_max": max(words),
            "plain_share": round(sum(plain) / len(plain), 2),
            "examples": [{"text": item["text"], "reply": reply} for item, reply in zip(items[:6], replies[:6])]}


def _mapping(mapper: SkillMapper) -> dict:
    """The mapper on the routing set: skill items of the local-LLM tier, and every item naming no skill."""
    started = time.perf_counter()
    mapper.warm()
    warm_s = time.perf_counter() - started
    skills = {"dev": [], "test": []}
    nones: dict[str, list] = {}
    asked_ms, trace = [], []
    for item in routing_set():
        if item["intent"] is not None and item["tier"] != "local_llm":
            continue
        began = time.perf_counter()
        got = mapper.map(item["text"])
        elapsed_ms = (time.perf_counter() - began) * 1000
        if mapper.last.reason != "no_keyword":
            asked_ms.append(elapsed_ms)
        trace.append({"text": item["text"], "want": item["intent"], "want_slots": item.get("slots"),
                      "got": list(got) if got else None, "answer": mapper.last.answer, "reason": mapper.last.reason,
                      "confidence": round(mapper.last.confidence, 3), "ms": round(elapsed_ms)})
        if item["intent"] is None:
            nones.setdefault(item["kind"], []).append(got)
        else:
            skills[item["split"]].append((item, got))
    scores = {}
    for split, pairs in skills.items():
        scores[split] = {"items": len(pairs),
                         "intent_correct": sum(1 for item, got in pairs if got and got[0] == item["intent"]),
                         "exact": sum(1 for item, got in pairs if got and got[0] == item["intent"]
                                      and got[1] == item["slots"]),
                         "wrong_skill": sum(1 for item, got in pairs if got and got[0] != item["intent"]),
                         "none": sum(1 for _, got in pairs if got is None)}
    false_skills = {kind: f"{sum(1 for got in gots if got)}/{len(gots)}" for kind, gots in nones.items()}
    all_nones = [got for gots in nones.values() for got in gots]
    return {"warm_s": round(warm_s, 1), "prompt_tokens": len(mapper._prefix_tokens), "skills": scores,
            "false_skills": false_skills,
            "false_skill_rate": round(sum(1 for got in all_nones if got) / len(all_nones), 3),
            "map_ms_when_asked": _spread(asked_ms), "model_asked": f"{len(asked_ms)}/{len(trace)}",
            "trace": trace}


def _sharing(mode: str) -> dict:
    from llama_cpp import Llama

    llm = _chat(BUNDLED)
    before = [_first_token_ms(llm, text) for text in CHAT_REQUESTS[:4]]
    rss0, pss0 = _rss_mb(), _pss_mb()
    intents, handlers = load_skills()
    started = time.perf_counter()
    if mode == "second_instance":
        own = Llama(model_path=str(models.llm_model(BUNDLED)), n_ctx=1536, n_threads=THREADS,
                    n_threads_batch=THREADS, verbose=False)
        mapper = SkillMapper(own, intents, handlers, keep_chat_state=False)
    else:
        mapper = SkillMapper(llm, intents, handlers, keep_chat_state=mode == "share_restore")
    mapper.warm()
    warm_s = time.perf_counter() - started
    texts = [item["text"] for item in routing_set() if item["tier"] == "local_llm" and item["intent"]
             and item["split"] == "dev"]
    asked = [text for text in texts if _asks_model(mapper, text)][:2 if mode == "share_evict" else 6]
    map_ms, after = [], []
    for text, chat_text in zip(asked, CHAT_REQUESTS * 2):
        llm.warm()  # the chat's own prompt, as a previous answer leaves it
        began = time.perf_counter()
        mapper.map(text)
        map_ms.append((time.perf_counter() - began) * 1000)
        after.append(_first_token_ms(llm, chat_text))
    return {"mapper_warm_s": round(warm_s, 1), "map_ms": _spread(map_ms), "requests": len(map_ms),
            "chat_first_token_ms_before": _spread(before), "chat_first_token_ms_after_map": _spread(after),
            "rss_mb_added": round(_rss_mb() - rss0, 1), "pss_mb_added": round(_pss_mb() - pss0, 1),
            "peak_rss_mb": peak_rss_mb(), "threads": THREADS}


def _asks_model(mapper: SkillMapper, text: str) -> bool:
    from assistant.understand.skill_mapper import shares_keyword

    return any(shares_keyword(text, spec.keywords) for spec in mapper.specs.values())


def _rss_mb() -> float:
    return _status_kb("/proc/self/status", "VmRSS:") / 1024


def _pss_mb() -> float:
    """Proportional memory: a page mapped twice (two contexts over one mmapped file) counts once."""
    return _status_kb("/proc/self/smaps_rollup", "Pss:") / 1024


def _status_kb(path: str, key: str) -> float:
    for line in Path(path).read_text().splitlines():
        if line.startswith(key):
            return float(line.split()[1])
    return 0.0


def _spread(values: list[float]) -> dict:
    if not values:
        return {}
    return {"median": round(statistics.median(values), 1), "max": round(max(values), 1), "n": len(values)}


def table(results: dict) -> str:
    rows = ["| measure | SmolLM2-135M Q4_1 | Gemma 3 270M Q4_K_M |", "|---|---|---|"]
    a, b = results.get("smollm2", {}), results.get("gemma3-270m", {})

    def both(fn) -> str:
        return " | ".join(_safe(fn, r) for r in (a, b))

    measures = [
        ("skill items, test split: intent right / exact / wrong skill (of 15)", lambda r: _split(r, "test")),
        ("skill items, dev split (the prompt was tuned on it)", lambda r: _split(r, "dev")),
        ("false skills: items naming no skill that come out as one", _false),
        ("map() when the model is asked, median / max", lambda r: _ms(r["mapping"]["map_ms_when_asked"])),
        ("mapper prompt: tokens / its first evaluation",
         lambda r: "{} / {} s".format(r["mapping"]["prompt_tokens"], r["mapping"]["warm_s"])),
        ("first token, system prompt kept, median", lambda r: "{} ms".format(r["first_token_ms_kept_prompt"]["median"])),
        ("tokens per second", lambda r: str(r["tokens_per_s"])),
        ("small talk: words, median / max",
         lambda r: "{} / {}".format(r["small_talk"]["words_median"], r["small_talk"]["words_max"])),
        ("small talk: plain, one or two sentences", lambda r: "{} %".format(round(100 * r["small_talk"]["plain_share"]))),
        ("RSS: chat only / peak with the mapper",
         lambda r: "{:.0f} / {:.0f} MB".format(r["rss_mb_chat_only"], r["peak_rss_mb"])),
    ]
    rows += [f"| {label} | {both(fn)} |" for label, fn in measures]
    rows += ["", "| mapper on SmolLM2 | map() median / max | chat first token after a map | memory added (RSS / PSS) |",
             "|---|---|---|---|"]
    for mode in ("share_evict", "share_restore", "second_instance"):
        r = results.get(mode)
        if r:
            rows.append(f"| {mode} | {_ms(r['map_ms'])} | {r['chat_first_token_ms_after_map']['median']} ms "
                        f"(before: {r['chat_first_token_ms_before']['median']} ms) | "
                        f"{r['rss_mb_added']} / {r['pss_mb_added']} MB |")
    return "\n".join(rows)


def _safe(fn, result: dict) -> str:
    try:
        return fn(result)
    except (KeyError, TypeError):
        return "—"


def _split(result: dict, split: str) -> str:
    s = result["mapping"]["skills"][split]
    return f"{s['intent_correct']} / {s['exact']} / {s['wrong_skill']}"


def _false(result: dict) -> str:
    m = result["mapping"]
    kinds = ", ".join(f"{kind} {share}" for kind, share in m["false_skills"].items())
    return f"{round(100 * m['false_skill_rate'])} % ({kinds})"


def _ms(spread: dict) -> str:
    return f"{spread['median']:.0f} / {spread['max']:.0f} ms" if spread else "—"
