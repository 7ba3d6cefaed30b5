"""Where Popup's data lives: ``[storage]`` in the configuration (docs/architecture.md §9)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageSettings:
    path: Path  # the SQLite file; not used when ``url`` is set
    url: str = ""  # postgresql://user@host:port/db; the password from the environment (PGPASSWORD)
    # With PostgreSQL: how long a process's claim on a session's next step lasts unless renewed,
    # so the longest another waits to take over from one that died (sessions/cluster.py).
    lease_seconds: float = 15.0

    @property
    def is_postgres(self) -> bool:
        return bool(self.url)

    @property
    def where(self) -> str:
        """The database, as messages and logs name it (a URL here never holds a password)."""
        return self.url or str(self.path)
