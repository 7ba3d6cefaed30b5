"""What the store keeps only for a while, and the pruning that forgets the rest.

Two tables would otherwise grow for ever: the delivery ids that recognise a redelivered event
(``inbound_events``), and the deletions that let a deletion arriving before its message still win
(``deletions``; every message deleted in every channel the bot can see, sessions or not).

- A **delivery id** matters while its event can be delivered again. Slack retries a failed
  delivery three times within minutes (and an app that is down may get events up to about an hour
  late); Discord resumes a gateway session only within minutes. ``keep`` (24 h) is far beyond both.
- A **deletion** matters while its message may still arrive as a reply: until the reply it deletes
  is stored (the reply then carries its deletion), and not beyond ``keep`` (a message that was
  deleted that long ago and never arrived, was never going to: events are not held back that
  long, and a back-fill after a restart reads a thread's history, where deleted messages are gone).
  Only a session's channels and its prompts' threads can hold a reply; a deletion anywhere else is
  kept for ``stray_grace`` (1 h) only, for the thread whose opening post has not reported back yet.

The engine prunes every ``every`` (10 min), on its injected clock, in batches of ``batch`` rows:
each is one short transaction, and queued inbound writes are committed between them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sessions.store import Pruned, PruneHorizon, Store

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    keep: timedelta = timedelta(hours=24)
    stray_grace: timedelta = timedelta(hours=1)
    every: timedelta = timedelta(minutes=10)
    first_after: timedelta = timedelta(minutes=1)  # after start: not in the way of resuming sessions
    batch: int = 500

    def horizon(self, now: datetime) -> PruneHorizon:
        return PruneHorizon(
            deliveries_before=now - self.keep,
            deletions_before=now - self.keep,
            stray_deletions_before=now - self.stray_grace,
        )


DEFAULT_RETENTION = RetentionPolicy()


async def prune(store: Store, policy: RetentionPolicy, now: datetime) -> Pruned:
    """Forget everything ``policy`` no longer keeps at ``now``, a batch at a time; what went."""
    horizon = policy.horizon(now)
    total = Pruned()
    while True:
        # Each batch is its own transaction on the store's writer; the inbound writes queued
        # meanwhile are committed before the next batch is asked for.
        pruned = await store.prune(horizon, limit=policy.batch)
        total += pruned
        if pruned.deliveries < policy.batch and pruned.deletions < policy.batch:
            break
    if total.deliveries or total.deletions:
        _log.info("pruned %d delivery ids and %d deletions", total.deliveries, total.deletions)
    return total
