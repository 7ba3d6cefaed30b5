"""The web adapter: every session's page is a channel of its own (platform ``web``).

As a :class:`~sessions.ports.ChatPort` it keeps what the engine posts in a page (the opening,
each prompt as a thread, the recap) in the database and tells the open pages at once; as a
:class:`~sessions.web.WebOutlet` it gives each session its page's channel and URL, and organisers
their one-time sign-in links. ``start`` serves the pages (aiohttp) and ``stop`` ends them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta

from aiohttp import web

from adapters.web.auth import Organiser, Signer, new_sign_in_token, token_hash
from adapters.web.content import message_to_json
from adapters.web.context import WebBackend, WebContext, page_channel, page_session_id
from adapters.web.render import render_macro
from adapters.web.server import PageHandler, make_app
from adapters.web.settings import WebSettings
from sessions.model import ChannelRef, Member, Message, MessageRef, Posted, ThreadRef
from sessions.plan_book import PlanBook
from sessions.ports import EventHandler
from sessions.settings import EngineSettings
from sessions.wakeups import Clock, utc_now
from sessions.web import WEB_PLATFORM, WebPost

_log = logging.getLogger(__name__)

_SHUTDOWN_GRACE = 3.0  # seconds a request under way gets at shutdown


class WebAdapter:
    platform = WEB_PLATFORM

    def __init__(
        self,
        settings: WebSettings,
        *,
        store: WebBackend,
        plans: PlanBook,
        engine: EngineSettings,
        clock: Clock = utc_now,
        pages: Mapping[str, PageHandler] | None = None,
    ) -> None:
        self.settings = settings
        self._pages = dict(pages or {})  # other adapters' GET pages (bot/app.py: Slack's install flow)
        self.ctx = WebContext(
            settings=settings, signer=Signer(settings.secret), store=store, plans=plans, engine=engine, clock=clock
        )
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the port bound (the configured one, or the one given for 0)

    # -- the outlet: pages, URLs, sign-in links ------------------------------------------------

    def channel_for(self, session_id: int) -> ChannelRef:
        return page_channel(session_id)

    def page_url(self, session_id: int) -> str:
        return self.ctx.page_url(session_id)

    async def channel_name(self, channel: ChannelRef) -> str | None:
        """What the recap and ``status`` call a page: "the session's page on the web"."""
        return "the session's page" if channel.platform == WEB_PLATFORM else None

    async def sign_in_link(self, member: Member) -> str:
        token = new_sign_in_token()
        expires = self.ctx.now() + timedelta(seconds=self.settings.sign_in_ttl_seconds)
        await self.ctx.store.add_sign_in(token_hash(token), Organiser(member=member).to_json(), expires_at=expires)
        return f"{self.settings.base_url}/signin/{token}"

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self, handler: EventHandler) -> None:
        self.ctx.handler = handler
        await self._load_plans()
        runner = web.AppRunner(make_app(self.ctx, self._pages), access_log=None, shutdown_timeout=_SHUTDOWN_GRACE)
        await runner.setup()
        site = web.TCPSite(runner, self.settings.host, self.settings.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            from sessions.errors import ConfigError

            raise ConfigError(
                f"[web] cannot listen on {self.settings.host}:{self.settings.port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        addresses = runner.addresses  # the bound socket tells the port when 0 was asked for
        self.port = int(addresses[0][1]) if addresses else self.settings.port
        _log.info("web pages at %s (listening on %s:%s)", self.settings.base_url, self.settings.host, self.port)

    async def stop(self) -> None:
        self.ctx.stopping.set()
        self.ctx.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _load_plans(self) -> None:
        from adapters.web.dashboard_plans import plan_from_json

        for stored in await self.ctx.store.web_plans():
            if stored.name in self.ctx.plans.configured:
                _log.warning("web plan %r is shadowed by the config's plan of that name", stored.name)
                continue
            try:
                self.ctx.plans.put(plan_from_json(stored.name, stored.plan))
            except Exception:
                _log.exception("web plan %r could not be read; it is left out", stored.name)

    # -- the engine's port -------------------------------------------------------------------------

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        stored = await self._keep(channel, content, key, thread=False)
        return Posted(message=MessageRef(channel=channel, message_id=f"w{stored.id}"))

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        stored = await self._keep(channel, content, key, thread=True)
        assert stored.thread_id is not None
        return Posted(
            message=MessageRef(channel=channel, message_id=f"w{stored.id}"),
            thread=ThreadRef(channel=channel, thread_id=stored.thread_id),
        )

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        stored = await self.ctx.store.web_post(key)
        if stored is None or stored.channel_id != channel.channel_id:
            return None
        thread = None if stored.thread_id is None else ThreadRef(channel=channel, thread_id=stored.thread_id)
        return Posted(message=MessageRef(channel=channel, message_id=f"w{stored.id}"), thread=thread)

    async def _keep(self, channel: ChannelRef, content: Message, key: str, *, thread: bool) -> WebPost:
        ctx = self.ctx
        stored = await ctx.store.add_web_post(
            channel.channel_id, key, message_to_json(content), thread=thread, at=ctx.now()
        )
        ctx.changed(channel.channel_id)
        if ctx.hub.listeners(channel.channel_id):
            await self._tell_pages(channel, stored, content)
        return stored

    async def _tell_pages(self, channel: ChannelRef, stored: WebPost, content: Message) -> None:
        session_id = page_session_id(channel.channel_id)
        session = None if session_id is None else await self.ctx.store.get_session(session_id)
        if session is None:
            return
        template = "_page_macros.html.j2"
        if stored.thread_id is None:
            html = render_macro(template, "post", content)
            self.ctx.hub.publish(channel.channel_id, "post", {"html": html})
        else:
            html = render_macro(template, "prompt_block", stored.thread_id, content, [], session, "", "", "", True)
            self.ctx.hub.publish(channel.channel_id, "prompt", {"thread": stored.thread_id, "html": html})
