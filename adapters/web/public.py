"""What anyone may read: the published articles, one page each, and their Atom feed."""

from __future__ import annotations

from aiohttp import web

from adapters.web.articles import article_page
from adapters.web.context import WebContext
from adapters.web.render import markdown_html, render
from sessions.records import SessionRecord
from sessions.web import ArticleVersion

FEED_ENTRIES = 50


class PublicRoutes:
    def __init__(self, ctx: WebContext) -> None:
        self._ctx = ctx

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.home),
            web.get("/articles/{id:\\d+}", self.article),
            web.get("/feed.xml", self.feed),
        ]

    async def _published(self) -> list[tuple[SessionRecord, ArticleVersion]]:
        store = self._ctx.store
        found: list[tuple[SessionRecord, ArticleVersion]] = []
        for version in await store.published_articles(FEED_ENTRIES):
            session = await store.get_session(version.session_id)
            if session is not None:
                found.append((session, version))
        return found

    async def home(self, request: web.Request) -> web.Response:
        html = render("home.html.j2", articles=await self._published(), feed_url="/feed.xml")
        return web.Response(text=html, content_type="text/html")

    async def article(self, request: web.Request) -> web.Response:
        store = self._ctx.store
        session_id = int(request.match_info["id"])
        version = await store.published_article(session_id)
        session = await store.get_session(session_id) if version is not None else None
        if version is None or session is None:
            raise web.HTTPNotFound(text="No article has been published here.")
        html = article_page(session, version, standalone=False, feed_url="/feed.xml")
        return web.Response(text=html, content_type="text/html")

    async def feed(self, request: web.Request) -> web.Response:
        ctx = self._ctx
        entries = [(session, version, markdown_html(version.markdown)) for session, version in await self._published()]
        xml = render("feed.xml.j2", base=ctx.settings.base_url, entries=entries, now=ctx.now())
        return web.Response(text=xml, content_type="application/atom+xml", headers={"Cache-Control": "max-age=60"})
