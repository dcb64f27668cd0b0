"""Where a request that matched no skill template belongs: rules on the transcript.

`escalation_reason` says why one belongs in the cloud; `live_data_topic` names the live
data it needs (weather, news, ...), said plainly when the cloud cannot be asked; and
`is_small_talk` says whether the local chat model may answer it, as it may answer nothing else.

A request goes to the cloud when it asks for facts the small local model does not know,
for something only fresh information answers, for creative or long work, or when it is
long. It stays local when it is chat (about the assistant, greetings, thanks), when it is
about a skill's domain in free words (the clock, timers, alarms, volume, sums: the local
model maps those onto skills), and always when it tries to override the instructions,
whatever words it carries. Pure and fast (tens of microseconds); no model.

Measured on `fixtures/routing_set.json` by `python -m bench routing` (dev and test split).
"""

from __future__ import annotations

import functools
import re

from assistant.hear.wake_phrase import alternatives

KNOWLEDGE = "a knowledge question"
CREATIVE = "a creative request"
FRESH = "needs fresh information"
LONG = "a long request"

LONG_REQUEST_WORDS = 20
"""A request of this many words or more is more than small talk or a skill."""

_CONTRACTIONS = {"what's": "what is", "who's": "who is", "where's": "where is", "when's": "when is",
                 "how's": "how is", "why's": "why is", "it's": "it is", "that's": "that is",
                 "there's": "there is", "i'm": "i am", "you're": "you are", "you've": "you have",
                 "you'll": "you will", "you'd": "you would", "can't": "can not", "won't": "will not",
                 "don't": "do not", "doesn't": "does not", "didn't": "did not", "isn't": "is not",
                 "aren't": "are not", "i'd": "i would", "i'll": "i will", "i've": "i have",
                 "let's": "let us", "what're": "what are"}

# Attempts to replace the instructions: never a reason to leave the device.
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass|skip)\b(\s+\w+){0,4}\s+"
    r"(instructions?|rules?|prompts?|guidelines?|programming|restrictions?|everything you)\b"
    r"|\b(developer|dev|god|admin|debug|unrestricted) mode\b|\bjailbreak|\bsystem prompt\b"
    r"|\b(system|admin|administrator|root)\s+(override|command|access)\b|\byou are now\b"
    r"|\bpretend (you|to be|that)\b|\bact as (if|though|an?)\b|\bno (rules|restrictions|limits|filters)\b"
    r"|\bfrom now on\b|\bnew instructions?\b|\brm -rf\b|\bsudo\b")



@functools.cache
def _prefix(names: frozenset[str]) -> re.Pattern[str]:
    """What is said before the request itself, with the assistant's `names` (the wake phrases');
    dropped before the rules look at it."""
    return re.compile(
        rf"^((hey|okay|ok|hi|please|so|um|uh|well|and|oh|now|quick question|{alternatives(names)})\b\s*"
        r"|(can|could|would|will) you (please )?(tell me|let me know|say)?\s*"
        r"|(can|may) i ask( you)?\s*|do you (happen to )?know\s*|do you think\s*"
        r"|i (want|would like|wanted|need) to know\s*|i (wonder|was wondering)\s*"
        r"|tell me\s+(?!(a|an|some|something)\b)|let me know\s*)+")

_CREATIVE_VERBS = {"write", "compose", "draft", "plan", "summarize", "summarise", "brainstorm", "create",
                   "generate", "invent", "outline", "rewrite", "paraphrase", "design", "prepare", "organize",
                   "organise"}
_PRODUCE = re.compile(r"^(make|give|get|come up with|help me (write|plan|make|with)|put together|think of"
                      r"|tell|read|sing|suggest)\b")
