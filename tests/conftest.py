from __future__ import annotations

import pytest

from tests.faults.figures import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.sessions:
        terminalreporter.write_line(FIGURES.line())
