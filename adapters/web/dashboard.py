"""The organiser's dashboard: sign in with a one-time link, follow a session live, move it on,
make plans (:mod:`adapters.web.dashboard_plans`), and edit and publish the day's article.

Rights are the chat's own (:mod:`sessions.rights`): the dashboard shows only the sessions its
organiser may stop, and "next", "stop" and "cancel" go to the engine as the ``/popup`` command
they are, from that member, in the session's web channel, so the engine checks them as in chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections import defaultdict

from aiohttp import web

from adapters.web.auth import Organiser, token_hash
from adapters.web.context import WebContext, page_channel
from adapters.web.dashboard_plans import PlanRoutes
from adapters.web.live import encode
from adapters.web.render import markdown_html, render
from adapters.web.server import ORGANISER_COOKIE, csrf_of, form_text, notice, set_cookie
from sessions import rights
from sessions.model import CommandInvoked, Member
from sessions.records import SessionRecord, SessionState
from sessions.web import author_key

_log = logging.getLogger(__name__)

ACTIONS = ("next", "stop", "cancel")
NEWEST = 12
_LIVE_EVERY = 1.0  # seconds between the live view's looks at the database


class DashboardRoutes:
    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx
        self._plans = PlanRoutes(ctx, self._organiser)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/signin/{token}", self.sign_in_form),
            web.post("/signin/{token}", self.sign_in),
            web.post("/signout", self.sign_out),
            web.get("/dash", self.home),
            web.get("/dash/s/{id:\\d+}", self.session),
            web.get("/dash/s/{id:\\d+}/live", self.live),
            web.post("/dash/s/{id:\\d+}/act", self.act),
            web.get("/dash/s/{id:\\d+}/article", self.article),
            web.post("/dash/s/{id:\\d+}/article", self.article_save),
            web.get("/dash/plans/new", self._plans.plan_form),
            web.get("/dash/plans/{name}", self._plans.plan_form),
            web.post("/dash/plans", self._plans.plan_save),
        ]

    # -- signing in --------------------------------------------------------------------------

    async def sign_in_form(self, request: web.Request) -> web.Response:
        # A GET never uses the link up: chat apps and mail scanners open links to preview them.
        html = render("signin.html.j2", csrf=csrf_of(request), action=request.path, feed_url="/feed.xml")
        return web.Response(text=html, content_type="text/html")

    async def sign_in(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx
        member_json = await ctx.store.redeem_sign_in(token_hash(request.match_info["token"]), now=ctx.now())
        organiser = None if member_json is None else Organiser.from_json(member_json)
        if organiser is None:
            return notice(
                request,
                403,
                "Link used up",
                "This sign-in link was used already or has expired. Ask for a new one with /popup web in your chat.",
            )
        _log.info("web: %s user %s signed in to the dashboard", organiser.member.platform, organiser.member.user_id)
        redirect = web.HTTPSeeOther("/dash")
        sealed = ctx.signer.seal("organiser", organiser.to_json(), ttl=ctx.settings.login_ttl_seconds)
        set_cookie(ctx, redirect, ORGANISER_COOKIE, sealed, max_age=ctx.settings.login_ttl_seconds)
        raise redirect

    async def sign_out(self, request: web.Request) -> web.StreamResponse:
        redirect = web.HTTPSeeOther("/")
        redirect.del_cookie(ORGANISER_COOKIE, path="/")
        raise redirect

    def _organiser(self, request: web.Request) -> Member:
        sealed = self._ctx.signer.unseal("organiser", request.cookies.get(ORGANISER_COOKIE))
        organiser = None if sealed is None else Organiser.from_json(sealed)
        if organiser is None:
            raise web.HTTPForbidden(text="Sign in first: type /popup web in your chat for a link.")
        return organiser.member

    def _may_manage(self, member: Member, session: SessionRecord) -> bool:
        return rights.may_run(member, "stop", session, self._ctx.engine.organisers)

    async def _managed(self, request: web.Request) -> tuple[Member, SessionRecord]:
        member = self._organiser(request)
        session = await self._ctx.store.get_session(int(request.match_info["id"]))
        if session is None or not self._may_manage(member, session):
            raise web.HTTPNotFound(text="No such session among yours.")
        return member, session

    # -- sessions ----------------------------------------------------------------------------

    async def home(self, request: web.Request) -> web.Response:
        ctx = self._ctx
        member = self._organiser(request)
        sessions = [s for s in await ctx.store.list_sessions() if self._may_manage(member, s)]
        stored = {p.name: p for p in await ctx.store.web_plans()}
        html = render(
            "dash.html.j2",
            member=member,
            sessions=list(reversed(sessions)),
            configured=list(ctx.plans.configured.values()),
            added=[(plan, stored.get(plan.name)) for plan in ctx.plans.added.values()],
            may_start=rights.may_run(member, "start", None, ctx.engine.organisers),
            csrf=csrf_of(request),
            feed_url="/feed.xml",
        )
        return web.Response(text=html, content_type="text/html")

    async def session(self, request: web.Request, *, said: str = "") -> web.Response:
        ctx = self._ctx
        member, session = await self._managed(request)
        html = render(
            "dash_session.html.j2",
            member=member,
            session=session,
            live=await self._live_html(session.id),
            actions=ACTIONS if not session.state.is_terminal else (),
            page_url=ctx.page_url(session.id) if page_channel(session.id) in session.channels else "",
            page_path=ctx.page_path(session.id),
            published=await ctx.store.published_article(session.id),
            said=said,
            csrf=csrf_of(request),
            feed_url="/feed.xml",
        )
        return web.Response(text=html, content_type="text/html")

    async def _live_html(self, session_id: int) -> str:
        store = self._ctx.store
        session = await store.get_session(session_id)
        assert session is not None
        prompts = await store.prompts(session_id)
        per_channel: defaultdict[int, list[tuple[str, int]]] = defaultdict(list)
        for count in await store.reply_counts(session_id):
            per_channel[count.prompt_id].append((f"{count.platform}:{count.channel_id}", count.replies))
        newest = await store.newest_replies(session_id, NEWEST)
        positions = {p.id: p.position for p in prompts}
        return render(
            "dash_live.html.j2",
            session=session,
            prompts=prompts,
            per_channel=per_channel,
            newest=newest,
            positions=positions,
        )

    async def live(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx
        _, session = await self._managed(request)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        last = ""
        try:
            while not ctx.stopping.is_set():
                html = await self._live_html(session.id)
                if html != last:
                    await response.write(encode("live", {"html": html}))
                    last = html
                else:
                    await response.write(b": still\n\n")  # notices a closed tab
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ctx.stopping.wait(), _LIVE_EVERY)
        except ConnectionResetError:
            pass
        return response

    async def act(self, request: web.Request) -> web.StreamResponse:
        ctx = self._ctx
        member, session = await self._managed(request)
        form = await request.post()
        action = form_text(form, "action")
        if action not in ACTIONS:
            raise web.HTTPBadRequest(text="Unknown action.")
        command = CommandInvoked(channel=page_channel(session.id), member=member, name=action, at=ctx.now())
        reply = await ctx.need_handler().on_command(command)
        _log.info("web: %s user %s ran %s on session %d", member.platform, member.user_id, action, session.id)
        return await self.session(request, said=reply.text)

    # -- the article ---------------------------------------------------------------------------

    async def article(self, request: web.Request) -> web.Response:
        member, session = await self._managed(request)
        versions = await self._ctx.store.article_versions(session.id)
        text = versions[0].markdown if versions else await self._draft(session)
        return await self._editor(request, member, session, text, preview="", said="")

    async def article_save(self, request: web.Request) -> web.Response:
        ctx = self._ctx
        member, session = await self._managed(request)
        if session.state is not SessionState.CLOSED:
            return notice(request, 409, "Not yet", "The article can be edited once the session is closed.")
        form = await request.post()
        action = form_text(form, "action")
        text = form_text(form, "markdown").replace("\r\n", "\n")
        if action == "draft":
            return await self._editor(
                request,
                member,
                session,
                await self._draft(session),
                preview="",
                said="The generated draft is in the editor; save or publish to keep it.",
            )
        if action == "preview":
            return await self._editor(request, member, session, text, preview=markdown_html(text), said="")
        if action not in ("save", "publish"):
            raise web.HTTPBadRequest(text="Unknown action.")
        if not text.strip():
            return await self._editor(request, member, session, text, preview="", said="The article is empty.")
        publish = action == "publish"
        version = await ctx.store.add_article_version(
            session.id, text, saved_by=author_key(member), at=ctx.now(), publish=publish
        )
        said = f"Version {version.id} published." if publish else f"Version {version.id} saved (not published)."
        return await self._editor(request, member, session, text, preview="", said=said)

    async def _editor(
        self, request: web.Request, member: Member, session: SessionRecord, text: str, *, preview: str, said: str
    ) -> web.Response:
        ctx = self._ctx
        html = render(
            "article_edit.html.j2",
            member=member,
            session=session,
            markdown=text,
            preview=preview,
            versions=await ctx.store.article_versions(session.id),
            published=await ctx.store.published_article(session.id),
            editable=session.state is SessionState.CLOSED,
            said=said,
            csrf=csrf_of(request),
            feed_url="/feed.xml",
        )
        return web.Response(text=html, content_type="text/html")

    async def _draft(self, session: SessionRecord) -> str:
        """The generated article (what ``popup export --format md`` gives before anything is published)."""
        if session.state is not SessionState.CLOSED:
            return ""
        from sessions.recap.exports import export

        sink = io.StringIO()
        await export(self._ctx.store, session, "md", sink)
        return sink.getvalue()
