"""Shopping and to-do lists, kept in SQLite beside the timers and alarms, so they survive a restart.

The store works on a connection it is given (the pipeline passes the reminder store's: autocommit,
WAL journal, synchronous=FULL). Every change is one SQLite statement in one transaction: after a
crash an item is either wholly there or not at all, and no read-then-write can interleave with
another user of the same connection. Items are kept as said, lower-case, in the order added; two
spellings are the same item when they differ only in case, spacing, edge punctuation, or the plural
of their last word ("Eggs" and "egg", "berries" and "berry", "tomatoes" and "tomato").
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from assistant.store.state import open_database

SHOPPING = "shopping"
TODO = "todo"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS list_items (
    id INTEGER PRIMARY KEY,
    list TEXT NOT NULL,
    item TEXT NOT NULL,
    key TEXT NOT NULL,
    added REAL NOT NULL
)
"""
_INDEX = "CREATE INDEX IF NOT EXISTS list_items_by_list ON list_items (list, key)"

_EDGE_PUNCTUATION = ".,;:!?\"'()[]"


class ListStore:
    """The lists in the database behind `db` (the tables are made if missing)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        make_tables(db)

    @classmethod
    def open(cls, path: Path | str) -> ListStore:
        """A store on its own connection to the database at `path`, opened as the reminder store's is
        (for tests and tools; the pipeline shares the reminder store's connection)."""
        return cls(open_database(path, make_tables))

    def close(self) -> None:
        self.db.close()

    def items(self, list_name: str) -> list[str]:
        """The list's items, in the order they were added."""
        rows = self.db.execute("SELECT item FROM list_items WHERE list = ? ORDER BY id", (list_name,))
        return [item for (item,) in rows]

    def add(self, list_name: str, item: str) -> bool:
        """Put `item` at the end of the list; False (and nothing written) when it is already there."""
        text = clean_item(item)
        if not text:
            raise ValueError("an empty item cannot go on a list")
        forms = same_item_keys(text)
        marks = ", ".join("?" * len(forms))
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO list_items (list, item, key, added) SELECT ?, ?, ?, ? "
                f"WHERE NOT EXISTS (SELECT 1 FROM list_items WHERE list = ? AND key IN ({marks}))",
                (list_name, text, item_key(text), time.time(), list_name, *forms))
        return cursor.rowcount == 1

    def remove(self, list_name: str, item: str) -> str | None:
        """Take `item` off the list; the item as it was stored, or None when it was not there."""
        text = clean_item(item)
        if not text:
            return None
        forms = same_item_keys(text)
        marks = ", ".join("?" * len(forms))
        exact = item_key(text)
        while True:
            row = self.db.execute(
                f"SELECT id, item FROM list_items WHERE list = ? AND key IN ({marks}) ORDER BY key = ? DESC, id LIMIT 1",
                (list_name, *forms, exact)).fetchone()
            if row is None:
                return None
            with self.db:
                removed = self.db.execute("DELETE FROM list_items WHERE id = ?", (row[0],)).rowcount
            if removed == 1:
                return row[1]
            # someone else took it off between the two statements: look again

    def clear(self, list_name: str) -> int:
        """Empty the list; how many items it had."""
        with self.db:
            return self.db.execute("DELETE FROM list_items WHERE list = ?", (list_name,)).rowcount


def make_tables(db: sqlite3.Connection) -> None:
    """The lists' table and index, when missing (a database that refuses changes has them already)."""
    made = db.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('list_items', 'list_items_by_list')")
    if made.fetchone()[0] < 2:
        with db:
            db.execute(_SCHEMA)
            db.execute(_INDEX)


def clean_item(item: str) -> str:
    """The item as kept: lower-case, single spaces, no punctuation at its edges."""
    return " ".join(item.lower().split()).strip(_EDGE_PUNCTUATION + " ")


def item_key(item: str) -> str:
    """What two spellings of the same item share: "ice-cream" and "Ice cream" are "ice cream"."""
    return " ".join(clean_item(item).replace("-", " ").split())


def same_item_keys(item: str) -> list[str]:
    """Every key an item that is the same as this one may be stored under: its last word in the
    singular or the plural (each rule here has its inverse, so the relation is symmetric)."""
    key = item_key(item)
    head, _, last = key.rpartition(" ")
    prefix = f"{head} " if head else ""
    forms = {last, f"{last}s", f"{last}es"}
    if last.endswith("s"):
        forms.add(last[:-1])
    if last.endswith("es"):
        forms.add(last[:-2])
    if last.endswith("ies"):
        forms.add(f"{last[:-3]}y")
    if last.endswith("y"):
        forms.add(f"{last[:-1]}ies")
    return sorted(prefix + form for form in forms if form)
