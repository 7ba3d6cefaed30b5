"""The discord.py client: intents, command sync, and gateway events handed to a :class:`Sink`.

The client knows Discord; the :class:`Sink` (the adapter) knows the engine. Events are raw ones
(``on_raw_message_edit`` and friends) so that messages older than the client's cache, or in
threads it never saw, still count; so the client keeps no message cache at all.

Inbound events are bounded (:mod:`adapters.discord.backpressure`): discord.py runs each event
handler as a task of its own, and once ``max_in_flight`` of them are unfinished the client reads
no further gateway frame until they drain. The discord.py internals this takes are listed and
checked in :mod:`adapters.discord.internals`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any, Protocol

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from adapters.discord.backpressure import DEFAULT_MAX_IN_FLIGHT, InboundGate
from adapters.discord.commands import Runner, build_group
from adapters.discord.internals import keep_alive, missing_internal, require_gateway
from adapters.discord.mapping import (
    deletion,
    edit_from_payload,
    now,
    reaction_from_raw,
    reply_from_message,
    thread_ref,
)
from sessions.errors import ConfigError
from sessions.model import MessageEvent

_log = logging.getLogger(__name__)


class Sink(Protocol):
    async def deliver(self, event: MessageEvent) -> None: ...

    async def connected(self, *, first: bool) -> None: ...


def popup_intents() -> discord.Intents:
    """Only what Popup reads. ``message_content`` is privileged: without it reply texts are empty,
    and Discord closes the gateway with 4014 if the portal switch is off."""
    intents = discord.Intents.none()
    intents.guilds = True  # channels, threads and roles (organiser role ids, Manage Server)
    intents.guild_messages = True
    intents.message_content = True
    intents.guild_reactions = True  # reactions pick the recap's highlights
    return intents


def _gated(ws: DiscordWebSocket, gate: InboundGate) -> Callable[[], Coroutine[Any, Any, None]]:
    poll_event = ws.poll_event
    alive = keep_alive(ws)

    async def gated_poll_event() -> None:
        if not gate.is_open:
            await gate.wait(alive)
        await poll_event()

    return gated_poll_event


class PopupClient(discord.Client):
    def __init__(
        self,
        *,
        sink: Sink,
        run_command: Runner,
        plan_names: Sequence[str],
        guild_ids: Sequence[int],
        guild_ready_timeout: float,
        resume_gateway: yarl.URL | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        heartbeat_timeout: float = 60.0,
        shard: tuple[int, int] | None = None,
    ) -> None:
        # Both before super().__init__, which assigns self.ws.
        self._gate = InboundGate(max_in_flight, heartbeat_timeout=heartbeat_timeout)
        self._ws: DiscordWebSocket | None = None
        self._websockets = 0  # how many gateway websockets discord.py handed to the ws setter
        super().__init__(
            intents=popup_intents(),
            # Belt and braces with the per-send setting and the escaping in render.py.
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            chunk_guilds_at_startup=False,  # no members intent; members come with their messages
            max_messages=None,  # raw events only: a message cache would just hold replies in memory
            heartbeat_timeout=heartbeat_timeout,
            # With several processes each identifies as its shard; Discord then sends it the events
            # (and slash commands) of its share of the guilds only.
            shard_id=None if shard is None else shard[0],
            shard_count=None if shard is None else shard[1],
        )
        self._sink = sink
        self._guild_ids = tuple(guild_ids)
        self._ready_once = False
        self._resume_gateway = resume_gateway
        self.tree: app_commands.CommandTree[PopupClient] = app_commands.CommandTree(self)
        group = build_group(plan_names=plan_names, run=run_command)
        if self._guild_ids:
            self.tree.add_command(group, guilds=[discord.Object(id=g) for g in self._guild_ids])
        else:
            self.tree.add_command(group)

    async def setup_hook(self) -> None:
        """Runs inside ``login``: registers ``/popup`` before the gateway connects, so a command
        typed right after start-up is already known. Guild commands appear at once; global ones
        can take a while to reach every client."""
        targets: list[discord.Object | None] = (
            [discord.Object(id=g) for g in self._guild_ids] if self._guild_ids else [None]
        )
        for guild in targets:
            try:
                synced = await self.tree.sync(guild=guild)
            except discord.Forbidden as exc:
                where = f"guild {guild.id}" if guild else "globally"
                raise ConfigError(
                    f"[discord] guild_ids: Discord refused to register /popup {where} ({exc.text or exc.status}); "
                    "invite the bot to that server with the 'applications.commands' scope "
                    "(see docs/run-on-discord.md)"
                ) from exc
            _log.info("synced %d command(s) %s", len(synced), f"to guild {guild.id}" if guild else "globally")

    # -- backpressure ----------------------------------------------------------------------------

    @property
    def gate(self) -> InboundGate:
        """The in-flight bound on inbound events (for diagnostics and tests)."""
        return self._gate

    @property  # type: ignore[override]
    def ws(self) -> DiscordWebSocket | None:
        return self._ws

    @ws.setter
    def ws(self, ws: DiscordWebSocket | None) -> None:
        # discord.py's ``Client.connect`` assigns every new gateway websocket here, then loops on
        # ``self.ws.poll_event()`` (one frame each). Holding that call back while too many events
        # are in flight pauses reading without touching the rest of the connection logic; HELLO
        # is read inside ``DiscordWebSocket.from_client``, before this assignment, so a new
        # connection always gets as far as IDENTIFY/RESUME. (discord.py itself replaces ``send``
        # on the instance the same way for debug events.)
        fresh = ws is not None and ws is not self._ws
        self._ws = ws  # even if refused below: close() must still find it to close it
        if ws is not None and fresh:
            ws.poll_event = _gated(ws, self._gate)  # type: ignore[method-assign]
            self._websockets += 1

    def check_wiring(self) -> None:
        """Raise :class:`~sessions.errors.IncompatibleLibrary` unless discord.py went through both
        backpressure hooks on its way to READY (call once READY was handled): the websocket came
        through :attr:`ws`, and the READY handler through :meth:`_schedule_event`."""
        if self._websockets == 0:
            raise missing_internal("Client", "ws", "pausing gateway reads (Client.connect no longer assigns it)")
        if self._gate.peak == 0:
            raise missing_internal("Client", "_schedule_event", "counting event handlers (no handler went through it)")

    def _schedule_event(
        self, coro: Callable[..., Coroutine[Any, Any, Any]], event_name: str, *args: Any, **kwargs: Any
    ) -> asyncio.Task[Any]:
        # The one place discord.py turns a dispatched event into a handler task: count the task
        # until it is done (however it ends; a cancelled task counts as done).
        task = super()._schedule_event(coro, event_name, *args, **kwargs)
        self._gate.track(task)
        return task

    async def close(self) -> None:
        self._gate.close()  # a paused connect loop must get to see the socket close
        await super().close()

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        # "connect" is dispatched from inside READY's parsing, right after discord.py stored the
        # READY's resume_gateway_url on the websocket, and before any later frame: the one moment
        # to keep resumes on the configured gateway (see adapters.discord.endpoints).
        if event == "connect" and self._resume_gateway is not None and self.ws is not None:
            require_gateway(self.ws)
            self.ws.gateway = self._resume_gateway
        super().dispatch(event, *args, **kwargs)

    # -- gateway events ------------------------------------------------------------------------

    async def on_ready(self) -> None:
        """READY after IDENTIFY: a fresh session (not a RESUME), so events may have been missed."""
        first = not self._ready_once
        self._ready_once = True
        _log.info("connected to Discord as %s (%s guilds)", self.user, len(self.guilds))
        await self._sink.connected(first=first)

    async def on_resumed(self) -> None:
        _log.info("gateway session resumed; Discord replays what we missed")

    async def on_message(self, message: discord.Message) -> None:
        event = reply_from_message(message)
        if event is not None:
            await self._sink.deliver(event)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        event = edit_from_payload(payload.data)
        if event is None:
            return
        # Say which thread the edit is in when we can: the engine then keeps an edit that
        # overtook its message. An uncached channel may be a thread; the engine decides by id.
        channel = self.get_channel(payload.channel_id)
        if isinstance(channel, discord.Thread):
            event = replace(event, thread=thread_ref(channel.id, channel.parent_id))
        elif channel is None:
            event = replace(event, thread=thread_ref(payload.channel_id, None))
        await self._sink.deliver(event)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        if payload.guild_id is not None:
            await self._sink.deliver(deletion(payload.channel_id, payload.message_id, at=now()))

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        if payload.guild_id is None:
            return
        at = now()
        for message_id in sorted(payload.message_ids):
            await self._sink.deliver(deletion(payload.channel_id, message_id, at=at))

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload)

    async def on_raw_reaction_remove(self, payload: discord.RawReactionActionEvent) -> None:
        await self._reaction(payload)

    async def _reaction(self, payload: discord.RawReactionActionEvent) -> None:
        own_id = self.user.id if self.user else None
        event = reaction_from_raw(payload, own_id=own_id, at=now())
        if event is not None:
            await self._sink.deliver(event)
