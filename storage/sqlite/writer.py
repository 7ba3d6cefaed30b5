"""The one writer: every write to the database goes through it, committed in groups.

Every caller awaits its own write's COMMIT (so "acknowledged" always means "durable"), but
concurrent inbound events share one transaction and one ``executemany`` per statement, which is
what makes a burst of replies cheap. Inbound events are commutative by schema design (see
migrations/0001_init.sql), so a batch may group them by statement without changing the outcome.
Multi-statement transactions that need an answer (compare-and-set, create) run alone, between
batches.

This is the only module that reaches into aiosqlite's private API (:func:`_on_database_thread`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiosqlite

from sessions.errors import StorageError
from storage.batching import Params, Write, fail, group_by_statement, settle

_log = logging.getLogger(__name__)

T = TypeVar("T")
Txn = Callable[[aiosqlite.Connection], Awaitable[T]]
BatchRunner = Callable[..., Awaitable[None]]

_MAX_BATCH = 128  # bounds each commit's wave of wake-ups, so a due prompt never waits long (bench: punctuality)


@dataclass(slots=True)
class _Transaction:
    run: Txn[Any]
    done: asyncio.Future[Any]


@dataclass(slots=True)
class _Statement:
    """One statement in autocommit mode (atomic on its own): one trip to the database thread."""

    sql: str
    params: Params
    done: asyncio.Future[list[sqlite3.Row]]


def _commit_batch(db: sqlite3.Connection, grouped: Iterable[tuple[str, list[Params]]]) -> None:
    """Runs on the database thread: a whole batch as one transaction, in one trip there."""
    db.execute("BEGIN")
    try:
        for sql, rows in grouped:
            db.executemany(sql, rows)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _statements_in_one_transaction(db: sqlite3.Connection, items: list[tuple[str, Params]]) -> list[list[sqlite3.Row]]:
    """Runs on the database thread: control-plane statements queued together, one commit for all."""
    db.execute("BEGIN")
    try:
        results = [db.execute(sql, params).fetchall() for sql, params in items]
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return results


def _on_database_thread(db: aiosqlite.Connection) -> Callable[..., Awaitable[Any]] | None:
    """``run(fn, *args)``: ``fn(raw_connection, *args)`` on aiosqlite's own thread, if this aiosqlite lets us.

    aiosqlite has no public call for "run this function on the connection's thread", and each of
    its awaits is a thread hop plus a turn of the event loop; a batch as BEGIN, executemany and
    COMMIT is three, and under load each turn waits behind everything else the loop has to do.
    ``Connection._execute`` and ``Connection._conn`` (aiosqlite 0.17 to 0.22 at least) make it one.
    Without them we fall back to the public calls; tests/test_bench_smoke.py notices.
    """
    execute = getattr(db, "_execute", None)
    try:
        raw = getattr(db, "_conn", None)
    except ValueError:
        raw = None
    if execute is None or not isinstance(raw, sqlite3.Connection):
        return None
    run = cast(Callable[..., Awaitable[Any]], execute)

    async def on_thread(fn: Callable[..., Any], *args: Any) -> Any:
        return await run(fn, raw, *args)

    return on_thread


def _batch_runner(db: aiosqlite.Connection) -> BatchRunner | None:
    """Run :func:`_commit_batch` in one trip to the database thread (see :func:`_on_database_thread`)."""
    on_thread = _on_database_thread(db)
    if on_thread is None:
        return None

    async def commit(grouped: list[tuple[str, list[Params]]]) -> None:
        await on_thread(_commit_batch, grouped)

    return commit


class Writer:
    """The one writer. Control-plane work (compare-and-set, claims, the outbound ledger) goes
    ahead of queued inbound events: those are not acknowledged yet, so they may land in either
    order, and a prompt due now must not wait behind a burst of replies. Inbound writes are
    committed in batches of at most ``_MAX_BATCH``, one transaction each.
    """

    def __init__(self, db: aiosqlite.Connection, *, after_work: Callable[[], None] | None = None) -> None:
        self._db = db
        self._after_work = after_work  # after each transaction, batch or statement: the checkpointer's cue
        self._loop = asyncio.get_running_loop()
        self._inbound: list[Write] = []
        self._urgent: list[Write] = []  # outbound-ledger writes: committed ahead of the inbound ones
        self._control: deque[_Transaction | _Statement] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self.one_trip = _batch_runner(db)
        self._on_thread = _on_database_thread(db)
        self._task = asyncio.create_task(self._run(), name="popup-sqlite-writer")

    async def write(self, *statements: tuple[str, Params], urgent: bool = False) -> None:
        done: asyncio.Future[None] = self._loop.create_future()
        (self._urgent if urgent else self._inbound).append(Write(statements, done))
        self._wake.set()
        await done

    async def transaction(self, run: Txn[T]) -> T:
        done: asyncio.Future[T] = self._loop.create_future()
        self._control.append(_Transaction(run, done))
        self._wake.set()
        return await done

    async def statement(self, sql: str, params: Params) -> list[sqlite3.Row]:
        """Run one statement alone (ahead of queued inbound writes); its rows (say, RETURNING)."""
        done: asyncio.Future[list[sqlite3.Row]] = self._loop.create_future()
        self._control.append(_Statement(sql, params, done))
        self._wake.set()
        return await done

    async def close(self) -> None:
        self._stopping = True
        self._wake.set()
        await self._task

    async def _run(self) -> None:
        while True:
            if self._after_work is not None:
                self._after_work()
            if self._control:
                item = self._control.popleft()
                if isinstance(item, _Transaction):
                    await self._run_transaction(item)
                else:
                    statements = [item]
                    while self._control and len(statements) < _MAX_BATCH:
                        following = self._control[0]
                        if not isinstance(following, _Statement):
                            break  # a transaction stays in its place in the queue
                        statements.append(following)
                        self._control.popleft()
                    await self._run_statements(statements)
            elif self._urgent:
                # A small transaction of its own: riding in a big inbound batch would make the
                # post that waits for it wait for the whole batch.
                batch, self._urgent = self._urgent, []
                await self._commit_writes(batch)
            elif self._inbound:
                if len(self._inbound) <= _MAX_BATCH:
                    batch, self._inbound = self._inbound, []
                else:
                    batch = self._inbound[:_MAX_BATCH]
                    del self._inbound[:_MAX_BATCH]
                await self._commit_writes(batch)
            elif self._stopping:
                return
            else:
                self._wake.clear()
                await self._wake.wait()

    async def _commit_writes(self, writes: list[Write]) -> None:
        if not writes:
            return
        try:
            await self._apply(writes)
        except sqlite3.Error:
            # One bad row must not fail its neighbours: retry each write on its own.
            if len(writes) == 1:
                _log.exception("write failed")
                fail(writes[0].done, StorageError("write failed"))
                return
            for write in writes:
                await self._commit_writes([write])
            return
        settle(writes)

    async def _apply(self, writes: list[Write]) -> None:
        grouped = group_by_statement(writes)
        if self.one_trip is not None:
            await self.one_trip(list(grouped.items()))
            return
        await self._db.execute("BEGIN")
        try:
            for sql, rows in grouped.items():
                await self._db.executemany(sql, rows)
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise

    async def _run_statements(self, items: list[_Statement]) -> None:
        """Statements queued together (say, a wave of prompts falling due at once, each moving its
        state and claiming its post) share one transaction and one trip: one commit instead of one
        each. Each is atomic on its own either way; if any fails, all run again alone, so one
        statement's error stays its own, as when it ran by itself."""
        if len(items) == 1 or self._on_thread is None:
            for item in items:
                await self._run_statement(item)
            return
        try:
            results: list[list[sqlite3.Row]] = await self._on_thread(
                _statements_in_one_transaction, [(item.sql, item.params) for item in items]
            )
        except sqlite3.Error:
            for item in items:
                await self._run_statement(item)
            return
        for item, rows in zip(items, results, strict=True):
            if not item.done.done():
                item.done.set_result(rows)

    async def _run_statement(self, item: _Statement) -> None:
        try:
            rows = list(await self._db.execute_fetchall(item.sql, item.params))
        except Exception as exc:  # handed to the caller, who decides
            fail(item.done, exc)
        else:
            if not item.done.done():
                item.done.set_result(rows)

    async def _run_transaction(self, item: _Transaction) -> None:
        try:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                result = await item.run(self._db)
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
        except Exception as exc:  # handed to the caller, who decides
            fail(item.done, exc)
        else:
            if not item.done.done():
                item.done.set_result(result)
