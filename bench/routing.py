"""Who answers, measured on the hand-labelled routing set (`fixtures/routing_set.json`).

Configurations, each in its own process:
- `router`: the shipped stages; every item's text through `router.route`, scored on tier,
  intent and slot values (overall, per labelled tier, per kind, per split); the escalation
  rules' cloud-or-not accuracy; the time from transcript to the first reply text (route plus
  the whole reply for a skill, route plus the first streamed sentence for a model).
- `llm`: the local LLM's time to the first token with the system prompt's evaluated state
  kept and dropped, and its tokens per second.
- `escalation_llm`: the alternative to the rules: SmolLM2's log-probability of "yes" against
  "no" to "does this need the internet?", its threshold chosen on the dev split.
The router is scored as it is: intents it does not know yet count as misses, not errors.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import statistics
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.understand.escalation import escalation_reason

from .runner import peak_rss_mb
from .turns import first_token_ms as first_token_kept_and_dropped

ROOT = Path(__file__).resolve().parent.parent
ROUTING_SET = ROOT / "fixtures" / "routing_set.json"
CONFIGURATIONS = ("router", "llm", "escalation_llm")
SPLITS = ("dev", "test")
TIERS = ("fast_path", "local_llm", "cloud")

YES_NO_SYSTEM = ("You decide whether a voice assistant on a small device needs the internet to answer a request. "
                 "Facts, news, weather, scores, prices, stories, poems and plans need the internet. Chat, "
                 "greetings, thanks, the time, timers, alarms, volume and simple sums do not. Answer yes or no.")


def load_set() -> list[dict]:
    return json.loads(ROUTING_SET.read_text())


def measure(configuration: str) -> dict:
    if configuration == "llm":
        return _llm()
    if configuration == "escalation_llm":
        return _escalation_llm()
    return _router()


@dataclasses.dataclass
class _Volume:
    volume: float = 0.5


def _skill_request() -> Any:
    """A skill's context: a volume to turn, and an in-memory reminder store once the skills take one."""
    from assistant.understand.skills import SkillRequest

    extra: dict[str, Any] = {}
    if "reminders" in {f.name for f in dataclasses.fields(SkillRequest)}:
        from assistant.store.reminders import ReminderStore

        extra["reminders"] = ReminderStore(":memory:")
    return SkillRequest(volume=_Volume(), **extra)


def _router() -> dict:
    from assistant.run.stages import load_stages

    stages = load_stages(Settings())
    router = stages.router
    context = _skill_request()
    rows, first_reply_ms, errors = [], {}, []
    for item in load_set():
        started = time.perf_counter()
        decision = router.route(item["text"])
        route_ms = (time.perf_counter() - started) * 1000
        row = {"text": item["text"], "tier": decision.tier, "intent": decision.intent,
               "slots": decision.slots, "fallback": decision.fallback, "route_ms": round(route_ms, 2)}
        try:
            reply_ms = _first_reply_ms(router, decision, item["text"], context)
            first_reply_ms.setdefault(decision.answered_by, []).append(route_ms + reply_ms)
        except Exception as err:  # a tier another change has not finished: scored, not timed
            errors.append({"text": item["text"], "error": f"{type(err).__name__}: {err}"})
            traceback.print_exc()
        rows.append(row)
    items = load_set()
    escalation_us = []
    for item in items:
        started = time.perf_counter()
        escalation_reason(item["text"])
        escalation_us.append((time.perf_counter() - started) * 1e6)
    reached = [item for item, row in zip(items, rows) if row["tier"] != "fast_path"]
    return {
        "routing": routing_scores(items, rows),
        "routing_with_rules": _with_rules(router, items),
        "escalation_rules": escalation_scores(items, [escalation_reason(i["text"]) is not None for i in items]),
        "escalation_rules_on_unmatched": escalation_scores(
            reached, [escalation_reason(i["text"]) is not None for i in reached]),
        "escalation_rules_us": _spread(escalation_us, 1),
        "first_reply_ms": {tier: _spread(ms) for tier, ms in sorted(first_reply_ms.items())},
        "router_knows": {"intents": sorted(router.skills),
                         "cloud_decisions": sum(r["tier"] == "cloud" for r in rows)},
        "errors": errors,
        "decisions": rows,
        "peak_rss_mb": peak_rss_mb(),
    }


