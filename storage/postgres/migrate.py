"""Brings a PostgreSQL database to the newest schema: the numbered SQL files in
:mod:`storage.postgres.migrations`, recorded in a ``schema_version`` table.

Several ``popup run`` processes may start at once on one database: an advisory lock held for the
migrating transaction lets exactly one of them migrate while the others wait and then find it done.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sessions.errors import StorageError

_log = logging.getLogger(__name__)

# pg_advisory_xact_lock keys are per database; these two are Popup's ("popup" and "PoPu" in ASCII).
MIGRATE_LOCK = 0x706F707570
INBOUND_LOCK = 0x506F5075


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaVersions:
    current: int  # 0 for a database Popup has never migrated
    latest: int  # the newest this Popup knows


def migrations() -> list[tuple[int, str]]:
    """``(number, script)`` for every ``NNNN_*.sql`` file, in order."""
    found = []
    for entry in resources.files("storage.postgres.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


async def schema_versions(conn: Any) -> SchemaVersions:
    known = migrations()
    latest = known[-1][0] if known else 0
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    current = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version")) if exists else 0
    return SchemaVersions(current=current, latest=latest)


def refuse_newer(versions: SchemaVersions, where: str) -> None:
    if versions.current > versions.latest:
        raise StorageError(
            f"{where}: database schema version {versions.current} is newer than this Popup knows "
            f"({versions.latest}); upgrade Popup"
        )


async def migrate(conn: Any, where: str) -> SchemaVersions:
    """Run every migration newer than the database's, all in one transaction; the versions after."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY)")
        versions = await schema_versions(conn)
        refuse_newer(versions, where)
        for number, script in migrations():
            if number <= versions.current:
                continue
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)
            _log.info("database migrated to schema %d", number)
    return SchemaVersions(current=max(versions.current, versions.latest), latest=versions.latest)
