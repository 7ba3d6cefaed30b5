"""A real PostgreSQL server for the tests: a fresh database per test, dropped after it.

The server is the one at ``POPUP_TEST_POSTGRES`` (default: postgres@127.0.0.1:5432, trust auth,
as on every machine this project is built on). Where none answers, PostgreSQL tests skip and say
why, except with ``POPUP_REQUIRE_POSTGRES=1`` (CI, .ci/run): there they fail.
"""

from __future__ import annotations

import asyncio
import functools
import os
import secrets
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

T = TypeVar("T")

ADMIN_URL = os.environ.get("POPUP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    """``ADMIN_URL`` with its database swapped for ``name``."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@functools.cache
def _unreachable_because() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(ADMIN_URL, timeout=5)
        await conn.close()

    try:
        _run_aside(probe())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return f"{exc.__class__.__name__}: {exc}"
    return None


def require_postgres() -> None:
    """Skip the test (fail it under POPUP_REQUIRE_POSTGRES=1) when no server answers."""
    problem = _unreachable_because()
    if problem is None:
        return
    message = f"no PostgreSQL server at {ADMIN_URL} ({problem}); set POPUP_TEST_POSTGRES to one"
    if os.environ.get("POPUP_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{message} (POPUP_REQUIRE_POSTGRES=1)")
    pytest.skip(message)


@asynccontextmanager
async def new_database() -> AsyncIterator[str]:
    """A new empty database's URL; the database (and every connection to it) goes afterwards."""
    require_postgres()
    name = f"popup_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')  # a name of our own making: not a parameter
        try:
            yield database_url(name)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _run_aside(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to the end on an event loop of its own, in a thread of its own: sync fixtures
    may be set up while the test's loop runs in this thread (pytest-asyncio)."""
    with ThreadPoolExecutor(1) as aside:
        return aside.submit(asyncio.run, work).result()


@contextmanager
def new_database_sync() -> Iterator[str]:
    """:func:`new_database` for sync fixtures (hypothesis, subprocess tests)."""
    require_postgres()
    name = f"popup_test_{secrets.token_hex(6)}"
    _run_aside(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield database_url(name)
    finally:
        _run_aside(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(sql)
    finally:
        await admin.close()
