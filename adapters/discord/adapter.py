"""The Discord adapter: the engine's :class:`~sessions.ports.ChatPort` on discord.py.

Exactly-once posting leans on Discord's own nonce check: every message goes out with a nonce
derived from the post's key (discord.py sends it with ``enforce_nonce``), so a resend within a few
minutes returns the first message instead of posting again; discord.py waits out 429s and
retries the same request. For longer gaps :meth:`DiscordAdapter.find_post` scans the channel's
recent history for the footer marker that :mod:`adapters.discord.render` puts on every message
(history does not return nonces).

A failed store is never taken as seen (the rule every adapter keeps; see docs/architecture.md).
The gateway cannot be asked to send an event again, so the adapter holds on to it: the event's
handler task hands it to the engine again, with growing pauses, for up to ``store_retry_budget``
seconds (Slack's own redelivery window is about as long). Meanwhile the task counts as in flight,
so a store that keeps failing fills the in-flight bound and reading pauses: later events wait at
Discord instead of in memory. The first failure is logged as a warning with its traceback; an
event still not stored when the budget runs out, or at stop, is logged as an error naming it; the
back-fill (after a restart, or a gateway session that could not resume) reads its thread again,
which recovers replies and edits. During a back-fill a message is handed over once: one that is
not stored is left for the next back-fill, and the thread's error says how many were.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import aiohttp
import discord
from discord.http import Route

from adapters.discord.backpressure import DEFAULT_MAX_IN_FLIGHT
from adapters.discord.client import PopupClient
from adapters.discord.commands import answer
from adapters.discord.endpoints import Endpoints, apply_endpoints, pinned_gateway
from adapters.discord.internals import check_classes
from adapters.discord.mapping import (
    PLATFORM,
    channel_ref,
    member_from,
    message_ref,
    reply_from_message,
    thread_ref,
)
from adapters.discord.render import THREAD_NAME_MAX, MessagePart, digest, parse_marker, render, thread_name, unescape
from adapters.discord.settings import DiscordSettings
from sessions.errors import CommandError, ConfigError, DeliveryError, IncompatibleLibrary, NotStored
from sessions.model import (
    ChannelRef,
    CommandInvoked,
    CommandReply,
    Message,
    MessageEvent,
    Posted,
    ReplyEdited,
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
THREAD_ALREADY_CREATED = 160004  # Discord's error code when a message already has a thread
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a popup day: the thread stays in the list for 24 h of quiet
FIND_POST_SCAN = 100  # recent channel messages searched for an earlier post
KNOWN_THREAD_AGE = timedelta(days=2)  # threads back-filled again after a new gateway session
STOP_GRACE = 10.0  # seconds stop() waits for the engine to finish events already handed to it
STORE_RETRY_FIRST = 0.5  # seconds before an event the engine failed to store is handed over again
STORE_RETRY_MAX = 30.0  # the pause between attempts doubles up to this
STORE_RETRY_BUDGET = 300.0  # seconds an event is held for the engine before it is given up
EMBED_COLOUR = discord.Colour(0x5865F2)
_NETWORK_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError)


class DiscordAdapter:
    """One bot connection: commands in, replies in, posts out. See DESIGN 4.3 for the commands."""

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
        is held and handed over again (see the module's docstring)."""
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, not {max_in_flight}")
        if not 0 < store_retry_first <= store_retry_budget:
            raise ValueError(
                f"need 0 < store_retry_first <= store_retry_budget, not {store_retry_first}, {store_retry_budget}"
            )
        self._settings = settings
        self._plan_names = tuple(plan_names)
        self._guild_ready_timeout = guild_ready_timeout
        self._ready_timeout = ready_timeout
        self._backfill_limit = backfill_limit
        self._max_in_flight = max_in_flight
        self._heartbeat_timeout = heartbeat_timeout
        self._store_retry_first = store_retry_first
        self._store_retry_budget = store_retry_budget
        self._handler: EventHandler | None = None
        self._stopping = asyncio.Event()  # wakes events held for a retry: stop gives them up
        self._client: PopupClient | None = None
        self._endpoints: Endpoints | None = None
        self._connection: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._inflight: set[asyncio.Future[None]] = set()  # engine calls not yet returned
        self._background: set[asyncio.Task[None]] = set()  # our own tasks, cancelled on stop
        self._known_threads: dict[str, ThreadRef] = {}  # back-filled again after a fresh READY

    @property
    def platform(self) -> str:
        return PLATFORM

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
        self._handler = handler
        self._ready.clear()
        self._stopping.clear()
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
        self._handler = None  # from here on new events are dropped; a later start back-fills them
        self._stopping.set()
        for task in list(self._background):
            task.cancel()
        current = asyncio.current_task()
        pending: list[asyncio.Future[Any]] = [*self._inflight, *(t for t in self._background if t is not current)]
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_GRACE)
            if late:
                _log.warning("%d Discord event handler(s) still running at stop", len(late))
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
        handler = self._handler
        if handler is None:
            return
        with self._tracked():
            await self._hold_until_stored(handler, event)

    async def _hold_until_stored(self, handler: EventHandler, event: MessageEvent) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._store_retry_budget
        pause = self._store_retry_first
        attempt = 1
        while True:
            try:
                await _store(handler, event)
            except NotStored as error:
                failure = error.__cause__
            else:
                if attempt > 1:
                    _log.info("%s stored on attempt %d", _describe(event), attempt)
                return
            if attempt == 1:
                _log.warning("%s not stored; handing it over again for up to %g s",
                             _describe(event), self._store_retry_budget, exc_info=failure)
            else:
                _log.debug("%s not stored on attempt %d: %r", _describe(event), attempt, failure)
            left = deadline - loop.time()
            if self._handler is handler and left > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), min(pause, left))
            if self._handler is not handler or left <= 0:
                why = "the adapter stopped" if self._handler is not handler else f"{attempt} attempts"
                _log.error("%s was not stored (given up after %s: %r); the next back-fill of its thread "
                           "(after a restart, or a gateway session that could not resume) recovers it if it "
                           "is a reply or an edit; a reaction or a deletion is lost",
                           _describe(event), why, failure)
                return
            pause = min(pause * 2, STORE_RETRY_MAX)
            attempt += 1

    async def connected(self, *, first: bool) -> None:
        if first:
            self._ready.set()
            return
        # A READY after the first means a new gateway session (the old one could not resume):
        # Discord does not replay what happened in between, so read it from the threads.
        # Only threads young enough to belong to a running popup day; older ones are forgotten
        # (a thread started from a message carries that message's creation time in its id).
        horizon = discord.utils.utcnow() - KNOWN_THREAD_AGE
        for thread_id in [t for t in self._known_threads if discord.utils.snowflake_time(int(t)) < horizon]:
            del self._known_threads[thread_id]
        threads = list(self._known_threads.values())
        if threads:
            _log.info("new gateway session: back-filling %d thread(s)", len(threads))
            task = asyncio.create_task(self.backfill(threads), name="discord-backfill")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _tracked(self) -> _Tracked:
        return _Tracked(self._inflight)

    # -- commands ---------------------------------------------------------------------------------

    async def _run_command(self, interaction: discord.Interaction, name: str, args: tuple[str, ...]) -> None:
        with self._tracked():
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
        handler = self._handler
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
        messages = await self._send(channel, content, digest(key, channel.channel_id))
        return Posted(message=message_ref(messages[0].channel.id, messages[0].id))

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        messages = await self._send(channel, content, digest(key, channel.channel_id, thread=True))
        first = messages[0]
        thread = await self._ensure_thread(first, thread_name(content))
        return Posted(message=message_ref(first.channel.id, first.id), thread=thread)

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        wanted = {digest(key, channel.channel_id): False, digest(key, channel.channel_id, thread=True): True}
        try:
            target = await self._messageable(channel)
            own_id = self._require_client().user
            found: dict[str, dict[int, discord.Message]] = {d: {} for d in wanted}
            counts: dict[str, int] = {}
            async for message in target.history(limit=FIND_POST_SCAN):
                if own_id is None or message.author.id != own_id.id:
                    continue
                for embed in message.embeds:
                    marker = parse_marker(embed.footer.text)
                    if marker is not None and marker.digest in wanted:
                        found[marker.digest][marker.index] = message
                        counts[marker.digest] = marker.count
            for post_digest, opens_thread in wanted.items():
                parts = found[post_digest]
                count = counts.get(post_digest)
                if count is None or any(i not in parts for i in range(1, count + 1)):
                    continue  # not posted, or only partly: posting again completes it (same nonces)
                first = parts[1]
                name = unescape(first.embeds[0].title or "") or "Replies"
                thread = await self._ensure_thread(first, name[:THREAD_NAME_MAX]) if opens_thread else None
                return Posted(message=message_ref(first.channel.id, first.id), thread=thread)
        except (DeliveryError, *_NETWORK_ERRORS) as exc:
            _log.warning("could not look for an earlier post %r in %s: %s", key, channel.channel_id, exc)
        return None

    async def channel_name(self, channel: ChannelRef) -> str | None:
        try:
            target = await self._messageable(channel)
        except DeliveryError as exc:
            _log.info("no name for Discord channel %s: %s", channel.channel_id, exc)
            return None
        name = getattr(target, "name", None)
        return f"#{name}" if isinstance(name, str) and name else None

    # -- back-fill ---------------------------------------------------------------------------------

    async def backfill(self, threads: Sequence[ThreadRef]) -> None:
        """Forward every member message in ``threads`` (the engine ignores ones it already has).

        Called by the engine after a fresh start for the open prompt threads on Discord; called by
        the adapter itself after a later READY (a gateway session that could not be resumed).
        """
        for thread in threads:
            if thread.channel.platform == PLATFORM and thread.thread_id.isdigit():
                self._known_threads[thread.thread_id] = thread
        for thread in threads:
            if thread.channel.platform != PLATFORM:
                continue
            try:
                forwarded = await self._backfill_thread(thread)
            except (DeliveryError, *_NETWORK_ERRORS) as exc:
                _log.warning("could not back-fill thread %s: %s", thread.thread_id, exc)
            else:
                _log.info("back-filled thread %s: %d message(s) forwarded", thread.thread_id, forwarded)

    async def _backfill_thread(self, thread: ThreadRef) -> int:
        client = self._require_client()
        thread_id = _snowflake(thread.thread_id)
        channel = client.get_channel(thread_id) or await client.fetch_channel(thread_id)
        if not isinstance(channel, discord.Thread):
            raise DeliveryError(f"channel {thread_id} is not a thread")
        forwarded = 0
        unstored: list[NotStored] = []
        async for message in channel.history(limit=self._backfill_limit, oldest_first=True):
            event = reply_from_message(message)
            if event is None:
                continue
            handler = self._handler
            if handler is None:
                break  # stopped: the next start back-fills again
            events: list[MessageEvent] = [event]
            if message.edited_at is not None:
                events.append(
                    ReplyEdited(message=event.message, text=event.text, at=message.edited_at, thread=event.thread)
                )
            with self._tracked():
                for each in events:
                    try:
                        await _store(handler, each)
                    except NotStored as error:
                        unstored.append(error)
            forwarded += 1
        if unstored:
            # The messages are still at Discord: the next back-fill of this thread hands them over again.
            _log.error("back-fill of thread %s: %d event(s) not stored (first: %r); the next back-fill "
                       "reads them again", thread.thread_id, len(unstored), unstored[0].__cause__,
                       exc_info=unstored[0].__cause__)
        return forwarded

    # -- sending -----------------------------------------------------------------------------------

    def _require_client(self) -> PopupClient:
        if self._client is None:
            raise DeliveryError("the Discord adapter is not started")
        return self._client

    async def _messageable(self, channel: ChannelRef) -> discord.abc.Messageable:
        client = self._require_client()
        channel_id = _snowflake(channel.channel_id)
        found = client.get_channel(channel_id)
        if found is None:
            try:
                found = await client.fetch_channel(channel_id)
            except discord.HTTPException as exc:
                raise DeliveryError(f"Discord channel {channel_id} cannot be read: {exc}") from exc
        if not isinstance(found, discord.abc.Messageable):
            raise DeliveryError(f"Discord channel {channel_id} cannot hold messages")
        return found

    async def _send(self, channel: ChannelRef, content: Message, post_digest: str) -> list[discord.Message]:
        target = await self._messageable(channel)
        sent: list[discord.Message] = []
        for part in render(content, post_digest=post_digest):
            try:
                sent.append(await _send_part(target, part))
            except discord.Forbidden as exc:
                raise DeliveryError(
                    f"Discord refused to post in channel {channel.channel_id} ({exc.text or exc.status}): "
                    "the bot needs View Channels, Send Messages, Embed Links and Attach Files there"
                ) from exc
            except _NETWORK_ERRORS as exc:
                raise DeliveryError(f"posting to Discord channel {channel.channel_id} failed: {exc!r}") from exc
        return sent

    async def _ensure_thread(self, message: discord.Message, name: str) -> ThreadRef:
        """The public thread started from ``message``, created unless it exists (a thread started
        from a message has the message's id)."""
        parent_id = message.channel.id
        if message.flags.has_thread:
            return thread_ref(message.id, parent_id)
        try:
            thread = await message.create_thread(name=name, auto_archive_duration=THREAD_ARCHIVE_MINUTES)
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_CREATED:
                return thread_ref(message.id, parent_id)
            raise DeliveryError(
                f"Discord refused to open a thread in channel {parent_id} ({exc.text or exc.status}): "
                "the bot needs Create Public Threads there"
            ) from exc
        except (ValueError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise DeliveryError(f"opening a thread in channel {parent_id} failed: {exc!r}") from exc
        ref = thread_ref(thread.id, parent_id)
        self._known_threads[ref.thread_id] = ref
        return ref


async def _send_part(target: discord.abc.Messageable, part: MessagePart) -> discord.Message:
    embeds = []
    for spec in part.embeds:
        embed = discord.Embed(title=spec.title or None, description=spec.description or None, colour=EMBED_COLOUR)
        if spec.footer:
            embed.set_footer(text=spec.footer)
        embeds.append(embed)
    files = [discord.File(io.BytesIO(a.data), filename=a.filename) for a in part.attachments]
    return await target.send(
        embeds=embeds,
        files=files,
        nonce=part.nonce,  # discord.py adds enforce_nonce: a resend returns the first message
        allowed_mentions=discord.AllowedMentions.none(),
    )


async def _store(handler: EventHandler, event: MessageEvent) -> None:
    """``handler.on_event``, with any failure as :class:`NotStored` (the engine's error as its cause)."""
    try:
        await handler.on_event(event)
    except Exception as error:
        raise NotStored(event.delivery_id or event.message.message_id) from error


def _describe(event: MessageEvent) -> str:
    message = event.message
    return f"{type(event).__name__} of message {message.message_id} in channel {message.channel.channel_id}"


def _snowflake(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise DeliveryError(f"{value!r} is not a Discord id") from None
    if not 0 < number < 2**64:
        raise DeliveryError(f"{value!r} is not a Discord id")
    return number


class _Tracked:
    """Marks one engine call as in flight, so ``stop`` can wait for exactly that call (not for
    the whole task it runs in, which may be the engine's own)."""

    def __init__(self, calls: set[asyncio.Future[None]]) -> None:
        self._calls = calls
        self._done: asyncio.Future[None] | None = None

    def __enter__(self) -> None:
        self._done = asyncio.get_running_loop().create_future()
        self._calls.add(self._done)

    def __exit__(self, *exc_info: object) -> None:
        if self._done is not None:
            self._done.set_result(None)
            self._calls.discard(self._done)
