"""The web side as the rest of Popup sees it: the page every session gets, and what the web keeps.

:class:`WebOutlet` is what the engine and ``/popup`` know of the web (adapters/web implements it):
the channel each session's page is, its URL, and one-time sign-in links. :class:`WebStore` is what
the web side keeps in the database (storage/sqlite/web_store.py implements it on SQLite,
storage/postgres/web_store.py on PostgreSQL); its records are here, beside the other records, so
the store implements it without knowing the web.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from sessions.model import ChannelRef, Member
from sessions.records import ReplyRecord

WEB_PLATFORM = "web"


class WebOutlet(Protocol):
    """Every session's web page, and the way into the organiser's dashboard."""

    def channel_for(self, session_id: int) -> ChannelRef:
        """The page of ``session_id`` as a channel of the session (platform ``web``)."""
        ...

    def page_url(self, session_id: int) -> str:
        """The page's unguessable public URL."""
        ...

    async def sign_in_link(self, member: Member) -> str:
        """A one-time, short-lived link that signs ``member`` in to the dashboard."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WebPost:
    """A post the engine made in a page: ``content`` is the neutral message as JSON."""

    id: int
    channel_id: str
    key: str
    thread_id: str | None
    content: str
    posted_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredPlan:
    """A plan made in the dashboard: ``plan`` is its JSON (title, intro, recap_at, prompts, anonymous)."""

    name: str
    plan: str
    created_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticleVersion:
    id: int
    session_id: int
    markdown: str
    saved_by: str
    saved_at: datetime
    published_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChannelCount:
    """Standing replies under one prompt from one channel."""

    prompt_id: int
    platform: str
    channel_id: str
    replies: int


@runtime_checkable
class WebStore(Protocol):
    # -- the pages' posts ----------------------------------------------------------------------
    async def add_web_post(self, channel_id: str, key: str, content: str, *, thread: bool, at: datetime) -> WebPost:
        """Store a post (or return the one already stored under ``key``); a thread post gets a thread id."""
        ...

    async def web_post(self, key: str) -> WebPost | None: ...

    async def web_posts(self, channel_id: str) -> list[WebPost]:
        """A page's posts, oldest first."""
        ...

    # -- replies as the pages and the dashboard show them ------------------------------------------
    async def channel_replies(self, session_id: int, platform: str, channel_id: str) -> list[ReplyRecord]:
        """Standing replies from one channel, oldest first."""
        ...

    async def find_reply(self, platform: str, channel_id: str, message_id: str) -> ReplyRecord | None:
        """A standing reply by its message identity."""
        ...

    async def reply_counts(self, session_id: int) -> list[ChannelCount]: ...

    async def newest_replies(self, session_id: int, limit: int) -> list[ReplyRecord]: ...

    # -- sign-in links ---------------------------------------------------------------------------
    async def add_sign_in(self, token_hash: str, member: str, *, expires_at: datetime) -> None: ...

    async def redeem_sign_in(self, token_hash: str, *, now: datetime) -> str | None:
        """The member (JSON) of an unused, unexpired link, marking it used in the same statement;
        ``None`` for a link that is unknown, used or expired."""
        ...

    # -- plans made on the web -------------------------------------------------------------------
    async def web_plans(self) -> list[StoredPlan]: ...

    async def save_web_plan(self, plan: StoredPlan) -> None:
        """Create or replace the plan named ``plan.name``."""
        ...

    # -- the article -----------------------------------------------------------------------------
    async def add_article_version(
        self, session_id: int, markdown: str, *, saved_by: str, at: datetime, publish: bool
    ) -> ArticleVersion: ...

    async def article_versions(self, session_id: int) -> list[ArticleVersion]:
        """Every saved version, newest first."""
        ...

    async def published_article(self, session_id: int) -> ArticleVersion | None:
        """The newest published version, if any."""
        ...

    async def published_articles(self, limit: int) -> list[ArticleVersion]:
        """Each session's newest published version, most recently published first."""
        ...


def author_key(member: Member) -> str:
    """How a member is named in what the web keeps (who saved a version, who made a plan)."""
    return f"{member.platform}:{member.user_id}"
