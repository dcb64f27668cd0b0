"""The time and the date, in the system's local time zone."""

from __future__ import annotations

from datetime import datetime

from assistant.understand.skills import SkillRequest


def time_reply(request: SkillRequest) -> str:
    """ "It's 7:05 PM." -- digits in the text; speech normalisation says them."""
    return f"It's {clock_text(request.local_time())}."


def date_reply(request: SkillRequest) -> str:
    now = request.local_time()
    return f"Today is {now.strftime('%A, %B')} {now.day}, {now.year}."


def clock_text(moment: datetime) -> str:
    """ "7:05 PM" """
    return moment.strftime("%I:%M %p").lstrip("0")


def local_now() -> datetime:
    return datetime.now().astimezone()


ABILITY = "tell the time"
RANK = 40
INTENTS = {"GetTime": time_reply, "GetDate": date_reply}
