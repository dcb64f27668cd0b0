"""The time and the date, in the system's local time zone."""

from __future__ import annotations

from datetime import datetime


def time_reply(now: datetime) -> str:
    """ "It's 7:05 PM." -- digits in the text; speech normalisation says them."""
    return f"It's {now.strftime('%I:%M %p').lstrip('0')}."


def date_reply(now: datetime) -> str:
    return f"Today is {now.strftime('%A, %B')} {now.day}, {now.year}."


def local_now() -> datetime:
    return datetime.now().astimezone()
