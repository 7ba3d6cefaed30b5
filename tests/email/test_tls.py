"""The e-mail adapter over TLS and STARTTLS, as real deployments use it, against real servers.

Dovecot requires TLS (``ssl = required``; STARTTLS on its plain port, implicit TLS on imaps) and
aiosmtpd speaks implicit TLS or requires STARTTLS, all with a certificate from the session's own
CA (tests/email/certificates.py). The bot trusts that CA through the adapter's ``tls_context``;
without it the adapter uses the default context, as ``popup run`` does, which does not trust it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from adapters.console import ConsoleAdapter
from adapters.email import imap
from adapters.email.settings import EmailSettings, Tls
from adapters.email.smtp import SmtpSender
from bot.app import App
from bot.config import load_config
from sessions.errors import DeliveryError
from tests.config_files import plan, write_config
from tests.email import mails
from tests.email.certificates import TestCertificates
from tests.email.conftest import BOT, LISTS, settings_for
from tests.email.rig import WITHIN, MailRig
from tests.email.servers import PASSWORD, USER, Dovecot, ListServer, Smtp
from tests.support import eventually

pytestmark = pytest.mark.e2e

LIST_ADDRESS = LISTS[0].address


@pytest.fixture(params=["tls", "starttls"])
def mode(request: pytest.FixtureRequest) -> Tls:
    tls: Tls = request.param
    return tls


@pytest.fixture
def tls_dovecot(certificates: TestCertificates) -> Iterator[Dovecot]:
    server = Dovecot.start(certificates)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_smtp(mode: Tls, certificates: TestCertificates, tls_dovecot: Dovecot) -> Iterator[Smtp]:
    handler = ListServer(list_addresses={item.address for item in LISTS}, dovecot=tls_dovecot)
    server = Smtp.start(handler, mode, certificates)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_settings(mode: Tls, tls_dovecot: Dovecot, tls_smtp: Smtp) -> EmailSettings:
    return settings_for(tls_dovecot, tls_smtp, smtp_tls=mode, imap_tls=mode)


def a_mail(subject: str = "Hello") -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = BOT, LIST_ADDRESS, subject
    mail.set_content("Hello.")
    return mail


def message_id(mail: EmailMessage) -> str:
    return str(mail["Message-ID"]).strip("<>")


async def test_a_prompt_goes_out_and_a_reply_comes_in(
    tmp_path: Path, mode: Tls, certificates: TestCertificates, tls_settings: EmailSettings,
    tls_dovecot: Dovecot, tls_smtp: Smtp,
) -> None:
    rig = await MailRig.start(tmp_path / "popup.db", tls_settings, tls_smtp, tls_dovecot,
                              tls_context=certificates.client_context())
    try:
        await rig.start_with_list()
        prompt = await rig.mail("1/2:")
        answer = mails.gmail_reply(prompt, name="Ann Example", address="ann@example.net", text="Over TLS.")
        await rig.append(answer)
        [reply] = await rig.wait_replies(1)
        await rig.seen(message_id(answer))
    finally:
        await rig.close()
    assert reply.text == "Over TLS."
    # Both servers would take plain text from 127.0.0.1 too: that the bot spoke TLS is their word.
    assert tls_smtp.handler.over_tls
    assert all(tls_smtp.handler.over_tls)
    logins = await asyncio.to_thread(tls_dovecot.logins)
    assert logins
    assert all(", TLS," in line for line in logins), logins


async def test_a_certificate_the_bot_does_not_trust_is_refused_and_the_mail_stays_unseen(
    tmp_path: Path, mode: Tls, certificates: TestCertificates, tls_settings: EmailSettings,
    tls_dovecot: Dovecot, tls_smtp: Smtp, caplog: pytest.LogCaptureFixture,
) -> None:
    db = tmp_path / "popup.db"
    trusting = certificates.client_context()
    rig = await MailRig.start(db, tls_settings, tls_smtp, tls_dovecot, tls_context=trusting)
    try:
        await rig.start_with_list()
        prompt = await rig.mail("1/2:")
    finally:
        await rig.close()
    answer = mails.outlook_reply(prompt, name="Bo", address="bo@example.net", text="Kept for later.")
    await asyncio.to_thread(tls_dovecot.append, answer)

    caplog.set_level(logging.WARNING, logger="adapters.email.imap")
    # No tls_context: the default one, as `popup run` builds it, which does not know the test CA.
    rig = await MailRig.start(db, tls_settings, tls_smtp, tls_dovecot)
    try:
        await eventually(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, WITHIN, what="the refusal logged")
        assert rig.email.sweeps == 0
        assert await rig.replies() == []
    finally:
        await rig.close()
    assert "e-mail: reading INBOX failed ([SSL: CERTIFICATE_VERIFY_FAILED]" in caplog.text
    assert "\\Seen" not in (await asyncio.to_thread(tls_dovecot.flags_by_message_id))[message_id(answer)]

    rig = await MailRig.start(db, tls_settings, tls_smtp, tls_dovecot, tls_context=trusting)
    try:
        [reply] = await rig.wait_replies(1)  # nothing lost: read once the certificate is trusted
        await rig.seen(message_id(answer))
    finally:
        await rig.close()
    assert reply.text == "Kept for later."


async def test_a_mail_to_a_server_the_bot_does_not_trust_is_not_sent(tls_settings: EmailSettings,
                                                                     tls_smtp: Smtp) -> None:
    sender = SmtpSender(tls_settings)  # the default context, as in production
    try:
        with pytest.raises(DeliveryError, match=r"did not take the mail: .*CERTIFICATE_VERIFY_FAILED"):
            await sender.send(a_mail(), [LIST_ADDRESS])
    finally:
        await sender.close()
    assert tls_smtp.handler.mails == []


async def test_imap_starttls_is_refused_where_the_server_does_not_offer_it(
    certificates: TestCertificates, dovecot: Dovecot, smtp: Smtp
) -> None:
    settings = settings_for(dovecot, smtp, imap_tls="starttls")
    with pytest.raises(DeliveryError, match='imap_tls is "starttls" but the IMAP server does not offer STARTTLS'):
        await imap.connect(settings, tls_context=certificates.client_context(), wait_seconds=WITHIN)
    assert await asyncio.to_thread(dovecot.logins) == []  # the password never went out in clear


async def test_smtp_starttls_is_refused_where_the_server_does_not_offer_it(
    certificates: TestCertificates, dovecot: Dovecot, smtp: Smtp
) -> None:
    sender = SmtpSender(settings_for(dovecot, smtp, smtp_tls="starttls"), tls_context=certificates.client_context())
    try:
        with pytest.raises(DeliveryError, match="STARTTLS"):
            await sender.send(a_mail(), [LIST_ADDRESS])
    finally:
        await sender.close()
    assert smtp.handler.mails == []


async def test_popup_run_with_the_shipped_tls_modes_trusts_the_ca_in_ssl_cert_file(
    tmp_path: Path, certificates: TestCertificates, tls_dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shipped modes (config.example.toml): STARTTLS to the SMTP server, implicit TLS to IMAP.
    # `popup run` has no CA setting: a private CA is trusted as by any OpenSSL client, through
    # SSL_CERT_FILE, which the default contexts of both clients read when they are made.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    smtp = Smtp.start(ListServer(list_addresses={LIST_ADDRESS}, dovecot=tls_dovecot), "starttls", certificates)
    config = write_config(
        tmp_path,
        plans=[plan("day", "+2h", ("+0s", "What did you learn?"), ("+1h", "And then?"))],
        console={"enabled": True},
        email={
            "enabled": True, "address": BOT,
            "smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "starttls",
            "imap_host": "127.0.0.1", "imap_port": tls_dovecot.imaps_port, "imap_tls": "tls",
            "lists": [{"name": "learning", "address": LIST_ADDRESS}],
        },
    )
    env = {"POPUP_IMAP_USER": USER, "POPUP_IMAP_PASSWORD": PASSWORD}
    app = App(load_config(config, env=env), console_out=io.StringIO(), console_stdin=False)
    try:
        await app.start()
        console = next(a for a in app.adapters if isinstance(a, ConsoleAdapter))
        await console.command("/popup start day")
        await console.command("/popup invite email:learning")
        await eventually(lambda: any("1/2:" in s for s in smtp.handler.subjects()), WITHIN, what="prompt 1 mailed")
        [prompt] = [m for m in smtp.handler.parsed() if "1/2:" in str(m["Subject"])]
        answer = mails.apple_reply(prompt, name="Cy", address="cy@example.net", text="Trusted.")
        await asyncio.to_thread(tls_dovecot.append, answer)
        store = app.store
        assert store is not None

        async def stored() -> bool:
            return [r.text async for r in store.iter_replies(1)] == ["Trusted."]

        await eventually(stored, WITHIN, what="the reply stored")
    finally:
        await app.stop()
        smtp.stop()
    assert all(smtp.handler.over_tls)
    assert all(", TLS," in line for line in await asyncio.to_thread(tls_dovecot.logins))
