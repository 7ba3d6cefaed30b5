"""Rows to records, by column name.

Each record's SELECT list is spelled here, next to the function that reads it, and every column
is read by its name: a column added to or moved in a SELECT cannot shift another's meaning.
Small results come as :class:`sqlite3.Row` (the connections' row factory). Streams of many rows
(a session's replies, a prompt's ranking) come as NamedTuples made by the cursor itself, so
reading a field by name costs what reading it by position did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar, cast

import aiosqlite

from sessions.model import ChannelRef, ThreadRef
from sessions.records import (
    PostRecord,
    PromptRecord,
    PromptState,
    RankedRow,
    ReplyRecord,
    SessionRecord,
    SessionState,
    ThreadTarget,
)

R = TypeVar("R")


def ts(moment: datetime) -> float:
    return moment.timestamp()


def dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def dt_or_none(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


# What NamedTuple._make does, less its Python frame and length check: the SELECT lists below are
# made from the NamedTuples' own fields, so the lengths always agree.
_new_tuple = tuple.__new__


def make_rows(cursor: aiosqlite.Cursor, factory: Callable[[sqlite3.Cursor, tuple[Any, ...]], R]) -> None:
    """Have ``cursor`` hand out ``factory(cursor, values)`` for each row it fetches from now on."""
    # sqlite3 takes any callable here; aiosqlite's annotation says a type.
    cursor.row_factory = cast(type, factory)


# -- sessions ------------------------------------------------------------------------------------

_SESSION_COLUMNS = (
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
)
SESSION_COLUMNS_OF_S = ", ".join(f"s.{name} AS {name}" for name in _SESSION_COLUMNS)  # FROM sessions AS s


def as_session(row: sqlite3.Row, channels: tuple[ChannelRef, ...]) -> SessionRecord:
    return SessionRecord(
        id=row["id"],
        plan_name=row["plan_name"],
        title=row["title"],
        intro=row["intro"],
        timezone=row["timezone"],
        state=SessionState(row["state"]),
        anonymous=bool(row["anonymous"]),
        started_by=row["started_by"],
        started_at=dt(row["started_at"]),
        recap_at=dt(row["recap_at"]),
        closed_at=dt_or_none(row["closed_at"]),
        join_code=row["join_code"],
        pulse_at=dt_or_none(row["pulse_at"]),
        channels=channels,
    )


# -- prompts -------------------------------------------------------------------------------------

PROMPT_COLUMNS = "id, session_id, position, text, due_at, state, posted_at"


def as_prompt(row: sqlite3.Row) -> PromptRecord:
    return PromptRecord(
        id=row["id"],
        session_id=row["session_id"],
        position=row["position"],
        text=row["text"],
        due_at=dt(row["due_at"]),
        state=PromptState(row["state"]),
        posted_at=dt_or_none(row["posted_at"]),
    )


# -- the outbound ledger -------------------------------------------------------------------------

POST_COLUMNS = "id, session_id, key, platform, channel_id, attempts, message_id, thread_id, thread_channel_id"


def as_post(row: sqlite3.Row) -> PostRecord:
    platform = row["platform"]
    thread = None
    if row["thread_id"] is not None:
        thread = ThreadRef(
            channel=ChannelRef(platform=platform, channel_id=row["thread_channel_id"]), thread_id=row["thread_id"]
        )
    return PostRecord(
        id=row["id"],
        session_id=row["session_id"],
        key=row["key"],
        channel=ChannelRef(platform=platform, channel_id=row["channel_id"]),
        attempts=row["attempts"],
        message_id=row["message_id"],
        thread=thread,
    )


THREAD_TARGET_QUERY = (
    "SELECT p.session_id AS session_id, p.prompt_id AS prompt_id, s.state AS session_state "
    "FROM posts AS p JOIN sessions AS s ON s.id = p.session_id "
    "WHERE p.platform = ? AND p.thread_id = ? AND p.prompt_id IS NOT NULL"
)

# A prompt's post attempted (perhaps by another process) whose platform id is not recorded yet.
THREAD_POST_UNDER_WAY_QUERY = (
    "SELECT 1 FROM posts AS p JOIN sessions AS s ON s.id = p.session_id "
    "WHERE p.platform = ? AND p.prompt_id IS NOT NULL AND p.attempts > 0 AND p.message_id IS NULL "
    "AND s.state IN ('scheduled', 'running', 'closing') LIMIT 1"
)


def as_thread_target(row: sqlite3.Row) -> ThreadTarget:
    return ThreadTarget(
        session_id=row["session_id"],
        prompt_id=row["prompt_id"],
        session_state=SessionState(row["session_state"]),
    )


# -- replies -------------------------------------------------------------------------------------


class ReplyRow(NamedTuple):
    """A row of ``replies`` as :data:`REPLY_COLUMNS` selects it."""

    id: int
    session_id: int
    prompt_id: int
    platform: str
    channel_id: str
    message_id: str
    author_id: str
    author_name: str
    text: str
    created_at: float
    edited_at: float | None
    reactions: int
    edits: int


REPLY_COLUMNS = ", ".join(ReplyRow._fields)


def reply_row(_cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> ReplyRow:
    return _new_tuple(ReplyRow, values)


def as_reply(row: ReplyRow) -> ReplyRecord:
    # Per reply of a whole export: datetimes made inline, not through dt() and dt_or_none().
    edited_at = row.edited_at
    return ReplyRecord(
        id=row.id,
        session_id=row.session_id,
        prompt_id=row.prompt_id,
        platform=row.platform,
        channel_id=row.channel_id,
        message_id=row.message_id,
        author_id=row.author_id,
        author_name=row.author_name,
        text=row.text,
        created_at=datetime.fromtimestamp(row.created_at, UTC),
        edited_at=None if edited_at is None else datetime.fromtimestamp(edited_at, UTC),
        reactions=row.reactions,
        edits=row.edits,
    )


# -- the recap's ranking ---------------------------------------------------------------------------

# The fields that are not plain columns. Size in bytes, not length(): it is never below the
# character count and, unlike length(), does not stop at a NUL, so it is a safe upper bound for the
# ranking's pruning.
_RANKED_EXPRESSIONS = {"size": "length(CAST(text AS BLOB))", "edited": "edited_at IS NOT NULL"}
RANKED_COLUMNS = ", ".join(
    f"{_RANKED_EXPRESSIONS[name]} AS {name}" if name in _RANKED_EXPRESSIONS else name for name in RankedRow._fields
)


def ranked_row(_cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> RankedRow:
    return _new_tuple(RankedRow, values)
