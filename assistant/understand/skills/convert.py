"""Unit conversions for the kitchen, offline: "how many grams in a pound", "350 Fahrenheit in
Celsius", "convert 2 cups to milliliters", "how many tablespoons in a cup".

pint does the conversions (its US customary cup, pint, quart and gallon, and the avoirdupois
ounce and pound); this module only says the result. A rounded number is said as "about" and
keeps at most 3 significant figures; an exact one is said exactly ("A cup is 16
tablespoons."). A volume is not a weight: asked for one as the other, the common baking
ingredients are weighed by their usual weight per US cup (King Arthur Baking's ingredient
weight chart: flour 120 g, sugar 198 g, butter 227 g ...), always said as "about"; for
anything else the reply says it does not know, and gives water's (pint's conventional water
density).
"""

from __future__ import annotations

import math
from typing import Any

import pint

from assistant.understand.skills import SkillRequest

# Built once at import (~0.2 s) so the first conversion answers as fast as the rest.
_UNITS = pint.UnitRegistry()
_WATER = _UNITS.Quantity(1, "conventional_water_density")
_WATERS = {"water", "tap water", "plain water", "cold water", "fresh water", "drinking water"}
_TEMPERATURE_SCALES = ("degree_Fahrenheit", "degree_Celsius")
_GRAMS_PER_CUP = {
    ("flour", "plain flour", "all-purpose flour", "all purpose flour", "self-raising flour", "self raising flour",
     "bread flour", "strong flour"): 120,
    ("whole wheat flour", "wholemeal flour"): 113,
    ("sugar", "white sugar", "granulated sugar", "caster sugar"): 198,
    ("brown sugar", "light brown sugar", "dark brown sugar"): 213,
    ("icing sugar", "powdered sugar", "confectioners sugar", "confectioners' sugar"): 113,
    ("butter",): 227,
    ("rolled oats", "oats", "porridge oats"): 89,
    ("cocoa", "cocoa powder"): 84,
    ("honey",): 336,
    ("milk",): 244,
    ("oil", "vegetable oil", "olive oil", "sunflower oil"): 198,
}
"""The usual weight of a US cup of each ingredient, as measured by King Arthur Baking (spooned
and levelled flour; packed brown sugar); milk is water's weight times its density, 1.03."""
_INGREDIENTS = {name: grams for names, grams in _GRAMS_PER_CUP.items() for name in names}

_NAMES = {
    "cup": ("cup", "cups"),
    "tablespoon": ("tablespoon", "tablespoons"),
    "teaspoon": ("teaspoon", "teaspoons"),
    "fluid_ounce": ("fluid ounce", "fluid ounces"),
    "ounce": ("ounce", "ounces"),
    "pound": ("pound", "pounds"),
    "stone": ("stone", "stone"),
    "gram": ("gram", "grams"),
    "kilogram": ("kilogram", "kilograms"),
    "milligram": ("milligram", "milligrams"),
    "milliliter": ("milliliter", "milliliters"),
    "liter": ("liter", "liters"),
    "pint": ("pint", "pints"),
    "quart": ("quart", "quarts"),
    "gallon": ("gallon", "gallons"),
    "degree_Fahrenheit": ("degree Fahrenheit", "degrees Fahrenheit"),
    "degree_Celsius": ("degree Celsius", "degrees Celsius"),
    "degree": ("degree", "degrees"),
    "inch": ("inch", "inches"),
    "centimeter": ("centimeter", "centimeters"),
    "millimeter": ("millimeter", "millimeters"),
    "foot": ("foot", "feet"),
    "yard": ("yard", "yards"),
    "meter": ("meter", "meters"),
    "kilometer": ("kilometer", "kilometers"),
    "mile": ("mile", "miles"),
}
"""pint's unit name (the templates' slot value) -> how it is said, one and several."""

_KINDS = {"[mass]": "weight", "[length]": "length", "[length] ** 3": "volume", "[temperature]": "temperature"}

_FRACTIONS = ((1 / 2, "half"), (1 / 4, "a quarter"), (3 / 4, "three quarters"), (1 / 3, "a third"),
              (2 / 3, "two thirds"))
"""Parts of a whole said in words: "half a cup", "2 and a quarter cups"."""


def convert(request: SkillRequest) -> str:
    slots = request.slots
    amount = _amount(slots)
    unit, target = str(slots["unit"]), str(slots["target"])
    substance = _substance(slots.get("substance"))
    if "degree" in (unit, target):
        if unit == target or not ({unit, target} & set(_TEMPERATURE_SCALES)):
            return ("I need to know which degrees: Fahrenheit or Celsius." if unit == target
                    else _different_kinds(unit, target))
        unit, target = _scale_of_bare_degrees(unit, target)
    unit, target = _fluid_ounces_for_volumes(unit, target, substance)
    quantity = _UNITS.Quantity(amount, unit)
    if _kind(unit) == _kind(target):
        value = quantity.to(target).magnitude
        return f"{_capitalised(_said(amount, unit, substance))} is {_result(value, target)}."
    if {_kind(unit), _kind(target)} == {"volume", "weight"}:
        return _volume_and_weight(quantity, amount, unit, target, substance)
    return _different_kinds(unit, target)