def _with_rules(router, items: list[dict]) -> dict | None:
    """The same routing with `escalation_reason` as the router's cloud test, whatever the stages wire
    (None while the router has no such hook)."""
    if not hasattr(router, "belongs_in_cloud"):
        return None
    wired, router.belongs_in_cloud = router.belongs_in_cloud, escalation_reason
    try:
        rows = [dataclasses.asdict(router.route(item["text"])) for item in items]
    finally:
        router.belongs_in_cloud = wired
    return routing_scores(items, rows)


def _first_reply_ms(router, decision, text: str, context) -> float:
    """Wall time from the decision to the first reply text: a skill's whole reply, or a model's first sentence."""
    started = time.perf_counter()
    if router.whole_reply(decision, context) is None:
        stop = threading.Event()
        # The router's reply may be an iterator or an iterable, and may take the decision.
        takes_decision = "decision" in inspect.signature(router.streamed_reply).parameters
        sentences = iter(router.streamed_reply(text, stop, decision) if takes_decision
                         else router.streamed_reply(text, stop))
        next(sentences, None)
        elapsed = time.perf_counter() - started
        stop.set()  # as a cancelled turn does: the model stops at its next token
        for _ in sentences:
            pass
        return elapsed * 1000
    return (time.perf_counter() - started) * 1000


def routing_scores(items: list[dict], rows: list[dict]) -> dict:
    """Tier, intent and slot accuracy overall, per split, per labelled tier and per kind."""
    groups: dict[str, dict[str, list[tuple[dict, dict]]]] = {"overall": {"all": []}, "split": {}, "tier": {},
                                                             "kind": {}}
    for item, row in zip(items, rows):
        groups["overall"]["all"].append((item, row))
        groups["split"].setdefault(item["split"], []).append((item, row))
        groups["tier"].setdefault(item["tier"], []).append((item, row))
        groups["kind"].setdefault(item["kind"], []).append((item, row))
    return {by: {name: _score(pairs) for name, pairs in sorted(named.items())} for by, named in groups.items()}


def _score(pairs: list[tuple[dict, dict]]) -> dict:
    skills = [(i, r) for i, r in pairs if i["intent"] is not None]
    right = [i["tier"] == r["tier"] and i["intent"] == r["intent"] and _slots_match(i, r) for i, r in pairs]
    return {"n": len(pairs),
            "tier": _share(sum(i["tier"] == r["tier"] for i, r in pairs), len(pairs)),
            "intent": _share(sum(i["intent"] == r["intent"] for i, r in pairs), len(pairs)),
            "skills": len(skills),
            "slots": _share(sum(i["intent"] == r["intent"] and _slots_match(i, r) for i, r in skills), len(skills)),
            "all": _share(sum(right), len(pairs))}


def _slots_match(item: dict, row: dict) -> bool:
    """Every labelled slot has the labelled value (numbers compared as numbers); others are not scored."""
    return all(name in row["slots"] and row["slots"][name] == value for name, value in item.get("slots", {}).items())


def escalation_scores(items: list[dict], to_cloud: list[bool]) -> dict:
    """Cloud or not against the labels, per split: accuracy and the confusion counts."""
    result = {}
    for split in (*SPLITS, "all"):
        pairs = [(i["tier"] == "cloud", c) for i, c in zip(items, to_cloud) if split in ("all", i["split"])]
        confusion = {"cloud_as_cloud": sum(t and c for t, c in pairs), "cloud_as_local": sum(t and not c for t, c in pairs),
                     "local_as_cloud": sum(c and not t for t, c in pairs),
                     "local_as_local": sum(not t and not c for t, c in pairs)}
        right = confusion["cloud_as_cloud"] + confusion["local_as_local"]
        result[split] = {"n": len(pairs), "accuracy": _share(right, len(pairs)), "confusion": confusion,
                         "misses": [i["text"] for i, c in zip(items, to_cloud)
                                    if split in ("all", i["split"]) and (i["tier"] == "cloud") != c]}
    return result


