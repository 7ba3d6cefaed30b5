"""One fixture per concept: the Dovecot server, the SMTP server that plays the lists, the settings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.email.settings import EmailSettings, MailingList, Tls
from tests.email.certificates import TestCertificates, make_certificates
from tests.email.servers import PASSWORD, USER, Dovecot, ListServer, Smtp

BOT = "popup@example.org"
LISTS = (
    MailingList(name="learning", address="learning@lists.example.org"),
    MailingList(name="makers", address="makers@lists.example.org"),
)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    server = Dovecot.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp(dovecot: Dovecot) -> Iterator[Smtp]:
    server = Smtp.start(ListServer(list_addresses={item.address for item in LISTS}, dovecot=dovecot))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """The session's own CA and a server certificate for 127.0.0.1 (see tests/email/certificates.py)."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


def settings_for(dovecot: Dovecot, smtp: Smtp, *, smtp_tls: Tls = "none", imap_tls: Tls = "none") -> EmailSettings:
    """The bot's settings for these servers; with ``imap_tls="tls"`` the port is Dovecot's imaps one."""
    return EmailSettings(
        enabled=True,
        address=BOT,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_tls=smtp_tls,
        imap_host="127.0.0.1",
        imap_port=dovecot.imaps_port if imap_tls == "tls" else dovecot.port,
        imap_tls=imap_tls,
        lists=LISTS,
        imap_user=USER,
        imap_password=PASSWORD,
    )


@pytest.fixture
def email_settings(dovecot: Dovecot, smtp: Smtp) -> EmailSettings:
    return settings_for(dovecot, smtp)
