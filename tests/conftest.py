from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.sqlite import SqliteStore
from tests.fakes.recording_handler import RecordingHandler
from tests.faults.figures import FIGURES
from tests.postgres import new_database_sync


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A fresh store on a real SQLite file, closed after the test."""
    store = await SqliteStore.open(tmp_path / "popup.db")
    try:
        yield store
    finally:
        await store.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.sessions:
        terminalreporter.write_line(FIGURES.line())


@pytest.fixture
def handler() -> RecordingHandler:
    """What an adapter under test hands its commands and events to, instead of the engine."""
    return RecordingHandler()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped after the test); skips where no server answers."""
    with new_database_sync() as url:
        yield url
