"""Searching items by the words of their payloads: the text of its values (strings and
numbers, at any depth), never its keys, so "amount" finds items that say "amount", not
every item with an amount field.

On PostgreSQL it is full-text search with the "simple" configuration (no stemming and no
stop words: payloads come in any language, and ids and codes matter as much as words),
read by websearch_to_tsquery: every word must appear, "quoted words" as a phrase, `or`
between alternatives, `-word` to exclude. Words match whole: "refund" does not find
"refunded". Matching words as prefixes was tried and left out: PostgreSQL cannot estimate
how many items a prefix matches, guessed 2% for any, and so read a million payloads one by
one (18 s) for a word that none has; for whole words its estimate is close, and it reads
the index. ix_items_payload_words (migration 0020) holds the expression PAYLOAD_WORDS_SQL.

SQLite, the zero-setup default, has no such index: a function of ours (registered on every
connection, see register_sqlite_function) reads each item's values and reads the search
as websearch_to_tsquery does (search_clauses): the same words, phrases, `or` and `-word`.
It reads every payload of the queue, which is fine at the sizes SQLite suits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Boolean, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from review.services.errors import ValidationFailed

MAX_SEARCH_CHARS = 200
# The expression the index holds; a query must use it as written to use the index.
PAYLOAD_WORDS_SQL = (
    "json_to_tsvector('simple'::regconfig, {payload}, '[\"string\", \"numeric\"]'::jsonb)"
)
# The search as people type it, read as a search engine would.
_QUERY_SQL = "websearch_to_tsquery('simple'::regconfig, {search})"
_SQLITE_FUNCTION = "rw_payload_has_words"


def parse_search(raw: Any) -> str | None:
    """The search as typed (trimmed), None if blank; ValidationFailed naming `q` if it is
    too long or has no letter or digit to look for."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        return None
    if len(text) > MAX_SEARCH_CHARS:
        raise ValidationFailed(
            "search too long", {"q": f"search for at most {MAX_SEARCH_CHARS} characters"}
        )
    if not search_clauses(text):  # nothing but punctuation and underscores
        raise ValidationFailed("nothing to search for", {"q": "type a word or a number"})
    return text


class payload_matches(FunctionElement[bool]):  # noqa: N801  (an SQL function, named as one)
    """SQL: the item's payload has the words of the search. Arguments: the payload column
    and the search text (a bound parameter)."""

    type = Boolean()
    name = "payload_matches"
    inherit_cache = True


@compiles(payload_matches)
def _generic(element: payload_matches, compiler: SQLCompiler, **kw: Any) -> str:
    """As str() shows a statement (no backend of ours runs it)."""
    payload, search = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"payload_matches({payload}, {search})"


@compiles(payload_matches, "postgresql")
def _postgresql(element: payload_matches, compiler: SQLCompiler, **kw: Any) -> str:
    payload, search = (compiler.process(clause, **kw) for clause in element.clauses)
    words = PAYLOAD_WORDS_SQL.format(payload=payload)
    return f"{words} @@ {_QUERY_SQL.format(search=search)}"


@compiles(payload_matches, "sqlite")
def _sqlite(element: payload_matches, compiler: SQLCompiler, **kw: Any) -> str:
    payload, search = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"{_SQLITE_FUNCTION}({payload}, {search})"


def register_sqlite_function(connection: Any) -> None:
    """Make payload_matches work on this SQLite connection (a sqlite3.Connection, which
    SQLAlchemy's connect event types as a plain DBAPI connection)."""
    connection.create_function(_SQLITE_FUNCTION, 2, _has_words, deterministic=True)


def _values_text(value: Any, parts: list[str]) -> None:
    if isinstance(value, dict):
        for child in value.values():
            _values_text(child, parts)
    elif isinstance(value, list):
        for child in value:
            _values_text(child, parts)
    elif isinstance(value, str):
        parts.append(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parts.append(str(value))


# A search's terms: a quoted phrase (perhaps -"negated", its closing quote optional) or a
# run of other characters between spaces.
_TERM = re.compile(r'-*"[^"]*"?|\S+')
# Words as PostgreSQL's parser finds them: letters and digits; anything else, the
# underscore too, separates them ("web_form" is "web" and "form", "help." is "help").
_WORD_CHARS = re.compile(r"[^\W_]+")
# (negated, the words in a row): a term of the search.
Term = tuple[bool, list[str]]


def search_clauses(search: str) -> list[list[Term]]:
    """The search as websearch_to_tsquery reads it: clauses that must all hold, each a list
    of alternatives joined by `or`. A term with an odd number of leading dashes is negated
    (PostgreSQL reads "--word" as "not not word"); one without a letter or digit counts
    for nothing."""
    clauses: list[list[Term]] = []
    or_next = False
    for token in _TERM.findall(search.casefold()):
        if token == "or" and clauses:
            or_next = True
            continue
        dashes = len(token) - len(token.lstrip("-"))
        words = _WORD_CHARS.findall(token)
        if not words:
            continue
        term = (dashes % 2 == 1, words)
        if or_next:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        or_next = False
    return clauses


def _phrase_pattern(words: list[str]) -> re.Pattern[str]:
    """The words, in a row, as whole words of a text."""
    phrase = r"[\W_]+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<![^\W_]){phrase}(?![^\W_])")


@lru_cache(maxsize=64)
def _compiled_clauses(search: str) -> tuple[tuple[tuple[bool, re.Pattern[str]], ...], ...]:
    """search_clauses with each term as its pattern, worked out once per search: SQLite
    asks _has_words for every item of the queue."""
    return tuple(
        tuple((negated, _phrase_pattern(words)) for negated, words in clause)
        for clause in search_clauses(search)
    )


def _has_words(payload_json: str | None, search: str | None) -> int:
    """1 if the payload's values (their words, in any case) satisfy the search."""
    if payload_json is None or search is None:
        return 0
    parts: list[str] = []
    _values_text(json.loads(payload_json), parts)
    text = "\n".join(parts).casefold()
    return int(
        all(
            any((pattern.search(text) is not None) != negated for negated, pattern in clause)
            for clause in _compiled_clauses(search)
        )
    )


@contextmanager
def index_first(session: Session) -> Iterator[None]:
    """Within the block, PostgreSQL answers queries with a search from the word index.

    Left to itself, it may walk another index in the page's order and read each payload
    to see whether it matches (18 µs each on the ninth machine): quick when matches are
    dense, 18 s on a million items when none matches, and it cannot tell the two apart for
    a word it has no statistics for (it guesses 0.5% of rows). Without plain index scans
    and sequential scans, it must use bitmap scans: the word index names the matching
    items, and only those are read. Used where the matches are known to be few, and for
    counts, which stop at their cap. SQLite has no such index and no such choice."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(text("SET LOCAL enable_indexscan = off"))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        yield
    finally:
        session.execute(text("SET LOCAL enable_indexscan TO DEFAULT"))
        session.execute(text("SET LOCAL enable_seqscan TO DEFAULT"))
