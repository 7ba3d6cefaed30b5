"""The two ports onto persistence: :class:`Store`, what the engine needs (sessions, prompts, the
outbound ledger, replies), and :class:`RecapQueries`, the read-only aggregates the recap counts with.

:mod:`storage.sqlite` implements both on SQLite; another engine (PostgreSQL) implements both too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from sessions.errors import StorageError
from sessions.model import ChannelRef, MessageRef, Posted
from sessions.records import (
    ChannelFigures,
    LinkedVoices,
    NewReply,
    NewSession,
    Participation,
    PostRecord,
    PromptRecord,
    PromptState,
    RankedRow,
    ReplyRecord,
    SessionChannel,
    SessionRecord,
    SessionState,
    SessionStats,
    ThreadTarget,
    TimeBin,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneHorizon:
    """What can no longer matter, by age: :meth:`Store.prune` forgets it (policy: sessions/retention.py).

    A delivery id's time and a deletion's time are the platform's times of the event.
    """

    deliveries_before: datetime  # a delivery id older than this cannot be redelivered any more
    deletions_before: datetime  # a deletion older than this whose message has not come will not see it come
    stray_deletions_before: datetime  # older than this, a deletion only matters while it waits for its
    # message in a channel or prompt thread of a session (one applied to its reply does not)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pruned:
    """How many rows one :meth:`Store.prune` call removed, per kind."""

    deliveries: int = 0
    deletions: int = 0

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(deliveries=self.deliveries + other.deliveries, deletions=self.deletions + other.deletions)


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageFigures:
    """How big the store is: rows per table (the ones that grow with use), and bytes on disk."""

    rows: Mapping[str, int]
    size_bytes: int


class Store(Protocol):
    # -- sessions and prompts ----------------------------------------------------------------
    async def create_session(self, new: NewSession) -> SessionRecord | None:
        """Create the session unless ``new.channel`` already has an active one (then ``None``).

        The check and the insert are one transaction, so two racing starts cannot both win.
        """
        ...

    async def get_session(self, session_id: int) -> SessionRecord | None: ...

    async def active_session(self, channel: ChannelRef) -> SessionRecord | None:
        """The scheduled, running or closing session in ``channel``, if any."""
        ...

    async def latest_session(self, channel: ChannelRef) -> SessionRecord | None:
        """The newest session in ``channel`` whatever its state."""
        ...

    async def list_sessions(
        self, states: Sequence[SessionState] = (), *, closed_since: datetime | None = None
    ) -> list[SessionRecord]:
        """All sessions (or those in ``states``), oldest first; with ``closed_since``, only those
        that ended (``closed_at``) at that moment or later."""
        ...

    async def set_session_state(
        self,
        session_id: int,
        expected: Sequence[SessionState],
        new: SessionState,
        *,
        at: datetime | None = None,
    ) -> bool:
        """Compare-and-set: move to ``new`` only from one of ``expected``; False if it was not."""
        ...

    async def prompts(self, session_id: int) -> list[PromptRecord]: ...

    # -- the session's channels (sessions across channels and platforms) -----------------------
    async def session_by_join_code(self, code: str) -> SessionRecord | None:
        """The scheduled or running session whose join code is ``code``; None once it has ended."""
        ...

    async def attach_channel(
        self, session_id: int, channel: ChannelRef, *, name: str | None = None, joined_by: str | None = None
    ) -> int | None:
        """Add ``channel`` to the session; None when done (or it was there already), else the id of
        the other active session that has it. Check and insert are one transaction."""
        ...

    async def detach_channel(self, session_id: int, channel: ChannelRef) -> bool:
        """Take ``channel`` out of the session (its stored replies stay); False if it was not in it."""
        ...

    async def session_channels(self, session_id: int) -> list[SessionChannel]:
        """The session's channels in the order they joined, with their names."""
        ...

    async def channel_figures(self, session_id: int) -> list[ChannelFigures]:
        """Standing replies per session channel (a Discord reply, written in a prompt's thread, counts
        for the channel the thread hangs under). Reads every standing reply of the session: ask only
        for sessions of more than one channel."""
        ...

    # -- identities linked across platforms ------------------------------------------------------
    async def add_link_code(self, code: str, platform: str, user_id: str, *, at: datetime) -> None: ...

    async def redeem_link_code(
        self, code: str, platform: str, user_id: str, *, at: datetime, not_before: datetime
    ) -> tuple[str, str] | None:
        """Use ``code`` (made after ``not_before``) once: link its maker's identity with
        ``(platform, user_id)``. Returns the maker's ``(platform, user_id)``, or None when the
        code is unknown, used or too old. The same platform cannot link to itself."""
        ...

    async def linked_voices(self, session_id: int) -> list[LinkedVoices]:
        """Linked members who wrote in the session under more than one identity."""
        ...

    async def set_prompt_state(
        self,
        prompt_id: int,
        expected: Sequence[PromptState],
        new: PromptState,
        *,
        at: datetime | None = None,
    ) -> bool:
        """Compare-and-set on a prompt; ``at`` is recorded as its posted time when ``new`` is posted."""
        ...

    # -- the outbound ledger -----------------------------------------------------------------
    async def claim_post(
        self, session_id: int, key: str, channel: ChannelRef, *, prompt_id: int | None = None
    ) -> PostRecord:
        """Record the intent to post ``key`` in ``channel`` (or return the existing record)."""
        ...

    async def note_attempt(self, post_id: int) -> None:
        """Count an attempt *before* making it, so a crash mid-post is known at restart."""
        ...

    async def record_posted(self, post_id: int, posted: Posted, *, at: datetime) -> None: ...

    async def posts(self, session_id: int) -> list[PostRecord]: ...

    async def thread_target(self, platform: str, thread_id: str) -> ThreadTarget | None:
        """The prompt whose thread is ``(platform, thread_id)``."""
        ...

    async def thread_post_under_way(self, platform: str) -> bool:
        """Whether a prompt's post on ``platform``, in a session still going, has been attempted but
        its platform id is not recorded yet: a thread being opened somewhere in the cluster."""
        ...

    # -- replies: every write is idempotent and order-independent, and durable on return -------
    async def add_reply(self, reply: NewReply) -> None:
        """Store a reply; a redelivery of the same message is a no-op."""
        ...

    async def edit_reply(
        self,
        message: MessageRef,
        text: str,
        *,
        at: datetime,
        keep_if_unknown: bool = False,
        delivery_id: str | None = None,
    ) -> None:
        """Record an edit; the newest by ``at`` wins, whatever the arrival order. An edit of a
        message not stored yet is kept only with ``keep_if_unknown`` (it is in a prompt's thread)."""
        ...

    async def delete_reply(self, message: MessageRef, *, at: datetime, delivery_id: str | None = None) -> None:
        """Mark a reply deleted; a deletion that arrives before its message still wins."""
        ...

    async def set_reaction(
        self,
        message: MessageRef,
        user_id: str,
        emoji: str,
        *,
        added: bool,
        at: datetime,
        delivery_id: str | None = None,
    ) -> None:
        """Reactions on stored replies only; the newest change per (member, emoji) wins."""
        ...

    async def forget_author(self, session_id: int, platform: str, author_id: str) -> int:
        """Remove every reply (with its history and reactions) by the author; returns the count."""
        ...

    async def session_stats(self, session_id: int) -> SessionStats: ...

    def iter_replies(self, session_id: int, *, prompt_id: int | None = None) -> AsyncIterator[ReplyRecord]:
        """Stream standing replies in (prompt position, created time) order, in batches."""
        ...

    # -- housekeeping ------------------------------------------------------------------------
    async def prune(self, horizon: PruneHorizon, *, limit: int) -> Pruned:
        """Remove up to ``limit`` rows of each kind that ``horizon`` says can no longer matter,
        oldest first, in one short transaction: delivery ids (kept to recognise a redelivery)
        and deletions (kept so that one arriving before its message still wins). Fewer than
        ``limit`` of both means nothing more is due; the caller calls again otherwise."""
        ...

    async def storage_figures(self) -> StorageFigures:
        """Row counts of the tables that grow with use, and the size on disk (``popup sessions --stats``)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class RecapQueries(Protocol):
    """Read-only aggregates and ranked streams for :mod:`sessions.recap`: the recap of a session of
    a million replies must not pull every row through Python, so the counting stays in the database.
    """

    async def recap_last_reply_at(self, session_id: int) -> datetime | None:
        """The newest reply's time (deleted ones included: this only sizes the chart's time axis)."""
        ...

    async def recap_time_bins(self, session_id: int, origin: datetime, width_seconds: float) -> list[TimeBin]:
        """Standing replies per prompt in bins of ``width_seconds`` from ``origin`` (bin 0 starts
        there; earlier replies fall in negative bins), by prompt id and bin. Summed per prompt,
        these are the prompt's reply and reaction counts."""
        ...

    async def recap_participants(self, session_id: int) -> Participation:
        """People with standing replies: per prompt, and how many wrote how many replies."""
        ...

    def recap_ranked_rows(
        self, session_id: int, prompt_id: int, *, best: int | None = None
    ) -> AsyncGenerator[list[RankedRow], None]:
        """A prompt's standing replies in batches: most reactions first, then largest text first,
        then oldest, then lowest id.

        With ``best``, rows with fewer reactions than the ``best``-th most reacted reply may be
        left out: they cannot be among the ``best`` best whatever the ranking does after reactions.

        Consumers stop early once no later row can rank higher; close the generator then
        (``contextlib.aclosing``) so the cursor is released.
        """
        ...


def recap_queries(store: Store) -> RecapQueries:
    """The recap's queries on ``store``: every store Popup has answers them as well.

    The engine holds a :class:`Store` and hands it to the recap; this is where the recap finds
    the aggregates on it, and says so plainly if a store cannot answer them.
    """
    if isinstance(store, RecapQueries):
        return store
    raise StorageError(f"{type(store).__name__} does not answer the recap's queries (sessions.store.RecapQueries)")
