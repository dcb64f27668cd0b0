"""Shopping and to-do lists by voice: many phrasings, kept in SQLite beside the reminders, replies
made from what the store did, and "clear" only after a yes."""

from __future__ import annotations

import inspect
import sqlite3
from pathlib import Path

import pytest
from hassil import recognize, recognize_all

from assistant.store.lists import SHOPPING, TODO, ListStore
from assistant.store.reminders import TIMER, ReminderStore
from assistant.understand.router import Router
from assistant.understand.skills import (
    Awaiting,
    SkillReply,
    SkillRequest,
    template_text,
)
from assistant.understand.skills.lists import split_items

LIST_INTENTS = {"AddToList", "RemoveFromList", "ReadList", "ClearList", "ConfirmClearList", "KeepList"}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "reminders.sqlite3"


@pytest.fixture
def lists(db_path: Path):
    store = ListStore.open(db_path)
    yield store
    store.close()


def text_of(reply: str | SkillReply | None) -> str:
    """The words of a reply, whether the router hands back text or a SkillReply."""
    assert reply is not None
    return reply if isinstance(reply, str) else reply.text


def awaiting_of(reply: str | SkillReply | None) -> Awaiting | None:
    return None if isinstance(reply, str) else getattr(reply, "awaiting", None)


def ask(router: Router, lists: ListStore | None, text: str) -> str | SkillReply:
    """One request through the router's fast path, as a turn makes it: the reply with the
    question it asks, if any (`skill_reply`), or else its text (`whole_reply`)."""
    decision = router.route(text)
    assert decision.tier == "fast_path" and decision.intent in LIST_INTENTS, text
    reply_of = getattr(router, "skill_reply", router.whole_reply)
    reply = reply_of(decision, SkillRequest(lists=lists, said=text))
    assert reply is not None
    return reply


def say(router: Router, lists: ListStore | None, text: str) -> str:
    return text_of(ask(router, lists, text))


def answer(router: Router, lists: ListStore, awaiting: Awaiting | None, text: str) -> str:
    """The follow-up turn after a question: the templates matched with the question's context, and
    the question's slots merged under the answer's (by the router, when it takes `awaiting`)."""
    assert awaiting is not None, "the reply asked no question"
    if "awaiting" in inspect.signature(router.route).parameters:
        decision = router.route(text, awaiting)
        assert decision.intent in {"ConfirmClearList", "KeepList"}, text
        return text_of(router.whole_reply(decision, SkillRequest(lists=lists)))
    matches = recognize_all(template_text(text), router.intents, intent_context={"awaiting": awaiting.context})
    match = next((m for m in matches if m.intent.name in {"ConfirmClearList", "KeepList"}), None)
    assert match is not None, text
    slots = {**awaiting.slots, **{name: entity.value for name, entity in match.entities.items()}}
    return text_of(router.skills[match.intent.name](SkillRequest(slots=slots, lists=lists)))


# --- phrasings -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, item, list_name", [
    ("Add milk to the shopping list.", "milk", SHOPPING),
    ("Put eggs on my shopping list.", "eggs", SHOPPING),
    ("Please add some bread to our grocery list.", "some bread", SHOPPING),
    ("Can you add a loaf of bread to the shopping list?", "a loaf of bread", SHOPPING),
    ("Add bread and butter to the shopping list.", "bread and butter", SHOPPING),
    ("Add to my shopping list cheese.", "cheese", SHOPPING),
    ("We need milk.", "milk", SHOPPING),
    ("We're out of eggs.", "eggs", SHOPPING),
    ("We are running low on coffee.", "coffee", SHOPPING),
    ("We've run out of toilet paper.", "toilet paper", SHOPPING),
    ("Add call the plumber to my to-do list.", "call the plumber", TODO),
    ("Put pay the gas bill on the to do list.", "pay the gas bill", TODO),
    ("Add water the plants to my todo list.", "water the plants", TODO),
    ("Write down book the dentist on my to-do list.", "book the dentist", TODO),
])
def test_adding_is_routed_with_the_item_and_the_list(router, text, item, list_name):
    decision = router.route(text)
    assert (decision.intent, decision.slots["list"]) == ("AddToList", list_name)
    assert decision.slots["item"].strip(" .") == item


