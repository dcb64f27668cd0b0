"""What the assistant cannot do yet, said plainly, with what it can do nearby.

A request for an action no skill can take (play music, turn on a light, order, call) is
matched here by its templates, so it never reaches the chat model, which would pretend
to do it. Nothing here changes any state.
"""

from __future__ import annotations

from assistant.understand.skills import SkillRequest
from assistant.understand.skills.reminders import reminder_message

_CANNOT = {
    "play": "I can't play music or audio yet.",
    "devices": "I can't control lights or other devices yet: home control isn't set up.",
    "order": "I can't order or buy things.",
    "call": "I can't make calls or send messages.",
    "calendar": "I can't read email or calendars.",
    "other": "I can't do that yet.",
}


def cannot_do(request: SkillRequest) -> str:
    action = request.slots.get("action", "other")
    return f"{_CANNOT.get(action, _CANNOT['other'])} {_nearby(action, request.slots)}"


def _nearby(action: str, slots: dict) -> str:
    """What it can do instead, for this kind of request."""
    if action == "order" and (what := reminder_message(slots.get("what"))):
        return f"I can put {what} on your shopping list: say, add {what} to the shopping list."
    if action == "call" and (who := reminder_message(slots.get("who"))):
        return f"I can remind you to call {who}: say, remind me to call {who} in an hour."
    if action == "play":
        return "I can tell you a joke, though."
    return "I can set timers and reminders, keep your shopping list, and convert kitchen units."


INTENTS = {"CannotDo": cannot_do}
