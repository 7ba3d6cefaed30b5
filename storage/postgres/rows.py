"""asyncpg records to Popup's records, by column name.

Sessions, prompts, posts and thread targets read exactly as the SQLite store's rows do (same column
names, same values: epoch seconds, 0/1), so :mod:`storage.sqlite.rows` converts them for both.
Replies and ranked rows differ in one way: members' words are stored as UTF-8 bytes (bytea).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sessions.records import RankedRow, ReplyRecord
from storage.sqlite.rows import (
    POST_COLUMNS,
    PROMPT_COLUMNS,
    SESSION_COLUMNS_OF_S,
    ReplyRow,
    as_post,
    as_prompt,
    as_session,
    as_thread_target,
    dt,
    ts,
)

__all__ = [
    "POST_COLUMNS",
    "PROMPT_COLUMNS",
    "RANKED_COLUMNS",
    "REPLY_COLUMNS",
    "SESSION_COLUMNS_OF_S",
    "THREAD_POST_UNDER_WAY_QUERY",
    "THREAD_TARGET_QUERY",
    "as_post",
    "as_prompt",
    "as_ranked",
    "as_reply",
    "as_session",
    "as_thread_target",
    "dt",
    "ts",
]

REPLY_COLUMNS = ", ".join(ReplyRow._fields)

THREAD_TARGET_QUERY = (
    "SELECT p.session_id AS session_id, p.prompt_id AS prompt_id, s.state AS session_state "
    "FROM posts AS p JOIN sessions AS s ON s.id = p.session_id "
    "WHERE p.platform = $1 AND p.thread_id = $2 AND p.prompt_id IS NOT NULL"
)

# A prompt's post attempted (perhaps by another process) whose platform id is not recorded yet.
THREAD_POST_UNDER_WAY_QUERY = (
    "SELECT 1 FROM posts AS p JOIN sessions AS s ON s.id = p.session_id "
    "WHERE p.platform = $1 AND p.prompt_id IS NOT NULL AND p.attempts > 0 AND p.message_id IS NULL "
    "AND s.state IN ('scheduled', 'running', 'closing') LIMIT 1"
)

_RANKED_EXPRESSIONS = {"size": "octet_length(text)", "edited": "(edited_at IS NOT NULL)::integer"}
RANKED_COLUMNS = ", ".join(
    f"{_RANKED_EXPRESSIONS[name]} AS {name}" if name in _RANKED_EXPRESSIONS else name for name in RankedRow._fields
)

_new_tuple = tuple.__new__


def as_reply(row: Any) -> ReplyRecord:
    edited_at = row["edited_at"]
    return ReplyRecord(
        id=row["id"],
        session_id=row["session_id"],
        prompt_id=row["prompt_id"],
        platform=row["platform"],
        channel_id=row["channel_id"],
        message_id=row["message_id"],
        author_id=row["author_id"],
        author_name=bytes(row["author_name"]).decode("utf-8"),
        text=bytes(row["text"]).decode("utf-8"),
        created_at=datetime.fromtimestamp(row["created_at"], UTC),
        edited_at=None if edited_at is None else datetime.fromtimestamp(edited_at, UTC),
        reactions=row["reactions"],
        edits=row["edits"],
    )


def as_ranked(rows: Sequence[Any]) -> list[RankedRow]:
    # Records come in RankedRow's field order (RANKED_COLUMNS); only the words need decoding.
    return [
        _new_tuple(
            RankedRow,
            (r[0], r[1], r[2], r[3], r[4], bytes(r[5]).decode("utf-8"), bytes(r[6]).decode("utf-8"), r[7], r[8]),
        )
        for r in rows
    ]
