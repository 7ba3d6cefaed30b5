"""Typed rows as the engine sees them. The store returns these; nothing else crosses that line."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sessions.model import ChannelRef, ThreadRef


class SessionState(enum.StrEnum):
    SCHEDULED = "scheduled"  # created; its opening message not yet confirmed posted
    RUNNING = "running"
    CLOSING = "closing"  # recap being built and posted
    CLOSED = "closed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({SessionState.CLOSED, SessionState.CANCELLED, SessionState.FAILED})
ACTIVE_STATES = (SessionState.SCHEDULED, SessionState.RUNNING, SessionState.CLOSING)


class PromptState(enum.StrEnum):
    PENDING = "pending"
    POSTING = "posting"
    POSTED = "posted"
    MISSED = "missed"  # fell due while the bot was down, past the grace period
    SKIPPED = "skipped"  # the session closed or was cancelled before it was due


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptRecord:
    id: int
    session_id: int
    position: int  # 1-based, in timetable order
    text: str
    due_at: datetime
    state: PromptState
    posted_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    id: int
    plan_name: str
    title: str
    intro: str
    timezone: str
    channels: tuple[ChannelRef, ...]
    state: SessionState
    anonymous: bool
    started_by: str
    started_at: datetime
    recap_at: datetime
    closed_at: datetime | None = None
    join_code: str | None = None  # what other channels type as `/popup join CODE`
    pulse_at: datetime | None = None  # when every channel gets a digest of the day so far

    @property
    def channel(self) -> ChannelRef:
        """The channel the session was started in."""
        return self.channels[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPrompt:
    text: str
    due_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NewSession:
    plan_name: str
    title: str
    intro: str
    timezone: str
    channel: ChannelRef
    anonymous: bool
    started_by: str
    started_at: datetime
    recap_at: datetime
    prompts: tuple[NewPrompt, ...]
    join_code: str | None = None
    pulse_at: datetime | None = None
    # More channels to start in at once (a circle); one that already has an active session is
    # left out. ``channel`` itself must be free, or nothing is created.
    more_channels: tuple[ChannelRef, ...] = ()
    channel_names: Mapping[ChannelRef, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionChannel:
    """One channel of a session, as it joined."""

    channel: ChannelRef
    name: str | None = None  # the adapter's display name ("#learning"), when it could tell
    joined_by: str | None = None  # "platform:user_id" of who attached it; None where the session started


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelFigures:
    """Standing replies in one channel of a session (a reply's own channel: on Discord, the thread)."""

    channel: ChannelRef
    replies: int
    people: int
    reactions: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkedVoices:
    """Identities of one member that wrote in a session from more than one platform (/popup link).

    ``identities`` holds ``(platform, user_id, replies)`` per identity; ``shared_prompts`` the
    prompts more than one of them answered (the person is counted once there).
    """

    person: str
    identities: tuple[tuple[str, str, int], ...]
    shared_prompts: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRecord:
    """One row of the outbound ledger: the intent to post ``key`` in ``channel``, and its outcome."""

    id: int
    session_id: int
    key: str  # "opening", "prompt:3", "pulse", "recap", "notice:cancel"
    channel: ChannelRef
    attempts: int
    message_id: str | None = None
    thread: ThreadRef | None = None

    @property
    def posted(self) -> bool:
        return self.message_id is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadTarget:
    """The prompt a thread belongs to, found by the thread's id."""

    session_id: int
    prompt_id: int
    session_state: SessionState


@dataclass(frozen=True, slots=True, kw_only=True)
class NewReply:
    session_id: int
    prompt_id: int
    platform: str
    channel_id: str
    message_id: str
    author_id: str
    author_name: str
    text: str
    created_at: datetime
    delivery_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyRecord:
    id: int
    session_id: int
    prompt_id: int
    platform: str
    channel_id: str
    message_id: str
    author_id: str
    author_name: str
    text: str
    created_at: datetime
    edited_at: datetime | None
    reactions: int
    edits: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStats:
    """Aggregates over a session's standing replies (deleted ones left out)."""

    replies: int
    participants: int
    replies_per_prompt: dict[int, int]  # prompt id -> count
    reactions: int


# -- recap rows: what :class:`sessions.store.RecapQueries` answers ---------------------------------
# NamedTuples where a query yields many rows (built by the cursor itself, no per-row object
# graph), a frozen dataclass for the one-off answer.


class TimeBin(NamedTuple):
    """Standing replies under one prompt whose time falls in one bin."""

    prompt_id: int
    bin: int  # 0 is the bin starting at the origin asked for; earlier replies fall in negative bins
    replies: int
    reactions: int


class RankedRow(NamedTuple):
    """A standing reply as the ranking reads it: no more than it needs to rank and quote it."""

    id: int
    reactions: int
    size: int  # the text's size in UTF-8 bytes: never below its length in characters
    created_at: float  # UTC epoch seconds (a datetime only for the replies the ranking keeps)
    edited: int  # 0 or 1
    author_name: str
    text: str
    platform: str  # where the reply was written: the recap says where each voice came from
    channel_id: str


class PeopleWhoWrote(NamedTuple):
    """``people`` members wrote exactly ``replies`` standing replies."""

    replies: int
    people: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Participation:
    """Who took part: people with standing replies, per prompt and by how much they wrote."""

    people_per_prompt: Mapping[int, int]  # prompt id -> people (prompts nobody answered left out)
    distribution: tuple[PeopleWhoWrote, ...]  # by ``replies`` ascending

    @property
    def people(self) -> int:
        return sum(share.people for share in self.distribution)