@pytest.mark.parametrize("text, item, list_name", [
    ("Take milk off the shopping list.", "milk", SHOPPING),
    ("Remove eggs from my shopping list.", "eggs", SHOPPING),
    ("Cross bread off my shopping list.", "bread", SHOPPING),
    ("Delete call the plumber from my to-do list.", "call the plumber", TODO),
    ("Tick pay the gas bill off the to do list.", "pay the gas bill", TODO),
])
def test_removing_is_routed_with_the_item_and_the_list(router, text, item, list_name):
    decision = router.route(text)
    assert (decision.intent, decision.slots) == ("RemoveFromList", {"item": item, "list": list_name})


@pytest.mark.parametrize("text, intent, list_name", [
    ("What's on my shopping list?", "ReadList", SHOPPING),
    ("What is on the shopping list?", "ReadList", SHOPPING),
    ("Read me the shopping list.", "ReadList", SHOPPING),
    ("What do I need to buy?", "ReadList", SHOPPING),
    ("What do we need to get from the supermarket?", "ReadList", SHOPPING),
    ("Is there anything on the grocery list?", "ReadList", SHOPPING),
    ("What's on my to-do list?", "ReadList", TODO),
    ("Read my to do list.", "ReadList", TODO),
    ("What's on my todo list?", "ReadList", TODO),
    ("What do I have to do today?", "ReadList", TODO),
    ("Clear the shopping list.", "ClearList", SHOPPING),
    ("Empty my to-do list.", "ClearList", TODO),
    ("Delete everything on the shopping list.", "ClearList", SHOPPING),
    ("Remove all the items from my to do list.", "ClearList", TODO),
    ("Wipe the todo list, please.", "ClearList", TODO),
])
def test_reading_and_clearing_are_routed_with_the_list(router, text, intent, list_name):
    decision = router.route(text)
    assert (decision.intent, decision.slots) == (intent, {"list": list_name})


@pytest.mark.parametrize("text", ["Remind me to call the plumber.", "Set a timer for 5 minutes.",
                                  "What time is it?", "Cancel the pasta timer."])
def test_requests_of_other_skills_are_not_list_requests(router, text):
    assert router.route(text).intent not in LIST_INTENTS


@pytest.mark.parametrize("text", ["Yes.", "Yes please.", "Yeah.", "Sure.", "Do it.", "Clear it.", "Go ahead.",
                                  "Okay.", "No.", "No thanks.", "Don't.", "Keep it."])
def test_a_bare_yes_or_no_is_no_list_request_without_the_question(router, text):
    match = recognize(template_text(text), router.intents)
    assert match is None or match.intent.name not in LIST_INTENTS
    assert router.route(text).intent not in LIST_INTENTS


@pytest.mark.parametrize("text, intent", [
    ("Yes.", "ConfirmClearList"), ("Yes please.", "ConfirmClearList"), ("Yeah.", "ConfirmClearList"),
    ("Sure.", "ConfirmClearList"), ("Do it.", "ConfirmClearList"), ("Clear it.", "ConfirmClearList"),
    ("Go ahead.", "ConfirmClearList"), ("Okay.", "ConfirmClearList"),
    ("No.", "KeepList"), ("No thanks.", "KeepList"), ("Don't.", "KeepList"), ("Keep it.", "KeepList"),
    ("No, leave it.", "KeepList"),
])
def test_yes_and_no_answer_the_clear_question_in_its_context(router, text, intent):
    match = recognize(template_text(text), router.intents, intent_context={"awaiting": "list_clear"})
    assert match is not None and match.intent.name == intent


