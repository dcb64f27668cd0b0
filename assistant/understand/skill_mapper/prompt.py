"""The mapper's prompt: instructions, one example per skill and some that are none, in
the model's chat template or as plain text."""

from __future__ import annotations

import json
from collections.abc import Iterable

from assistant.understand.skill_mapper.specs import NONE, IntentSpec

NONE_EXAMPLES = ("why is the sky blue", "what time does the bakery close", "set the table for four people",
                 "turn left at the next corner", "how long is the river nile", "what's the name of that song",
                 "say something nice about cats")

def mapping_prompt(specs: Iterable[IntentSpec], chat_template: str | None = None,
                   command_list: bool = False) -> tuple[str, str]:
    """The fixed part of every request (instructions, the skills, examples), and the request's
    own part with `REQUEST` where its text goes.

    With the model's chat template, the instructions are the system message and each
    example a user and an assistant turn; without one (a base model), the same in plain text.
    """
    specs = list(specs)
    lines = ["You map each request to one of a voice assistant's commands, with the values the request gives,",
             "or to none: questions, chat and anything else are none. Answer with JSON."]
    if command_list:
        lines += ["", "Commands:"]
        for spec in specs:
            slots = ", ".join(slot.describe() for slot in spec.slots)
            lines.append(f"- {spec.name}" + (f" ({slots})" if slots else ""))
        lines.append(f"- {NONE}")
    instructions = "\n".join(lines)
    examples = [(spec.example, {"intent": spec.name, **spec.example_slots}) for spec in specs]
    examples += [(text, {"intent": NONE}) for text in NONE_EXAMPLES]
    examples = _interleaved(examples, len(specs))
    if chat_template is None:
        shots = "".join(f"Request: {text}\nJSON: {json.dumps(answer)}\n" for text, answer in examples)
        return f"{instructions}\n\n{shots}", f"Request: {REQUEST}\nJSON: "
    messages = [{"role": "system", "content": instructions}]
    for text, answer in examples:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": json.dumps(answer)}]
    messages.append({"role": "user", "content": REQUEST})
    rendered = _render_chat(chat_template, messages)
    # The request's part begins after the line that ends the last example's answer.
    request_at = rendered.rindex(REQUEST)
    last_answer = rendered.rindex("}", 0, request_at) + 1
    newline = rendered.find("\n", last_answer, request_at)
    cut = newline + 1 if newline >= 0 else last_answer
    return rendered[:cut], rendered[cut:]


REQUEST = "\x00request\x00"
"""Where the request's text goes in the prompt."""
ANSWER_START = '{"intent": "'
"""Written for the model: its answer goes on from the intent's name."""


def _render_chat(template: str, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    import jinja2

    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return environment.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                                    bos_token="", eos_token="")


def _interleaved(examples: list, n_skills: int) -> list:
    """The none examples spread among the skills', so the last example is not always a skill."""
    skills, nones = examples[:n_skills], examples[n_skills:]
    if not nones:
        return skills
    every = max(1, len(skills) // len(nones))
    out = []
    for index, example in enumerate(skills):
        out.append(example)
        if (index + 1) % every == 0 and nones:
            out.append(nones.pop(0))
    return out + nones
