"""Reading the folder (aioimaplib): new mails handed over in batches, marked seen once taken.

The folder is the queue. A mail is fetched with ``BODY.PEEK[]`` (which leaves it unseen), handed
to ``take``, and flagged ``\\Seen`` only when ``take`` says it is durably handled; a mail that was
not stored stays unseen and is read again at the next sweep (after a short wait), and a mail that
is none of Popup's business is left exactly as it was (remembered for this connection's life so it
is not fetched again and again). Between sweeps the reader waits in IMAP IDLE where the server
offers it, and polls otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Sequence

import aioimaplib

from adapters.email.settings import EmailSettings
from sessions.errors import DeliveryError

_log = logging.getLogger(__name__)

_FETCH_LINE = re.compile(rb"\d+ FETCH \(")
_UID = re.compile(rb"UID (\d+)")
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_BATCH = 200  # mails per FETCH: big enough for the store's group commit, small enough to hold in memory
_IDLE_SECONDS = 300.0  # IDLE is renewed well inside the 29 minutes servers allow


class Taken(enum.Enum):
    DONE = "done"  # durable (or known to be nothing to keep): mark it seen
    LEFT_ALONE = "left alone"  # not Popup's: leave the mail as it was
    FAILED = "failed"  # not stored: read it again later


Take = Callable[[bytes], Awaitable[Taken]]


async def connect(
    settings: EmailSettings, *, tls_context: ssl.SSLContext | None, wait_seconds: float
) -> aioimaplib.IMAP4:
    """A logged-in client (not yet in a folder)."""
    host, port = settings.imap_host, settings.imap_port
    if settings.imap_tls == "tls":
        context = tls_context or ssl.create_default_context()
        client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
            host=host, port=port, timeout=wait_seconds, ssl_context=context
        )
    else:
        client = aioimaplib.IMAP4(host=host, port=port, timeout=wait_seconds)
    await client.wait_hello_from_server()
    if settings.imap_tls == "starttls":
        await _start_tls(client, host, tls_context or ssl.create_default_context(), wait_seconds)
    response = await client.login(settings.imap_user, settings.imap_password)
    if response.result != "OK":
        raise DeliveryError(f"the IMAP server refused the login of POPUP_IMAP_USER: {_said(response.lines)}")
    return client


async def _start_tls(client: aioimaplib.IMAP4, host: str, context: ssl.SSLContext, wait_seconds: float) -> None:
    # aioimaplib has no STARTTLS of its own: the command, then TLS on the same transport (RFC 3501 6.2.1).
    protocol = client.protocol
    if "STARTTLS" not in protocol.capabilities:
        raise DeliveryError("imap_tls is \"starttls\" but the IMAP server does not offer STARTTLS")
    command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
    response = await asyncio.wait_for(protocol.execute(command), wait_seconds)
    if response.result != "OK":
        raise DeliveryError(f"the IMAP server refused STARTTLS: {_said(response.lines)}")
    loop = asyncio.get_running_loop()
    protocol.transport = await loop.start_tls(protocol.transport, protocol, context, server_hostname=host)
    await asyncio.wait_for(protocol.capability(), wait_seconds)  # what the server offers may change under TLS


def _said(lines: Sequence[bytes | bytearray]) -> str:
    return " ".join(bytes(line).decode("utf-8", "replace") for line in lines[-1:])[:200]


def fetched_mails(lines: Sequence[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """``(uid, mail)`` pairs of a ``UID FETCH … (UID BODY.PEEK[])`` answer, in the server's order."""
    mails: list[tuple[int, bytes]] = []
    uid: int | None = None
    body: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            body = bytes(line)
            continue
        if _FETCH_LINE.match(line):
            if uid is not None and body is not None:
                mails.append((uid, body))
            uid, body = None, None
        found = _UID.search(line)
        if found is not None:
            uid = int(found[1])
    if uid is not None and body is not None:
        mails.append((uid, body))
    return mails


