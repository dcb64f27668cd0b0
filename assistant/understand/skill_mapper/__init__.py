"""Free phrasing onto the skills: the local LLM names one allowed skill with valid slots, or none.

The templates catch the phrasings someone wrote down; "could you go a bit louder" or "what
do you get when you add 45 and 55" slip past them. Here the local model reads the request
and answers with JSON confined to the skills that exist: an intent with a handler, its own
slot names in order, digits for numbers, a list's `out` values, a short text for a
wildcard, or `{"intent": "none"}` for small talk and questions.

Everything the model is told and allowed comes from the loaded hassil `Intents`: the
slots each intent's templates use and their lists' types, which slots every template
requires, one example per intent rendered from its first template, and the distinctive
words of its templates. So a new skill needs no change here.

Guards, because a skill run by mistake is worse than a question left to the chat model:
- the model is asked only about intents whose template words the request shares (none
  shared: no model call at all);
- decoding is confined to the allowed answers (`Answers`), so an unknown intent, a slot
  of another intent, or text outside a value cannot be written;
- the answer is checked again in Python: the allow-list, types, ranges, and values the
  request really holds (a number said in digits or words, a list value's words, a
  wildcard's words); anything else gives None.
Nothing here can do more than name a skill: the handlers are the only effects.
"""

from assistant.understand.skill_mapper.answers import Answers, check_answer
from assistant.understand.skill_mapper.mapper import (
                                                     MappingTrace,
                                                     SkillMapper,
                                                     candidates,
)
from assistant.understand.skill_mapper.prompt import (
                                                     ANSWER_START,
                                                     NONE_EXAMPLES,
                                                     REQUEST,
                                                     mapping_prompt,
)
from assistant.understand.skill_mapper.specs import (
                                                     MAX_TEXT_CHARS,
                                                     MAX_WILDCARD_CHARS,
                                                     NONE,
                                                     IntentSpec,
                                                     SlotSpec,
                                                     intent_specs,
                                                     json_schema,
                                                     shares_keyword,
)

__all__ = ["ANSWER_START", "MAX_TEXT_CHARS", "MAX_WILDCARD_CHARS", "NONE", "NONE_EXAMPLES", "REQUEST", "Answers",
           "IntentSpec", "MappingTrace", "SkillMapper", "SlotSpec", "candidates", "check_answer", "intent_specs",
           "json_schema", "mapping_prompt", "shares_keyword"]
