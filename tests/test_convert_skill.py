"""Kitchen unit conversions, offline: many phrasings of one need, numbers said in words, digits,
decimals and fractions as Whisper writes them, replies rounded for speech, and an honest
answer when a volume is asked as a weight."""

from __future__ import annotations

import re

import pytest
from conftest import skill_answer

from assistant.understand.router import Router
from assistant.understand.skills import SkillRequest


def convert(router: Router, text: str) -> str:
    return skill_answer(router, text, "ConvertUnits")


@pytest.mark.parametrize("text", [
    "How many grams in a pound?",
    "How many grams are in a pound?",
    "How many grams is there in a pound?",
    "How many grams make a pound?",
    "How many grams per pound?",
    "Convert a pound to grams.",
    "What's a pound in grams?",
    "What is one pound in grams?",
    "How much is a pound in grams?",
    "A pound is how many grams?",
    "1 pound in grams.",
    "Hey Jarvis, how many grams in a pound?",
    "Can you tell me how many grams are in a pound, please?",
    "How many grams in a lb?",
])
def test_one_need_said_many_ways_gets_one_answer(router, text):
    assert convert(router, text) == "A pound is about 454 grams."


@pytest.mark.parametrize("text, answer", [
    ("350 Fahrenheit in Celsius.", "350 degrees Fahrenheit is about 177 degrees Celsius."),
    ("What is 350 degrees Fahrenheit in Celsius?", "350 degrees Fahrenheit is about 177 degrees Celsius."),
    ("What's 350°F in °C?", "350 degrees Fahrenheit is about 177 degrees Celsius."),
    ("How many degrees Celsius is 350 Fahrenheit?", "350 degrees Fahrenheit is about 177 degrees Celsius."),
    ("180 Celsius to Fahrenheit.", "180 degrees Celsius is 356 degrees Fahrenheit."),
    ("Convert 180 degrees centigrade to Fahrenheit.", "180 degrees Celsius is 356 degrees Fahrenheit."),
    ("What is 0 Celsius in Fahrenheit?", "0 degrees Celsius is 32 degrees Fahrenheit."),
    ("Convert -40 Celsius to Fahrenheit.", "-40 degrees Celsius is -40 degrees Fahrenheit."),
    ("Convert minus 40 degrees Celsius to Fahrenheit.", "-40 degrees Celsius is -40 degrees Fahrenheit."),
])
def test_temperatures(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("What's 425 in Celsius?", "425 degrees Fahrenheit is about 218 degrees Celsius."),
    ("What is 200 degrees in Fahrenheit?", "200 degrees Celsius is 392 degrees Fahrenheit."),
])
def test_degrees_with_no_scale_are_the_other_scale_and_the_reply_names_it(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("Convert 2 cups to milliliters.", "2 cups is about 473 milliliters."),
    ("How many tablespoons in a cup?", "A cup is 16 tablespoons."),
    ("How many teaspoons in a tablespoon?", "A tablespoon is 3 teaspoons."),
    ("How many cups in a liter?", "A liter is about 4.23 cups."),
    ("How many cups is 500 ml?", "500 milliliters is about 2.11 cups."),
    ("How many milliliters in a teaspoon?", "A teaspoon is about 4.93 milliliters."),
    ("How many quarts in a gallon?", "A gallon is 4 quarts."),
    ("How many pints in a quart?", "A quart is 2 pints."),
    ("How many liters in a gallon?", "A gallon is about 3.79 liters."),
    ("How many fluid ounces in a pint?", "A pint is 16 fluid ounces."),
    ("How many cups is 8 tablespoons?", "8 tablespoons is half a cup."),
])
def test_volumes(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("What's 10 ounces in grams?", "10 ounces is about 283 grams."),
    ("How many ounces is 100 grams?", "100 grams is about 3.53 ounces."),
    ("How many ounces in a pound?", "A pound is 16 ounces."),
    ("How many grams in a kilo?", "A kilogram is 1000 grams."),
    ("How much is 2 pounds in kilograms?", "2 pounds is about 0.907 kilograms."),
    ("Convert 1000 grams to pounds.", "1000 grams is about 2.2 pounds."),
    ("How many kilograms is 11 stone?", "11 stone is about 69.9 kilograms."),
])
def test_weights(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("How many feet in a mile?", "A mile is 5280 feet."),
    ("How many inches in a foot?", "A foot is 12 inches."),
    ("How many centimeters in an inch?", "An inch is 2.54 centimeters."),
    ("What is 6 feet in meters?", "6 feet is about 1.83 meters."),
    ("Convert 5 kilometers to miles.", "5 kilometers is about 3.11 miles."),
    ("How many miles is 5000 meters?", "5000 meters is about 3.11 miles."),
    ("How many meters in a kilometer?", "A kilometer is 1000 meters."),
])
def test_lengths(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("Convert three hundred fifty degrees Fahrenheit to Celsius.", "350 degrees Fahrenheit is about 177 degrees Celsius."),
    ("How many grams in two pounds?", "2 pounds is about 907 grams."),
    ("Two and a half cups in ml.", "2 and a half cups is about 591 milliliters."),
    ("2 and a half cups in ml.", "2 and a half cups is about 591 milliliters."),
    ("Half a cup in tablespoons.", "Half a cup is 8 tablespoons."),
    ("A quarter cup in teaspoons.", "A quarter of a cup is 12 teaspoons."),
    ("Three quarters of a cup in tablespoons.", "Three quarters of a cup is 12 tablespoons."),
    ("How many teaspoons in a third of a cup?", "A third of a cup is 16 teaspoons."),
])
def test_numbers_said_in_words(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("What's 2.5 cups in milliliters?", "2 and a half cups is about 591 milliliters."),
    ("What's 0.5 cups in ml?", "Half a cup is about 118 milliliters."),
    ("What's 2.05 liters in cups?", "2.05 liters is about 8.66 cups."),
    ("How many kilometers is 26.2 miles?", "26.2 miles is about 42.2 kilometers."),
    ("What's 1/2 cup in tablespoons?", "Half a cup is 8 tablespoons."),
    ("How many tablespoons are in 1/4 cup?", "A quarter of a cup is 4 tablespoons."),
    ("What's 2 1/2 cups in milliliters?", "2 and a half cups is about 591 milliliters."),
    ("Convert 25000 grams to pounds.", "25000 grams is about 55.1 pounds."),
])
def test_numbers_as_whisper_writes_them(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("How many ounces in a cup?", "A cup is 8 fluid ounces."),
    ("How many cups is 12 ounces?", "12 fluid ounces is 1 and a half cups."),
])
def test_ounces_beside_a_volume_are_fluid_ounces_and_the_reply_says_so(router, text, answer):
    assert convert(router, text) == answer