def _amount(slots: dict[str, Any]) -> float:
    """The amount said, from whichever slots its template filled; none said is one ("grams per ounce")."""
    if "negated" in slots:
        return -float(slots["negated"])
    if "tenths" in slots:
        digits = "".join(str(slots[name]) for name in ("tenths", "hundredths", "thousandths") if name in slots)
        return float(f"{int(slots.get('whole', 0))}.{digits}")
    parts = [float(slots[name]) for name in ("whole", "fraction", "portion") if name in slots]
    if "numerator" in slots and slots.get("denominator"):
        parts.append(float(slots["numerator"]) / float(slots["denominator"]))
    return sum(parts) if parts else 1.0


def _substance(said: Any) -> str | None:
    """What is measured ("flour" in "a cup of flour"), if it was said."""
    if not isinstance(said, str):
        return None
    words = said.lower().strip(" .,!?").split()
    while words and words[-1] in ("please", "thanks"):
        words.pop()
    while words and words[0] in ("the", "some"):
        words.pop(0)
    return " ".join(words) or None


def _scale_of_bare_degrees(unit: str, target: str) -> tuple[str, str]:
    """ "350 degrees in Celsius": bare degrees are the other scale (said so in the reply)."""
    other = {_TEMPERATURE_SCALES[0]: _TEMPERATURE_SCALES[1], _TEMPERATURE_SCALES[1]: _TEMPERATURE_SCALES[0]}
    return (other[target], target) if unit == "degree" else (unit, other[unit])


def _fluid_ounces_for_volumes(unit: str, target: str, substance: str | None) -> tuple[str, str]:
    """ "How many ounces in a cup": ounces next to a volume mean fluid ounces (and the reply says
    "fluid ounces"), unless something other than water is named, which asks for its weight."""
    if substance is not None and substance not in _WATERS:
        return unit, target
    if unit == "ounce" and _kind(target) == "volume":
        unit = "fluid_ounce"
    if target == "ounce" and _kind(unit) == "volume":
        target = "fluid_ounce"
    return unit, target


def _volume_and_weight(quantity: Any, amount: float, unit: str, target: str, substance: str | None) -> str:
    if substance in _WATERS:
        value = _as_water(quantity, target)
        return f"{_capitalised(_said(amount, unit, substance))} is {_result(value, target)}."
    if substance in _INGREDIENTS:  # a usual weight, never exact: said as "about", 3 figures at most
        per_cup = _UNITS.Quantity(_INGREDIENTS[substance], "gram") / _UNITS.Quantity(1, "cup")
        value = (quantity * per_cup if _kind(target) == "weight" else quantity / per_cup).to(target).magnitude
        words = _in_words(float(_digits(value, keep_all=False)[0]), target, exact=False)[0]
        return f"{_capitalised(_said(amount, unit, substance))} is about {words}."
    measured = f"{_names(unit)[1]} of {substance}" if substance else _names(unit)[1]
    if substance:
        return (f"I can't convert {measured} to {_names(target)[1]}: that depends on how heavy the "
                f"{substance} is, and I don't know that.")
    water = _as_water(quantity, target)
    return (f"I can't convert {measured} to {_names(target)[1]} without knowing what is measured; "
            f"{_said(amount, unit, 'water')} is {_result(water, target)}.")


def _as_water(quantity: Any, target: str) -> float:
    """The weight of a volume of water, or the volume of a weight of it."""
    if _kind(target) == "weight":
        return (quantity * _WATER).to(target).magnitude
    return (quantity / _WATER).to(target).magnitude


def _different_kinds(unit: str, target: str) -> str:
    return (f"I can't convert {_names(unit)[1]} to {_names(target)[1]}: {_names(unit)[1]} measure "
            f"{_kind(unit) or 'something else'} and {_names(target)[1]} measure {_kind(target) or 'something else'}.")


def _kind(unit: str) -> str | None:
    if unit == "degree":
        return "temperature"
    return _KINDS.get(str(_UNITS.Quantity(1, unit).dimensionality))


def _names(unit: str) -> tuple[str, str]:
    return _NAMES.get(unit, (unit.replace("_", " "), unit.replace("_", " ")))


def _said(amount: float, unit: str, substance: str | None = None) -> str:
    """The amount as it was asked: "a pound", "half a cup", "2 and a half cups", "350 degrees
    Fahrenheit", with what is measured ("a cup of water")."""
    words = _in_words(amount, unit, exact=True)[0]
    return f"{words} of {substance}" if substance else words


