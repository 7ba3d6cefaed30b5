"""The aiohttp application: its routes, and the safety every response gets.

* Every response: a strict Content-Security-Policy (scripts and styles only from this server's
  files, no inline script, no framing), ``nosniff`` and no referrer (a page's URL is its key: it
  must not travel to other sites in a Referer header).
* Every request body is capped (``client_max_size``): too large is 413 before any work.
* Every browser gets an id in a signed cookie; every POST must carry the CSRF token bound to it,
  or is refused with 403 before it reaches a route.
* Cookies are HttpOnly and SameSite=Lax, and Secure when ``public_url`` is https.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources

from aiohttp import web

from adapters.web.auth import new_browser_id
from adapters.web.context import WebContext
from adapters.web.render import render

_log = logging.getLogger(__name__)

BROWSER_COOKIE = "popup_browser"
ORGANISER_COOKIE = "popup_organiser"
_BROWSER_SECONDS = 180 * 24 * 3600

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PageHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
"""A GET page another part of Popup asks the web server to serve (bot/app.py hands them over)."""
CTX: web.AppKey[WebContext] = web.AppKey("popup_web", WebContext)
BROWSER: web.RequestKey[str] = web.RequestKey("popup_browser", str)


def set_cookie(ctx: WebContext, response: web.StreamResponse, name: str, value: str, *, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=ctx.settings.secure_cookies,
    )


def browser_of(request: web.Request) -> str:
    """The browser's own id (from its signed cookie, or new with this response)."""
    return request[BROWSER]


def csrf_of(request: web.Request) -> str:
    ctx = request.app[CTX]
    return ctx.signer.csrf(browser_of(request))


def form_text(form: Mapping[str, object], name: str) -> str:
    """A text field of a posted form ("" when missing, or when it is a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def notice(request: web.Request, status: int, title: str, text: str) -> web.Response:
    """A small page that says what happened (an error, a refusal)."""
    html = render("notice.html.j2", title=title, text=text, feed_url="/feed.xml")
    return web.Response(status=status, text=html, content_type="text/html")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CTX]
    browser = ctx.signer.unseal("browser", request.cookies.get(BROWSER_COOKIE))
    fresh = browser is None
    request[BROWSER] = browser or new_browser_id()
    if request.method == "POST":
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            response: web.StreamResponse = notice(request, 413, "Too long", "That was more than this page takes.")
            return _finish(ctx, request, response, fresh=False)
        token = form.get("csrf")
        if fresh or not ctx.signer.csrf_ok(browser, token if isinstance(token, str) else None):
            _log.info("web: refused a POST to %s without a valid CSRF token", request.path)
            response = notice(request, 403, "Refused", "This form has expired. Go back, reload the page and try again.")
            return _finish(ctx, request, response, fresh=fresh)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.text is not None and exc.content_type == "text/plain":
            exc.headers.update(_HEADERS)
        raise
    return _finish(ctx, request, response, fresh=fresh)


def _finish(ctx: WebContext, request: web.Request, response: web.StreamResponse, *, fresh: bool) -> web.StreamResponse:
    if response.prepared:  # a stream (live events) sent its headers itself
        return response
    response.headers.update(_HEADERS)
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    if fresh:
        sealed = ctx.signer.seal("browser", request[BROWSER])
        set_cookie(ctx, response, BROWSER_COOKIE, sealed, max_age=_BROWSER_SECONDS)
    return response


_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript"}


def _static_file(name: str) -> bytes:
    return resources.files("adapters.web").joinpath("static", name).read_bytes()


def static_routes() -> list[web.RouteDef]:
    files = {name: _static_file(name) for name in ("popup.css", "popup.js")}

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = files.get(name)
        if body is None:
            raise web.HTTPNotFound()
        kind = _STATIC_TYPES[name[name.rfind(".") :]]
        return web.Response(body=body, content_type=kind, charset="utf-8", headers={"Cache-Control": "max-age=300"})

    async def no_icon(request: web.Request) -> web.Response:
        return web.Response(status=204, headers={"Cache-Control": "max-age=86400"})

    return [web.get("/static/{name}", serve), web.get("/favicon.ico", no_icon)]


def make_app(ctx: WebContext, pages: Mapping[str, PageHandler] | None = None) -> web.Application:
    """The application; ``pages`` are GET routes others ask to be served (path → handler)."""
    from adapters.web.dashboard import DashboardRoutes
    from adapters.web.page import PageRoutes
    from adapters.web.public import PublicRoutes

    app = web.Application(client_max_size=ctx.settings.max_request_bytes, middlewares=[guard])
    app[CTX] = ctx
    app.add_routes(static_routes())
    app.add_routes(PageRoutes(ctx).routes())
    app.add_routes(DashboardRoutes(ctx).routes())
    app.add_routes(PublicRoutes(ctx).routes())
    for path, page in (pages or {}).items():
        app.router.add_get(path, page)
    return app
