"""Simple sums: "what is seventeen times three", "12 plus 30"."""

from __future__ import annotations

import math
import operator

from assistant.understand.skills import SkillRequest

_OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
               "%": lambda a, b: a * b / 100}


def calculate(request: SkillRequest) -> str:
    a, b, sign = request.slots["a"], request.slots["b"], request.slots["operator"]
    if sign == "/" and b == 0:
        return "You can't divide by zero."
    return f"{_number(a)} {_SAID[sign]} {_number(b)} is {_number(_OPERATIONS[sign](a, b))}."


_SAID = {"+": "plus", "-": "minus", "*": "times", "/": "divided by", "%": "percent of"}


def _number(value: float) -> str:
    """Digits, as reply text keeps them: whole numbers plainly, others to two places."""
    if math.isclose(value, round(value), abs_tol=1e-9):
        return str(int(round(value)))
    return f"{value:.2f}".rstrip("0")


ABILITY = "do sums"
RANK = 45
INTENTS = {"Calculate": calculate}
