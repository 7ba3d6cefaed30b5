"""What every route of the web side shares: settings, signer, store, the live hub, the engine."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from adapters.web.auth import Signer
from adapters.web.limits import RateLimiter
from adapters.web.live import Hub
from adapters.web.settings import WebSettings
from sessions.model import ChannelRef
from sessions.plan_book import PlanBook
from sessions.ports import EventHandler
from sessions.settings import EngineSettings
from sessions.store import Store
from sessions.wakeups import Clock
from sessions.web import WEB_PLATFORM, WebStore


class WebBackend(Store, WebStore, Protocol):
    """The store as the web side uses it: the engine's :class:`Store` and :class:`WebStore`."""


def page_channel(session_id: int) -> ChannelRef:
    return ChannelRef(platform=WEB_PLATFORM, channel_id=f"s{session_id}")


def page_session_id(channel_id: str) -> int | None:
    return int(channel_id[1:]) if channel_id.startswith("s") and channel_id[1:].isdigit() else None


@dataclass(slots=True, kw_only=True)
class WebContext:
    settings: WebSettings
    signer: Signer
    store: WebBackend
    plans: PlanBook
    engine: EngineSettings
    clock: Clock
    hub: Hub = field(default_factory=Hub)
    handler: EventHandler | None = None  # the engine, from the adapter's start
    answers: RateLimiter = field(init=False)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set at shutdown: live loops end
    _versions: dict[str, int] = field(default_factory=dict)  # per page: bumped by every change to it

    def changed(self, channel_id: str) -> None:
        """Something on the page ``channel_id`` changed (a post, an answer, an edit, a deletion)."""
        self._versions[channel_id] = self._versions.get(channel_id, 0) + 1

    def version(self, channel_id: str) -> int:
        return self._versions.get(channel_id, 0)

    def __post_init__(self) -> None:
        self.answers = RateLimiter(rate_per_minute=self.settings.answers_per_minute, burst=self.settings.answer_burst)

    def now(self) -> datetime:
        return self.clock()

    def page_url(self, session_id: int) -> str:
        return f"{self.settings.base_url}/s/{self.signer.page_slug(session_id)}"

    def page_path(self, session_id: int) -> str:
        return f"/s/{self.signer.page_slug(session_id)}"

    def need_handler(self) -> EventHandler:
        if self.handler is None:
            raise RuntimeError("the web adapter is not started")
        return self.handler
