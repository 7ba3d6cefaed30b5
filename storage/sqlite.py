"""The store on SQLite, through aiosqlite.

Writes go through one writer task that commits them in groups: every caller awaits its own
write's COMMIT (so "acknowledged" always means "durable"), but concurrent inbound events share one
transaction and one ``executemany`` per statement, which is what makes a burst of replies cheap.
Inbound events are commutative by schema design (see migrations/0001_init.sql), so a batch may
group them by statement without changing the outcome. Multi-statement transactions that need an
answer (compare-and-set, create) run alone, between batches.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from sessions.errors import StorageError
from sessions.model import ChannelRef, MessageRef, Posted, ThreadRef
from sessions.records import (
    ACTIVE_STATES,
    NewReply,
    NewSession,
    PostRecord,
    PromptRecord,
    PromptState,
    ReplyRecord,
    SessionRecord,
    SessionState,
    SessionStats,
    ThreadTarget,
)

_log = logging.getLogger(__name__)

T = TypeVar("T")
Params = tuple[object, ...]
Txn = Callable[[aiosqlite.Connection], Awaitable[T]]

_MAX_BATCH = 128  # bounds each commit's wave of wake-ups, so a due prompt never waits long (bench: punctuality)
_FETCH_BATCH = 2000


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def _dt_required(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


# -- the writer ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Write:
    """One logical write: a few statements that must land together, batched with others."""

    statements: tuple[tuple[str, Params], ...]
    done: asyncio.Future[None]


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


BatchRunner = Callable[..., Awaitable[None]]


def _batch_runner(db: aiosqlite.Connection) -> BatchRunner | None:
    """Run :func:`_commit_batch` on aiosqlite's own thread, if this aiosqlite lets us.

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
    run = cast(Callable[..., Awaitable[None]], execute)

    async def commit(grouped: list[tuple[str, list[Params]]]) -> None:
        await run(_commit_batch, raw, grouped)

    return commit


class _Writer:
    """The one writer. Control-plane work (compare-and-set, claims, the outbound ledger) goes
    ahead of queued inbound events: those are not acknowledged yet, so they may land in either
    order, and a prompt due now must not wait behind a burst of replies. Inbound writes are
    committed in batches of at most ``_MAX_BATCH``, one transaction each.
    """

    def __init__(self, db: aiosqlite.Connection, *, after_work: Callable[[], None] | None = None) -> None:
        self._db = db
        self._after_work = after_work  # after each transaction, batch or statement: the checkpointer's cue
        self._loop = asyncio.get_running_loop()
        self._inbound: list[_Write] = []
        self._urgent: list[_Write] = []  # outbound-ledger writes: committed ahead of the inbound ones
        self._control: deque[_Transaction | _Statement] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        self.one_trip = _batch_runner(db)
        self._task = asyncio.create_task(self._run(), name="popup-sqlite-writer")

    async def write(self, *statements: tuple[str, Params], urgent: bool = False) -> None:
        done: asyncio.Future[None] = self._loop.create_future()
        (self._urgent if urgent else self._inbound).append(_Write(statements, done))
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
                    await self._run_statement(item)
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

    async def _commit_writes(self, writes: list[_Write]) -> None:
        if not writes:
            return
        try:
            await self._apply(writes)
        except sqlite3.Error:
            # One bad row must not fail its neighbours: retry each write on its own.
            if len(writes) == 1:
                _log.exception("write failed")
                _fail(writes[0].done, StorageError("write failed"))
                return
            for write in writes:
                await self._commit_writes([write])
            return
        for write in writes:
            if not write.done.done():
                write.done.set_result(None)

    async def _apply(self, writes: list[_Write]) -> None:
        grouped: dict[str, list[Params]] = {}
        for write in writes:
            for sql, params in write.statements:
                rows = grouped.get(sql)
                if rows is None:
                    grouped[sql] = [params]
                else:
                    rows.append(params)
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

    async def _run_statement(self, item: _Statement) -> None:
        try:
            rows = list(await self._db.execute_fetchall(item.sql, item.params))
        except Exception as exc:  # handed to the caller, who decides
            _fail(item.done, exc)
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
            _fail(item.done, exc)
        else:
            if not item.done.done():
                item.done.set_result(result)


