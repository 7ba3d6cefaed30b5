"""Housekeeping on PostgreSQL: pruning what can no longer matter, and the figures of what is kept.

The policy (what, and for how long) is :mod:`sessions.retention`'s; this module only says it in SQL,
as :mod:`storage.sqlite.housekeeping` does for SQLite. Both deletes walk an age index (migration
0004) from the oldest row and stop at ``limit``, so one call costs about ``limit`` rows' work however
big the table has grown. Several processes may prune at once: each batch is one short transaction
of its own, and a row two of them pick is deleted by one and skipped by the other.
"""

from __future__ import annotations

from typing import Any

from sessions.store import Pruned, PruneHorizon, StorageFigures
from storage.postgres.rows import ts

# The tables that grow with use, in the order `popup sessions --stats` prints them (as on SQLite).
GROWING_TABLES = ("sessions", "posts", "replies", "reply_edits", "reactions", "deletions", "inbound_events")

PRUNE_DELIVERIES = (
    "DELETE FROM inbound_events WHERE (platform, delivery_id) IN ("
    "SELECT platform, delivery_id FROM inbound_events WHERE seen_at < $1 ORDER BY seen_at LIMIT $2)"
)

# A deletion waits for its message while the message is not stored and may still come as a reply:
# in a session's channel (Slack threads live there) or in a prompt's thread channel (Discord's
# threads are channels). Anything else only needs the short grace, for a thread whose opening
# post has not reported back yet; nothing at all outlives the long horizon.
PRUNE_DELETIONS = (
    "DELETE FROM deletions WHERE (platform, channel_id, message_id) IN ("
    "SELECT d.platform, d.channel_id, d.message_id FROM deletions AS d "
    "WHERE d.deleted_at < $1 AND (d.deleted_at < $2 "
    "OR EXISTS (SELECT 1 FROM replies AS r WHERE r.platform = d.platform AND r.channel_id = d.channel_id "
    "AND r.message_id = d.message_id) "
    "OR NOT (EXISTS (SELECT 1 FROM session_channels AS c WHERE c.platform = d.platform "
    "AND c.channel_id = d.channel_id) "
    "OR EXISTS (SELECT 1 FROM posts AS p WHERE p.platform = d.platform AND p.thread_channel_id = d.channel_id))) "
    "ORDER BY d.deleted_at LIMIT $3)"
)


async def prune(conn: Any, horizon: PruneHorizon, limit: int) -> Pruned:
    """One bounded batch of each, in the caller's transaction on ``conn``."""
    deliveries = await conn.fetchval(
        f"WITH gone AS ({PRUNE_DELIVERIES} RETURNING 1) SELECT count(*) FROM gone",
        ts(horizon.deliveries_before),
        limit,
    )
    deletions = await conn.fetchval(
        f"WITH gone AS ({PRUNE_DELETIONS} RETURNING 1) SELECT count(*) FROM gone",
        ts(horizon.stray_deletions_before),
        ts(horizon.deletions_before),
        limit,
    )
    return Pruned(deliveries=int(deliveries), deletions=int(deletions))


async def figures(db: Any) -> StorageFigures:
    """Row counts (one query) and the bytes the database takes on the server's disk."""
    # The table names are this module's own literals; nothing from outside goes into the SQL.
    counts = ", ".join(f"(SELECT count(*) FROM {table}) AS {table}" for table in GROWING_TABLES)
    row = await db.fetchrow(f"SELECT {counts}, pg_database_size(current_database()) AS size_bytes")
    return StorageFigures(rows={table: int(row[table]) for table in GROWING_TABLES}, size_bytes=int(row["size_bytes"]))
