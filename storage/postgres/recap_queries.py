""":class:`sessions.store.RecapQueries` on PostgreSQL: the recap's read-only aggregates.

The same answers as :mod:`storage.sqlite.recap_queries`, mostly from the tallies the schema's
triggers keep (migrations/0001_init.sql), so the recap of a huge session never walks every row in
Python.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

from sessions.records import Participation, PeopleWhoWrote, RankedRow, TimeBin
from storage.postgres.rows import RANKED_COLUMNS, as_ranked, dt, ts

STANDING = "deleted_at IS NULL"
_FETCH_BATCH = 2000


class PostgresRecapQueries:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def last_reply_at(self, session_id: int) -> datetime | None:
        # One index probe per prompt (replies_by_prompt_time), whatever the session's size.
        last = await self._pool.fetchval(
            "SELECT max((SELECT max(r.created_at) FROM replies AS r "
            "WHERE r.session_id = p.session_id AND r.prompt_id = p.id)) FROM prompts AS p WHERE p.session_id = $1",
            session_id,
        )
        return None if last is None else dt(last)

    async def time_bins(self, session_id: int, origin: datetime, width_seconds: float) -> list[TimeBin]:
        if width_seconds <= 0:
            raise ValueError("width_seconds must be positive")
        start = ts(origin)
        if width_seconds % 60 or start % 60:
            return await self.time_bins_from_replies(session_id, start, width_seconds)
        # Whole minutes from a minute boundary: each tallied minute falls in one bin.
        rows = await self._pool.fetch(
            "SELECT prompt_id, floor((minute - $1)::float8 / $2)::bigint AS bin, sum(replies)::bigint AS replies, "
            "sum(reactions)::bigint AS reactions FROM tally_by_minute WHERE session_id = $3 "
            "GROUP BY prompt_id, bin ORDER BY prompt_id, bin",
            int(start // 60),
            int(width_seconds // 60),
            session_id,
        )
        return [_time_bin(row) for row in rows]

    async def time_bins_from_replies(self, session_id: int, start: float, width_seconds: float) -> list[TimeBin]:
        """:meth:`time_bins` read from the replies themselves: any origin (epoch seconds), any width."""
        rows = await self._pool.fetch(
            "SELECT prompt_id, floor((created_at - $1) / $2)::bigint AS bin, count(*) AS replies, "
            f"sum(reactions)::bigint AS reactions FROM replies WHERE session_id = $3 AND {STANDING} "
            "GROUP BY prompt_id, bin ORDER BY prompt_id, bin",
            start,
            float(width_seconds),
            session_id,
        )
        return [_time_bin(row) for row in rows]

    async def participants(self, session_id: int) -> Participation:
        rows = await self._pool.fetch(
            "SELECT 'prompt' AS kind, prompt_id AS n, people::bigint AS people FROM tally_by_prompt "
            "WHERE session_id = $1 "
            "UNION ALL "
            "SELECT 'replies', replies, count(*) FROM tally_by_author WHERE session_id = $1 GROUP BY replies",
            session_id,
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
            # Rows with fewer reactions than the best-th most reacted one can never make the best.
            floor = (
                "AND reactions >= coalesce((SELECT reactions FROM replies "
                f"WHERE session_id = $1 AND prompt_id = $2 AND {STANDING} ORDER BY reactions DESC "
                "LIMIT 1 OFFSET $3), -2147483648) "
            )
            params += (best - 1,)
        query = (
            f"SELECT {RANKED_COLUMNS} FROM replies WHERE session_id = $1 AND prompt_id = $2 AND {STANDING} {floor}"
            "ORDER BY reactions DESC, size DESC, created_at, id"
        )
        async with self._pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(query, *params)
            while rows := await cursor.fetch(_FETCH_BATCH):
                yield as_ranked(rows)


def _time_bin(row: Any) -> TimeBin:
    return TimeBin(prompt_id=row["prompt_id"], bin=row["bin"], replies=row["replies"], reactions=row["reactions"])