class _Checkpointer:
    """Copies committed pages from the WAL into the database file, off the commit path.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, so every
    acknowledgement waiting on that commit waits for the copy too (tens of ms under load: the
    Slack benchmark's p99). With it off on the writer, this runs a PASSIVE checkpoint on a
    connection and thread of its own, at most every ``interval`` seconds while there are writes;
    in WAL mode that runs alongside the writer and the readers and never blocks them.
    """

    def __init__(self, db: aiosqlite.Connection, interval: float = 1.0) -> None:
        self._db = db
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Something was written: checkpoint unless one ran (or is running) lately."""
        now = self._loop.time()
        if now - self._last < self._interval or (self._task is not None and not self._task.done()):
            return
        self._last = now
        self._task = asyncio.create_task(self._checkpoint(), name="popup-sqlite-checkpoint")

    async def _checkpoint(self) -> None:
        try:
            await self._db.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)", ())
        except sqlite3.Error as exc:  # the next one will catch up; the data is safe in the WAL
            _log.warning("WAL checkpoint failed: %r", exc)

    async def close(self) -> None:
        if self._task is not None:
            await self._task
        # The last connection to close (the writer) checkpoints what is left and removes the WAL.
        await self._db.close()


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


# -- migrations ---------------------------------------------------------------------------------


def _migrations() -> list[tuple[int, str]]:
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def _migrate(db: aiosqlite.Connection, path: str) -> None:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    migrations = _migrations()
    latest = migrations[-1][0] if migrations else 0
    if current > latest:
        raise StorageError(
            f"storage.path {path!r}: database schema version {current} is newer than this Popup "
            f"knows ({latest}); upgrade Popup"
        )
    for number, script in migrations:
        if number <= current:
            continue
        # executescript commits first; the BEGIN/COMMIT make each migration all-or-nothing.
        await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {int(number)};\nCOMMIT;")
        _log.info("database migrated to schema %d", number)


# -- the store ----------------------------------------------------------------------------------

_SESSION_COLUMNS = (
    "id, plan_name, title, intro, timezone, state, anonymous, started_by, started_at, recap_at, closed_at"
)
_SESSION_COLUMNS_OF_S = ", ".join(f"s.{name.strip()}" for name in _SESSION_COLUMNS.split(","))
_PROMPT_COLUMNS = "id, session_id, position, text, due_at, state, posted_at"
_REPLY_COLUMNS = (
    "id, session_id, prompt_id, platform, channel_id, message_id, author_id, author_name, text, "
    "created_at, edited_at, reactions, edits"
)
_POST_COLUMNS = "id, session_id, key, platform, channel_id, attempts, message_id, thread_id, thread_channel_id"
_STANDING = "deleted_at IS NULL"

_INSERT_REPLY = (
    "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
    "author_name, text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (platform, channel_id, message_id) DO NOTHING"
)
_INSERT_DELIVERY = (
    "INSERT INTO inbound_events (platform, delivery_id, seen_at) VALUES (?, ?, ?) "
    "ON CONFLICT (platform, delivery_id) DO NOTHING"
)
_INSERT_EDIT = (
    "INSERT INTO reply_edits (platform, channel_id, message_id, edited_at, text) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_INSERT_EDIT_OF_KNOWN = (
    "INSERT INTO reply_edits (platform, channel_id, message_id, edited_at, text) "
    "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM replies "
    "WHERE platform = ?1 AND channel_id = ?2 AND message_id = ?3) "
    "ON CONFLICT DO NOTHING"
)
_INSERT_DELETION = (
    "INSERT INTO deletions (platform, channel_id, message_id, deleted_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_UPSERT_REACTION = (
    "INSERT INTO reactions (platform, channel_id, message_id, user_id, emoji, present, changed_at) "
    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM replies "
    "WHERE platform = ?1 AND channel_id = ?2 AND message_id = ?3) "
    "ON CONFLICT (platform, channel_id, message_id, user_id, emoji) DO UPDATE "
    "SET present = excluded.present, changed_at = excluded.changed_at "
    "WHERE excluded.changed_at >= reactions.changed_at"
)


class SqliteStore:
    """:class:`sessions.store.Store` on one SQLite file. Open with :meth:`open`."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        path: str,
        *,
        reader: aiosqlite.Connection | None = None,
        checkpointer: aiosqlite.Connection | None = None,
    ) -> None:
        self._db = db
        # Reads go to a connection (and a thread) of their own, so a slow one (a status count, a
        # recap over a big session) never holds up the commit that an acknowledgement waits for.
        # In WAL mode a read sees every commit made before it starts, so awaiting a write and
        # then reading still reads it. Only ":memory:" cannot be shared: it reads on the writer.
        self._read = reader or db
        self._path = path
        self._checkpointer = _Checkpointer(checkpointer) if checkpointer is not None else None
        self._writer = _Writer(db, after_work=self._checkpointer.poke if self._checkpointer else None)

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> SqliteStore:
        target = os.fspath(path)
        if target != ":memory:":
            _create_private_file(target)
        try:
            db = await aiosqlite.connect(target, isolation_level=None)
        except sqlite3.Error as exc:
            raise StorageError(f"storage.path {target!r}: cannot open: {exc}") from exc
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA busy_timeout = 5000")
            await _migrate(db, target)
        except sqlite3.DatabaseError as exc:
            await db.close()
            raise StorageError(f"storage.path {target!r}: not a usable SQLite database: {exc}") from exc
        except BaseException:
            await db.close()
            raise
        if target == ":memory:":
            return cls(db, target)
        helpers: list[aiosqlite.Connection] = []
        try:
            helpers.append(await _open_helper(target, query_only=True))
            helpers.append(await _open_helper(target, query_only=False))
            await db.execute("PRAGMA wal_autocheckpoint = 0")  # see _Checkpointer
        except BaseException:
            for helper in helpers:
                await helper.close()
            await db.close()
            raise
        return cls(db, target, reader=helpers[0], checkpointer=helpers[1])

    async def close(self) -> None:
        await self._writer.close()
        if self._read is not self._db:
            await self._read.close()
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self._db.close()

    async def integrity_check(self) -> str:
        row = await self._one("PRAGMA integrity_check", ())
        return str(row[0]) if row else "no answer"

    async def backup(self, target: str | os.PathLike[str]) -> None:
        """A consistent copy through SQLite's online backup, while the bot keeps writing."""
        _create_private_file(os.fspath(target))
        async with aiosqlite.connect(os.fspath(target)) as copy:
            await self._db.backup(copy)

    # -- reading helpers ---------------------------------------------------------------------

    # One trip to the database thread each (execute, fetch and close would be three).

    async def _all(self, sql: str, params: Params) -> list[sqlite3.Row]:
        return list(await self._read.execute_fetchall(sql, params))

    async def _one(self, sql: str, params: Params) -> sqlite3.Row | None:
        rows = await self._read.execute_fetchall(sql, params)
        return next(iter(rows), None)

    # -- sessions and prompts ----------------------------------------------------------------

    async def create_session(self, new: NewSession) -> SessionRecord | None:
        async def create(db: aiosqlite.Connection) -> int | None:
            if await _active_session_id(db, new.channel) is not None:
                return None
            cursor = await db.execute(
                "INSERT INTO sessions (plan_name, title, intro, timezone, state, anonymous, started_by, "
                "started_at, recap_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.plan_name,
                    new.title,
                    new.intro,
                    new.timezone,
                    SessionState.SCHEDULED.value,
                    int(new.anonymous),
                    new.started_by,
                    _ts(new.started_at),
                    _ts(new.recap_at),
                ),
            )
            session_id = cursor.lastrowid
            assert session_id is not None
            await db.execute(
                "INSERT INTO session_channels (session_id, position, platform, channel_id) VALUES (?, 0, ?, ?)",
                (session_id, new.channel.platform, new.channel.channel_id),
            )
            await db.executemany(
                "INSERT INTO prompts (session_id, position, text, due_at, state) VALUES (?, ?, ?, ?, ?)",
                [
                    (session_id, position, prompt.text, _ts(prompt.due_at), PromptState.PENDING.value)
                    for position, prompt in enumerate(new.prompts, start=1)
                ],
            )
            return session_id

        session_id = await self._writer.transaction(create)
        return None if session_id is None else await self.get_session(session_id)

    async def get_session(self, session_id: int) -> SessionRecord | None:
        rows = await self._sessions_where("s.id = ?", (session_id,))
        return rows[0] if rows else None

    async def active_session(self, channel: ChannelRef) -> SessionRecord | None:
        session_id = await _active_session_id(self._read, channel)
        return None if session_id is None else await self.get_session(session_id)

    async def latest_session(self, channel: ChannelRef) -> SessionRecord | None:
        row = await self._one(
            "SELECT max(session_id) FROM session_channels WHERE platform = ? AND channel_id = ?",
            (channel.platform, channel.channel_id),
        )
        return None if row is None or row[0] is None else await self.get_session(int(row[0]))

    async def list_sessions(self, states: Sequence[SessionState] = ()) -> list[SessionRecord]:
        if not states:
            return await self._sessions_where("1 = 1", ())
        marks = ", ".join("?" for _ in states)
        return await self._sessions_where(f"s.state IN ({marks})", tuple(s.value for s in states))

    async def _sessions_where(self, condition: str, params: Params) -> list[SessionRecord]:
        # ``condition`` is always a literal from this module; values travel as parameters. One
        # query (one trip to the database thread) for the sessions and their channels together.
        rows = await self._all(
            f"SELECT {_SESSION_COLUMNS_OF_S}, c.platform, c.channel_id FROM sessions AS s "
            f"LEFT JOIN session_channels AS c ON c.session_id = s.id WHERE {condition} ORDER BY s.id, c.position",
            params,
        )
        found: dict[int, tuple[sqlite3.Row, list[ChannelRef]]] = {}
        for row in rows:
            session_id = int(row[0])
            entry = found.get(session_id)
            if entry is None:
                entry = found[session_id] = (row, [])
            if row[-2] is not None:
                entry[1].append(ChannelRef(platform=row[-2], channel_id=row[-1]))
        return [_session(row, tuple(channels)) for row, channels in found.values()]

    async def set_session_state(
        self,
        session_id: int,
        expected: Sequence[SessionState],
        new: SessionState,
        *,
        at: datetime | None = None,
    ) -> bool:
        marks = ", ".join("?" for _ in expected)
        closed_at = _ts(at) if at is not None and new.is_terminal else None
        sql = f"UPDATE sessions SET state = ?, closed_at = coalesce(?, closed_at) WHERE id = ? AND state IN ({marks})"
        params = (new.value, closed_at, session_id, *(s.value for s in expected))
        return await self._compare_and_set(sql, params)

    async def _compare_and_set(self, sql: str, params: Params) -> bool:
        # One UPDATE in autocommit mode is atomic on its own: no BEGIN/COMMIT trips needed.
        return len(await self._writer.statement(f"{sql} RETURNING id", params)) == 1

    async def prompts(self, session_id: int) -> list[PromptRecord]:
        rows = await self._all(
            f"SELECT {_PROMPT_COLUMNS} FROM prompts WHERE session_id = ? ORDER BY position",
            (session_id,),
        )
        return [_prompt(row) for row in rows]

    async def set_prompt_state(
        self,
        prompt_id: int,
        expected: Sequence[PromptState],
        new: PromptState,
        *,
        at: datetime | None = None,
    ) -> bool:
        marks = ", ".join("?" for _ in expected)
        posted_at = _ts(at) if at is not None and new is PromptState.POSTED else None
        sql = f"UPDATE prompts SET state = ?, posted_at = coalesce(?, posted_at) WHERE id = ? AND state IN ({marks})"
        return await self._compare_and_set(sql, (new.value, posted_at, prompt_id, *(s.value for s in expected)))

    # -- the outbound ledger -----------------------------------------------------------------

    async def claim_post(
        self, session_id: int, key: str, channel: ChannelRef, *, prompt_id: int | None = None
    ) -> PostRecord:
        # One statement: creates the intent, or (the no-op update) hands back the one there is.
        rows = await self._writer.statement(
            "INSERT INTO posts (session_id, prompt_id, key, platform, channel_id) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (session_id, key, platform, channel_id) DO UPDATE SET attempts = posts.attempts "
            f"RETURNING {_POST_COLUMNS}",
            (session_id, prompt_id, key, channel.platform, channel.channel_id),
        )
        assert len(rows) == 1
        return _post(rows[0])

    async def note_attempt(self, post_id: int) -> None:
        await self._writer.write(("UPDATE posts SET attempts = attempts + 1 WHERE id = ?", (post_id,)), urgent=True)

    async def record_posted(self, post_id: int, posted: Posted, *, at: datetime) -> None:
        thread = posted.thread
        await self._writer.write(
            (
                "UPDATE posts SET message_id = ?, thread_id = ?, thread_channel_id = ?, posted_at = ? WHERE id = ?",
                (
                    posted.message.message_id,
                    thread.thread_id if thread else None,
                    thread.channel.channel_id if thread else None,
                    _ts(at),
                    post_id,
                ),
            ),
            urgent=True,
        )

    async def posts(self, session_id: int) -> list[PostRecord]:
        rows = await self._all(
            f"SELECT {_POST_COLUMNS} FROM posts WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
        return [_post(row) for row in rows]

    async def thread_target(self, platform: str, thread_id: str) -> ThreadTarget | None:
        row = await self._one(
            "SELECT p.session_id, p.prompt_id, s.state FROM posts AS p JOIN sessions AS s "
            "ON s.id = p.session_id WHERE p.platform = ? AND p.thread_id = ? AND p.prompt_id IS NOT NULL",
            (platform, thread_id),
        )
        if row is None:
            return None
        return ThreadTarget(session_id=int(row[0]), prompt_id=int(row[1]), session_state=SessionState(row[2]))

    # -- replies -----------------------------------------------------------------------------

    def _delivery(self, platform: str, delivery_id: str | None, at: float) -> tuple[tuple[str, Params], ...]:
        return () if delivery_id is None else ((_INSERT_DELIVERY, (platform, delivery_id, at)),)

    async def add_reply(self, reply: NewReply) -> None:
        created = _ts(reply.created_at)
        await self._writer.write(
            *self._delivery(reply.platform, reply.delivery_id, created),
            (
                _INSERT_REPLY,
                (
                    reply.session_id,
                    reply.prompt_id,
                    reply.platform,
                    reply.channel_id,
                    reply.message_id,
                    reply.author_id,
                    reply.author_name,
                    reply.text,
                    created,
                ),
            ),
        )

    async def edit_reply(
        self,
        message: MessageRef,
        text: str,
        *,
        at: datetime,
        keep_if_unknown: bool = False,
        delivery_id: str | None = None,
    ) -> None:
        channel = message.channel
        sql = _INSERT_EDIT if keep_if_unknown else _INSERT_EDIT_OF_KNOWN
        await self._writer.write(
            *self._delivery(channel.platform, delivery_id, _ts(at)),
            (sql, (channel.platform, channel.channel_id, message.message_id, _ts(at), text)),
        )

    async def delete_reply(self, message: MessageRef, *, at: datetime, delivery_id: str | None = None) -> None:
        channel = message.channel
        await self._writer.write(
            *self._delivery(channel.platform, delivery_id, _ts(at)),
            (_INSERT_DELETION, (channel.platform, channel.channel_id, message.message_id, _ts(at))),
        )

    async def set_reaction(
        self,
        message: MessageRef,
        user_id: str,
        emoji: str,
        *,
        added: bool,
        at: datetime,
        delivery_id: str | None = None,
    ) -> None:
        channel = message.channel
        await self._writer.write(
            *self._delivery(channel.platform, delivery_id, _ts(at)),
            (
                _UPSERT_REACTION,
                (channel.platform, channel.channel_id, message.message_id, user_id, emoji, int(added), _ts(at)),
            ),
        )

    async def forget_author(self, session_id: int, platform: str, author_id: str) -> int:
        mine = (
            "SELECT platform, channel_id, message_id FROM replies "
            "WHERE session_id = ? AND platform = ? AND author_id = ?"
        )
        session_messages = "SELECT platform, channel_id, message_id FROM replies WHERE session_id = ?"
        key = (session_id, platform, author_id)
        # Transactions go ahead of queued inbound writes; a reply sent just before the "forget"
        # must not land after it, so let everything queued so far commit first.
        await self._writer.write()

        async def forget(db: aiosqlite.Connection) -> int:
            for table in ("reply_edits", "reactions", "deletions"):
                await db.execute(
                    f"DELETE FROM {table} WHERE (platform, channel_id, message_id) IN ({mine})",
                    key,
                )
            # Their reactions on other people's replies go too; the trigger keeps counts right.
            await db.execute(
                "UPDATE reactions SET present = 0 WHERE platform = ? AND user_id = ? "
                f"AND (platform, channel_id, message_id) IN ({session_messages})",
                (platform, author_id, session_id),
            )
            await db.execute(
                "DELETE FROM reactions WHERE platform = ? AND user_id = ? "
                f"AND (platform, channel_id, message_id) IN ({session_messages})",
                (platform, author_id, session_id),
            )
            cursor = await db.execute(
                "DELETE FROM replies WHERE session_id = ? AND platform = ? AND author_id = ?", key
            )
            return cursor.rowcount

        return await self._writer.transaction(forget)

    async def session_stats(self, session_id: int) -> SessionStats:
        # From the recap tallies (migration 0003): `/popup status` reads a row per prompt and
        # minute and one per person, not every reply, however busy the session.
        per_prompt = await self._all(
            "SELECT prompt_id, sum(replies), sum(reactions) FROM tally_by_minute "
            "WHERE session_id = ? GROUP BY prompt_id",
            (session_id,),
        )
        people = await self._one("SELECT count(*) FROM tally_by_author WHERE session_id = ?", (session_id,))
        counts = {int(r[0]): int(r[1]) for r in per_prompt}
        return SessionStats(
            replies=sum(counts.values()),
            participants=int(people[0]) if people else 0,
            replies_per_prompt=counts,
            reactions=sum(int(r[2]) for r in per_prompt),
        )

    async def top_replies(self, session_id: int, prompt_id: int, limit: int) -> list[ReplyRecord]:
        rows = await self._all(
            f"SELECT {_REPLY_COLUMNS} FROM replies WHERE session_id = ? AND prompt_id = ? "
            f"AND {_STANDING} ORDER BY reactions DESC, length(text) DESC, id LIMIT ?",
            (session_id, prompt_id, limit),
        )
        return [_reply(row) for row in rows]

    async def iter_replies(self, session_id: int, *, prompt_id: int | None = None) -> AsyncIterator[ReplyRecord]:
        prompt_ids: Iterable[int] = [p.id for p in await self.prompts(session_id)] if prompt_id is None else [prompt_id]
        for pid in prompt_ids:
            async with self._read.execute(
                f"SELECT {_REPLY_COLUMNS} FROM replies WHERE session_id = ? AND prompt_id = ? "
                f"AND {_STANDING} ORDER BY created_at, id",
                (session_id, pid),
            ) as cursor:
                while rows := await cursor.fetchmany(_FETCH_BATCH):
                    for row in rows:
                        yield _reply(row)

    # -- recap queries -------------------------------------------------------------------------
    # Aggregates run in SQLite so the recap of a huge session never walks every row in Python.

    async def recap_last_reply_at(self, session_id: int) -> datetime | None:
        # One index probe per prompt (SQLite's min/max optimisation), whatever the session's size.
        # Pinned to the index that has created_at after (session_id, prompt_id): with statistics
        # for some indexes only (ANALYZE run before migration 0002), the planner may pick another.
        row = await self._one(
            "SELECT max((SELECT max(r.created_at) FROM replies AS r INDEXED BY replies_by_prompt_time "
            "WHERE r.session_id = p.session_id AND r.prompt_id = p.id)) FROM prompts AS p WHERE p.session_id = ?",
            (session_id,),
        )
        return None if row is None or row[0] is None else _dt_required(row[0])

    async def _recap_id_range(self, session_id: int) -> tuple[int, int] | None:
        """The session's smallest and largest reply rowid (an index-only lookup).

        A session's replies arrive within one day, so they sit close together in rowid order:
        scanning that rowid range and filtering on ``+session_id`` (the ``+`` keeps the planner
        off the index) reads the table sequentially. Going through an index instead costs one
        B-tree descent per row, several times slower on a session of a million replies.
        """
        row = await self._one("SELECT min(id), max(id) FROM replies WHERE session_id = ?", (session_id,))
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    async def recap_time_bins(
        self, session_id: int, origin: datetime, width_seconds: float
    ) -> list[tuple[int, int, int, int]]:
        if width_seconds <= 0:
            raise ValueError("width_seconds must be positive")
        start = _ts(origin)
        if width_seconds % 60 or start % 60:
            # Bins that split a minute (a demo's 10 s, an origin off the minute): from the rows.
            return await self._recap_time_bins_scan(session_id, start, width_seconds)
        # Whole minutes from a minute boundary: each minute of tally_by_minute (migration 0003)
        # falls in one bin, so a day is at most 1,440 tally rows a prompt however many replies it
        # had. Integer floor division, spelled out: negative bins (replies stamped before the
        # origin) need it, and SQLite's / and % truncate towards zero.
        rows = await self._all(
            "SELECT prompt_id, (d - (d % ?2 + ?2) % ?2) / ?2 AS bin, sum(replies), sum(reactions) "
            "FROM (SELECT prompt_id, minute - ?1 AS d, replies, reactions FROM tally_by_minute "
            "WHERE session_id = ?3) GROUP BY prompt_id, bin ORDER BY prompt_id, bin",
            (int(start // 60), int(width_seconds // 60), session_id),
        )
        return [(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]

    async def _recap_time_bins_scan(
        self, session_id: int, start: float, width_seconds: float
    ) -> list[tuple[int, int, int, int]]:
        """:meth:`recap_time_bins` read from the replies themselves: any origin, any width."""
        span = await self._recap_id_range(session_id)
        if span is None:
            return []
        rows = await self._all(
            # floor() without relying on SQLite's optional math functions.
            "SELECT prompt_id, CAST(x AS INTEGER) - (x < CAST(x AS INTEGER)) AS bin, count(*), sum(reactions) "
            "FROM (SELECT prompt_id, reactions, (created_at - ?) / ? AS x FROM replies "
            f"WHERE id BETWEEN ? AND ? AND +session_id = ? AND {_STANDING}) GROUP BY prompt_id, bin "
            "ORDER BY prompt_id, bin",
            (start, float(width_seconds), span[0], span[1], session_id),
        )
        return [(int(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in rows]

    async def recap_participants(self, session_id: int) -> tuple[dict[int, int], list[tuple[int, int]]]:
        # Both answers are kept counted by triggers (migration 0003): people per prompt is a row
        # per prompt, the distribution a GROUP BY over a row per person. Grouping the replies by
        # (person, prompt) here instead, even from the covering index replies_by_author_prompt,
        # walks every reply: 40x slower on a million of them, most of the recap's counting.
        rows = await self._all(
            "SELECT 0, prompt_id, people FROM tally_by_prompt WHERE session_id = ?1 "
            "UNION ALL "
            "SELECT 1, replies, count(*) FROM tally_by_author WHERE session_id = ?1 GROUP BY replies",
            (session_id,),
        )
        per_prompt = {int(r[1]): int(r[2]) for r in rows if r[0] == 0}
        distribution = sorted((int(r[1]), int(r[2])) for r in rows if r[0] == 1)
        return per_prompt, distribution

    async def recap_ranked_rows(
        self, session_id: int, prompt_id: int, *, best: int | None = None
    ) -> AsyncGenerator[list[tuple[int, int, int, float, int, str, str]], None]:
        # Size in bytes, not length(): it is never below the character count and, unlike
        # length(), does not stop at a NUL, so it is a safe upper bound for the ranking's pruning.
        floor = ""
        params: tuple[int, ...] = (session_id, prompt_id)
        if best is not None and best > 0:
            # The best-th highest reaction count, walking replies_standing_by_reactions from the
            # top (migration 0002): rows with fewer reactions can never make the best, so they are
            # neither read nor sorted with their text (most of a big prompt's rows).
            floor = (
                "AND reactions >= ifnull((SELECT reactions FROM replies INDEXED BY replies_standing_by_reactions "
                f"WHERE session_id = ? AND prompt_id = ? AND {_STANDING} ORDER BY reactions DESC "
                "LIMIT 1 OFFSET ?), -9223372036854775808) "
            )
            params += (session_id, prompt_id, best - 1)
        async with self._read.execute(
            "SELECT id, reactions, length(CAST(text AS BLOB)) AS size, created_at, edited_at IS NOT NULL, "
            f"author_name, text FROM replies WHERE session_id = ? AND prompt_id = ? AND {_STANDING} {floor}"
            "ORDER BY reactions DESC, size DESC, created_at, id",
            params,
        ) as cursor:
            while rows := await cursor.fetchmany(_FETCH_BATCH):
                # Plain tuples already (no row_factory): no per-row conversion on the hot path.
                yield cast("list[tuple[int, int, int, float, int, str, str]]", list(rows))


async def _open_helper(target: str, *, query_only: bool) -> aiosqlite.Connection:
    """A second connection to the writer's file: the reader, or the checkpointer."""
    helper = await aiosqlite.connect(target, isolation_level=None)
    try:
        if query_only:
            await helper.execute("PRAGMA query_only = ON")  # a read path that writes is a bug: fail loudly
        await helper.execute("PRAGMA busy_timeout = 5000")
    except BaseException:
        await helper.close()
        raise
    return helper


def _create_private_file(target: str) -> None:
    """Replies are personal data: the file (and so its -wal/-shm) is readable by its owner only."""
    folder = Path(target).resolve().parent
    if not folder.is_dir():
        raise StorageError(f"storage.path {target!r}: folder {str(folder)!r} does not exist")
    os.close(os.open(target, os.O_CREAT | os.O_RDWR, 0o600))


async def _active_session_id(db: aiosqlite.Connection, channel: ChannelRef) -> int | None:
    marks = ", ".join("?" for _ in ACTIVE_STATES)
    rows = await db.execute_fetchall(
        "SELECT s.id FROM session_channels AS c JOIN sessions AS s ON s.id = c.session_id "
        f"WHERE c.platform = ? AND c.channel_id = ? AND s.state IN ({marks}) ORDER BY s.id DESC LIMIT 1",
        (channel.platform, channel.channel_id, *(s.value for s in ACTIVE_STATES)),
    )
    row = next(iter(rows), None)
    return None if row is None else int(row[0])


# -- row mapping ---------------------------------------------------------------------------------


def _session(row: sqlite3.Row, channels: tuple[ChannelRef, ...]) -> SessionRecord:
    return SessionRecord(
        id=int(row[0]),
        plan_name=row[1],
        title=row[2],
        intro=row[3],
        timezone=row[4],
        state=SessionState(row[5]),
        anonymous=bool(row[6]),
        started_by=row[7],
        started_at=_dt_required(row[8]),
        recap_at=_dt_required(row[9]),
        closed_at=_dt(row[10]),
        channels=channels,
    )


def _prompt(row: sqlite3.Row) -> PromptRecord:
    return PromptRecord(
        id=int(row[0]),
        session_id=int(row[1]),
        position=int(row[2]),
        text=row[3],
        due_at=_dt_required(row[4]),
        state=PromptState(row[5]),
        posted_at=_dt(row[6]),
    )


def _post(row: sqlite3.Row) -> PostRecord:
    channel = ChannelRef(platform=row[3], channel_id=row[4])
    thread = None
    if row[7] is not None:
        thread = ThreadRef(channel=ChannelRef(platform=row[3], channel_id=row[8]), thread_id=row[7])
    return PostRecord(
        id=int(row[0]),
        session_id=int(row[1]),
        key=row[2],
        channel=channel,
        attempts=int(row[5]),
        message_id=row[6],
        thread=thread,
    )


def _reply(row: sqlite3.Row) -> ReplyRecord:
    return ReplyRecord(
        id=int(row[0]),
        session_id=int(row[1]),
        prompt_id=int(row[2]),
        platform=row[3],
        channel_id=row[4],
        message_id=row[5],
        author_id=row[6],
        author_name=row[7],
        text=row[8],
        created_at=_dt_required(row[9]),
        edited_at=_dt(row[10]),
        reactions=int(row[11]),
        edits=int(row[12]),
    )
