"""The e-mail adapter: each configured mailing list is a channel, each prompt's mail a thread.

Out: :meth:`EmailAdapter.post` and :meth:`~EmailAdapter.open_thread` send one mail to the list,
with a Message-ID made from the ledger's key (:mod:`.ids`). :meth:`~EmailAdapter.find_post` looks
in the folder for the list's copy of that mail (the bot is a member of its lists, so its own mails
come back to it); when the list has not sent it back (yet), the engine sends it again with the
same Message-ID, which lists, mail servers and mail programs take as the same mail.

In: the folder reader (:mod:`.imap`) hands each unseen mail to :meth:`_take`, which hands answers
to the engine as :class:`~sessions.model.ReplyPosted` (a thread per prompt mail, the mail's own
Message-ID as the message id, so the store keeps each mail once) and ``forget`` as the command.
The rule every adapter keeps (adapters/base.py): a mail is marked seen only once the engine's
``on_event`` returned; when it raised (:class:`~sessions.errors.NotStored`) the mail stays unseen
and is read again.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable
from datetime import UTC, datetime

import aioimaplib

from adapters.email import compose, ids, imap, parse
from adapters.email.ids import OwnId
from adapters.email.settings import EmailSettings, MailingList
from adapters.email.smtp import SmtpSender
from sessions.errors import DeliveryError, NotStored
from sessions.model import (
    ChannelRef,
    CommandInvoked,
    Member,
    Message,
    MessageRef,
    Posted,
    ReplyPosted,
    ThreadRef,
)
from sessions.ports import EventHandler

_log = logging.getLogger(__name__)

PLATFORM = "email"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EmailAdapter:
    platform = PLATFORM

    def __init__(
        self,
        settings: EmailSettings,
        *,
        idle: bool = True,
        poll_seconds: float = 30.0,
        retry_seconds: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._settings = settings
        self._tls_context = tls_context
        self._clock = clock
        self._lists = {item.name.lower(): item for item in settings.lists}
        self._list_names = {key: item.name for key, item in self._lists.items()}
        self._sender = SmtpSender(settings, tls_context=tls_context)
        self._reader = imap.FolderReader(
            settings, self._take, idle=idle, poll_seconds=poll_seconds, retry_seconds=retry_seconds,
            tls_context=tls_context,
        )
        self._handler: EventHandler | None = None

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self, handler: EventHandler) -> None:
        self._handler = handler
        await self._reader.start()

    async def stop(self) -> None:
        await self._reader.stop()
        await self._sender.close()

    @property
    def sweeps(self) -> int:
        """How many times the folder has been read through (tests wait on it)."""
        return self._reader.sweeps

    # -- which lists there are (for /popup invite email:NAME) -------------------------------------

    def channel_names(self) -> tuple[str, ...]:
        """sessions.ports.ConfiguredChannels: the lists' names, as configured."""
        return tuple(item.name for item in self._settings.lists)

    async def channel_name(self, channel: ChannelRef) -> str | None:
        """sessions.ports.NamesChannels: a list is known by its address."""
        mailing_list = self._lists.get(channel.channel_id.lower()) if channel.platform == PLATFORM else None
        return None if mailing_list is None else mailing_list.address

    # -- the engine's port ---------------------------------------------------------------------

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        own = await self._send(channel, content, key, thread=False)
        return Posted(message=MessageRef(channel=channel, message_id=own.id))

    async def open_thread(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        own = await self._send(channel, content, key, thread=True)
        return Posted(
            message=MessageRef(channel=channel, message_id=own.id),
            thread=ThreadRef(channel=channel, thread_id=own.id),
        )

    async def _send(self, channel: ChannelRef, content: Message, key: str, *, thread: bool) -> OwnId:
        mailing_list = self._list(channel)
        domain = self._settings.domain
        own = ids.own_id(key, list_name=mailing_list.name, thread=thread, domain=domain)
        opening = _opening_key(key)
        in_reply_to = None
        if opening is not None:
            in_reply_to = ids.own_id(opening, list_name=mailing_list.name, thread=False, domain=domain).header
        mail = compose.compose_mail(
            content, own=own, sender=self._settings.address, to=mailing_list.address, at=self._clock(),
            in_reply_to=in_reply_to,
        )
        await self._sender.send(mail, [mailing_list.address])
        _log.info("e-mail: sent %s to list %s", own.header, mailing_list.name)
        return own

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        """The list's copy of the mail for ``key`` in the folder, if it has come back already."""
        mailing_list = self._list(channel)
        domain = self._settings.domain
        prompt = ids.own_id(key, list_name=mailing_list.name, thread=True, domain=domain)
        other = ids.own_id(key, list_name=mailing_list.name, thread=False, domain=domain)
        try:
            found = await self._folder_has(prompt, other)
        except (aioimaplib.AioImapException, DeliveryError, OSError, TimeoutError, ssl.SSLError) as exc:
            _log.info("e-mail: could not look for %s in the folder (%s): it is sent again", key, exc)
            return None
        if found is None:
            return None
        message = MessageRef(channel=channel, message_id=found.id)
        thread = ThreadRef(channel=channel, thread_id=found.id) if found.opens_thread else None
        return Posted(message=message, thread=thread)

    async def _folder_has(self, *candidates: OwnId) -> OwnId | None:
        client = await imap.connect(self._settings, tls_context=self._tls_context, wait_seconds=30.0)
        try:
            # SELECT, not EXAMINE (aioimaplib searches only in a selected folder); only searched: flags stay.
            opened = await client.select(self._settings.imap_folder)
            if opened.result != "OK":
                raise DeliveryError(f"cannot open the folder {self._settings.imap_folder!r}")
            for own in candidates:
                # Our own ids only: letters, digits, ".", "-", "_" and "@"; nothing to quote.
                found = await client.uid_search(f'HEADER Message-ID "{own.header}"', charset=None)
                if found.result == "OK" and found.lines and bytes(found.lines[0]).split():
                    return own
            return None
        finally:
            with contextlib.suppress(aioimaplib.AioImapException, OSError, TimeoutError):
                await client.logout()

    def _list(self, channel: ChannelRef) -> MailingList:
        found = self._lists.get(channel.channel_id.lower()) if channel.platform == PLATFORM else None
        if found is None:
            raise DeliveryError(f"no mailing list {channel.channel_id!r} is configured in [[email.lists]]")
        return found

    # -- mails in --------------------------------------------------------------------------------

    async def _take(self, raw: bytes) -> imap.Taken:
        handler = self._handler
        if handler is None:
            return imap.Taken.FAILED
        mail = parse.read_mail(raw, own_address=self._settings.address, lists=self._list_names, now=self._clock())
        match mail:
            case parse.Skipped():
                _log.debug("e-mail: left a mail alone: %s", mail.reason)
                return imap.Taken.LEFT_ALONE
            case parse.MailReply():
                return await self._hand_over(handler, mail)
            case parse.MailForget():
                await self._forget(handler, mail)
                return imap.Taken.DONE

    async def _hand_over(self, handler: EventHandler, mail: parse.MailReply) -> imap.Taken:
        channel = ChannelRef(platform=PLATFORM, channel_id=mail.list_name)
        event = ReplyPosted(
            thread=ThreadRef(channel=channel, thread_id=mail.thread_id),
            message=MessageRef(channel=channel, message_id=mail.message_id),
            author=_member(mail.sender),
            text=mail.text,
            at=mail.at,
        )
        try:
            await handler.on_event(event)
        except Exception as error:
            failure = NotStored(mail.message_id)
            _log.warning("e-mail: %s; the mail stays unseen and is read again", failure, exc_info=error)
            return imap.Taken.FAILED
        return imap.Taken.DONE

    async def _forget(self, handler: EventHandler, mail: parse.MailForget) -> None:
        channel = ChannelRef(platform=PLATFORM, channel_id=mail.list_name)
        reply = await handler.on_command(
            CommandInvoked(channel=channel, member=_member(mail.sender), name="forget", at=self._clock())
        )
        own = ids.own_id(f"forget:{mail.message_id}", list_name=mail.list_name, thread=False,
                         domain=self._settings.domain)
        confirmation = compose.confirmation(
            reply.text, own=own, sender=self._settings.address, to=mail.address, at=self._clock(),
            answering=mail.message_id,
        )
        try:
            await self._sender.send(confirmation, [mail.address])
        except DeliveryError:
            # The replies are gone either way; a lost confirmation is worth a line, not a retry.
            _log.warning("e-mail: the confirmation of a forget could not be sent", exc_info=True)


def _member(sender: parse.Sender) -> Member:
    return Member(platform=PLATFORM, user_id=sender.author_id, display_name=sender.display_name)


def _opening_key(key: str) -> str | None:
    """The ledger key of the session's opening mail, from the key of another of its mails.

    The ledger's keys read ``popup:SESSION:START:WHAT`` (sessions/ledger.py); the opening's WHAT is
    ``opening``. None for the opening itself, or a key of another form.
    """
    parts = key.split(":", 3)
    if len(parts) != 4 or parts[0] != "popup" or parts[3] == "opening":
        return None
    return ":".join([*parts[:3], "opening"])
