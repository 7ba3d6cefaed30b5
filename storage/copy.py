"""``popup copy``: a community's data from one database to another (SQLite to PostgreSQL and back),
verified by counts and checksums.

Both ends are opened through their stores first (so each is at the newest schema), then copied
table by table over connections of our own, with every row's id kept: exports, threads and the
outbound ledger keep pointing at the same things. The events that wait in their own tables
(deletions, edits, reactions) go in before the replies, and the replies go in as first stored, one
row per statement: the target's own triggers then fold the events in and count the tallies, exactly
as they did on the source. Finally every table, the tallies too, is compared on both ends: the
same number of rows and the same checksum of their values, or the copy fails.

Run it while no ``popup run`` writes to either database.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiosqlite

from sessions.errors import PopupError, StorageError
from storage.open import open_store
from storage.settings import StorageSettings

_log = logging.getLogger(__name__)

_BATCH = 5000
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[str, ...]  # what is copied
    derived: tuple[str, ...] = ()  # what the target's triggers work out again; compared, not copied
    words: tuple[str, ...] = ()  # members' words: bytea on PostgreSQL, TEXT on SQLite
    identity: bool = False  # an id column PostgreSQL generates (its sequence moves past the copied ids)

    @property
    def compared(self) -> tuple[str, ...]:
        return self.columns + self.derived


# In the order they are filled: what a row refers to before it, early events before the replies.
TABLES = (
    Table(
        "sessions",
        (
            "id",
            "plan_name",
            "title",
            "intro",
            "timezone",
            "state",
            "anonymous",
            "started_by",
            "started_at",
            "recap_at",
            "closed_at",
            "join_code",
            "pulse_at",
        ),
        identity=True,
    ),
    Table("session_channels", ("session_id", "position", "platform", "channel_id", "name", "joined_by")),
    Table("identity_links", ("platform", "user_id", "person", "linked_at")),
    Table("link_codes", ("code", "platform", "user_id", "created_at")),
    Table("prompts", ("id", "session_id", "position", "text", "due_at", "state", "posted_at"), identity=True),
    Table(
        "posts",
        (
            "id",
            "session_id",
            "prompt_id",
            "key",
            "platform",
            "channel_id",
            "attempts",
            "message_id",
            "thread_id",
            "thread_channel_id",
            "posted_at",
        ),
        identity=True,
    ),
    Table("inbound_events", ("platform", "delivery_id", "seen_at")),
    Table("deletions", ("platform", "channel_id", "message_id", "deleted_at")),
    Table("reply_edits", ("platform", "channel_id", "message_id", "edited_at", "text"), words=("text",)),
    Table("reactions", ("platform", "channel_id", "message_id", "user_id", "emoji", "present", "changed_at")),
    Table(
        "replies",
        (
            "id",
            "session_id",
            "prompt_id",
            "platform",
            "channel_id",
            "message_id",
            "author_id",
            "author_name",
            "text",
            "created_at",
        ),
        # The text goes in as it stands; the target's triggers fold in again the rest.
        derived=("edited_at", "deleted_at", "reactions", "edits"),
        words=("author_name", "text"),
        identity=True,
    ),
    # The web side's (migrations: SQLite 0006, PostgreSQL 0005). A thread post's id is "t" and its
    # row's id, so the ids are kept here too.
    Table("web_posts", ("id", "channel_id", "key", "thread_id", "content", "posted_at"), identity=True),
    Table("web_sign_ins", ("token_hash", "member", "expires_at", "used_at")),
    Table("web_plans", ("name", "plan", "created_by", "updated_at")),
    Table(
        "article_versions",
        ("id", "session_id", "markdown", "saved_by", "saved_at", "published_at"),
        words=("markdown",),
        identity=True,
    ),
    # Where the bot is installed (SQLite 0007, PostgreSQL 0006); tokens go over sealed as they are,
    # so the target needs the same POPUP_TOKEN_KEY. Install states last minutes: not copied.
    Table(
        "installs",
        (
            "platform",
            "enterprise_id",
            "team_id",
            "org_wide",
            "app_id",
            "bot_id",
            "bot_user_id",
            "bot_token",
            "scopes",
            "installed_by",
            "installed_at",
            "team_name",
            "enterprise_name",
        ),
    ),
    Table("channel_workspaces", ("platform", "channel_id", "enterprise_id", "team_id")),
)
TALLIES = (
    Table("tally_by_minute", ("session_id", "prompt_id", "minute", "replies", "reactions")),
    Table("tally_by_author", ("session_id", "platform", "author_id", "replies")),
    Table("tally_by_prompt", ("session_id", "prompt_id", "people")),
)

# Kept only by the PostgreSQL store (its standing replies per author and prompt): emptied with the
# rest, worked out again by the triggers, and checked through tally_by_prompt.
POSTGRES_TALLIES = ("tally_by_author_prompt",)


class CopyFailed(PopupError):
    """The copy did not verify: the message names the table that differs."""


@dataclass(frozen=True, slots=True)
class Tally:
    rows: int
    checksum: str


class _Side(Protocol):
    async def count(self, table: str) -> int: ...

    def read(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[Row]]: ...

    async def insert(self, table: Table, rows: list[Row]) -> None: ...

    async def after_copy(self, table: Table) -> None: ...

    async def clear(self) -> None: ...

    async def close(self) -> None: ...


class _SqliteSide:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @classmethod
    async def open(cls, settings: StorageSettings) -> _SqliteSide:
        db = await aiosqlite.connect(settings.path, isolation_level=None)
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA busy_timeout = 5000")
        return cls(db)

    async def count(self, table: str) -> int:
        rows = list(await self._db.execute_fetchall(f"SELECT count(*) FROM {table}", ()))
        return int(rows[0][0])

    async def read(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[Row]]:
        async with self._db.execute(f"SELECT {', '.join(columns)} FROM {table.name}") as cursor:
            while rows := await cursor.fetchmany(_BATCH):
                yield [tuple(row) for row in rows]

    async def insert(self, table: Table, rows: list[Row]) -> None:
        marks = ", ".join("?" for _ in table.columns)
        words = [table.columns.index(name) for name in table.words if name in table.columns]
        converted = [_words_as(row, words, str) for row in rows]
        await self._db.execute("BEGIN")
        try:
            await self._db.executemany(
                f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({marks})", converted
            )
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise

    async def after_copy(self, table: Table) -> None:
        return None

    async def clear(self) -> None:
        await self._db.execute("BEGIN")
        for table in (*reversed(TABLES), *TALLIES):
            await self._db.execute(f"DELETE FROM {table.name}")
        await self._db.execute("COMMIT")

    async def close(self) -> None:
        await self._db.close()


class _PostgresSide:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, settings: StorageSettings) -> _PostgresSide:
        import asyncpg

        return cls(await asyncpg.connect(settings.url))

    async def count(self, table: str) -> int:
        return int(await self._conn.fetchval(f"SELECT count(*) FROM {table}"))

    async def read(self, table: Table, columns: Sequence[str]) -> AsyncIterator[list[Row]]:
        async with self._conn.transaction(readonly=True):
            cursor = await self._conn.cursor(f"SELECT {', '.join(columns)} FROM {table.name}")
            while rows := await cursor.fetch(_BATCH):
                yield [tuple(row) for row in rows]

    async def insert(self, table: Table, rows: list[Row]) -> None:
        words = [table.columns.index(name) for name in table.words if name in table.columns]
        converted = [_words_as(row, words, bytes) for row in rows]
        async with self._conn.transaction():
            # One COPY a batch: the row triggers fold each reply's early events in, and the replies'
            # tally trigger counts the batch once (PostgreSQL migration 0007).
            await self._conn.copy_records_to_table(table.name, records=converted, columns=table.columns)

    async def after_copy(self, table: Table) -> None:
        if table.identity:
            # New rows made after the copy must not take a copied id.
            await self._conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"coalesce((SELECT max(id) FROM {table.name}), 0) + 1, false)"
            )

    async def clear(self) -> None:
        names = ", ".join([*(table.name for table in (*TABLES, *TALLIES)), *POSTGRES_TALLIES])
        await self._conn.execute(f"TRUNCATE {names}, session_leases RESTART IDENTITY")

    async def close(self) -> None:
        await self._conn.close()


def _words_as(row: Row, positions: Sequence[int], kind: type) -> Row:
    if not positions:
        return row
    values = list(row)
    for i in positions:
        value = values[i]
        if kind is bytes and isinstance(value, str):
            values[i] = value.encode("utf-8")
        elif kind is str and isinstance(value, bytes | memoryview):
            values[i] = bytes(value).decode("utf-8")
    return tuple(values)


async def _open_side(settings: StorageSettings) -> _Side:
    # Through the store first: it creates or migrates the schema, or refuses a newer one.
    store = await open_store(settings)
    await store.close()
    if settings.is_postgres:
        return await _PostgresSide.open(settings)
    return await _SqliteSide.open(settings)


async def tallies(side: _Side) -> dict[str, Tally]:
    """Rows and an order-free checksum of every table's values, members' words read as text."""
    found: dict[str, Tally] = {}
    for table in (*TABLES, *TALLIES):
        words = [table.compared.index(name) for name in table.words]
        total, rows = 0, 0
        async for batch in side.read(table, table.compared):
            for row in batch:
                canonical = repr(_canonical(_words_as(row, words, str))).encode("utf-8", "surrogatepass")
                total = (total + int.from_bytes(hashlib.sha256(canonical).digest(), "big")) % (1 << 256)
                rows += 1
        found[table.name] = Tally(rows=rows, checksum=f"{total:064x}")
    return found


def _canonical(row: Row) -> Row:
    # SQLite hands back a whole REAL as a float and PostgreSQL's integer columns as int: compare
    # numbers by value, whatever their Python type.
    return tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in row)


async def copy_data(source: StorageSettings, target: StorageSettings, *, replace: bool = False) -> str:
    """Copy everything from ``source`` into ``target`` and verify it; a one-line summary.

    A target that holds any session is refused unless ``replace`` (then it is emptied first).
    """
    async with contextlib.AsyncExitStack() as stack:
        reader = await _open_side(source)
        stack.push_async_callback(reader.close)
        writer = await _open_side(target)
        stack.push_async_callback(writer.close)
        held = await writer.count("sessions") + await writer.count("replies")
        if held:
            if not replace:
                raise StorageError(f"{target.where}: already holds data; add --force to replace it")
            await writer.clear()
        for table in TABLES:
            async for batch in reader.read(table, table.columns):
                await writer.insert(table, batch)
            await writer.after_copy(table)
        want, got = await tallies(reader), await tallies(writer)
        for name, expected in want.items():
            copied = got[name]
            if copied != expected:
                checksums = "equal" if copied.checksum == expected.checksum else "differ"
                raise CopyFailed(
                    f"{target.where}: table {name} differs after the copy ({copied.rows} rows, "
                    f"{expected.rows} expected; checksums {checksums})"
                )
    sessions, replies = want["sessions"].rows, want["replies"].rows
    return f"{sessions} sessions, {replies} replies; {len(want)} tables verified by count and checksum"
