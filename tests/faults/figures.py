"""Figures the fault suite gathers, printed as one summary line at the end of the test run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FaultFigures:
    trials: int = 0
    replies_acked: int = 0
    replies_lost: int = 0
    duplicate_posts: int = 0
    recaps_missing: int = 0
    sessions: int = 0

    def line(self) -> str:
        return (
            f"faults: {self.trials} kill-restart trials over {self.sessions} sessions, "
            f"{self.replies_acked} replies acknowledged, {self.replies_lost} replies lost, "
            f"{self.duplicate_posts} duplicate posts, {self.recaps_missing} recaps missing"
        )


FIGURES = FaultFigures()
