"""What an engine is configured with (``[session]`` in the config file)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sessions.channels import Circle
from sessions.rights import Organiser


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    default_plan: str
    timezone: str = "UTC"
    # Who may start, stop, cancel and advance sessions; empty = anyone may start, and only a
    # session's starter may end or advance it (admins always may; see sessions/rights.py).
    organisers: tuple[Organiser, ...] = ()
    # A prompt that fell due while the bot was down is posted late within this grace, and past
    # it is marked missed (and named in the recap) rather than landing out of context.
    late_grace: timedelta = timedelta(minutes=15)
    retry_delays: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)  # between failed posts
    circles: tuple[Circle, ...] = ()  # ``[[circles]]``: /popup start PLAN circle:NAME
    # A channel that fell behind (its platform down, the bot removed) is tried again this many
    # times, at the retry delays, before it is skipped until the session's next post.
    catch_up_attempts: int = 30
    # In a cluster, a process back-fills at start the threads of the sessions closed this
    # recently, besides those still running: another process may have closed one while this one,
    # the only one hearing some of its channels (its Discord shard), was down.
    backfill_closed_within: timedelta = timedelta(hours=1)