def test_what_is_measured_is_named_when_it_changes_nothing(router):
    assert convert(router, "How many tablespoons of butter in a cup?") == "A cup of butter is 16 tablespoons."
    assert convert(router, "How many cups in a pint of milk?") == "A pint of milk is 2 cups."


@pytest.mark.parametrize("text, answer", [
    ("How many grams in a cup?",
     "I can't convert cups to grams without knowing what is measured; a cup of water is about 237 grams."),
    ("How many cups in a pound?",
     "I can't convert pounds to cups without knowing what is measured; a pound of water is about 1.92 cups."),
    ("Convert 2 cups to grams.",
     "I can't convert cups to grams without knowing what is measured; 2 cups of water is about 473 grams."),
])
def test_a_volume_asked_as_a_weight_says_it_cannot_and_gives_water(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text", [
    "How many grams in a cup of lentils?",
    "How many grams of lentils in a cup?",
    "Convert 2 cups of lentils to grams.",
])
def test_a_volume_of_something_it_has_no_weight_for_is_never_given_an_invented_one(router, text):
    answer = convert(router, text)
    assert answer.startswith("I can't convert cups of lentils to grams")
    assert not re.search(r"\d", answer)


@pytest.mark.parametrize("text, answer", [
    ("How many grams in a cup of flour?", "A cup of flour is about 120 grams."),
    ("How many grams of flour in a cup?", "A cup of flour is about 120 grams."),
    ("Convert 2 cups of plain flour to grams.", "2 cups of plain flour is about 240 grams."),
    ("How many grams is half a cup of brown sugar?", "Half a cup of brown sugar is about 106 grams."),
    ("How many cups is 227 grams of butter?", "227 grams of butter is about a cup."),
    ("How many ounces in a cup of sugar?", "A cup of sugar is about 6.98 ounces."),
])
def test_baking_ingredients_are_weighed_by_their_usual_weight_per_cup_always_about(router, text, answer):
    assert convert(router, text) == answer