def test_never_mind_after_the_question_is_a_no(router):
    """"Never mind" is also the Stop skill's: whichever answers, the list is not cleared."""
    matches = recognize_all(template_text("Never mind."), router.intents, intent_context={"awaiting": "list_clear"})
    names = {m.intent.name for m in matches}
    assert "KeepList" in names and "ConfirmClearList" not in names


# --- adding, removing, reading ---------------------------------------------------------------

def test_adding_an_item_puts_it_on_the_list_and_says_so(router, lists):
    assert say(router, lists, "Add milk to the shopping list.") == "I added milk to your shopping list."
    assert lists.items(SHOPPING) == ["milk"]


def test_items_are_kept_lower_case_without_articles(router, lists):
    say(router, lists, "Add some Milk to the shopping list.")
    say(router, lists, "Add a loaf of bread to the shopping list.")
    say(router, lists, "We need more coffee, please.")
    assert lists.items(SHOPPING) == ["milk", "loaf of bread", "coffee"]


def test_a_shopping_item_said_with_and_is_several_items(router, lists):
    assert say(router, lists, "Add bread and butter to the shopping list.") == \
        "I added bread and butter to your shopping list."
    say(router, lists, "Add apples and some grapes to my shopping list.")
    assert lists.items(SHOPPING) == ["bread", "butter", "apples", "grapes"]


def test_commas_separate_shopping_items_when_the_slot_keeps_them():
    """hassil drops the commas from a wildcard's value ("milk eggs and bread"): only "and" splits
    then; the commas count when the text handed over keeps them."""
    assert split_items("Some milk, eggs and a loaf of bread.", SHOPPING) == ["milk", "eggs", "loaf of bread"]
    assert split_items("Some milk, eggs and a loaf of bread.", TODO) == ["milk, eggs and a loaf of bread"]


def test_a_todo_item_said_with_and_is_one_task(router, lists):
    assert say(router, lists, "Add call the plumber and the electrician to my to-do list.") == \
        "I added call the plumber and the electrician to your to-do list."
    assert lists.items(TODO) == ["call the plumber and the electrician"]


def test_we_need_puts_it_on_the_shopping_list(router, lists):
    assert say(router, lists, "We need milk.") == "I added milk to your shopping list."
    assert say(router, lists, "We're out of eggs.") == "I added eggs to your shopping list."
    assert lists.items(SHOPPING) == ["milk", "eggs"]


@pytest.mark.parametrize("text", ["We need to talk about the holidays.", "We need some.", "We're out of, um."])
def test_we_need_without_a_thing_adds_nothing(router, lists, text):
    assert say(router, lists, text) == "I didn't catch what to add, so your shopping list is unchanged."
    assert lists.items(SHOPPING) == []


def test_an_item_already_there_is_kept_once_and_the_reply_says_so(router, lists):
    say(router, lists, "Add eggs to the shopping list.")
    assert say(router, lists, "Put Egg on my shopping list.") == "Egg is already on your shopping list."
    assert lists.items(SHOPPING) == ["eggs"]


def test_adding_several_says_which_were_already_there(router, lists):
    say(router, lists, "Add milk to the shopping list.")
    assert say(router, lists, "Add milk and eggs to the shopping list.") == \
        "I added eggs to your shopping list. Milk is already on it."


def test_taking_an_item_off_says_the_item_as_stored(router, lists):
    say(router, lists, "Add eggs and milk to the shopping list.")
    assert say(router, lists, "Take the egg off the shopping list.") == "I took eggs off your shopping list."
    assert lists.items(SHOPPING) == ["milk"]


def test_taking_off_an_item_not_there_says_so_and_changes_nothing(router, lists):
    say(router, lists, "Add milk to the shopping list.")
    assert say(router, lists, "Remove eggs from my shopping list.") == "Eggs isn't on your shopping list."
    assert lists.items(SHOPPING) == ["milk"]


