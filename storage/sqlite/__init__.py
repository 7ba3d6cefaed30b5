"""Popup's store on SQLite, through aiosqlite.

One room per job: :mod:`.store` (the :class:`SqliteStore`), :mod:`.writer` (the group-commit
writer), :mod:`.checkpoint` (the WAL checkpointer), :mod:`.connections` (opening the file),
:mod:`.migrate` (the numbered migrations in :mod:`storage.migrations`), :mod:`.inbound` (the
statements that store inbound events), :mod:`.rows` (rows to records, by column name) and
:mod:`.recap_queries` (the recap's aggregates).
"""

from storage.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