def _result(value: float, unit: str) -> str:
    """The result: "16 tablespoons", "about 454 grams"."""
    words, exact = _in_words(value, unit, exact=False)
    return words if exact else f"about {words}"


def _in_words(value: float, unit: str, exact: bool) -> tuple[str, bool]:
    """A number of `unit` as said, and whether it is exact: whole numbers and common parts
    ("half a cup", "2 and a quarter cups", "a pound") as they are, anything else to 3
    significant figures (never "0" for a small amount). `exact` says the value is to be said
    as it is (it is what the person said)."""
    one, several = _names(unit)
    temperature = _kind(unit) == "temperature"
    if not temperature and value > 0:
        whole = math.floor(value + 1e-9)
        part = value - whole
        if math.isclose(part, 0, abs_tol=1e-9):
            return (f"{_article(one)} {one}" if whole == 1 else f"{whole} {several}"), True
        for fraction, words in _FRACTIONS:
            if math.isclose(part, fraction, abs_tol=1e-9) and whole <= 20:
                if whole == 0:
                    return (f"half {_article(one)} {one}" if words == "half"
                            else f"{words} of {_article(one)} {one}"), True
                return f"{whole} and {'a half' if words == 'half' else words} {several}", True
    text, rounded = _digits(value, keep_all=exact)
    return f"{text} {one if text == '1' else several}", rounded


def _digits(value: float, keep_all: bool) -> tuple[str, bool]:
    """Digits for speech: at most 3 significant figures unless the value is a whole number or
    `keep_all`; and whether they are the exact value."""
    if math.isclose(value, round(value), rel_tol=0, abs_tol=1e-9 * max(1.0, abs(value))):
        return str(int(round(value))), True
    if keep_all:
        return f"{value:.6f}".rstrip("0").rstrip("."), True
    places = 2 - math.floor(math.log10(abs(value)))
    rounded = round(value, places)
    text = str(int(rounded)) if places <= 0 else f"{rounded:.{places}f}".rstrip("0").rstrip(".")
    return text, math.isclose(rounded, value, rel_tol=1e-9)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


_GAS_MARK_CELSIUS = {0.25: 110, 0.5: 120, 1: 140, 2: 150, 3: 170, 4: 180, 5: 190, 6: 200, 7: 220, 8: 230, 9: 240}
"""The British oven settings in degrees Celsius as recipes give them (gas mark 4 is 180 °C; in
Fahrenheit each mark from 1 is 275 °F and 25 more a mark, 225 and 250 below it)."""


def gas_mark(request: SkillRequest) -> str:
    """A gas mark in degrees ("gas mark 4 in Celsius"), or degrees as a gas mark."""
    return _gas_mark_in_degrees(request.slots) if "mark" in request.slots else _degrees_as_gas_mark(request.slots)


def _gas_mark_in_degrees(slots: dict[str, Any]) -> str:
    mark = float(slots["mark"])
    if mark not in _GAS_MARK_CELSIUS:
        return "Gas marks go from a quarter to 9."
    said = _mark_words(mark)
    if slots.get("target") == "degree_Fahrenheit":
        return f"Gas mark {said} is {_fahrenheit(mark)} degrees Fahrenheit."
    return f"Gas mark {said} is about {_GAS_MARK_CELSIUS[mark]} degrees Celsius, or {_fahrenheit(mark)} Fahrenheit."


def _degrees_as_gas_mark(slots: dict[str, Any]) -> str:
    degrees = _amount(slots)
    scale = slots.get("unit") or ("degree_Fahrenheit" if degrees > 260 else "degree_Celsius")
    celsius = _UNITS.Quantity(degrees, scale).to("degree_Celsius").magnitude
    mark = min(_GAS_MARK_CELSIUS, key=lambda m: abs(_GAS_MARK_CELSIUS[m] - celsius))
    if abs(_GAS_MARK_CELSIUS[mark] - celsius) > 15:
        return f"{_capitalised(_in_words(degrees, scale, exact=True)[0])} is {'hotter' if celsius > 240 else 'cooler'} than any gas mark."
    return f"{_capitalised(_in_words(degrees, scale, exact=True)[0])} is about gas mark {_mark_words(mark)}."


def _fahrenheit(mark: float) -> int:
    return {0.25: 225, 0.5: 250}.get(mark, 275 + 25 * (int(mark) - 1))


def _mark_words(mark: float) -> str:
    return {0.25: "a quarter", 0.5: "a half"}.get(mark, str(int(mark)))


INTENTS = {"ConvertUnits": convert, "GasMark": gas_mark}
ABILITY = "convert measurements"
RANK = 47