_ARTICLES = {"a", "an", "the", "another", "some", "one", "my"}
# What a creative or planning request produces (a joke or a fun fact is chat).
_ARTIFACTS = {"poem", "poems", "story", "stories", "tale", "song", "songs", "lyrics", "essay", "email", "letter",
              "speech", "toast", "recipe", "recipes", "plan", "plans", "itinerary", "schedule", "summary",
              "limerick", "haiku", "names", "ideas", "list", "outline", "menu", "trip", "workout", "routine",
              "message", "note", "card", "invitation", "description", "review", "report", "script", "rhyme"}
# "(tell me) something interesting about ...": a topic to be told about.
_ABOUT = re.compile(r"^(tell (me|us) )?((some|any|every)thing|more|a bit|a little|a few|an? (\w+ )?fact)?( \w+)? ?(facts? )?about\b")
_KNOWLEDGE_VERBS = {"explain", "describe", "define", "translate", "recommend", "compare", "teach"}

_WH = {"who", "what", "when", "where", "why", "how", "which", "whose", "whom"}
_AUX = {"is", "are", "was", "were", "does", "do", "did", "can", "could", "will", "would", "should", "has",
        "have", "had", "may", "might", "am"}
_PERSONAL = {"i", "we", "you", "me", "us", "my", "our"}
_SECOND_PERSON = {"you", "your", "yours", "yourself"}
# Verbs that make "you" the assistant itself rather than "one" ("how do you make pancakes").
_ABOUT_YOU = {"feel", "like", "love", "hate", "think", "believe", "want", "prefer", "mean", "dream", "know",
              "have", "do", "remember", "enjoy", "call", "sleep", "eat", "live", "work", "need", "wish"}
# "did you" asks about something the assistant did, so it is never the generic "one".
_GENERIC_YOU = re.compile(r"\b(how|what|where|when|why|which) (do|does|would|could|can|should) you (\w+)")

_GREETING = re.compile(r"^(thanks|thank you|thank|hello|hi|hey|good (morning|afternoon|evening|night)|bye"
                       r"|goodbye|good ?bye|cheers|sorry|ok|okay|nice|great|cool|wow)\b")

_FRESH_WORDS = {"weather", "forecast", "rain", "raining", "rainy", "snow", "snowing", "temperature", "umbrella",
                "humidity", "windy", "sunny", "storm", "news", "headlines", "latest", "score", "scores", "won",
                "winning", "stock", "stocks", "market", "price", "prices", "bitcoin", "traffic", "election",
                "open", "opens", "close", "closes", "closing", "opening", "currently", "playing",
                "released", "trending", "delayed", "flight", "departures", "schedule"}

_NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
                 "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred",
                 "thousand", "half", "quarter", "a", "an"}
_DURATION = re.compile(r"\b(\d+|" + "|".join(sorted(_NUMBER_WORDS - {"zero"})) + r")[ -]?"
                       r"(seconds?|secs?|minutes?|mins?|hours?|hrs?)\b")
_SKILL_WORDS = {"timer", "timers", "alarm", "alarms", "louder", "quieter", "softer", "mute", "unmute", "volume"}
_WAKING = re.compile(r"\b(wake me|get me up|get up|be up|awake by|up by)\b")
_CLOCK = re.compile(r"\b(time|date|day|clock)\b")
_CLOCK_HERE = re.compile(r"\b(it|now|today|clock)\b")
_ELSEWHERE = re.compile(r"\bin (?!the\b|a\b|an\b)[a-z]+")
_OPERATORS = re.compile(r"\b(plus|minus|times|multiplied|divided|divide|add|subtract|sum|total|each|squared)\b")

# Words that name no topic: a question made only of these is chat ("how is it going?").
_EMPTY = _WH | _AUX | _PERSONAL | _SECOND_PERSON | {
    "it", "is", "that", "this", "there", "the", "a", "an", "up", "on", "new", "going", "happening", "good", "bad",
    "fine", "well", "so", "to", "of", "with", "about", "for", "in", "at", "not", "now", "today", "then", "again",
    "doing", "be", "been", "being", "get", "got", "go", "ok", "okay", "really", "right", "wrong", "matter", "else"}


