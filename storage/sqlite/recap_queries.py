""":class:`sessions.store.RecapQueries` on SQLite: the recap's read-only aggregates.

They run in SQLite, mostly over the tallies that triggers keep (migration 0003), so the recap of a
huge session never walks every row in Python.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import cast

import aiosqlite

from sessions.records import Participation, PeopleWhoWrote, RankedRow, TimeBin
from storage.sqlite.connections import fetch_all, fetch_one
from storage.sqlite.rows import RANKED_COLUMNS, dt, make_rows, ranked_row, ts

STANDING = "deleted_at IS NULL"
_FETCH_BATCH = 2000


class SqliteRecapQueries:
    """The recap's queries, on the read-only connection ``read``."""

    def __init__(self, read: aiosqlite.Connection) -> None:
        self._read = read

    async def last_reply_at(self, session_id: int) -> datetime | None:
        # One index probe per prompt (SQLite's min/max optimisation), whatever the session's size.
        # Pinned to the index that has created_at after (session_id, prompt_id): with statistics
        # for some indexes only (ANALYZE run before migration 0002), the planner may pick another.
        row = await fetch_one(
            self._read,
            "SELECT max((SELECT max(r.created_at) FROM replies AS r INDEXED BY replies_by_prompt_time "
            "WHERE r.session_id = p.session_id AND r.prompt_id = p.id)) AS last FROM prompts AS p "
            "WHERE p.session_id = ?",
            (session_id,),
        )
        return None if row is None or row["last"] is None else dt(row["last"])

    async def time_bins(self, session_id: int, origin: datetime, width_seconds: float) -> list[TimeBin]:
        if width_seconds <= 0:
            raise ValueError("width_seconds must be positive")
        start = ts(origin)
        if width_seconds % 60 or start % 60:
            # Bins that split a minute (a demo's 10 s, an origin off the minute): from the rows.
            return await self.time_bins_from_replies(session_id, start, width_seconds)
        # Whole minutes from a minute boundary: each minute of tally_by_minute (migration 0003)
        # falls in one bin, so a day is at most 1,440 tally rows a prompt however many replies it
        # had. Integer floor division, spelled out: negative bins (replies stamped before the
        # origin) need it, and SQLite's / and % truncate towards zero.
        rows = await fetch_all(
            self._read,
            "SELECT prompt_id, (d - (d % ?2 + ?2) % ?2) / ?2 AS bin, sum(replies) AS replies, "
            "sum(reactions) AS reactions FROM (SELECT prompt_id, minute - ?1 AS d, replies, reactions "
            "FROM tally_by_minute WHERE session_id = ?3) GROUP BY prompt_id, bin ORDER BY prompt_id, bin",
            (int(start // 60), int(width_seconds // 60), session_id),
        )
        return [_time_bin(row) for row in rows]

    async def time_bins_from_replies(self, session_id: int, start: float, width_seconds: float) -> list[TimeBin]:
        """:meth:`time_bins` read from the replies themselves: any origin (epoch seconds), any width."""
        span = await self._id_range(session_id)
        if span is None:
            return []
        rows = await fetch_all(
            self._read,
            # floor() without relying on SQLite's optional math functions.
            "SELECT prompt_id, CAST(x AS INTEGER) - (x < CAST(x AS INTEGER)) AS bin, count(*) AS replies, "
            "sum(reactions) AS reactions FROM (SELECT prompt_id, reactions, (created_at - ?) / ? AS x FROM replies "
            f"WHERE id BETWEEN ? AND ? AND +session_id = ? AND {STANDING}) GROUP BY prompt_id, bin "
            "ORDER BY prompt_id, bin",
            (start, float(width_seconds), span[0], span[1], session_id),
        )
        return [_time_bin(row) for row in rows]

    async def _id_range(self, session_id: int) -> tuple[int, int] | None:
        """The session's smallest and largest reply rowid (an index-only lookup).

        A session's replies arrive within one day, so they sit close together in rowid order:
        scanning that rowid range and filtering on ``+session_id`` (the ``+`` keeps the planner
        off the index) reads the table sequentially. Going through an index instead costs one
        B-tree descent per row, several times slower on a session of a million replies.
        """
        row = await fetch_one(
            self._read, "SELECT min(id) AS first, max(id) AS last FROM replies WHERE session_id = ?", (session_id,)
        )
        return None if row is None or row["first"] is None else (row["first"], row["last"])

    async def participants(self, session_id: int) -> Participation:
        # Both answers are kept counted by triggers (migration 0003): people per prompt is a row
        # per prompt, the distribution a GROUP BY over a row per person. Grouping the replies by
        # (person, prompt) here instead, even from the covering index replies_by_author_prompt,
        # walks every reply: 40x slower on a million of them, most of the recap's counting.
        rows = await fetch_all(
            self._read,
            "SELECT 'prompt' AS kind, prompt_id AS n, people FROM tally_by_prompt WHERE session_id = ?1 "
            "UNION ALL "
            "SELECT 'replies', replies, count(*) FROM tally_by_author WHERE session_id = ?1 GROUP BY replies",
            (session_id,),
        )
        per_prompt = {row["n"]: row["people"] for row in rows if row["kind"] == "prompt"}
        shares = [PeopleWhoWrote(replies=row["n"], people=row["people"]) for row in rows if row["kind"] == "replies"]
        return Participation(people_per_prompt=per_prompt, distribution=tuple(sorted(shares)))

    async def ranked_rows(
        self, session_id: int, prompt_id: int, *, best: int | None = None
    ) -> AsyncGenerator[list[RankedRow], None]:
        floor = ""
        params: tuple[int, ...] = (session_id, prompt_id)
        if best is not None and best > 0:
            # The best-th highest reaction count, walking replies_standing_by_reactions from the
            # top (migration 0002): rows with fewer reactions can never make the best, so they are
            # neither read nor sorted with their text (most of a big prompt's rows).
            floor = (
                "AND reactions >= ifnull((SELECT reactions FROM replies INDEXED BY replies_standing_by_reactions "
                f"WHERE session_id = ? AND prompt_id = ? AND {STANDING} ORDER BY reactions DESC "
                "LIMIT 1 OFFSET ?), -9223372036854775808) "
            )
            params += (session_id, prompt_id, best - 1)
        async with self._read.execute(
            f"SELECT {RANKED_COLUMNS} FROM replies WHERE session_id = ? AND prompt_id = ? AND {STANDING} {floor}"
            "ORDER BY reactions DESC, size DESC, created_at, id",
            params,
        ) as cursor:
            make_rows(cursor, ranked_row)  # typed rows straight from the cursor: the hot path's only cost
            while rows := cast("list[RankedRow]", await cursor.fetchmany(_FETCH_BATCH)):
                yield rows


def _time_bin(row: sqlite3.Row) -> TimeBin:
    return TimeBin(prompt_id=row["prompt_id"], bin=row["bin"], replies=row["replies"], reactions=row["reactions"])
