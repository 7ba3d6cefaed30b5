"""Slack's OAuth install flow: the "Add to Slack" page and the redirect Slack sends the installer back
to, through slack-bolt's ``AsyncOAuthFlow`` with Popup's database behind it
(:mod:`adapters.slack.install_store`).

The page hands the browser a one-time state twice: in the authorize link and in a cookie. The
redirect is taken only with both alike and the state unused and unexpired (taken once, in the
database, so any process behind a load balancer may serve either request); then the code is
exchanged at ``oauth.v2.access`` and the installation saved with its bot token sealed. What Slack
or the browser got wrong is a page saying so (and a line in the log), never a traceback.

The two routes are served by the web server when ``[web]`` is on (``bot/app.py`` hands them over;
adapters/web knows nothing of Slack), otherwise by the Slack HTTP endpoint beside the events path.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.install_store import SlackInstallationStore, SlackStateStore
from adapters.slack.settings import SlackSettings

_log = logging.getLogger(__name__)

STATE_SECONDS = 600  # how long an "Add to Slack" page's link may be followed
PageHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

# What a failed install tells the installer, by bolt's reason.
_FAILURES = {
    "access_denied": "The install was cancelled in Slack; nothing was installed.",
    "invalid_browser": "This install was not started in this browser (or its cookie has gone). Start again.",
    "invalid_state": "This install link has been used or has expired. Start again.",
    "missing_code": "Slack sent no install code back. Start again.",
    "invalid_code": "Slack did not accept the install code (it may have been used already). Start again.",
    "storage_error": "The installation could not be saved. Try again in a moment.",
}


class InstallPages:
    """The two routes of the install flow (:meth:`routes`), for whichever server serves them."""

    def __init__(
        self,
        settings: SlackSettings,
        *,
        installations: SlackInstallationStore,
        states: SlackStateStore,
        client: AsyncWebClient,
    ) -> None:
        self._install_path = settings.install_path
        oauth = AsyncOAuthSettings(
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            scopes=list(settings.scopes),
            user_scopes=[],  # bot installs only: no user token is asked for or kept
            redirect_uri=settings.redirect_url or None,
            install_path=settings.install_path,
            redirect_uri_path=settings.redirect_path,
            callback_options=AsyncCallbackOptions(success=self._success, failure=self._failure),
            installation_store=installations,
            installation_store_bot_only=True,
            state_store=states,
            state_expiration_seconds=STATE_SECONDS,
            logger=_log,
        )
        self._flow = _Flow(client=client, logger=_log, settings=oauth)

    def routes(self) -> dict[str, PageHandler]:
        """GET path → handler."""
        return {self._flow.install_path: self.install, self._flow.redirect_uri_path: self.redirect}

    async def install(self, request: web.BaseRequest) -> web.StreamResponse:
        """The "Add to Slack" page: an authorize link carrying a fresh state, the same state in a cookie."""
        return await to_aiohttp_response(await self._flow.handle_installation(_bolt_request(request)))

    async def redirect(self, request: web.BaseRequest) -> web.StreamResponse:
        """Where Slack sends the installer back: check the state, exchange the code, save, say so."""
        return await to_aiohttp_response(await self._flow.handle_callback(_bolt_request(request)))

    async def _success(self, args: AsyncSuccessArgs) -> BoltResponse:
        installation = args.installation
        where = installation.team_name or installation.enterprise_name or "your workspace"
        text = (
            f"Popup is installed in {where}. Invite it to a channel (/invite @Popup) and type /popup start there."
        )
        return self._page(200, "Popup is installed", text, args.settings.state_utils.build_set_cookie_for_deletion())

    async def _failure(self, args: AsyncFailureArgs) -> BoltResponse:
        reason = args.reason
        _log.warning("slack: an install was refused (%s)", reason)
        text = _FAILURES.get(reason, f"Slack reported a problem ({reason}). Start again.")
        return self._page(args.suggested_status_code, "Popup was not installed", text, None)

    def _page(self, status: int, title: str, text: str, cookie: str | None) -> BoltResponse:
        headers: dict[str, str | Sequence[str]] = {"Content-Type": "text/html; charset=utf-8"}
        if cookie is not None:
            headers["Set-Cookie"] = [cookie]
        again = f'<p><a href="{html.escape(self._install_path)}">Add to Slack</a></p>'
        body = _html(title, f"<p>{html.escape(text)}</p>{again}")
        return BoltResponse(status=status, body=body, headers=headers)


class _Flow(AsyncOAuthFlow):
    """bolt's flow with Popup's own install page (no inline style or script: the web server's
    Content-Security-Policy allows none)."""

    async def build_install_page_html(self, url: str, request: AsyncBoltRequest) -> str:
        link = html.escape(url, quote=True)
        return _html(
            "Add Popup to Slack",
            "<p>Popup runs one-day popup learning sessions in your Slack channels.</p>"
            f'<p><a id="add-to-slack" href="{link}">Add to Slack</a></p>',
        )


def _html(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _bolt_request(request: web.BaseRequest) -> AsyncBoltRequest:
    # Cookie headers as a list: bolt's state check reads every one of them.
    headers: dict[str, str | Sequence[str]] = {
        name.lower(): value for name, value in request.headers.items() if name.lower() != "cookie"
    }
    headers["cookie"] = request.headers.getall("Cookie", [])
    return AsyncBoltRequest(body="", query=request.query_string, headers=headers)