def looks_like_injection(text: str) -> bool:
    """The transcript tries to replace the instructions ("ignore your instructions and ...")."""
    return bool(_INJECTION.search(_normalise(text)))


def escalation_reason(text: str, names: frozenset[str] = frozenset()) -> str | None:
    """Why `text` (a transcript that matched no skill template) belongs in the cloud, or None
    when it belongs on the device. `names`: the assistant's, from its wake phrases (`wake_phrase.wake_names`)."""
    words_text = _normalise(text)
    if not words_text or _INJECTION.search(words_text):
        return None
    request = _prefix(names).sub("", words_text)
    words = request.split()
    if not words:
        return None
    if _creative(request, words):
        return CREATIVE
    if _skill_domain(request, words):
        return None
    if words[0] in _KNOWLEDGE_VERBS or (_ABOUT.match(request) and not _SECOND_PERSON & set(words)):
        return KNOWLEDGE
    if _about_the_assistant(request, words) or (_GREETING.match(request) and "?" not in text):
        return None
    if _FRESH_WORDS & ({w.removesuffix("s") for w in words} | set(words)):  # "markets" too
        return FRESH
    if _knowledge_question(words):
        return KNOWLEDGE
    if len(words) >= LONG_REQUEST_WORDS:
        return LONG
    return None


def _normalise(text: str) -> str:
    """Lower case, contractions spelt out, punctuation dropped (but "a.m." and "7:30" kept as words)."""
    text = text.lower().replace("\u2019", "'")
    words = [_CONTRACTIONS.get(w, w) for w in re.findall(r"[a-z0-9]+(?:[.:'][a-z0-9]+)*\.?|[-]+rf", text)]
    return " ".join(w.rstrip(".").removesuffix("'s") for w in words)


def _creative(request: str, words: list[str]) -> bool:
    if words[0] == "help" and len(words) > 2 and words[1] == "me":
        words = words[2:]  # "help me write a note"
    if words[0] in _CREATIVE_VERBS:
        return True
    if words[0] in _ARTICLES and _ARTIFACTS & set(words[1:4]):
        return True  # what is left of "tell me a long story ..." once the polite prefix is gone
    return bool(_PRODUCE.match(request)) and bool(_ARTIFACTS & set(words[1:7]))


def _skill_domain(request: str, words: list[str]) -> bool:
    """The clock, timers, alarms, volume or a sum, in any words: the local model maps it onto a skill."""
    if _SKILL_WORDS & set(words) or _DURATION.search(request) or _WAKING.search(request):
        return True
    if _CLOCK.search(request) and _CLOCK_HERE.search(request) and not _ELSEWHERE.search(request):
        return True
    numbers = sum(w.isdigit() or (w in _NUMBER_WORDS and w not in {"a", "an"}) for w in words)
    return numbers >= 2 and bool(_OPERATORS.search(request))


def _about_the_assistant(request: str, words: list[str]) -> bool:
    """A question or remark about the assistant ("do you like music?"), not "how do you boil an egg"."""
    if not _SECOND_PERSON & set(words):
        return False
    generic = _GENERIC_YOU.search(request)
    return generic is None or generic.group(3) in _ABOUT_YOU


def _knowledge_question(words: list[str]) -> bool:
    """A question about the world: a wh-word, or an auxiliary before a subject that is not a
    person here ("is a tomato a fruit?", not "can we be friends?"), with a topic word."""
    if words[0] in _WH:
        pass
    elif words[0] in _AUX and len(words) > 1 and words[1] not in _PERSONAL:
        pass
    else:
        return False
    return any(w not in _EMPTY for w in words[1:])