def _llm() -> dict:
    """First token with and without the kept system prompt, and generation speed, on the set's chat."""
    from assistant.run.stages import load_stages

    stages = load_stages(Settings())
    llm = stages.llm
    assert llm is not None
    chat = [i["text"] for i in load_set() if i["kind"] == "small_talk"]
    first_token_ms = first_token_kept_and_dropped(llm, chat)
    tokens_per_s = []
    for text in chat[:8]:
        llm.warm()
        stamps = [time.perf_counter() for _ in llm.tokens(text, threading.Event(), llm.settings.max_reply_tokens)]
        if len(stamps) > 2:
            tokens_per_s.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {"first_token_ms": {state: _spread(v) for state, v in first_token_ms.items()},
            "tokens_per_s": {"median": round(statistics.median(tokens_per_s), 1),
                             "slowest": round(min(tokens_per_s), 1), "n": len(tokens_per_s)},
            "requests": len(chat), "peak_rss_mb": peak_rss_mb()}


def _escalation_llm() -> dict:
    """The measured alternative: does SmolLM2 think the request needs the internet? One forward pass each."""
    import llama_cpp
    import numpy as np

    from assistant import models
    from assistant.understand.llm import LocalLlm

    settings = Settings()
    model = LocalLlm(models.llm_model(settings.llm.model), settings.llm).model
    yes = [model.tokenize(w.encode(), add_bos=False, special=False)[0] for w in ("yes", "Yes")]
    no = [model.tokenize(w.encode(), add_bos=False, special=False)[0] for w in ("no", "No")]
    items = load_set()
    margins, decision_ms = [], []
    for item in items:
        prompt = (f"<|im_start|>system\n{YES_NO_SYSTEM}<|im_end|>\n<|im_start|>user\n"
                  f"Does this need the internet? \"{item['text']}\"<|im_end|>\n<|im_start|>assistant\n")
        started = time.perf_counter()
        tokens = model.tokenize(prompt.encode(), add_bos=False, special=True)
        kept = model.input_ids[: model.n_tokens].tolist()
        shared = 0  # the system prompt's evaluated state is reused, as in the shipped LLM
        while shared < min(len(kept), len(tokens) - 1) and kept[shared] == tokens[shared]:
            shared += 1
        model.n_tokens = shared
        model.eval(tokens[shared:])
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(model.ctx, -1), shape=(model.n_vocab(),))
        logits = logits.astype(np.float64)
        margins.append(float(np.logaddexp.reduce(logits[yes]) - np.logaddexp.reduce(logits[no])))
        decision_ms.append((time.perf_counter() - started) * 1000)
    dev = [(m, i["tier"] == "cloud") for m, i in zip(margins, items) if i["split"] == "dev"]
    threshold = max(sorted({m for m, _ in dev}), key=lambda t: sum((m >= t) == cloud for m, cloud in dev))
    return {"threshold": round(threshold, 3),
            "scores": escalation_scores(items, [m >= threshold for m in margins]),
            "at_even_odds": escalation_scores(items, [m >= 0 for m in margins]),
            "decision_ms": _spread(decision_ms[1:]),  # the first pays for the system prompt
            "peak_rss_mb": peak_rss_mb()}


def _share(right: int, n: int) -> float | None:
    return round(right / n, 3) if n else None


