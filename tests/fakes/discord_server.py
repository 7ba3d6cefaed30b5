"""A Discord-compatible fake: the gateway (websocket) and the REST API on one loopback port.

A real ``discord.Client`` talks to it as it would to Discord: HELLO → IDENTIFY → READY with a
``resume_gateway_url`` pointing back here → GUILD_CREATE, heartbeats, RESUME with replay of the
dispatches the client missed, and the REST routes Popup uses. Several clients may be connected at
once, each identifying as its shard (``[shard_id, shard_count]``; a shard outside the count is
closed with 4010): as on Discord, READY and GUILD_CREATE name only the shard's guilds, and a guild's
events and slash commands go to the shard ``(guild_id >> 22) % shard_count`` only. Payloads follow the Discord API v10
documentation closely enough for discord.py 2.7 to build its models from them; responses carry
``Content-Type: application/json`` exactly (discord.py parses JSON only then) and 429s carry a
``Via`` header (without one discord.py takes a 429 for a Cloudflare ban).

The tests drive the world through methods such as :meth:`FakeDiscord.say`,
:meth:`FakeDiscord.invoke` and :meth:`FakeDiscord.drop_connection`, and inspect :attr:`calls`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import BodyPartReader, WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
API_PREFIX = "/api/v10"
JSON = "application/json"

# Permission bits (https://discord.com/developers/docs/topics/permissions)
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
READ_HISTORY = 1 << 16
ADD_REACTIONS = 1 << 6
MANAGE_GUILD = 1 << 5
MEMBER_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY | ADD_REACTIONS

HAS_THREAD = 1 << 5
EPHEMERAL = 1 << 6


@dataclass
class User:
    id: int
    username: str
    bot: bool = False
    role_ids: tuple[int, ...] = ()
    nick: str | None = None
    permissions: int = MEMBER_PERMISSIONS

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.username.title(),
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }

    def member_payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.role_ids],
            "nick": self.nick,
            "avatar": None,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
        }
        if with_user:
            data["user"] = self.payload()
        return data


@dataclass
class Call:
    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any
    status: int = 0


@dataclass
class GatewaySession:
    session_id: str
    shard: tuple[int, int] | None = None  # (shard_id, shard_count) from IDENTIFY; None: unsharded
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)
    socket: GatewaySocket | None = None

    def serves(self, guild_id: int) -> bool:
        """Discord's shard formula: a guild's events go to shard ``(guild_id >> 22) % shard_count``."""
        return self.shard is None or (guild_id >> 22) % self.shard[1] == self.shard[0]


@dataclass
class GatewaySocket:
    ws: web.WebSocketResponse
    compressor: Any | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        async with self.lock:
            if self.ws.closed:
                return
            try:
                if self.compressor is None:
                    await self.ws.send_str(text)
                else:  # zlib-stream: one shared deflate stream, each payload ends with a sync flush
                    data = self.compressor.compress(text.encode()) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
            except ConnectionResetError:
                # The client went away mid-send (killed, say): as Discord would, treat it as a
                # dropped connection. The dispatch is in the session log for a RESUME's replay.
                return


@dataclass
class Interaction:
    id: int
    token: str
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)  # message payloads, in order
    original: dict[str, Any] | None = None


class FakeDiscord:
    def __init__(
        self,
        *,
        token: str = "fake-token",
        heartbeat_interval_ms: int = 45000,
        guild_shard: tuple[int, int] | None = None,
    ) -> None:
        """``guild_shard`` ``(shard_id, shard_count)``: make the guild's id one that Discord's shard
        formula puts on that shard (else it falls where the clock puts it)."""
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1)
        self.app_id = self.snowflake()
        self.bot = User(id=self.app_id, username="popup", bot=True)
        self.guild_id = self.snowflake() if guild_shard is None else self._snowflake_on(*guild_shard)
        self.organiser_role_id = self.snowflake()
        self.channel_id = self.snowflake()
        self.olga = User(id=self.snowflake(), username="olga", role_ids=(self.organiser_role_id,))
        self.max = User(id=self.snowflake(), username="max")
        self.admin = User(id=self.snowflake(), username="ada", permissions=MEMBER_PERMISSIONS | MANAGE_GUILD)
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> commands
        self.messages: dict[int, list[dict[str, Any]]] = {self.channel_id: []}
        self.threads: dict[int, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.interactions: dict[str, Interaction] = {}
        self.sessions: dict[str, GatewaySession] = {}
        self.identifies = 0
        self.heartbeats = 0
        self.resumes = 0
        # knobs
        self.refuse_intents = False  # close with 4014 after IDENTIFY
        self.rate_limits: dict[int, bool] = {}  # Nth POST /channels/*/messages (1-based) -> global?
        self.resume_gateway_url: str | None = None  # READY's resume URL; None = this server
        self.refuse_threads = 0  # this many thread creations answer 403 Missing Permissions
        self.outage = False  # while set, every REST call answers 503 (Discord's API down)
        self.identified_with: dict[str, Any] | None = None  # the last IDENTIFY payload
        self.connect_queries: list[dict[str, str]] = []
        self.uploads: dict[str, list[dict[str, Any]]] = {}  # message id -> files as received
        self._message_posts = 0
        self._nonces: dict[tuple[int, str], dict[str, Any]] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._sockets: set[web.WebSocketResponse] = set()

    # -- server -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def snowflake(self) -> int:
        now_ms = int(time.time() * 1000)
        return ((now_ms - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    def _snowflake_on(self, shard_id: int, shard_count: int) -> int:
        """A snowflake of a moment ago with ``(id >> 22) % shard_count == shard_id``."""
        stamp = int(time.time() * 1000) - DISCORD_EPOCH_MS
        stamp -= (stamp - shard_id) % shard_count
        return (stamp << 22) | (next(self._ids) & 0x3FFFFF)

    # -- world payloads -------------------------------------------------------------------------

    def roles_payload(self) -> list[dict[str, Any]]:
        def role(role_id: int, name: str, permissions: int, position: int) -> dict[str, Any]:
            return {
                "id": str(role_id),
                "name": name,
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "position": position,
                "permissions": str(permissions),
                "managed": False,
                "mentionable": False,
                "flags": 0,
            }

        return [
            role(self.guild_id, "@everyone", MEMBER_PERMISSIONS, 0),
            role(self.organiser_role_id, "Organiser", MEMBER_PERMISSIONS, 1),
        ]

    def channel_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "general",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }

    def guild_payload(self) -> dict[str, Any]:
        return {
            "id": str(self.guild_id),
            "name": "Learning Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.admin.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self.roles_payload(),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "member_count": 4,
            "voice_states": [],
            "members": [self.bot.member_payload()],
            "channels": [self.channel_payload()],
            "threads": list(self.threads.values()),
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def thread_payload(self, thread_id: int, parent_id: int, name: str) -> dict[str, Any]:
        return {
            "id": str(thread_id),
            "type": 11,
            "guild_id": str(self.guild_id),
            "parent_id": str(parent_id),
            "owner_id": str(self.bot.id),
            "name": name,
            "last_message_id": None,
            "message_count": 0,
            "member_count": 1,
            "rate_limit_per_user": 0,
            "flags": 0,
            "total_message_sent": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": datetime.now(UTC).isoformat(),
                "locked": False,
            },
        }

    def message_payload(
        self,
        channel_id: int,
        author: User,
        *,
        content: str = "",
        embeds: list[dict[str, Any]] | None = None,
        attachments: list[dict[str, Any]] | None = None,
        nonce: str | None = None,
        flags: int = 0,
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "author": author.payload(),
            "content": content,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": embeds or [],
            "pinned": False,
            "type": 0,
            "flags": flags,
            "components": [],
        }
        if nonce is not None:
            message["nonce"] = nonce
        return message

    # -- gateway ----------------------------------------------------------------------------------

    @property
    def session(self) -> GatewaySession | None:
        """The newest gateway session (with one client connected: its session)."""
        return next(reversed(self.sessions.values()), None) if self.sessions else None

    def session_for(self, guild_id: int) -> GatewaySession | None:
        """The gateway session that gets the guild's events: the newest of the shard owning it.

        Several clients (processes) may be connected at once, each as its shard, as Discord allows;
        a guild's events go to one connection only. A killed client's session stays (a RESUME
        could still pick it up) but a newer IDENTIFY of the same shard takes its events over.
        """
        return next((s for s in reversed(self.sessions.values()) if s.serves(guild_id)), None)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH on the session of the guild's shard, or keep it for the replay on RESUME."""
        session = self.session_for(int(data.get("guild_id") or self.guild_id))
        if session is not None:
            await self._send_dispatch(session, event, data)

    async def _send_dispatch(self, session: GatewaySession, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        payload = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(payload)
        if session.socket is not None:
            await session.socket.send(payload)

    @property
    def connected(self) -> bool:
        session = self.session
        return session is not None and session.socket is not None and not session.socket.ws.closed

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the client's websocket as a network failure or a Discord restart would."""
        session = self.session
        if session is None or session.socket is None:
            return
        socket, session.socket = session.socket, None
        await socket.ws.close(code=code)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        self.connect_queries.append(dict(request.query))
        assert request.query.get("v") == "10", request.query
        assert request.query.get("encoding") == "json", request.query
        compress = request.query.get("compress")
        assert compress in (None, "zlib-stream"), compress
        socket = GatewaySocket(ws=ws, compressor=zlib.compressobj() if compress else None)
        session: GatewaySession | None = None
        await socket.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    break
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                if op == 1:
                    self.heartbeats += 1
                    await socket.send({"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    session = await self._identify(socket, data)
                    if session is None:
                        break
                elif op == 6:
                    session = await self._resume(socket, data)
                    if session is None:
                        continue
        finally:
            self._sockets.discard(ws)
            if session is not None and session.socket is socket:
                session.socket = None
        return ws

    async def _identify(self, socket: GatewaySocket, data: dict[str, Any]) -> GatewaySession | None:
        self.identifies += 1
        self.identified_with = data
        if data.get("token") != self.token:
            await socket.ws.close(code=4004, message=b"Authentication failed.")
            return None
        if self.refuse_intents:
            await socket.ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        shard = data.get("shard")
        if shard is not None and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
            await socket.ws.close(code=4010, message=b"Invalid shard.")
            return None
        session = GatewaySession(session_id=uuid.uuid4().hex, shard=None if shard is None else (shard[0], shard[1]))
        self.sessions[session.session_id] = session
        session.socket = socket
        ours = session.serves(self.guild_id)  # READY and GUILD_CREATE name only the shard's guilds
        await self._send_dispatch(
            session,
            "READY",
            {
                "v": 10,
                "user": self.bot.payload(),
                "guilds": [{"id": str(self.guild_id), "unavailable": True}] if ours else [],
                "session_id": session.session_id,
                "resume_gateway_url": self.resume_gateway_url or self.gateway_url,
                "application": {"id": str(self.app_id), "flags": 0},
                "session_type": "normal",
            },
        )
        if ours:
            await self._send_dispatch(session, "GUILD_CREATE", self.guild_payload())
        return session

    async def _resume(self, socket: GatewaySocket, data: dict[str, Any]) -> GatewaySession | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await socket.send({"op": 9, "d": False, "s": None, "t": None})
            return None
        self.resumes += 1
        last = data.get("seq") or 0
        for payload in session.log:
            if payload["s"] > last:
                await socket.send(payload)
        session.socket = socket
        await self._send_dispatch(session, "RESUMED", {})
        return session

    # -- what members do ---------------------------------------------------------------------------

    async def say(self, channel_id: int, user: User, text: str) -> dict[str, Any]:
        """A member posts ``text`` in a channel or thread (kept in history, sent on the gateway)."""
        message = self.message_payload(channel_id, user, content=text)
        self.messages.setdefault(channel_id, []).append(message)
        event = dict(message, guild_id=str(self.guild_id), member=user.member_payload(with_user=False))
        await self.dispatch("MESSAGE_CREATE", event)
        return message

    def say_offline(self, channel_id: int, user: User, text: str) -> dict[str, Any]:
        """A message posted while the bot is away: in history, never dispatched to it."""
        message = self.message_payload(channel_id, user, content=text)
        self.messages.setdefault(channel_id, []).append(message)
        return message

    async def edit(self, channel_id: int, message_id: str, text: str) -> dict[str, Any]:
        message = self._find(channel_id, message_id)
        message["content"] = text
        message["edited_timestamp"] = datetime.now(UTC).isoformat()
        await self.dispatch("MESSAGE_UPDATE", dict(message, guild_id=str(self.guild_id)))
        return message

    async def delete(self, channel_id: int, message_id: str) -> None:
        message = self._find(channel_id, message_id)
        self.messages[channel_id].remove(message)
        data = {"id": message_id, "channel_id": str(channel_id), "guild_id": str(self.guild_id)}
        await self.dispatch("MESSAGE_DELETE", data)

    async def react(self, channel_id: int, message_id: str, user: User, emoji: str, *, add: bool = True) -> None:
        data: dict[str, Any] = {
            "user_id": str(user.id),
            "channel_id": str(channel_id),
            "message_id": message_id,
            "guild_id": str(self.guild_id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if add:
            data["member"] = user.member_payload()
            data["burst_colors"] = []
        await self.dispatch("MESSAGE_REACTION_ADD" if add else "MESSAGE_REACTION_REMOVE", data)

    async def invoke(
        self, user: User, subcommand: str, options: dict[str, Any] | None = None, *, channel_id: int | None = None
    ) -> Interaction:
        """``/popup SUBCOMMAND`` typed by ``user``; returns the interaction to watch for answers."""
        sub_options = [
            {"name": name, "type": 5 if isinstance(value, bool) else 3, "value": value}
            for name, value in (options or {}).items()
        ]
        return await self._interaction(user, 2, [{"name": subcommand, "type": 1, "options": sub_options}], channel_id)

    async def autocomplete(self, user: User, typed: str) -> Interaction:
        options = [
            {"name": "start", "type": 1, "options": [{"name": "plan", "type": 3, "value": typed, "focused": True}]}
        ]
        return await self._interaction(user, 4, options, None)

    async def _interaction(
        self, user: User, kind: int, options: list[dict[str, Any]], channel_id: int | None
    ) -> Interaction:
        channel_id = channel_id or self.channel_id
        command = next((c for c in self.commands.get(str(self.guild_id), []) if c["name"] == "popup"), None)
        command = command or next((c for c in self.commands.get("global", []) if c["name"] == "popup"), None)
        assert command is not None, "the client never synced /popup"
        interaction = Interaction(id=self.snowflake(), token=uuid.uuid4().hex)
        self.interactions[interaction.token] = interaction
        member = user.member_payload()
        member["permissions"] = str(user.permissions)
        channel = self.threads.get(channel_id) or self.channel_payload()
        await self.dispatch(
            "INTERACTION_CREATE",
            {
                "id": str(interaction.id),
                "application_id": str(self.app_id),
                "type": kind,
                "token": interaction.token,
                "version": 1,
                "guild_id": str(self.guild_id),
                "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
                "channel_id": str(channel_id),
                "channel": channel,
                "member": member,
                "data": {
                    "id": command["id"],
                    "name": "popup",
                    "type": 1,
                    "guild_id": command.get("guild_id"),
                    "options": options,
                },
                "locale": "en-US",
                "guild_locale": "en-US",
                "app_permissions": str(MEMBER_PERMISSIONS | (1 << 35) | (1 << 38) | (1 << 14) | (1 << 15)),
                "entitlements": [],
                "authorizing_integration_owners": {"0": str(self.guild_id)},
                "context": 0,
                "attachment_size_limit": 26214400,
            },
        )
        return interaction

    # -- REST ------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body = await self._body(request)
        call = Call(method=request.method, path=path, query=dict(request.query), body=body)
        self.calls.append(call)
        if self.outage:
            return self._json(call, {"message": "Service Unavailable", "code": 0}, status=503)
        webhook = path.startswith(("/webhooks/", "/interactions/"))
        if not webhook and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._json(call, {"message": "401: Unauthorized", "code": 0}, status=401)
        parts = path.strip("/").split("/")
        try:
            handled = await self._route(request.method, parts, call)
        except KeyError as exc:
            return self._json(call, {"message": f"Unknown {exc}", "code": 10003}, status=404)
        if handled is None:
            return self._json(call, {"message": "404: Not Found", "code": 0}, status=404)
        return handled

    async def _route(self, method: str, parts: list[str], call: Call) -> web.StreamResponse | None:
        match method, parts:
            case "GET", ["users", "@me"]:
                return self._json(call, self.bot.payload())
            case "GET", ["oauth2", "applications", "@me"]:
                return self._json(call, self._application())
            case "PUT", ["applications", _, "commands"]:
                return self._json(call, self._sync("global", call.body))
            case "PUT", ["applications", _, "guilds", guild_id, "commands"]:
                return self._json(call, self._sync(guild_id, call.body))
            case "POST", ["interactions", _, token, "callback"]:
                return self._json(call, self._callback(token, call.body))
            case "POST", ["webhooks", _, token]:
                return self._json(call, self._followup(token, call.body))
            case "PATCH", ["webhooks", _, token, "messages", "@original"]:
                return self._json(call, self._edit_original(token, call.body))
            case "GET", ["channels", channel_id]:
                return self._json(call, self._channel(int(channel_id)))
            case "GET", ["channels", channel_id, "messages"]:
                return self._json(call, self._history(int(channel_id), call.query))
            case "POST", ["channels", channel_id, "messages"]:
                return await self._create_message(int(channel_id), call)
            case "POST", ["channels", channel_id, "messages", message_id, "threads"]:
                return await self._create_thread(int(channel_id), message_id, call)
        return None

    def _json(self, call: Call, data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
        call.status = status
        # Exactly "application/json": aiohttp's content_type= would add "; charset=utf-8", and
        # discord.py then returns the body as a str instead of parsing it.
        return web.Response(
            status=status, body=json.dumps(data).encode(), headers={"Content-Type": JSON, **(headers or {})}
        )

    async def _body(self, request: web.Request) -> Any:
        if request.content_type == JSON:
            return await request.json()
        if request.content_type == "multipart/form-data":
            body: dict[str, Any] = {"files": []}
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                assert isinstance(part, BodyPartReader)
                if part.name == "payload_json":
                    body.update(json.loads(await part.text()))
                else:
                    data = await part.read()
                    body["files"].append({"name": part.name, "filename": part.filename, "data": bytes(data)})
            return body
        text = await request.text()
        return json.loads(text) if text else None

    def _application(self) -> dict[str, Any]:
        return {
            "id": str(self.app_id),
            "name": "Popup",
            "icon": None,
            "description": "",
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.admin.payload(),
            "verify_key": "0" * 64,
            "team": None,
            "flags": 0,
            "summary": "",
            "type": None,
        }

    def _sync(self, scope: str, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = []
        for command in commands:
            entry = dict(command, id=str(self.snowflake()), application_id=str(self.app_id), version="1")
            entry.setdefault("type", 1)
            if scope != "global":
                entry["guild_id"] = scope
            stored.append(entry)
        self.commands[scope] = stored
        return stored

    def _callback(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        interaction = self.interactions[token]
        interaction.callbacks.append(body)
        kind = body["type"]
        flags = (body.get("data") or {}).get("flags", 0) or 0
        response: dict[str, Any] = {
            "interaction": {
                "id": str(interaction.id),
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            },
            "resource": {"type": kind},
        }
        if kind in (4, 5):
            message = self.message_payload(
                self.channel_id, self.bot, content=(body.get("data") or {}).get("content", "")
            )
            message["flags"] = flags | (1 << 7 if kind == 5 else 0)  # LOADING
            message["interaction_metadata"] = {"id": str(interaction.id), "type": 2, "user": self.olga.payload()}
            interaction.original = message
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"]["message"] = message
        return response

    def _followup(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        interaction = self.interactions[token]
        original = interaction.original
        if original is not None and original["flags"] & (1 << 7) and not interaction.followups:
            # The first follow-up after a "thinking" defer replaces the loading message and keeps
            # its visibility, whatever flags it asks for (that is what Discord does).
            message = dict(original, content=body.get("content", ""), flags=original["flags"] & ~(1 << 7))
        else:
            message = self.message_payload(self.channel_id, self.bot, content=body.get("content", ""))
            message["flags"] = body.get("flags", 0) or 0
        message["embeds"] = body.get("embeds", [])
        interaction.followups.append(message)
        return message

    def _edit_original(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        interaction = self.interactions[token]
        assert interaction.original is not None
        interaction.original = dict(interaction.original, content=body.get("content", ""))
        interaction.original["flags"] &= ~(1 << 7)
        return interaction.original

    def _channel(self, channel_id: int) -> dict[str, Any]:
        if channel_id == self.channel_id:
            return self.channel_payload()
        return self.threads[channel_id]

    def _history(self, channel_id: int, query: dict[str, str]) -> list[dict[str, Any]]:
        messages = sorted(self.messages[channel_id], key=lambda m: int(m["id"]))
        limit = min(int(query.get("limit", 50)), 100)
        if "after" in query:
            after = int(query["after"])
            chosen = [m for m in messages if int(m["id"]) > after][:limit]
        elif "before" in query:
            before = int(query["before"])
            chosen = [m for m in messages if int(m["id"]) < before][-limit:]
        else:
            chosen = messages[-limit:]
        # Discord returns newest first, whichever direction was asked for.
        return [_without_nonce(m) for m in reversed(chosen)]

    async def _create_message(self, channel_id: int, call: Call) -> web.Response:
        self._message_posts += 1
        if self._message_posts in self.rate_limits:
            is_global = self.rate_limits[self._message_posts]
            headers = {"Via": "1.1 google", "X-RateLimit-Scope": "global" if is_global else "user"}
            if is_global:
                headers["X-RateLimit-Global"] = "true"
            else:
                headers.update(
                    {
                        "X-RateLimit-Limit": "5",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset-After": "0.1",
                        "X-RateLimit-Bucket": "fake-bucket",
                    }
                )
            data = {"message": "You are being rate limited.", "retry_after": 0.1, "global": is_global}
            return self._json(call, data, status=429, headers=headers)
        if channel_id not in self.messages:
            raise KeyError("Channel")
        body = call.body
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce") and (channel_id, str(nonce)) in self._nonces:
            return self._json(call, self._nonces[(channel_id, str(nonce))])
        attachments = [
            {
                "id": str(self.snowflake()),
                "filename": f["filename"],
                "size": len(f["data"]),
                "url": f"https://cdn.example/{f['filename']}",
                "proxy_url": f"https://cdn.example/{f['filename']}",
            }
            for f in body.get("files", [])
        ]
        message = self.message_payload(
            channel_id,
            self.bot,
            content=body.get("content") or "",
            embeds=body.get("embeds"),
            attachments=attachments,
            nonce=None if nonce is None else str(nonce),
        )
        self.uploads[message["id"]] = body.get("files", [])
        self.messages[channel_id].append(message)
        if nonce is not None:
            self._nonces[(channel_id, str(nonce))] = message
        await self.dispatch(
            "MESSAGE_CREATE",
            dict(message, guild_id=str(self.guild_id), member=self.bot.member_payload(with_user=False)),
        )
        return self._json(call, message)

    async def _create_thread(self, channel_id: int, message_id: str, call: Call) -> web.Response:
        message = self._find(channel_id, message_id)
        if self.refuse_threads:
            self.refuse_threads -= 1
            return self._json(call, {"message": "Missing Permissions", "code": 50013}, status=403)
        if message["flags"] & HAS_THREAD:
            return self._json(
                call, {"message": "A thread has already been created for this message", "code": 160004}, status=400
            )
        thread = self.thread_payload(int(message_id), channel_id, call.body["name"])
        thread["thread_metadata"]["auto_archive_duration"] = call.body.get("auto_archive_duration", 1440)
        self.threads[int(message_id)] = thread
        self.messages[int(message_id)] = []
        message["flags"] |= HAS_THREAD
        message["thread"] = thread
        await self.dispatch("THREAD_CREATE", dict(thread, newly_created=True))
        return self._json(call, thread)

    def _find(self, channel_id: int, message_id: str) -> dict[str, Any]:
        for message in self.messages[channel_id]:
            if message["id"] == message_id:
                return message
        raise KeyError("Message")

    # -- assertions helpers ------------------------------------------------------------------------

    def bot_posts(self, channel_id: int | None = None) -> list[dict[str, Any]]:
        channel_id = channel_id or self.channel_id
        return [m for m in self.messages.get(channel_id, []) if m["author"]["id"] == str(self.bot.id)]

    def message_creates(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path.endswith("/messages") and c.status == 200]


def _without_nonce(message: dict[str, Any]) -> dict[str, Any]:
    """History results leave out the nonce (it only comes back on create)."""
    return {k: v for k, v in message.items() if k != "nonce"}


@contextlib.asynccontextmanager
async def running_fake(**kwargs: Any):  # type: ignore[no-untyped-def]
    fake = FakeDiscord(**kwargs)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
