"""What both stores' group-commit writers share: a write of a few statements that must land
together, grouping a batch of them by statement (one ``executemany`` each), and settling the
callers' futures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Params = tuple[object, ...]
Statement = tuple[str, Params]


@dataclass(slots=True)
class Write:
    """One logical write: a few statements that must land together, batched with others."""

    statements: tuple[Statement, ...]
    done: asyncio.Future[None]


def group_by_statement(writes: Iterable[Write]) -> dict[str, list[Params]]:
    """The batch's parameters per statement, in first-seen order. Inbound writes commute by schema
    design, so running each statement's rows together does not change the outcome."""
    grouped: dict[str, list[Params]] = {}
    for write in writes:
        for sql, params in write.statements:
            rows = grouped.get(sql)
            if rows is None:
                grouped[sql] = [params]
            else:
                rows.append(params)
    return grouped


def settle(writes: Iterable[Write]) -> None:
    """Every write of a committed batch is durable: tell its caller."""
    for write in writes:
        if not write.done.done():
            write.done.set_result(None)


def fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
