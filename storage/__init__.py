"""Persistence on SQLite through aiosqlite: numbered migrations and the typed store."""
