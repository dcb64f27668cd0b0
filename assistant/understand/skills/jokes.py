"""Jokes: "tell me a joke", "another one", "make me laugh".

The jokes are our own short list, not a package's. pyjokes, the one well-kept jokes package
on PyPI, has programmer one-liners ("Why do Java programmers wear glasses? ..."), many that
do not suit a family kitchen or do not survive being read aloud (".NET", "argv", "OCT 31 ==
DEC 25"); the other jokes packages there fetch from web APIs at run time. These are short,
clean, said well by piper (no symbols or spelled-out sounds), and none ends in a question
mark, since a reply that ends in a question opens the follow-up window.

Each joke is told once before any is told again, in a shuffled order, and a new round never
starts with the joke just told.
"""

from __future__ import annotations

import random
import threading

from assistant.understand.skills import SkillRequest

JOKES = (
    "Why did the tomato turn red? Because it saw the salad dressing.",
    "What do you call a fake noodle? An impasta.",
    "Why don't eggs tell jokes? They would crack each other up.",
    "What do you call a sad strawberry? A blueberry.",
    "Why did the cookie go to the doctor? Because it felt crummy.",
    "What do you call cheese that isn't yours? Nacho cheese.",
    "Why did the banana go to the doctor? It wasn't peeling well.",
    "How do you fix a cracked pumpkin? With a pumpkin patch.",
    "Why don't skeletons fight each other? They don't have the guts.",
    "What do you call a bear with no teeth? A gummy bear.",
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "What did the ocean say to the beach? Nothing, it just waved.",
    "I'm reading a book about anti-gravity. It's impossible to put down.",
    "Why did the bicycle fall over? Because it was two tired.",
    "What kind of tree fits in your hand? A palm tree.",
    "Why was the math book sad? It had too many problems.",
    "What do you call a dog that does magic tricks? A labracadabrador.",
    "How does a penguin build its house? Igloos it together.",
    "What do you get when you cross a snowman and a vampire? Frostbite.",
    "Why don't oysters share their pearls? Because they're shellfish.",
    "Why did the coffee call the police? It got mugged.",
    "What's orange and sounds like a parrot? A carrot.",
    "Why was the baker so rich? Because he made a lot of dough.",
    "Why did the mushroom get invited to every party? Because he was a fungi.",
    "What does a lemon say when it answers the phone? Yellow.",
    "Why are spiders so smart? They can find everything on the web.",
    "What did one plate say to the other plate? Dinner is on me.",
    "Why did the student bring a ladder to school? She wanted to go to high school.",
    "What has ears but cannot hear? A cornfield.",
    "Why do seagulls fly over the sea? Because if they flew over the bay, they would be bagels.",
    "What do you call a belt made of watches? A waist of time.",
    "Why did the orange stop rolling down the hill? It ran out of juice.",
    "What do you call an alligator in a vest? An investigator.",
    "How do you make a milkshake? Give a cow a pogo stick.",
    "What kind of music do mummies like? Wrap music.",
    "Why did the stadium get so cold after the game? All the fans left.",
    "Why can't a nose be twelve inches long? Because then it would be a foot.",
    "What did the big flower say to the little flower? Hi, bud.",
    "Why don't melons get married? Because they cantaloupe.",
    "What do you call a pile of cats? A meowntain.",
    "Why did the golfer bring two pairs of pants? In case he got a hole in one.",
    "What did the lettuce say to the celery? Quit stalking me.",
    "Why did the teddy bear say no to dessert? Because she was already stuffed.",
    "What do you call a dinosaur that is sleeping? A dino snore.",
)


class JokeTeller:
    """Deals the jokes like cards: every joke once per round, shuffled, no joke twice in a row."""

    def __init__(self, jokes: tuple[str, ...] = JOKES, rng: random.Random | None = None) -> None:
        self._jokes = jokes
        self._rng = rng or random.Random()
        self._deck: list[str] = []
        self._last: str | None = None
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            if not self._deck:
                self._deck = list(self._jokes)
                self._rng.shuffle(self._deck)
                if len(self._deck) > 1 and self._deck[-1] == self._last:
                    self._deck[0], self._deck[-1] = self._deck[-1], self._deck[0]
            self._last = self._deck.pop()
            return self._last


TELLER = JokeTeller()


def tell_joke(request: SkillRequest) -> str:
    return TELLER.next()


INTENTS = {"TellJoke": tell_joke}
ABILITY = "tell jokes"
RANK = 60
