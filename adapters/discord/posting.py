"""Posting on Discord: messages, the threads they open, earlier posts found again, channel names.

Exactly-once posting leans on Discord's own nonce check: every message goes out with a nonce
derived from the post's key (discord.py sends it with ``enforce_nonce``), so a resend within a few
minutes returns the first message instead of posting again; discord.py waits out 429s and
retries the same request. For longer gaps :meth:`DiscordPoster.find_post` scans the channel's
recent history for the footer marker that :mod:`adapters.discord.render` puts on every message
(history does not return nonces).

Every request first waits its turn at the adapter's :class:`~adapters.discord.pacing.GlobalPacer`,
so a fan-out to many channels stays under Discord's global rate limit instead of being refused by it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Literal

import aiohttp
import discord

from adapters.discord.client import PopupClient
from adapters.discord.mapping import message_ref, thread_ref
from adapters.discord.pacing import GlobalPacer
from adapters.discord.render import THREAD_NAME_MAX, MessagePart, digest, parse_marker, render, thread_name, unescape
from sessions.errors import DeliveryError
from sessions.model import ChannelRef, Message, Posted, ThreadRef

_log = logging.getLogger(__name__)

THREAD_ALREADY_CREATED = 160004  # Discord's error code when a message already has a thread
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a popup day: the thread stays in the list for 24 h of quiet
FIND_POST_SCAN = 100  # recent channel messages searched for an earlier post
EMBED_COLOUR = discord.Colour(0x5865F2)
NETWORK_ERRORS = (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError)


class DiscordPoster:
    """The outbound side of the adapter: the engine's posts, through the adapter's client.

    ``require_client`` returns the started client (else raises :class:`DeliveryError`);
    ``thread_opened`` is told of every thread this poster opens; ``pacer`` spaces its requests (one
    per bot: Discord's global limit is for all channels together).
    """

    def __init__(
        self,
        *,
        require_client: Callable[[], PopupClient],
        thread_opened: Callable[[ThreadRef], None],
        pacer: GlobalPacer,
    ) -> None:
        self._require_client = require_client
        self._thread_opened = thread_opened
        self._pacer = pacer

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
            await self._pacer.wait()  # one page: FIND_POST_SCAN is within Discord's 100 per request
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
        except (DeliveryError, *NETWORK_ERRORS) as exc:
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

    async def _messageable(self, channel: ChannelRef) -> discord.abc.Messageable:
        client = self._require_client()
        channel_id = snowflake(channel.channel_id)
        found = client.get_channel(channel_id)
        if found is None:
            await self._pacer.wait()
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
            await self._pacer.wait()
            try:
                sent.append(await _send_part(target, part))
            except discord.Forbidden as exc:
                raise DeliveryError(
                    f"Discord refused to post in channel {channel.channel_id} ({exc.text or exc.status}): "
                    "the bot needs View Channels, Send Messages, Embed Links and Attach Files there"
                ) from exc
            except NETWORK_ERRORS as exc:
                raise DeliveryError(f"posting to Discord channel {channel.channel_id} failed: {exc!r}") from exc
        return sent

    async def _ensure_thread(self, message: discord.Message, name: str) -> ThreadRef:
        """The public thread started from ``message``, created unless it exists (a thread started
        from a message has the message's id)."""
        parent_id = message.channel.id
        if message.flags.has_thread:
            return thread_ref(message.id, parent_id)
        await self._pacer.wait()
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
        self._thread_opened(ref)
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


def snowflake(value: str) -> int:
    """The Discord id in one of our refs; :class:`DeliveryError` if it holds none."""
    try:
        number = int(value)
    except ValueError:
        raise DeliveryError(f"{value!r} is not a Discord id") from None
    if not 0 < number < 2**64:
        raise DeliveryError(f"{value!r} is not a Discord id")
    return number
