"""What an engine is configured with (``[session]`` in the config file)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    default_plan: str
    timezone: str = "UTC"
    organisers: tuple[str, ...] = ()  # user ids, role names or role ids; empty = anyone
    # A prompt that fell due while the bot was down is posted late within this grace, and past
    # it is marked missed (and named in the recap) rather than landing out of context.
    late_grace: timedelta = timedelta(minutes=15)
    retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # between failed posts
