"""The store contract suite runs every test against each store Popup has: SQLite and PostgreSQL.

``backend`` says which, and opens stores on its database (a SQLite file, or a fresh PostgreSQL
database that is dropped afterwards); ``store`` is one open store on it. A few tests look beneath
the protocol (the tally tables, a write the schema must refuse): ``backend.rows`` and
``backend.write`` run such SQL on either, written once with ``?`` placeholders.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests.postgres import new_database_sync

AnyStore = SqliteStore | PostgresStore

_MARK = re.compile(r"\?(\d*)")


def numbered(sql: str) -> str:
    """``?`` and ``?N`` placeholders as PostgreSQL's ``$N``."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group(1):
            return f"${match.group(1)}"
        count += 1
        return f"${count}"

    return _MARK.sub(number, sql)


@dataclass(frozen=True)
class Backend:
    name: str  # "sqlite" or "postgres"
    where: str  # the SQLite file, or the PostgreSQL database's URL

    async def open(self) -> AnyStore:
        if self.name == "sqlite":
            return await SqliteStore.open(self.where)
        return await PostgresStore.open(self.where)

    async def rows(self, store: AnyStore, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if isinstance(store, SqliteStore):
            return [tuple(row) for row in await store._all(sql, params)]
        return [tuple(row) for row in await store._pool.fetch(numbered(sql), *params)]

    async def write(self, store: AnyStore, sql: str, params: tuple[Any, ...]) -> None:
        """One statement through the store's own inbound writer (a StorageError if refused)."""
        if isinstance(store, SqliteStore):
            await store._writer.write((sql, params))
        else:
            await store._writer.write((numbered(sql), params))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield Backend("sqlite", str(tmp_path / "popup.db"))
        return
    with new_database_sync() as url:
        yield Backend("postgres", url)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[AnyStore]:
    """One open store on ``backend``'s database, closed after the test."""
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()