@pytest.mark.parametrize("text, answer", [
    ("What's gas mark four in Celsius?", "Gas mark 4 is about 180 degrees Celsius, or 350 Fahrenheit."),
    ("What's Gasmark 4 in Celsius?", "Gas mark 4 is about 180 degrees Celsius, or 350 Fahrenheit."),
    ("What's gas mark 6 in Fahrenheit?", "Gas mark 6 is 400 degrees Fahrenheit."),
    ("How hot is gas mark a half?", "Gas mark a half is about 120 degrees Celsius, or 250 Fahrenheit."),
    ("What gas mark is 180 degrees?", "180 degrees Celsius is about gas mark 4."),
    ("What gas mark is 425 Fahrenheit?", "425 degrees Fahrenheit is about gas mark 7."),
    ("What's gas mark 12 in Celsius?", "Gas marks go from a quarter to 9."),
])
def test_gas_marks_in_degrees_and_back(router, text, answer):
    assert skill_answer(router, text, "GasMark") == answer


def test_water_is_the_one_thing_whose_weight_it_knows(router):
    assert convert(router, "How many grams in a cup of water?") == "A cup of water is about 237 grams."
    assert convert(router, "How many grams of water are in a cup?") == "A cup of water is about 237 grams."


@pytest.mark.parametrize("text, answer", [
    ("How many feet in a kilogram?", "I can't convert kilograms to feet: kilograms measure weight and feet measure length."),
    ("How many cups in a mile?", "I can't convert miles to cups: miles measure length and cups measure volume."),
    ("Convert 350 Fahrenheit to grams.",
     "I can't convert degrees Fahrenheit to grams: degrees Fahrenheit measure temperature and grams measure weight."),
])
def test_units_of_different_kinds_are_not_converted(router, text, answer):
    assert convert(router, text) == answer


def test_an_exact_answer_is_said_exactly_and_a_rounded_one_says_about(router):
    assert "about" not in convert(router, "How many tablespoons in a cup?")
    assert "about" not in convert(router, "How many centimeters in an inch?")
    assert "about" in convert(router, "How many grams in a pound?")


@pytest.mark.parametrize("text", [
    "How many cups in a teaspoon?",
    "How many pounds in a milligram?",
    "How many gallons in a teaspoon?",
    "How many miles in an inch?",
    "How many kilograms in a gram?",
])
def test_a_small_result_is_never_said_as_zero(router, text):
    number = re.search(r" is (?:about )?(-?[\d.]+) ", convert(router, text))
    assert number is not None and float(number.group(1)) > 0


@pytest.mark.parametrize("text", [
    "How many milliliters in a gallon?",
    "How many cups in a liter?",
    "Convert 1000 kilometers to feet.",
    "How many pounds in a milligram?",
    "Convert 7 ounces to grams.",
    "What's 99 Fahrenheit in Celsius?",
])
def test_a_rounded_result_keeps_at_most_three_significant_figures(router, text):
    answer = convert(router, text)
    number = re.search(r" is about (-?[\d.]+) ", answer)
    assert number is not None, answer
    digits = number.group(1).replace("-", "").replace(".", "").lstrip("0").rstrip("0")
    assert len(digits) <= 3, answer


def test_the_slots_name_pints_units(router):
    decision = router.route("Convert 2 cups to milliliters.")
    assert (decision.intent, decision.slots) == ("ConvertUnits", {"whole": 2, "unit": "cup", "target": "milliliter"})


@pytest.mark.parametrize("text", [
    "How are you?",
    "What's the weather?",
    "What's the weather like in Celsius?",
    "How many days until Christmas?",
    "How many people live in France?",
    "What is 5 in grams?",
    "Tell me a joke.",
    "What time is it?",
    "Convert this to a PDF.",
])
def test_other_requests_are_not_conversions(router, text):
    assert router.route(text).intent != "ConvertUnits"


@pytest.mark.parametrize("slots, answer", [
    ({"unit": "cup", "target": "tablespoon"}, "A cup is 16 tablespoons."),
    ({"tenths": 5, "unit": "cup", "target": "tablespoon"}, "Half a cup is 8 tablespoons."),
    ({"numerator": 1, "unit": "cup", "target": "tablespoon"}, "A cup is 16 tablespoons."),
    ({"whole": 10, "unit": "degree", "target": "degree"}, "I need to know which degrees: Fahrenheit or Celsius."),
])
def test_slots_from_any_template_or_the_skill_mapper_are_answered(slots, answer):
    from assistant.understand.skills.convert import convert as handler

    assert handler(SkillRequest(slots=slots)) == answer
