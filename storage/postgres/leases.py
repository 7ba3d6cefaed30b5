"""Session leases on PostgreSQL (:class:`sessions.cluster.SessionLeases`): one process at a time runs
a session's step, by the database's clock.

A mixin of :class:`storage.postgres.PostgresStore`: one statement each on the store's pool.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sessions.cluster import Lease
from storage.postgres.rows import dt


class LeaseMethods:
    """:class:`sessions.cluster.SessionLeases` for PostgresStore."""

    _pool: Any

    async def take_lease(self, session_id: int, holder: str, seconds: float) -> Lease:
        # One statement, by the database's clock: takes a free or run-out lease, renews our own,
        # and otherwise (the conditional update does nothing) returns no row.
        row = await self._pool.fetchrow(
            "INSERT INTO session_leases AS l (session_id, holder, expires_at) "
            "VALUES ($1, $2, extract(epoch FROM clock_timestamp()) + $3) "
            "ON CONFLICT (session_id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
            "WHERE l.holder = excluded.holder OR l.expires_at <= extract(epoch FROM clock_timestamp()) "
            "RETURNING expires_at",
            session_id,
            holder,
            float(seconds),
        )
        if row is not None:
            return Lease(held=True, until=dt(row["expires_at"]))
        until = await self._pool.fetchval("SELECT expires_at FROM session_leases WHERE session_id = $1", session_id)
        # Gone meanwhile (given back): free now, the caller tries again at once.
        return Lease(held=False, until=dt(until) if until is not None else datetime.now(UTC))

    async def release_lease(self, session_id: int, holder: str) -> None:
        await self._pool.execute("DELETE FROM session_leases WHERE session_id = $1 AND holder = $2", session_id, holder)
