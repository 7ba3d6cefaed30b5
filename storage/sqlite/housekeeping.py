"""Housekeeping on SQLite: pruning what can no longer matter, and the figures of what is kept.

The policy (what, and for how long) is :mod:`sessions.retention`'s; this module only says it in SQL.
Both deletes walk an age index (migration 0004) from the oldest row and stop at ``limit``, so one
call costs about ``limit`` rows' work however big the table has grown: it runs between the
writer's inbound batches without holding them up.
"""

from __future__ import annotations

import contextlib
import os

import aiosqlite

from sessions.store import Pruned, PruneHorizon, StorageFigures
from storage.sqlite.connections import fetch_one
from storage.sqlite.rows import ts

# The tables that grow with use, in the order `popup sessions --stats` prints them.
GROWING_TABLES = ("sessions", "posts", "replies", "reply_edits", "reactions", "deletions", "inbound_events")

PRUNE_DELIVERIES = (
    "DELETE FROM inbound_events WHERE (platform, delivery_id) IN ("
    "SELECT platform, delivery_id FROM inbound_events INDEXED BY inbound_events_by_age "
    "WHERE seen_at < ? ORDER BY seen_at LIMIT ?)"
)

# A deletion waits for its message while the message is not stored and may still come as a reply:
# in a session's channel (Slack threads live there) or in a prompt's thread channel (Discord's
# threads are channels). Anything else only needs the short grace, for a thread whose opening
# post has not reported back yet; nothing at all outlives the long horizon.
PRUNE_DELETIONS = (
    "DELETE FROM deletions WHERE (platform, channel_id, message_id) IN ("
    "SELECT d.platform, d.channel_id, d.message_id FROM deletions AS d INDEXED BY deletions_by_age "
    "WHERE d.deleted_at < :stray AND (d.deleted_at < :waited "
    "OR EXISTS (SELECT 1 FROM replies AS r WHERE r.platform = d.platform AND r.channel_id = d.channel_id "
    "AND r.message_id = d.message_id) "
    "OR NOT (EXISTS (SELECT 1 FROM session_channels AS c WHERE c.platform = d.platform "
    "AND c.channel_id = d.channel_id) "
    "OR EXISTS (SELECT 1 FROM posts AS p WHERE p.platform = d.platform AND p.thread_channel_id = d.channel_id))) "
    "ORDER BY d.deleted_at LIMIT :limit)"
)


async def prune(db: aiosqlite.Connection, horizon: PruneHorizon, limit: int) -> Pruned:
    """One bounded batch of each, in the caller's transaction (the writer's)."""
    deliveries = await db.execute(PRUNE_DELIVERIES, (ts(horizon.deliveries_before), limit))
    deletions = await db.execute(
        PRUNE_DELETIONS,
        {
            "stray": ts(horizon.stray_deletions_before),
            "waited": ts(horizon.deletions_before),
            "limit": limit,
        },
    )
    return Pruned(deliveries=max(deliveries.rowcount, 0), deletions=max(deletions.rowcount, 0))


async def figures(read: aiosqlite.Connection, path: str) -> StorageFigures:
    """Row counts (one query) and the bytes of the file and its write-ahead log."""
    counts = ", ".join(f"(SELECT count(*) FROM {table}) AS {table}" for table in GROWING_TABLES)
    row = await fetch_one(read, f"SELECT {counts}", ())
    assert row is not None
    rows = {table: int(row[table]) for table in GROWING_TABLES}
    size = 0
    for name in (path, f"{path}-wal"):
        with contextlib.suppress(OSError):  # no WAL (checkpointed and removed), or ":memory:"
            size += os.path.getsize(name)
    return StorageFigures(rows=rows, size_bytes=size)
