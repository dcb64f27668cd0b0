"""Talking about the assistant itself: stop, repeat, who it is, what it can do."""

from __future__ import annotations

from assistant.understand.skills import SkillRequest


def stop_reply(_request: SkillRequest) -> str:
    """Nothing: the wake word has already cut the reply that was playing."""
    return ""


def name_reply(request: SkillRequest) -> str:
    if not request.wake_phrase:
        return "I am your assistant. To wake me, just say my wake word!"
    return f"I am your assistant. To wake me, just say: {request.wake_phrase}!"


def help_reply(request: SkillRequest) -> str:
    """What the loaded skills can do; ends in a question, so the assistant listens for the
    answer without the wake word."""
    if not request.abilities:
        return "I can only talk a little for now. What would you like?"
    return f"I can {spoken_list(_merged(list(request.abilities)))}. What would you like?"


def _merged(abilities: list[str]) -> list[str]:
    """Neighbours with the same verb said once: "set timers", "set reminders" -> "set timers, reminders"."""
    merged: list[list[str]] = []
    for ability in abilities:
        verb, _, rest = ability.partition(" ")
        if merged and merged[-1][0] == verb and rest:
            merged[-1].append(rest)
        else:
            merged.append([verb, rest] if rest else [ability])
    return [f"{group[0]} {spoken_list(group[1:])}" if len(group) > 1 else group[0] for group in merged]


def spoken_list(items: list[str]) -> str:
    """ "a, b and c" """
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def repeat_reply(request: SkillRequest) -> str:
    """The last reply again, whether it was heard whole or cut short."""
    return request.last_reply or "I haven't said anything yet."


INTENTS = {"Stop": stop_reply, "GetName": name_reply, "GetHelp": help_reply, "Repeat": repeat_reply}
