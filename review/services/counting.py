"""Counts that stay cheap at a million rows: exact up to a cap, an estimate beyond it.

An exact count of a million index entries takes about a second on PostgreSQL, and the queue
pages poll their counts every few seconds. So counting stops after COUNT_CAP rows (a
bounded index walk): a queue of that size or smaller gets an exact number that moves with
every decision. Past the cap the exact figure no longer helps anyone plan, and the page
shows PostgreSQL's own row estimate for the same query, "about 1,000,000" (extended
statistics on queue, status and AI label keep it close; see migration 0009). It follows
the table statistics, which autovacuum refreshes as the queue changes. SQLite has no
estimate to offer, so there the page says "10,000+".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Integer, Select, bindparam, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler

from review.services.statements import warm

COUNT_CAP = 10_000


@dataclass(frozen=True)
class Count:
    """A number to show: `exact`, an `estimate` (rounded), or `at_least` the cap."""

    value: int
    kind: str = "exact"

    @property
    def exact(self) -> bool:
        return self.kind == "exact"

    def __str__(self) -> str:
        if self.kind == "estimate":
            return f"about {self.value:,}"
        if self.kind == "at_least":
            return f"{self.value:,}+"
        return f"{self.value:,}"

    def __bool__(self) -> bool:
        return self.value > 0


def capped_count(session: Session, query: Select[Any], cap: int | None = None) -> Count:
    """How many rows `query` returns: exact up to `cap` (COUNT_CAP unless given), else
    the planner's estimate.

    `query` should select one narrow column so the count can walk an index only.
    """
    cap = COUNT_CAP if cap is None else cap
    counted = session.scalar(_capped(query), {"b_cap": cap + 1}) or 0
    if counted <= cap:
        return Count(counted)
    return _beyond_cap(planner_estimate(session, query), cap)


def planner_estimate(session: Session, query: Select[Any]) -> int | None:
    """PostgreSQL's estimate of the rows `query` returns (EXPLAIN, nothing is run); None
    on other databases."""
    bind = session.get_bind()
    if bind.dialect.name != "postgresql":
        return None
    compiled = query.compile(dialect=bind.dialect, compile_kwargs={"render_postcompile": True})
    return _explain(session, str(compiled), compiled.params)


def _explain(session: Session, sql: str, params: Mapping[str, Any]) -> int:
    result = session.connection().exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", params)
    # EXPLAIN always answers one row: the plan as a JSON array of one object.
    plan = cast("list[dict[str, Any]]", result.scalar())
    return int(plan[0]["Plan"]["Plan Rows"])


class CappedCounts:
    """Several capped counts (as capped_count) in one statement, built once.

    The queries take their values from bound parameters, so one instance serves every
    request: the queue page's four counts cost four statements and four statement builds
    per poll before (about 2 ms of CPU more than this one round trip).
    """

    def __init__(self, **queries: Select[Any]) -> None:
        self.queries = queries
        self.statement = select(
            *(_capped(query).scalar_subquery().label(name) for name, query in queries.items())
        )
        warm(self.statement)  # shared by threads (see review/services/statements.py)
        self._compiled: dict[tuple[str, str], SQLCompiler] = {}

    def run(
        self, session: Session, params: Mapping[str, Any], cap: int | None = None
    ) -> dict[str, Count]:
        """Each query's Count under the bound parameters `params`."""
        cap = COUNT_CAP if cap is None else cap
        row = session.execute(self.statement, {**params, "b_cap": cap + 1}).one()
        return {
            name: self._count(session, name, counted, params, cap)
            for name, counted in zip(self.queries, row, strict=True)
        }

    def _count(
        self, session: Session, name: str, counted: int, params: Mapping[str, Any], cap: int
    ) -> Count:
        if counted <= cap:
            return Count(counted)
        return _beyond_cap(self._estimate(session, name, params), cap)

    def _estimate(self, session: Session, name: str, params: Mapping[str, Any]) -> int | None:
        """planner_estimate of one query under `params`, compiled once per driver
        (compiling took 0.4 ms of CPU a time, as much as running the EXPLAIN)."""
        dialect = session.get_bind().dialect
        if dialect.name != "postgresql":
            return None
        key = (name, dialect.driver)
        if key not in self._compiled:
            self._compiled[key] = self.queries[name].compile(dialect=dialect)
        # The SQL with these values (IN lists expanded) and the driver's parameters.
        expanded = self._compiled[key].construct_expanded_state(params)
        return _explain(session, expanded.statement, expanded.parameters)


def _capped(query: Select[Any]) -> Select[int]:
    """SQL: how many rows `query` returns, counting no further than :b_cap rows."""
    limited = query.limit(bindparam("b_cap", type_=Integer)).subquery()
    return select(func.count()).select_from(limited)


def _beyond_cap(estimate: int | None, cap: int) -> Count:
    if estimate is None or estimate <= cap:
        # We know there are more than `cap`; an estimate below that is stale statistics.
        return Count(cap, "at_least")
    return Count(round_estimate(estimate), "estimate")


def round_estimate(value: int) -> int:
    """Two significant digits: an estimate should not look more precise than it is."""
    if value < 100:
        return value
    step: int = 10 ** (int(math.log10(value)) - 1)  # a positive power: an int
    return round(value / step) * step
