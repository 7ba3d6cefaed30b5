"""Sending: one SMTP connection (aiosmtplib), kept open between mails and opened again when it drops."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

import aiosmtplib

from adapters.email.settings import EmailSettings
from sessions.errors import DeliveryError

_log = logging.getLogger(__name__)


class SmtpSender:
    def __init__(self, settings: EmailSettings, *, tls_context: ssl.SSLContext | None = None, timeout: float = 30.0):
        self._settings = settings
        self._tls_context = tls_context
        self._timeout = timeout
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()  # one mail at a time on the one connection

    async def send(self, mail: EmailMessage, recipients: Sequence[str]) -> None:
        """Hand ``mail`` to the server for ``recipients``; returns once the server has taken it.

        Raises :class:`~sessions.errors.DeliveryError` when it did not (the ledger tries again later).
        """
        # Flattened with the mail's own policy (aiosmtplib's would fold the subject at 78 characters).
        raw = mail.as_bytes(policy=mail.policy)
        async with self._lock:
            try:
                client = await self._connected()
                errors, _ = await client.sendmail(self._settings.address, list(recipients), raw)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                await self._drop()
                raise DeliveryError(f"the mail server did not take the mail: {exc}") from exc
            if errors:
                refused = ", ".join(f"{address} ({response.code})" for address, response in errors.items())
                raise DeliveryError(f"the mail server refused {refused}")

    async def _connected(self) -> aiosmtplib.SMTP:
        client = self._client
        if client is not None and client.is_connected:
            return client
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            tls_context=self._tls_context,
            timeout=self._timeout,
        )
        await client.connect()
        if settings.smtp_user:
            await client.login(settings.smtp_user, settings.smtp_password)
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # already gone
                _log.debug("closing the SMTP connection failed", exc_info=True)

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
