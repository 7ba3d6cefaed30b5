"""A fake Slack Web API (and Socket Mode endpoint) on 127.0.0.1, faithful enough for the real SDK.

It answers the calls the Slack adapter and bolt make, over real HTTP and websockets, and records
every call so tests can assert on what was sent:

* ``auth.test``, ``users.info``, ``chat.postMessage`` (with a configurable 429 + Retry-After, or a
  dropped connection *after* the post was stored, on chosen calls), ``conversations.history``
  (with message metadata when asked) and ``conversations.replies`` (both in pages, with cursors),
  the three calls of ``files_upload_v2``, and ``apps.connections.open``;
* the installation: ``auth.test`` names its team (and Enterprise Grid org), ``bots.info`` the app
  our bot belongs to;
* ``/socket``: the Socket Mode websocket (``hello``, then envelopes the test sends; acks come
  back as ``{"envelope_id": …}``);
* ``/respond/{id}``: response URLs for slash commands;
* more workspaces, installed through ``oauth.v2.access`` (:meth:`FakeSlack.install_code` hands out
  the code Slack would redirect the installer's browser with): each has a bot token, bot user and bot
  of its own, which ``auth.test``, ``bots.info`` and the messages it posts show; a channel given to a
  workspace (``channel_teams``) is found only with that workspace's token, so a post with another
  workspace's token fails (``channel_not_found``) as it does on Slack; :meth:`FakeSlack.uninstall`
  revokes a workspace's token.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"
APP_ID = "A0001"  # the app our bot belongs to: bots.info says so, and every payload carries it

_JSON_ARGS = ("blocks", "metadata", "files", "attachments")


CLIENT_ID = "1111.2222"
CLIENT_SECRET = "fake-client-secret"


@dataclass(slots=True)
class FakeWorkspace:
    """A workspace the app is installed in (or an org, for an org-wide install): its bot and token."""

    team_id: str
    token: str
    bot_user_id: str
    bot_id: str
    app_id: str = APP_ID
    enterprise_id: str = ""
    org_wide: bool = False
    name: str = "Fake"

    def serves(self, team_id: str) -> bool:
        """Whether this install's token may act in a channel of ``team_id`` (an org-wide install: any
        workspace of its org, which the fake does not model further)."""
        return self.org_wide or team_id == self.team_id


CALLER: web.RequestKey[FakeWorkspace] = web.RequestKey("caller", FakeWorkspace)


@dataclass(slots=True)
class Call:
    method: str
    args: dict[str, Any]
    token: str = ""


@dataclass(slots=True)
class Upload:
    file_id: str
    filename: str
    data: bytes = b""
    channel: str | None = None
    thread_ts: str | None = None
    completed: bool = False


@dataclass(slots=True)
class FakeSlack:
    """Start with ``await fake.start()``; ``fake.base_url`` is what ``api_base_url`` should be."""

    bot_token: str = BOT_TOKEN
    app_token: str = APP_TOKEN
    users: dict[str, str] = field(default_factory=dict)  # user id → display name
    admins: set[str] = field(default_factory=set)  # users.info says is_admin for these user ids
    owners: set[str] = field(default_factory=set)  # … and is_owner for these
    # chat.postMessage call numbers (1-based) answered with 429 and this Retry-After
    rate_limit_posts: set[int] = field(default_factory=set)
    retry_after: int = 1
    # chat.postMessage call numbers whose connection is dropped after the message is stored
    drop_posts: set[int] = field(default_factory=set)
    socket_url: str | None = None  # what apps.connections.open hands out (default: our /socket)
    outage: bool = False  # while set, every Web API call answers 503 (Slack down)
    # The most items a page of conversations.history/replies holds, whatever `limit` asks: Slack
    # may return fewer than asked before the end, so a client must follow `next_cursor`.
    page_limit: int = 1000
    # The installation auth.test reports (an enterprise_id puts it on Enterprise Grid; org_wide
    # makes it an install for the whole org), and bots.info's answer ("" = ok, else the error).
    team_id: str = TEAM_ID
    enterprise_id: str = ""
    org_wide: bool = False
    bots_info_error: str = ""
    channel_names: dict[str, str] = field(default_factory=dict)  # conversations.info: channel id → name
    # Channels in a given workspace (channel id → team id): only that workspace's token finds them.
    channel_teams: dict[str, str] = field(default_factory=dict)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    installed: dict[str, FakeWorkspace] = field(default_factory=dict)  # token → workspace (OAuth installs)

    calls: list[Call] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel → messages
    uploads: dict[str, Upload] = field(default_factory=dict)
    responses: list[dict[str, Any]] = field(default_factory=list)  # bodies posted to response URLs
    port: int = 0

    _runner: web.AppRunner | None = None
    _post_calls: int = 0
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _socket_ready: asyncio.Event | None = None
    _acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _envelopes: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _codes: dict[str, FakeWorkspace] = field(default_factory=dict)  # OAuth codes not yet exchanged
    _installs: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> FakeSlack:
        self._socket_ready = asyncio.Event()
        app = web.Application()
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{rid}", self._respond)
        app.router.add_route("*", "/api/{method}", self._api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, rid: str = "1") -> str:
        return f"http://127.0.0.1:{self.port}/respond/{rid}"

    # -- workspaces -------------------------------------------------------------------------------

    def install_code(
        self, team_id: str, *, enterprise_id: str = "", org_wide: bool = False, app_id: str = APP_ID
    ) -> str:
        """The code Slack hands the installer's browser once they allow the app in ``team_id`` (or in
        the org ``enterprise_id``, org-wide); ``oauth.v2.access`` exchanges it, once, for a token."""
        n = next(self._installs)
        who = team_id or enterprise_id
        workspace = FakeWorkspace(
            team_id=team_id, token=f"xoxb-{who.lower()}-{n}", bot_user_id=f"UBOT{who}", bot_id=f"BBOT{who}",
            app_id=app_id, enterprise_id=enterprise_id, org_wide=org_wide, name=f"Workspace {who}",
        )
        code = f"code-{who}-{n}"
        self._codes[code] = workspace
        return code

    def uninstall(self, team_id: str) -> None:
        """The workspace removed the app: its token is revoked."""
        for token, workspace in list(self.installed.items()):
            if workspace.team_id == team_id:
                del self.installed[token]

    def workspace(self, team_id: str) -> FakeWorkspace:
        """The installed workspace ``team_id`` (the main one included)."""
        for workspace in (self._main(), *self.installed.values()):
            if workspace.team_id == team_id:
                return workspace
        raise KeyError(team_id)

    def _main(self) -> FakeWorkspace:
        """The workspace of ``bot_token`` (SLACK_BOT_TOKEN), as the fields above describe it."""
        return FakeWorkspace(
            team_id=self.team_id, token=self.bot_token, bot_user_id=BOT_USER_ID, bot_id=BOT_ID,
            enterprise_id=self.enterprise_id, org_wide=self.org_wide,
        )

    def _caller(self, token: str) -> FakeWorkspace | None:
        if token == self.bot_token:
            return self._main()
        return self.installed.get(token)

    # -- queries for tests --------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every message posted, in order (top-level and threaded)."""
        out = [m for ch, ms in self.messages.items() if channel in (None, ch) for m in ms]
        return sorted(out, key=lambda m: float(m["ts"]))

    # -- socket mode ------------------------------------------------------------------------------

    async def wait_socket(self, within: float = 5.0) -> None:
        assert self._socket_ready is not None
        await asyncio.wait_for(self._socket_ready.wait(), within)

    async def send_envelope(
        self, kind: str, payload: Mapping[str, Any], *, within: float = 5.0, accepts_response_payload: bool = False
    ) -> dict[str, Any]:
        """Send one Socket Mode envelope and return the client's ack."""
        await self.wait_socket()
        envelope_id = f"env-{next(self._envelopes)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return await asyncio.wait_for(future, within)

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {}}))
        assert self._socket_ready is not None
        self._socket_ready.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                future = self._acks.pop(str(data.get("envelope_id")), None)
                if future is not None and not future.done():
                    future.set_result(data)
        finally:
            self._sockets.remove(ws)
        return ws

    # -- HTTP handlers ------------------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.responses.append(body)
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404, text="no such upload")
        upload.data = await request.read()
        return web.Response(text=f"OK - {len(upload.data)}")

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args = await _read_args(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(args.get("token", ""))
        self.calls.append(Call(method=method, args=args, token=token))
        if self.outage:
            return web.json_response({"ok": False, "error": "service_unavailable"}, status=503)
        if method == "oauth.v2.access":
            return self._oauth_v2_access(request, args)  # the app's credentials, not a token
        if method == "apps.connections.open":
            if token != self.app_token:
                return _ok_false("invalid_auth")
            return await self._m_apps_connections_open(request, args)
        caller = self._caller(token)
        if caller is None:
            return _ok_false("invalid_auth")
        team = self.channel_teams.get(str(args.get("channel", "")))
        if team is not None and not caller.serves(team):
            return _ok_false("channel_not_found")  # Slack's answer for a channel of another workspace
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return _ok_false("unknown_method")
        request[CALLER] = caller
        response: web.StreamResponse = await handler(request, args)
        return response

    def _oauth_v2_access(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        client_id, client_secret = str(args.get("client_id", "")), str(args.get("client_secret", ""))
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if (client_id, client_secret) != (self.client_id, self.client_secret):
            return _ok_false("invalid_client_id" if client_id != self.client_id else "bad_client_secret")
        workspace = self._codes.pop(str(args.get("code", "")), None)
        if workspace is None:
            return _ok_false("invalid_code")  # unknown, or already exchanged
        self.installed[workspace.token] = workspace
        enterprise = {"id": workspace.enterprise_id, "name": "Fake Org"} if workspace.enterprise_id else None
        team = None if workspace.org_wide else {"id": workspace.team_id, "name": workspace.name}
        return web.json_response(
            {"ok": True, "access_token": workspace.token, "token_type": "bot",
             "scope": "commands,chat:write,channels:history", "bot_user_id": workspace.bot_user_id,
             "app_id": workspace.app_id, "team": team, "enterprise": enterprise,
             "is_enterprise_install": workspace.org_wide, "authed_user": {"id": "UINSTALLER"}}
        )

    # -- methods ------------------------------------------------------------------------------------

    async def _m_auth_test(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        caller = request[CALLER]
        answer = {"ok": True, "url": "https://fake.slack.com/", "team": caller.name, "user": "popup",
                  "team_id": caller.team_id, "user_id": caller.bot_user_id, "bot_id": caller.bot_id,
                  "is_enterprise_install": caller.org_wide}
        if caller.enterprise_id:
            answer.update(enterprise_id=caller.enterprise_id, enterprise="Fake Org")
        return web.json_response(answer)

    async def _m_bots_info(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        caller = request[CALLER]
        if self.bots_info_error:
            return _ok_false(self.bots_info_error)
        if args.get("bot") != caller.bot_id:
            return _ok_false("bot_not_found")
        return web.json_response(
            {"ok": True, "bot": {"id": caller.bot_id, "deleted": False, "name": "popup", "updated": 1_700_000_000,
                                 "app_id": caller.app_id, "user_id": caller.bot_user_id,
                                 "icons": {"image_36": "https://fake.slack.com/36.png"}}}
        )

    async def _m_users_info(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        user_id = str(args.get("user", ""))
        if not user_id:
            return _ok_false("user_not_found")
        name = self.users.get(user_id, f"name-{user_id}")
        owner = user_id in self.owners
        return web.json_response(
            {"ok": True, "user": {"id": user_id, "name": user_id.lower(), "real_name": name,
                                  "is_admin": user_id in self.admins or owner, "is_owner": owner,
                                  "is_primary_owner": False, "is_bot": False,
                                  "profile": {"display_name": name, "real_name": name}}}
        )

    async def _m_chat_postMessage(self, request: web.Request, args: dict[str, Any]) -> web.StreamResponse:
        self._post_calls += 1
        if self._post_calls in self.rate_limit_posts:
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(self.retry_after)}
            )
        channel = str(args.get("channel", ""))
        if not channel:
            return _ok_false("channel_not_found")
        if not args.get("text") and not args.get("blocks"):
            return _ok_false("no_text")
        ts = f"{1_700_000_000 + next(self._ts)}.000100"
        caller = request[CALLER]
        message: dict[str, Any] = {
            "type": "message", "ts": ts, "user": caller.bot_user_id, "bot_id": caller.bot_id,
            "text": args.get("text", ""), "blocks": args.get("blocks") or [],
        }
        if args.get("metadata"):
            message["metadata"] = args["metadata"]
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.messages.setdefault(channel, []).append(message)
        if self._post_calls in self.drop_posts:
            # Stored, but the client never hears back: the case a blind retry would double-post.
            assert request.transport is not None
            request.transport.close()
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    async def _m_conversations_history(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        channel = str(args.get("channel", ""))
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        top = [m for m in self.messages.get(channel, []) if "thread_ts" not in m or m["thread_ts"] == m["ts"]]
        out = []
        for message in sorted(top, key=lambda m: float(m["ts"]), reverse=True):  # newest first
            copy = dict(message)
            if not with_metadata:
                copy.pop("metadata", None)
            out.append(copy)
        return self._page(out, args, default_limit=100)

    async def _m_conversations_replies(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        channel = str(args.get("channel", ""))
        ts = str(args.get("ts", ""))
        thread = [m for m in self.messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
        if not any(m["ts"] == ts for m in thread):
            return _ok_false("thread_not_found")
        thread.sort(key=lambda m: float(m["ts"]))  # the parent first, then the replies, oldest first
        return self._page(thread, args, default_limit=10)

    def _page(self, messages: list[dict[str, Any]], args: dict[str, Any], *, default_limit: int) -> web.Response:
        """One page of ``messages`` as Slack's cursor pagination gives it: at most ``limit`` (and at
        most :attr:`page_limit`) items from the ``cursor`` on, ``has_more``, and the next cursor."""
        cursor = str(args.get("cursor") or "")
        try:
            start = int(base64.b64decode(cursor, validate=True).decode().removeprefix("next:")) if cursor else 0
        except ValueError:
            return _ok_false("invalid_cursor")
        limit = min(int(args.get("limit") or default_limit), self.page_limit)
        page = messages[start : start + limit]
        more = start + limit < len(messages)
        following = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
        return web.json_response(
            {"ok": True, "messages": page, "has_more": more, "response_metadata": {"next_cursor": following}}
        )

    async def _m_conversations_info(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        channel = str(args.get("channel", ""))
        if channel not in self.channel_names:
            return _ok_false("channel_not_found")
        return web.json_response({"ok": True, "channel": {"id": channel, "name": self.channel_names[channel]}})

    def add_member_message(self, channel: str, message: dict[str, Any]) -> None:
        """Put a member's message in the channel's history (as if posted while the bot was away)."""
        self.messages.setdefault(channel, []).append(dict(message))

    async def _m_files_getUploadURLExternal(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        file_id = f"F{len(self.uploads) + 1:04d}"
        self.uploads[file_id] = Upload(file_id=file_id, filename=str(args.get("filename", "")))
        return web.json_response(
            {"ok": True, "file_id": file_id, "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}"}
        )

    async def _m_files_completeUploadExternal(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        files = args.get("files") or []
        done = []
        for item in files:
            upload = self.uploads.get(str(item.get("id")))
            if upload is None:
                return _ok_false("file_not_found")
            upload.completed = True
            upload.channel = args.get("channel_id")
            upload.thread_ts = args.get("thread_ts")
            done.append({"id": upload.file_id, "name": upload.filename, "title": item.get("title")})
        return web.json_response({"ok": True, "files": done})

    async def _m_apps_connections_open(self, request: web.Request, args: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "url": self.socket_url or f"ws://127.0.0.1:{self.port}/socket"})


def _ok_false(error: str) -> web.Response:
    return web.json_response({"ok": False, "error": error})


async def _read_args(request: web.Request) -> dict[str, Any]:
    """Arguments from the query string, a form (urlencoded or multipart) or a JSON body, merged."""
    args: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                args.update(body)
        else:
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
    for key in _JSON_ARGS:
        if isinstance(args.get(key), str) and args[key]:
            args[key] = json.loads(args[key])
    return args