def test_reading_a_list_names_its_items_in_order(router, lists):
    for text in ("Add milk to the shopping list.", "We need eggs.", "Put bread on my shopping list."):
        say(router, lists, text)
    assert say(router, lists, "What's on my shopping list?") == "Your shopping list has milk, eggs and bread."


def test_reading_an_empty_list_says_it_is_empty(router, lists):
    assert say(router, lists, "What's on my to-do list?") == "Your to-do list is empty."


def test_reading_a_long_list_says_the_count_and_the_first_items(router, lists):
    for item in ("milk", "eggs", "bread", "butter", "cheese", "apples", "pears", "rice"):
        lists.add(SHOPPING, item)
    assert say(router, lists, "What do I need to buy?") == \
        "Your shopping list has 8 items. The first 5 are milk, eggs, bread, butter and cheese."


def test_the_two_lists_are_separate(router, lists):
    say(router, lists, "Add milk to the shopping list.")
    say(router, lists, "Add call the plumber to my to-do list.")
    assert (lists.items(SHOPPING), lists.items(TODO)) == (["milk"], ["call the plumber"])


# --- the store -------------------------------------------------------------------------------

def test_the_store_keeps_items_in_the_order_added_and_refuses_a_duplicate(lists):
    assert [lists.add(SHOPPING, item) for item in ("Milk", "eggs", " MILK ", "bread")] == [True, True, False, True]
    assert lists.items(SHOPPING) == ["milk", "eggs", "bread"]


@pytest.mark.parametrize("stored, said", [("eggs", "egg"), ("egg", "Eggs"), ("berries", "berry"),
                                          ("tomato", "tomatoes"), ("ice cream", "Ice-Cream")])
def test_the_store_matches_singular_and_plural(lists, stored, said):
    lists.add(SHOPPING, stored)
    assert lists.add(SHOPPING, said) is False
    assert lists.remove(SHOPPING, said) == stored
    assert lists.items(SHOPPING) == []


def test_the_store_removes_nothing_that_is_not_there(lists):
    lists.add(SHOPPING, "milk")
    assert lists.remove(SHOPPING, "eggs") is None
    assert lists.remove(TODO, "milk") is None
    assert lists.items(SHOPPING) == ["milk"]


def test_clearing_the_store_says_how_many_went(lists):
    lists.add(SHOPPING, "milk")
    lists.add(SHOPPING, "eggs")
    lists.add(TODO, "call the plumber")
    assert lists.clear(SHOPPING) == 2
    assert (lists.items(SHOPPING), lists.items(TODO)) == ([], ["call the plumber"])


def test_lists_survive_a_restart(router, db_path):
    before = ListStore(ReminderStore(db_path).db)
    say(router, before, "Add milk and eggs to the shopping list.")
    say(router, before, "Add call the plumber to my to-do list.")
    before.close()
    after = ListStore(ReminderStore(db_path).db)
    assert (after.items(SHOPPING), after.items(TODO)) == (["milk", "eggs"], ["call the plumber"])
    after.close()


def test_lists_share_the_reminders_database(db_path):
    from datetime import datetime
    reminders = ReminderStore(db_path)
    lists = ListStore(reminders.db)
    lists.add(SHOPPING, "milk")
    reminders.add_timer(datetime(2026, 11, 27, 19, 5).astimezone(), 60, "tea")
    assert ListStore(reminders.db).items(SHOPPING) == ["milk"]  # opening again changes nothing
    assert [t.name for t in reminders.pending(TIMER)] == ["tea"]
    reminders.close()


# --- clearing, after asking --------------------------------------------------------------------

def test_clear_asks_first_and_clears_nothing(router, lists):
    for item in ("milk", "eggs", "bread"):
        lists.add(SHOPPING, item)
    reply = ask(router, lists, "Clear the shopping list.")
    assert text_of(reply) == "Your shopping list has 3 items. Shall I clear it?"
    assert awaiting_of(reply) == Awaiting("list_clear", {"list": SHOPPING})
    assert lists.items(SHOPPING) == ["milk", "eggs", "bread"]


