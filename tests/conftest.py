from __future__ import annotations

import pytest

from tests.fakes.recording_handler import RecordingHandler
from tests.faults.figures import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.sessions:
        terminalreporter.write_line(FIGURES.line())


@pytest.fixture
def handler() -> RecordingHandler:
    """What an adapter under test hands its commands and events to, instead of the engine."""
    return RecordingHandler()