def _spread(values: list[float], digits: int = 1) -> dict:
    if not values:
        return {"median": None, "worst": None, "n": 0}
    return {"median": round(statistics.median(values), digits), "worst": round(max(values), digits), "n": len(values)}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def table(results: dict[str, dict]) -> str:
    router = results["router"]
    routing = router["routing"]
    with_rules = router.get("routing_with_rules")
    rows = ["| routing set, as the stages route | n | tier | intent | slots (skills) | all right "
            "| tier, `escalation_reason` wired |", "|---|---|---|---|---|---|---|"]
    order = [("overall", "all")] + [("split", s) for s in SPLITS] + [("tier", t) for t in TIERS] + [
        ("kind", k) for k in sorted(routing["kind"])]
    for by, name in order:
        score = routing[by].get(name)
        if score is None:
            continue
        label = name if by != "overall" else "all items"
        label = f"{by} {label}" if by in ("split", "tier") else label
        rows.append(f"| {label} | {score['n']} | {_pct(score['tier'])} | {_pct(score['intent'])} "
                    f"| {_pct(score['slots'])} of {score['skills']} | {_pct(score['all'])} "
                    f"| {_pct(with_rules[by][name]['tier']) if with_rules else '—'} |")
    rows += ["", "| cloud or not | dev accuracy | test accuracy | test confusion (cloud→cloud, cloud→local, "
             "local→cloud, local→local) | per decision |", "|---|---|---|---|---|"]
    rules = router["escalation_rules"]
    rows.append(f"| rules (`escalation_reason`, kept) | {_pct(rules['dev']['accuracy'])} | {_pct(rules['test']['accuracy'])} "
                f"| {_confusion(rules['test'])} | {router['escalation_rules_us']['median']} µs |")
    unmatched = router["escalation_rules_on_unmatched"]
    rows.append(f"| rules, on what no template matched | {_pct(unmatched['dev']['accuracy'])} "
                f"| {_pct(unmatched['test']['accuracy'])} | {_confusion(unmatched['test'])} | |")
    alternative = results["escalation_llm"]
    llm_scores = alternative["scores"]
    rows.append(f"| SmolLM2 yes/no log-probability (threshold {alternative['threshold']} from dev) "
                f"| {_pct(llm_scores['dev']['accuracy'])} | {_pct(llm_scores['test']['accuracy'])} "
                f"| {_confusion(llm_scores['test'])} | {alternative['decision_ms']['median']:.0f} ms |")
    rows.append("| baseline: everything local | " + " | ".join(_pct(_local_share(rules[s])) for s in SPLITS) + " | | |")
    rows += ["", "| transcript to first reply text, answered by | n | median | worst |", "|---|---|---|---|"]
    for tier, spread in router["first_reply_ms"].items():
        rows.append(f"| {tier} | {spread['n']} | {spread['median']:.1f} ms | {spread['worst']:.1f} ms |")
    llm = results["llm"]
    rows += ["", "| local LLM | median | worst |", "|---|---|---|",
             f"| first token, system prompt kept | {llm['first_token_ms']['kept']['median']:.0f} ms "
             f"| {llm['first_token_ms']['kept']['worst']:.0f} ms |",
             f"| first token, system prompt evaluated again | {llm['first_token_ms']['dropped']['median']:.0f} ms "
             f"| {llm['first_token_ms']['dropped']['worst']:.0f} ms |",
             f"| tokens per second (worst: the slowest request) | {llm['tokens_per_s']['median']} "
             f"| {llm['tokens_per_s']['slowest']} |",
             f"| peak RSS, all stages loaded | {router['peak_rss_mb']} MB | |"]
    if router["errors"]:
        rows.append(f"\n{len(router['errors'])} replies failed and were not timed (see routing.json).")
    return "\n".join(rows)


def _local_share(scores: dict) -> float:
    c = scores["confusion"]
    return (c["local_as_cloud"] + c["local_as_local"]) / scores["n"]


def _confusion(scores: dict) -> str:
    c = scores["confusion"]
    return f"{c['cloud_as_cloud']}, {c['cloud_as_local']}, {c['local_as_cloud']}, {c['local_as_local']}"
