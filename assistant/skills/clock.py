"""The time and the date, in the system's local time zone."""

from __future__ import annotations

from datetime import datetime

from . import SkillRequest


def time_reply(request: SkillRequest) -> str:
    """ "It's 7:05 PM." -- digits in the text; speech normalisation says them."""
    return f"It's {_now(request).strftime('%I:%M %p').lstrip('0')}."


def date_reply(request: SkillRequest) -> str:
    now = _now(request)
    return f"Today is {now.strftime('%A, %B')} {now.day}, {now.year}."


def local_now() -> datetime:
    return datetime.now().astimezone()


def _now(request: SkillRequest) -> datetime:
    return request.now or local_now()


INTENTS = {"GetTime": time_reply, "GetDate": date_reply}
