"""A session's participant page: read it, answer on it, follow it live, edit or delete your answer.

The page is the session's ``web`` channel. What the engine posted there (the opening, each prompt,
the recap) is the page; answers given here go to the engine's ``on_event`` as replies from the
``web`` platform, like a reply in any chat's thread, and the browser hears "stored" only once
``on_event`` returned. Only this page's own answers are shown here: members answering in a chat
did not say their words could go on a public page.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from adapters.web.content import message_from_json
from adapters.web.context import WebContext, page_channel
from adapters.web.qr import qr_png, qr_svg
from adapters.web.render import render, render_macro
from adapters.web.server import browser_of, csrf_of, form_text, notice
from sessions.model import Member, Message, MessageRef, ReplyDeleted, ReplyEdited, ReplyPosted, ThreadRef
from sessions.records import PromptRecord, ReplyRecord, SessionRecord, SessionState
from sessions.web import WEB_PLATFORM

_log = logging.getLogger(__name__)

HONEYPOT = "website"  # a field people never see (hidden by the stylesheet); simple bots fill it in
ANONYMOUS_NAME = "anonymous"
_TEMPLATE = "page.html.j2"
_MACROS = "_page_macros.html.j2"
_TOKEN_SLOT = "\x00csrf\x00"  # where each browser's own CSRF token goes into a shared page
_CACHE_SECONDS = 5.0  # a shared page is made again at least this often (the clock on it moves on)


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptView:
    thread_id: str
    prompt: PromptRecord | None
    content: Message
    replies: list[ReplyRecord]


def browser_user(browser: str) -> str:
    """The web member's user id: the browser's id, prefixed so it reads as what it is."""
    return f"b:{browser}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Cached:
    version: int
    made: float
    html: str
    authors: frozenset[str]


class PageRoutes:
    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self._cache: dict[int, _Cached] = {}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/s/{slug}", self.page),
            web.get("/s/{slug}/live", self.live),
            web.get("/s/{slug}/qr.svg", self.qr_svg),
            web.get("/s/{slug}/qr.png", self.qr_png),
            web.post("/s/{slug}/answer", self.answer),
            web.post("/s/{slug}/edit", self.edit),
            web.post("/s/{slug}/delete", self.delete),
        ]

    # -- finding the session -------------------------------------------------------------------

    async def _session(self, request: web.Request) -> SessionRecord:
        session_id = self._ctx.signer.page_session(request.match_info["slug"])
        session = None if session_id is None else await self._ctx.store.get_session(session_id)
        # The same answer for a wrong token and a missing session: a URL can't be probed for.
        if session is None or page_channel(session.id) not in session.channels:
            raise web.HTTPNotFound(text="No such page.")
        return session

    # -- reading ---------------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        # Most visitors have not answered on the page: they all see the same page, but for their CSRF
        # token. That page is rendered once per change to it and served from memory (bench/web.py).
        ctx = self._ctx
        me = browser_user(browser_of(request))
        session_id = ctx.signer.page_session(request.match_info["slug"])
        cached = self._cache.get(session_id) if session_id is not None else None
        channel_id = page_channel(session_id).channel_id if session_id is not None else ""
        if (
            cached is not None
            and cached.version == ctx.version(channel_id)
            and time.monotonic() - cached.made < _CACHE_SECONDS
            and me not in cached.authors
        ):
            return web.Response(text=cached.html.replace(_TOKEN_SLOT, csrf_of(request)), content_type="text/html")
        session = await self._session(request)
        version = ctx.version(channel_id)
        html, authors = await self.render_page(request, session, csrf=_TOKEN_SLOT)
        if me not in authors:
            self._cache[session.id] = _Cached(version=version, made=time.monotonic(), html=html, authors=authors)
        return web.Response(text=html.replace(_TOKEN_SLOT, csrf_of(request)), content_type="text/html")

    async def render_page(
        self, request: web.Request, session: SessionRecord, *, csrf: str
    ) -> tuple[str, frozenset[str]]:
        """The page as ``request``'s browser sees it, and the authors of the answers on it."""
        ctx = self._ctx
        channel = page_channel(session.id)
        posts = await ctx.store.web_posts(channel.channel_id)
        prompts = {p.position: p for p in await ctx.store.prompts(session.id)}
        thread_prompts = {
            post.thread.thread_id: prompts.get(int(post.key.partition(":")[2]))
            for post in await ctx.store.posts(session.id)
            if post.channel == channel and post.thread is not None and post.key.startswith("prompt:")
        }
        replies: defaultdict[int, list[ReplyRecord]] = defaultdict(list)
        for reply in await ctx.store.channel_replies(session.id, WEB_PLATFORM, channel.channel_id):
            replies[reply.prompt_id].append(reply)
        blocks: list[tuple[str, Message | PromptView]] = []
        for post in posts:
            content = message_from_json(post.content)
            if post.thread_id is None:
                blocks.append(("post", content))
                continue
            prompt = thread_prompts.get(post.thread_id)
            view = PromptView(
                thread_id=post.thread_id,
                prompt=prompt,
                content=content,
                replies=replies.get(prompt.id, []) if prompt is not None else [],
            )
            blocks.append(("prompt", view))
        return render(
            _TEMPLATE,
            session=session,
            blocks=blocks,
            open=session.state is SessionState.RUNNING,
            me=browser_user(browser_of(request)),
            csrf=csrf,
            base=ctx.page_path(session.id),
            page_url=ctx.page_url(session.id),
            feed_url="/feed.xml",
            timetable=sorted(prompts.values(), key=lambda p: p.position),
        ), frozenset(reply.author_id for shown in replies.values() for reply in shown)

    async def live(self, request: web.Request) -> web.StreamResponse:
        session = await self._session(request)
        return await self._ctx.hub.stream(request, page_channel(session.id).channel_id)

    async def qr_svg(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        return web.Response(body=qr_svg(self._ctx.page_url(session.id)), content_type="image/svg+xml")

    async def qr_png(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        return web.Response(body=qr_png(self._ctx.page_url(session.id)), content_type="image/png")

    # -- answering -------------------------------------------------------------------------------

    async def answer(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx
        session = await self._session(request)
        form = await request.post()
        if form_text(form, HONEYPOT):
            # Looks like success to the bot that filled it in; nothing is stored.
            _log.info("web: an answer with the honeypot filled in was dropped")
            return self._done(request, session, "")
        if session.state is not SessionState.RUNNING:
            return self._refuse(request, 409, "This session is not taking answers any more.")
        if not ctx.answers.allow(request.remote or "?"):
            return self._refuse(request, 429, "That is a lot of answers at once. Wait a minute and try again.")
        text = form_text(form, "text").strip()
        name = " ".join(form_text(form, "name").split())
        thread_id = form_text(form, "thread")
        limits = ctx.settings
        if not text:
            return self._refuse(request, 400, "The answer is empty.")
        if len(text) > limits.max_answer_chars or len(name) > limits.max_name_chars:
            return self._refuse(request, 413, f"Answers are at most {limits.max_answer_chars} characters.")
        if form_text(form, "consent") != "yes":
            return self._refuse(request, 400, "Tick the box to say your answer may go into the day's article.")
        if not session.anonymous and not name:
            return self._refuse(request, 400, "Give a name to show with your answer.")
        channel = page_channel(session.id)
        target = await ctx.store.thread_target(WEB_PLATFORM, thread_id) if thread_id else None
        if target is None or target.session_id != session.id:
            return self._refuse(request, 400, "That prompt is not on this page.")
        me = browser_user(browser_of(request))
        shown = ANONYMOUS_NAME if session.anonymous else name
        author = Member(platform=WEB_PLATFORM, user_id=me, display_name=shown)
        message = MessageRef(channel=channel, message_id=f"a{secrets.token_hex(8)}")
        event = ReplyPosted(
            thread=ThreadRef(channel=channel, thread_id=thread_id),
            message=message,
            author=author,
            text=text,
            at=ctx.now(),
        )
        try:
            await ctx.need_handler().on_event(event)
        except Exception:
            _log.error("web: an answer was not stored", exc_info=True)
            return self._refuse(request, 503, "Your answer could not be saved just now. Please send it again.")
        stored = await ctx.store.find_reply(WEB_PLATFORM, channel.channel_id, message.message_id)
        if stored is None:
            return self._refuse(request, 409, "This session is not taking answers any more.")
        ctx.changed(channel.channel_id)
        self.publish_reply(session, thread_id, stored)
        own = render_macro(_MACROS, "reply", stored, session, me, csrf_of(request), ctx.page_path(session.id), True)
        return self._done(request, session, f"r-{stored.message_id}", html=own, thread=thread_id)

    async def edit(self, request: web.Request) -> web.StreamResponse:
        return await self._change(request, delete=False)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        return await self._change(request, delete=True)

    async def _change(self, request: web.Request, *, delete: bool) -> web.StreamResponse:
        ctx = self._ctx
        session = await self._session(request)
        form = await request.post()
        if session.state is not SessionState.RUNNING:
            return self._refuse(request, 409, "Answers can be changed only while the session runs.")
        channel = page_channel(session.id)
        message_id = form_text(form, "message")
        reply = await ctx.store.find_reply(WEB_PLATFORM, channel.channel_id, message_id) if message_id else None
        if reply is None or reply.session_id != session.id or reply.author_id != browser_user(browser_of(request)):
            return self._refuse(request, 403, "Only the browser that sent an answer can change it.")
        message = MessageRef(channel=channel, message_id=message_id)
        at = max(ctx.now(), _after(reply))
        text = ""
        if delete:
            event: ReplyDeleted | ReplyEdited = ReplyDeleted(message=message, at=at)
        else:
            text = form_text(form, "text").strip()
            if not text or len(text) > ctx.settings.max_answer_chars:
                return self._refuse(request, 400, f"An answer has 1 to {ctx.settings.max_answer_chars} characters.")
            event = ReplyEdited(message=message, text=text, at=at)
        try:
            await ctx.need_handler().on_event(event)
        except Exception:
            _log.error("web: a change to an answer was not stored", exc_info=True)
            return self._refuse(request, 503, "That change could not be saved just now. Please try again.")
        ctx.changed(channel.channel_id)
        if delete:
            ctx.hub.publish(channel.channel_id, "gone", {"id": f"r-{message_id}"})
            return self._done(request, session, "")
        ctx.hub.publish(channel.channel_id, "edited", {"id": f"r-{message_id}", "text": text})
        return self._done(request, session, f"r-{message_id}")

    # -- answers to the browser --------------------------------------------------------------------

    def publish_reply(self, session: SessionRecord, thread_id: str, reply: ReplyRecord) -> None:
        ctx = self._ctx
        topic = page_channel(session.id).channel_id
        if not ctx.hub.listeners(topic):
            return
        html = render_macro(_MACROS, "reply", reply, session, "", "", "", False)
        ctx.hub.publish(topic, "reply", {"id": f"r-{reply.message_id}", "thread": thread_id, "html": html})

    def _done(
        self, request: web.Request, session: SessionRecord, anchor: str, *, html: str = "", thread: str = ""
    ) -> web.StreamResponse:
        if _wants_json(request):
            return web.json_response({"ok": True, "id": anchor, "html": html, "thread": thread})
        location = self._ctx.page_path(session.id) + (f"#{anchor}" if anchor else "")
        raise web.HTTPSeeOther(location)

    def _refuse(self, request: web.Request, status: int, text: str) -> web.StreamResponse:
        if _wants_json(request):
            return web.json_response({"ok": False, "error": text}, status=status)
        return notice(request, status, "Not sent", text)


def _wants_json(request: web.Request) -> bool:
    return request.headers.get("Accept", "").startswith("application/json")


def _after(reply: ReplyRecord) -> datetime:
    """An edit or deletion must come after what it changes, whatever the clocks did meanwhile."""
    latest = reply.edited_at or reply.created_at
    return latest + timedelta(microseconds=1)
