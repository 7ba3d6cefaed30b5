"""Typed rows as the engine sees them. The store returns these; nothing else crosses that line."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

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


@dataclass(frozen=True, slots=True, kw_only=True)
class PostRecord:
    """One row of the outbound ledger: the intent to post ``key`` in ``channel``, and its outcome."""

    id: int
    session_id: int
    key: str  # "opening", "prompt:3", "recap", "notice:cancel"
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