class FolderReader:
    """Sweeps ``settings.imap_folder`` for unseen mails until stopped, reconnecting after failures."""

    def __init__(
        self,
        settings: EmailSettings,
        take: Take,
        *,
        idle: bool = True,
        poll_seconds: float = 30.0,
        retry_seconds: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._settings = settings
        self._take = take
        self._idle = idle
        self._poll_seconds = poll_seconds
        self._retry_seconds = retry_seconds
        self._tls_context = tls_context
        self._timeout = timeout
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sweeps = 0  # finished sweeps, for tests that wait for the reader to have looked

    async def start(self) -> None:
        """Begin reading; returns once the folder is open (or the first attempt has failed)."""
        self._task = asyncio.create_task(self._run(), name="email-imap")
        waiter = asyncio.create_task(self._ready.wait())
        await asyncio.wait({self._task, waiter}, timeout=self._timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the batch under way (its mails are handed over and flagged), then log out."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            try:
                await self._session()
                delay = 1.0
            except (aioimaplib.AioImapException, DeliveryError, OSError, TimeoutError, ssl.SSLError) as exc:
                _log.warning("e-mail: reading %s failed (%s); trying again in %.0f s",
                             self._settings.imap_folder, exc or type(exc).__name__, delay)
            except Exception:
                _log.exception("e-mail: the folder reader failed; trying again in %.0f s", delay)
            self._ready.set()  # start() waits for the first outcome, not for success
            if await self._wait(delay):
                return
            delay = min(delay * 2, 60.0)

    async def _session(self) -> None:
        client = await connect(self._settings, tls_context=self._tls_context, wait_seconds=self._timeout)
        try:
            selected = await client.select(self._settings.imap_folder)
            if selected.result != "OK":
                raise DeliveryError(f"cannot open the folder {self._settings.imap_folder!r}: {_said(selected.lines)}")
            validity = next((m[1] for line in selected.lines if (m := _UIDVALIDITY.search(bytes(line)))), b"0")
            left_alone: set[int] = set()  # UIDs are only meaningful under one UIDVALIDITY: per connection
            _log.info("e-mail: reading %s (UIDVALIDITY %s)", self._settings.imap_folder, validity.decode())
            self._ready.set()
            use_idle = self._idle and client.has_capability("IDLE")
            while not self._stopping.is_set():
                failed = await self._sweep(client, left_alone)
                self.sweeps += 1
                if failed:
                    if await self._wait(self._retry_seconds):
                        return
                elif use_idle:
                    await self._idle_until_news(client)
                elif await self._wait(self._poll_seconds):
                    return
        finally:
            with contextlib.suppress(aioimaplib.AioImapException, OSError, TimeoutError):
                await asyncio.wait_for(client.logout(), 5.0)

    async def _sweep(self, client: aioimaplib.IMAP4, left_alone: set[int]) -> bool:
        """Take every unseen mail once; True when some were not stored (to be tried again).

        Searches again after each round until a search finds nothing new: a mail that arrives while
        a round is under way is announced in the answer to one of its commands, which is not kept.
        """
        tried: set[int] = set()
        failed = False
        while True:
            found = await client.uid_search("UNSEEN")
            if found.result != "OK":
                raise DeliveryError(f"searching the folder failed: {_said(found.lines)}")
            words = bytes(found.lines[0]).split() if found.lines else []
            uids = [int(w) for w in words if w.isdigit() and int(w) not in left_alone and int(w) not in tried]
            if not uids:
                return failed
            tried.update(uids)
            for start in range(0, len(uids), _BATCH):
                failed = await self._take_batch(client, uids[start : start + _BATCH], left_alone) or failed

    async def _take_batch(self, client: aioimaplib.IMAP4, batch: list[int], left_alone: set[int]) -> bool:
        fetched = await client.uid("fetch", ",".join(map(str, batch)), "(UID BODY.PEEK[])")
        if fetched.result != "OK":
            raise DeliveryError(f"fetching mails failed: {_said(fetched.lines)}")
        mails = fetched_mails(fetched.lines)
        # Handed over together, so the store commits them together.
        outcomes = await asyncio.gather(*(self._take(raw) for _, raw in mails))
        done = [uid for (uid, _), outcome in zip(mails, outcomes, strict=True) if outcome is Taken.DONE]
        left_alone.update(uid for (uid, _), outcome in zip(mails, outcomes, strict=True)
                          if outcome is Taken.LEFT_ALONE)
        if done:
            flagged = await client.uid("store", ",".join(map(str, done)), "+FLAGS.SILENT", "(\\Seen)")
            if flagged.result != "OK":
                raise DeliveryError(f"marking mails seen failed: {_said(flagged.lines)}")
        return any(outcome is Taken.FAILED for outcome in outcomes)

    async def _idle_until_news(self, client: aioimaplib.IMAP4) -> None:
        idle = await client.idle_start(timeout=_IDLE_SECONDS)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            push = asyncio.ensure_future(client.wait_server_push(timeout=_IDLE_SECONDS + 30))
            await asyncio.wait({push, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not push.done():
                push.cancel()
            elif (error := push.exception()) is not None and not isinstance(error, TimeoutError):
                raise error
        finally:
            stopping.cancel()
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(idle, self._timeout)

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped first; True when stopped."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True