@pytest.mark.parametrize("yes", ["Yes.", "Yes please.", "Sure.", "Go ahead."])
def test_yes_clears_the_list_asked_about(router, lists, yes):
    say(router, lists, "Add milk and eggs to the shopping list.")
    say(router, lists, "Add call the plumber to my to-do list.")
    question = ask(router, lists, "Empty my to-do list.")
    assert answer(router, lists, awaiting_of(question), yes) == "I cleared your to-do list."
    assert (lists.items(SHOPPING), lists.items(TODO)) == (["milk", "eggs"], [])


@pytest.mark.parametrize("no", ["No.", "No thanks.", "Keep it.", "Don't.", "Never mind."])
def test_no_keeps_the_list(router, lists, no):
    say(router, lists, "Add milk to the shopping list.")
    question = ask(router, lists, "Delete everything on the shopping list.")
    assert answer(router, lists, awaiting_of(question), no) == "Okay, I left your shopping list as it is."
    assert lists.items(SHOPPING) == ["milk"]


def test_delete_everything_from_a_list_asks_too(router, lists):
    say(router, lists, "Add milk to the shopping list.")
    reply = ask(router, lists, "Delete everything from the shopping list.")
    assert text_of(reply) == "Your shopping list has 1 item. Shall I clear it?" and awaiting_of(reply) is not None
    assert lists.items(SHOPPING) == ["milk"]


def test_clearing_an_empty_list_asks_nothing(router, lists):
    reply = ask(router, lists, "Clear the shopping list.")
    assert text_of(reply) == "Your shopping list is already empty."
    assert awaiting_of(reply) is None and not text_of(reply).endswith("?")


def test_a_yes_to_a_list_emptied_meanwhile_says_so(router, lists):
    lists.add(SHOPPING, "milk")
    question = ask(router, lists, "Clear the shopping list.")
    lists.clear(SHOPPING)
    assert answer(router, lists, awaiting_of(question), "Yes.") == "Your shopping list was already empty."


# --- a failed write claims nothing -----------------------------------------------------------

CLAIMS = ("I added", "I took", "I cleared", "already")


@pytest.mark.parametrize("text", ["Add milk to the shopping list.", "Take milk off the shopping list.",
                                  "What's on my shopping list?", "Clear the shopping list."])
def test_a_closed_database_gets_an_honest_reply(router, lists, text):
    lists.add(SHOPPING, "milk")
    lists.db.close()
    reply = say(router, lists, text)
    assert reply.startswith("Sorry, I couldn't") and not any(claim in reply for claim in CLAIMS)


def test_a_read_only_database_adds_nothing_and_says_so(router, lists, db_path):
    lists.add(SHOPPING, "milk")
    read_only = ListStore(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None))
    read_only_now = "the state directory is read-only"
    assert say(router, read_only, "Add eggs to the shopping list.") == \
        f"Sorry, I couldn't save that to your shopping list: {read_only_now}."
    assert say(router, read_only, "Take milk off the shopping list.") == \
        f"Sorry, I couldn't change your shopping list: {read_only_now}."
    assert answer(router, read_only, Awaiting("list_clear", {"list": SHOPPING}), "Yes.") == \
        f"Sorry, I couldn't clear your shopping list: {read_only_now}; it is as it was."
    read_only.close()
    assert lists.items(SHOPPING) == ["milk"]


def test_that_is_the_item_the_sentence_names(router, lists):
    say(router, lists, "Add pick up the dry cleaning to my to-do list.")
    say(router, lists, "Add call the plumber to my to-do list.")
    assert say(router, lists, "I finally picked up the dry cleaning, so cross that off my to-do list.") == \
        "I took pick up the dry cleaning off your to-do list."
    assert lists.items(TODO) == ["call the plumber"]
