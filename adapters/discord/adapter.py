"""The Discord adapter: the engine's :class:`~sessions.ports.ChatPort` on discord.py.

Here: the life cycle (log in, connect, READY, stop) and ``/popup`` invocations run and answered.
Posting, and how it stays exactly-once, is :mod:`adapters.discord.posting`; gateway events and
back-fills, held until stored, are :mod:`adapters.discord.inbound`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import aiohttp
import discord
from discord.http import Route

from adapters.discord.backpressure import DEFAULT_MAX_IN_FLIGHT
from adapters.discord.client import PopupClient
from adapters.discord.commands import answer
from adapters.discord.endpoints import Endpoints, apply_endpoints, pinned_gateway
from adapters.discord.inbound import STORE_RETRY_BUDGET, STORE_RETRY_FIRST, DiscordInbound
from adapters.discord.internals import check_classes
from adapters.discord.mapping import PLATFORM, channel_ref, member_from
from adapters.discord.pacing import FAN_OUT_CHANNELS, GlobalPacer
from adapters.discord.posting import DiscordPoster
from adapters.discord.settings import DiscordSettings
from sessions.errors import CommandError, ConfigError, DeliveryError, IncompatibleLibrary
from sessions.model import (
    ChannelRef,
    CommandInvoked,
    CommandReply,
    Message,
    MessageEvent,
    Posted,
    ThreadRef,
)
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)

INTENT_REFUSED = (
    "Discord refused the message content intent: enable 'Message Content Intent' under Bot in the "
    "Developer Portal (https://discord.com/developers/applications)"
)
TOKEN_REFUSED = (
    "DISCORD_TOKEN was refused by Discord (401): copy the token again from Bot → Reset Token in the "
    "Developer Portal (https://discord.com/developers/applications)"
)


class DiscordAdapter:
    """One bot connection: commands in, replies in, posts out. The commands: docs/architecture.md §9."""

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        plan_names: Sequence[str] = (),
        guild_ready_timeout: float = 2.0,
        ready_timeout: float = 60.0,
        backfill_limit: int = 1000,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        heartbeat_timeout: float = 60.0,
        store_retry_first: float = STORE_RETRY_FIRST,
        store_retry_budget: float = STORE_RETRY_BUDGET,
    ) -> None:
        """``max_in_flight`` bounds the gateway events being handled at once: past it the client
        stops reading the gateway until the engine has caught up (see
        :mod:`adapters.discord.backpressure`). ``heartbeat_timeout`` is discord.py's: seconds
        without any frame from the gateway (while reading) before it reconnects.
        ``store_retry_first`` and ``store_retry_budget``: how an event the engine failed to store
        is held and handed over again (see :mod:`adapters.discord.inbound`)."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        self._inbound = DiscordInbound(
            require_client=self._require_client,
            backfill_limit=backfill_limit,
            store_retry_first=store_retry_first,
            store_retry_budget=store_retry_budget,
        )
        self._poster = DiscordPoster(
            require_client=self._require_client, thread_opened=self._inbound.remember, pacer=GlobalPacer()
        )
        self._settings = settings
        self._plan_names = tuple(plan_names)
        self._guild_ready_timeout = guild_ready_timeout
        self._ready_timeout = ready_timeout
        self._max_in_flight = max_in_flight
        self._heartbeat_timeout = heartbeat_timeout
        self._client: PopupClient | None = None
        self._endpoints: Endpoints | None = None
        self._connection: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def platform(self) -> str:
        return PLATFORM

    @property
    def parallel_channels(self) -> int:
        """The whole fan-out queues at the global pacer (see :class:`~sessions.ports.PacesFanOut`)."""
        return FAN_OUT_CHANNELS

    @property
    def client(self) -> PopupClient | None:
        """The discord.py client while started (for diagnostics and tests)."""
        return self._client

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, handler: EventHandler) -> None:
        """Log in, sync ``/popup``, connect; returns after READY (guilds loaded)."""
        if self._client is not None:
            raise RuntimeError("DiscordAdapter.start called twice")
        check_classes()
        self._inbound.start(handler)
        self._ready.clear()
        self._endpoints = apply_endpoints(self._settings)
        client = PopupClient(
            sink=self,
            run_command=self._run_command,
            plan_names=self._plan_names,
            guild_ids=self._settings.guild_ids,
            guild_ready_timeout=self._guild_ready_timeout,
            resume_gateway=pinned_gateway(self._settings),
            max_in_flight=self._max_in_flight,
            heartbeat_timeout=self._heartbeat_timeout,
            shard=self._settings.shard,
        )
        self._client = client
        try:
            await self._connect(client)
        except BaseException:
            await self.stop()
            raise

    async def _connect(self, client: PopupClient) -> None:
        try:
            await client.login(self._settings.token)
        except discord.LoginFailure as exc:
            raise ConfigError(TOKEN_REFUSED) from exc
        except (discord.HTTPException, aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"could not log in to Discord at {Route.BASE}: {exc!r}") from exc
        self._connection = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        ready = asyncio.create_task(self._ready.wait())
        try:
            done, _ = await asyncio.wait(
                {self._connection, ready}, timeout=self._ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if self._connection in done:
            ended = self._connection.exception()
            if isinstance(ended, discord.PrivilegedIntentsRequired):
                raise ConfigError(INTENT_REFUSED) from ended
            if isinstance(ended, IncompatibleLibrary):
                raise ended
            raise DeliveryError(f"the Discord gateway connection ended before READY: {ended!r}") from ended
        if not self._ready.is_set():
            raise DeliveryError(f"Discord did not become ready within {self._ready_timeout:g} s")
        client.check_wiring()
        self._connection.add_done_callback(self._connection_ended)

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or self._client is None or self._client.is_closed():
            return
        exc = task.exception()
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            _log.error("%s", INTENT_REFUSED)
        else:
            _log.error("the Discord gateway connection ended for good: %r", exc)

    async def stop(self) -> None:
        """Disconnect; handlers already running finish first (while REST still works). Idempotent."""
        await self._inbound.stop()
        current = asyncio.current_task()
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                await connection
            except asyncio.CancelledError:
                if current is not None and current.cancelling():
                    raise
            except Exception as exc:  # its failure was already reported; we are closing anyway
                _log.debug("gateway task ended with %r", exc)
        if self._endpoints is not None:
            self._endpoints.restore()
            self._endpoints = None

    # -- Sink (called by the client) ------------------------------------------------------------

    async def deliver(self, event: MessageEvent) -> None:
        """Hand a gateway event to the engine; return once it is stored, or given up (and logged)."""
        await self._inbound.deliver(event)

    async def connected(self, *, first: bool) -> None:
        if first:
            self._ready.set()
        else:
            self._inbound.new_gateway_session()

    # -- commands ---------------------------------------------------------------------------------

    async def _run_command(self, interaction: discord.Interaction, name: str, args: tuple[str, ...]) -> None:
        with self._inbound.tracked():
            try:
                await interaction.response.defer(ephemeral=True, thinking=True)
            except discord.HTTPException as exc:
                # Too late (over 3 s) or already answered: the asker saw "did not respond" and
                # may try again, so doing the work now could start a session twice.
                _log.warning("could not acknowledge /popup %s (%s); not running it", name, exc)
                return
            reply = await self._command_reply(interaction, name, args)
            try:
                await answer(interaction, reply.text, ephemeral=reply.ephemeral)
            except discord.HTTPException as exc:
                _log.warning("could not send the answer to /popup %s: %s", name, exc)

    async def _command_reply(self, interaction: discord.Interaction, name: str, args: tuple[str, ...]) -> CommandReply:
        handler = self._inbound.handler
        if handler is None or interaction.channel_id is None:
            return CommandReply(text="Popup is not ready yet; try again in a moment.")
        command = CommandInvoked(
            channel=channel_ref(interaction.channel_id),
            member=member_from(interaction.user, permissions=interaction.permissions),
            name=name,
            args=args,
            at=interaction.created_at,
        )
        try:
            return await handler.on_command(command)
        except CommandError as exc:
            return CommandReply(text=str(exc))
        except Exception:
            _log.exception("/popup %s failed", name)
            return CommandReply(text="Something went wrong; the details are in the bot's log.")

    # -- ChatPort ----------------------------------------------------------------------------------

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return await self._poster.post(channel, content, key=key)

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        return await self._poster.open_thread(channel, content, key=key)

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        return await self._poster.find_post(channel, key)

    async def channel_name(self, channel: ChannelRef) -> str | None:
        return await self._poster.channel_name(channel)

    async def backfill(self, threads: Sequence[ThreadRef]) -> None:
        """Forward every member message in ``threads`` (see :meth:`DiscordInbound.backfill`)."""
        await self._inbound.backfill(threads)

    def _require_client(self) -> PopupClient:
        if self._client is None:
            raise DeliveryError("the Discord adapter is not started")
        return self._client
