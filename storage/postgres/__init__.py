"""Popup's store on PostgreSQL, through asyncpg: the shared engine for more than one process.

One room per job, as in :mod:`storage.sqlite`: :mod:`.store` (the :class:`PostgresStore`),
:mod:`.writer` (the group-commit inbound writer), :mod:`.migrate` (the numbered migrations in
:mod:`storage.postgres.migrations`), :mod:`.inbound` (the statements that store inbound events),
:mod:`.rows` (records to Popup's records) and :mod:`.recap_queries` (the recap's aggregates).
"""

from storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
