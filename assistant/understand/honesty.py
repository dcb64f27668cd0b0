"""What a reply may say: that something happened only when a handler did it, and from the
chat model only short small talk.

The bundled chat model (SmolLM2-135M) invents: asked for a timer it confirms one that does
not exist, asked to turn the volume down it offers condolences. So the router gives it
small talk alone, and each sentence it writes is read here before it is spoken: a
sentence that claims an action, or one past the limit, is not said, and a reply left
with nothing is replaced by an honest one. What it cannot do, the assistant says plainly,
with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

CHAT_SENTENCES = 2
"""The most the chat model may say: small talk is short."""
CHAT_SENTENCE_WORDS = 25
"""A longer sentence is rambling, not small talk."""

CHAT_REPLACEMENT = "I'm not sure what to say to that."
"""Said when every sentence the chat model wrote was turned down."""
HOME_ABILITY = "control your home through Home Assistant"


def not_understood(abilities: Iterable[str] = ()) -> str:
    """For a request that is no skill's, no small talk and nothing the cloud could answer: what
    it can do instead, home control first when Home Assistant is connected."""
    home = f"{HOME_ABILITY}, " if HOME_ABILITY in abilities else ""
    return (f"Sorry, I can't help with that. I can {home}set timers and reminders, keep your shopping list, "
            "and convert kitchen units.")


NOT_UNDERSTOOD = not_understood()

# What a small-talk answer never needs: a claim that something was done or is being done,
# an offer to act, or the skills' domains (a model that mentions a timer is inventing one).
_CLAIM = re.compile(
    r"\b(i'?ve|i have|i'?ll|i will|i'?m|i am|let me|i can|i'?d|i would|i just|i already|i did|done|okay,? i"
    r"|sure,? i|ok,? i|ready to|happy to|about to|going to)\b.{0,40}\b(set|added|add|put|turn|turned|switch"
    r"|switched|start|started|play|playing|order|ordered|call|called|calling|send|sent|remind|book|booked|cancel"
    r"|cancelled|canceled|remove|removed|clear|cleared|lock|locked|open|opened|schedule|scheduled|buy|bought"
    r"|create|created|make|made|save|saved|note|noted|dim|dimmed|mute|muted|change|changed|check|checked)\b"
    r"|\b(timer|timers|alarm|alarms|reminder|reminders|remind|shopping list|to-?do list|volume|music|song|playlist"
    r"|lights?|thermostat|heating|order|ordered|delivery|calling|texting|message sent|email)\b"
    r"|^(set|setting|starting|started|playing|turning|turned|adding|added|ordering|calling|sending|cancelling"
    r"|canceling|reminding|done|all set|sure thing|consider it done|will do|on it)\b",
    re.IGNORECASE)


def claims_action(sentence: str) -> bool:
    """The sentence says that something was, is being or will be done, or talks of a skill's
    domain: not for the chat model to say."""
    return bool(_CLAIM.search(sentence.replace("\u2019", "'")))


def chat_sentences(sentences: Iterable[str]) -> Iterator[str]:
    """The chat model's sentences that may be spoken: at most CHAT_SENTENCES, none that claims
    an action or rambles; stops at the first that fails (what follows builds on it), and
    says CHAT_REPLACEMENT when nothing passed."""
    said = 0
    for sentence in sentences:
        if said >= CHAT_SENTENCES or claims_action(sentence) or len(sentence.split()) > CHAT_SENTENCE_WORDS:
            break
        said += 1
        yield sentence
    if said == 0:
        yield CHAT_REPLACEMENT


def live_data_reply(topic: str, unavailable: str) -> str:
    """ "I can't check the weather: the cloud is turned off." """
    return f"I can't check {topic} without an internet connection, and {unavailable}."


def cannot_answer_reply(unavailable: str) -> str:
    return f"I can't answer that on this device, and {unavailable}."


def spoken_reason(unavailable: str) -> str:
    """Why the cloud cannot be asked, as said to a person (the route's reason names the setting)."""
    if "disabled" in unavailable:
        return "the cloud is turned off"
    if "failed recently" in unavailable:
        return "I can't reach the cloud right now"
    return "no cloud service is set up"
