"""Settings of the e-mail adapter, as read from ``[email]`` and the environment by ``bot.config``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Tls = Literal["starttls", "tls", "none"]
TLS_FORMS: tuple[Tls, ...] = ("starttls", "tls", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class MailingList:
    """``[[email.lists]]``: a list a session can invite with ``/popup invite email:NAME``."""

    name: str  # one word of letters, digits, "-" and "_": it travels inside Message-IDs
    address: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EmailSettings:
    enabled: bool = False
    address: str = "popup@example.org"  # the bot's own address: From of every mail, where replies arrive
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_tls: Tls = "starttls"
    imap_host: str = "127.0.0.1"
    imap_port: int = 993
    imap_tls: Tls = "tls"
    imap_folder: str = "INBOX"
    lists: tuple[MailingList, ...] = ()
    # Secrets come from the environment only and are kept out of repr (and so out of logs).
    smtp_user: str = field(default="", repr=False)
    smtp_password: str = field(default="", repr=False)
    imap_user: str = field(default="", repr=False)
    imap_password: str = field(default="", repr=False)

    @property
    def domain(self) -> str:
        """The domain of :attr:`address`: the right-hand side of every Message-ID Popup makes."""
        return self.address.rpartition("@")[2].lower()

    def find_list(self, name: str) -> MailingList | None:
        wanted = name.lower()
        return next((item for item in self.lists if item.name.lower() == wanted), None)
