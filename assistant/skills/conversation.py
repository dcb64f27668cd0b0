"""Talking about the assistant itself: stop, repeat, who it is, what it can do."""

from __future__ import annotations

from . import SkillRequest


def stop_reply(_request: SkillRequest) -> str:
    """Nothing: the wake word has already cut the reply that was playing."""
    return ""


def name_reply(_request: SkillRequest) -> str:
    return "I am your assistant. To wake me, just say: Hey Jarvis!"


def help_reply(_request: SkillRequest) -> str:
    """Ends in a question, so the assistant listens for the answer without the wake word."""
    return ("I can tell you the time and the date, and answer simple questions. "
            "What would you like to know?")



def repeat_reply(request: SkillRequest) -> str:
    """The last reply again, whether it was heard whole or cut short."""
    return request.last_reply or "I haven't said anything yet."


INTENTS = {"Stop": stop_reply, "GetName": name_reply, "GetHelp": help_reply, "Repeat": repeat_reply}