# Live data, by topic: said in the refusal ("I can't check the weather ...").
_LIVE_TOPICS = (
    ("the weather", {"weather", "forecast", "rain", "raining", "rainy", "snow", "snowing", "umbrella", "humidity",
                     "windy", "sunny", "storm", "temperature outside", "degrees outside", "cold outside",
                     "hot outside", "warm outside"}),
    ("the news", {"news", "headlines", "happening in the world", "election"}),
    ("sports results", {"score", "scores", "won", "winning", "match", "game last night", "league", "playing tonight",
                        "who plays"}),
    ("the traffic", {"traffic", "commute", "roads", "road works", "roadworks"}),
    ("prices", {"stock", "stocks", "market", "price of", "prices", "bitcoin", "exchange rate", "dollar",
                "shares"}),
    ("travel times", {"flight", "flights", "departures", "delayed", "train times", "next bus", "next train"}),
    ("opening hours", {"open", "opens", "opening", "close", "closes", "closing"}),
)


def live_data_topic(text: str, names: frozenset[str] = frozenset()) -> str | None:
    """What live data the request needs ("the weather"), or None. Words, not a model: a question
    about the weather must never be answered from a model's imagination."""
    said = _normalise(text)
    if _INJECTION.search(said):
        return None  # an attempt to replace the instructions never leaves the device
    request = f" {_prefix(names).sub('', said)} "
    if _skill_domain(request.strip(), request.split() or [""]):
        return None  # "what temperature for the oven" is a kitchen fact, "a timer for the match" a timer
    for topic, cues in _LIVE_TOPICS:
        if any(f" {cue} " in request for cue in cues):
            return topic
    return None


_FEELING = (r"(bored|tired|exhausted|sad|happy|hungry|back|home|sleepy|cold|hot|fine|good|ok|okay|great|excited"
            r"|going to bed|off|leaving|stressed|lonely|sick|ill|grumpy|busy|done|knackered|shattered|worn out)")
_SMALL_TALK = re.compile(
    r"^(how are you|how is it going|how are things|how have you been|what is up|how do you do|are you (ok|okay|well"
    r"|there|awake|listening|happy|real|a robot|human|alive|smart|clever|a boy|a girl|male|female)"
    r"|(good|nice|great) (job|work|one)|well done|(you are|you have been|you were) (really |so |very |such |being )?"
    r"(a |an |the )?(great|funny|smart|clever|awesome|amazing|best|welcome|kind|nice|silly|good|right|brilliant"
    r"|lovely|helpful|star|help|legend|genius|sweet|cute)"
    r"|i (really )?(love|like|hate) you|love you|nice to (meet|talk|chat)|pleased to meet you|nice talking"
    r"|(i am|we are|i feel|i am feeling|i am getting) (so |really |very |a bit |quite |a little |feeling )?" + _FEELING +
    r"|i am (home|back)|good (morning|afternoon|evening|night)|night night|sweet dreams|see you|talk to you later"
    r"|how old are you|where are you from|what are you|do you (ever |still |really )?(like|love|have|dream|sleep|eat"
    r"|know me|get|feel|think|want|miss|remember)|can we be friends|will you be my friend|are we friends"
    r"|what is your favou?rite|who (made|built|created) you|it is (nice|good|lovely|great) (to|talking|that|having)"
    r"|that is (funny|great|nice|lovely|cool|brilliant|hilarious|helpful|kind|sweet|awesome|amazing)"
    r"|i (had|have had|have got|am having) (a|such a) (long|hard|good|great|bad|busy|rough|lovely|tough)"
    r"|(thanks|thank you|cheers|sorry))\b")


def is_small_talk(text: str, names: frozenset[str] = frozenset()) -> bool:
    """Greetings, thanks, how are you, a remark about the assistant or the speaker's day: what
    the local chat model may answer (it invents when asked for anything else)."""
    said = _normalise(text)
    request = _prefix(names).sub("", said)
    words = request.split()
    if _INJECTION.search(said):
        return False
    if not words:
        return bool(said)  # only "hi", "hey" and the assistant's name, "okay"
    if _skill_domain(request, words) or _creative(request, words):
        return False
    if (_GREETING.match(request) or _GREETING.match(said)) and len(words) <= 10:
        return True
    if _SMALL_TALK.match(request):
        return True
    return _about_the_assistant(request, words) and len(words) <= 14  # "do you ever get bored?"
