"""Real mail servers for the e-mail tests: Dovecot (IMAP) started in the foreground with a private
configuration on a free port, and aiosmtpd (SMTP) in the test process acting as the mailing list.

Dovecot is Debian's ``dovecot-imapd``. Where it is not installed the tests that need it skip with
the reason, unless ``POPUP_REQUIRE_DOVECOT=1`` (as in CI), which makes that a failure.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from adapters.email.settings import Tls
from tests.email.certificates import TestCertificates

USER = "popup"
PASSWORD = "dovecot-test-password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def dovecot_binary() -> str:
    """The dovecot binary, or skip (fail where POPUP_REQUIRE_DOVECOT is set)."""
    found = shutil.which("dovecot") or next(
        (p for p in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(p, os.X_OK)), None
    )
    if found is None:
        reason = "Dovecot is not installed (apt-get install dovecot-imapd): the IMAP tests need a real server"
        if os.environ.get("POPUP_REQUIRE_DOVECOT"):
            pytest.fail(f"{reason}, and POPUP_REQUIRE_DOVECOT is set")
        pytest.skip(reason)
    return found


_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
# A test server: no fsync after each delivered mail (the tests' mails need not survive a power cut).
mail_fsync = never
mail_location = maildir:{base}/mail/%u
default_internal_user = {internal_user}
default_login_user = {login_user}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {base}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot with one mailbox (``USER``/``PASSWORD``), and a test's way into it."""

    port: int  # plain IMAP (with STARTTLS where the server has a certificate); the test's own way in
    base: Path
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    imaps_port: int = 0  # implicit TLS, where the server has a certificate
    tls_context: ssl.SSLContext | None = None  # the test's own client's, where the server has a certificate

    @classmethod
    def start(cls, certificates: TestCertificates | None = None) -> Dovecot:
        """Plain IMAP only, or with ``certificates`` TLS required: STARTTLS on ``port``, imaps on ``imaps_port``.

        Dovecot counts a client on its own address as secured and lets it log in without TLS even
        then: so whether the bot used TLS is read from the login lines (:meth:`logins`), and the
        test's own client uses STARTTLS there, so that every login line must say TLS.
        """
        binary = dovecot_binary()
        # A short folder of its own: Dovecot's sockets live under base_dir (paths of ~100 bytes at most),
        # and its mail user must be able to reach the maildir.
        base = Path(tempfile.mkdtemp(prefix="popup-dc-"))
        base.chmod(0o755)
        if os.geteuid() == 0:
            mail_user = _user("dovecot") or _user("nobody")
            internal, login = (_name("dovecot") or "nobody"), (_name("dovenull") or "nobody")
        else:
            mail_user = pwd.getpwuid(os.getuid())
            internal = login = mail_user.pw_name
        assert mail_user is not None
        for folder in ("run", "state", "mail", "home"):
            (base / folder).mkdir()
        if os.geteuid() == 0:
            for folder in ("mail", "home"):
                os.chown(base / folder, mail_user.pw_uid, mail_user.pw_gid)
        (base / "passwd").write_text(
            f"{USER}:{{PLAIN}}{PASSWORD}:{mail_user.pw_uid}:{mail_user.pw_gid}::{base}/home::\n", encoding="utf-8"
        )
        port = free_port()
        imaps_port = free_port() if certificates is not None else 0
        if certificates is None:
            ssl = "ssl = no"
        else:
            ssl = f"ssl = required\nssl_cert = <{certificates.cert_file}\nssl_key = <{certificates.key_file}"
        config = base / "dovecot.conf"
        config.write_text(_CONFIG.format(base=base, port=port, imaps_port=imaps_port, ssl=ssl, internal_user=internal,
                                         login_user=login), encoding="utf-8")
        output = (base / "stdout").open("wb")
        process = subprocess.Popen([binary, "-F", "-c", str(config)], stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        server = cls(port=port, base=base, process=process, imaps_port=imaps_port,
                     tls_context=None if certificates is None else certificates.client_context())
        server._wait_ready()
        return server

    def _wait_ready(self, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as conn:
                    if conn.recv(200).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"Dovecot did not start: {log[-2000:]}")

    def log(self) -> str:
        parts = []
        for name in ("stdout", "dovecot.log"):
            path = self.base / name
            if path.exists():
                parts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(parts)

    def logins(self) -> list[str]:
        """Dovecot's line for each login so far: ``TLS`` in it where the client spoke TLS."""
        return [line for line in self.log().splitlines() if "imap-login: Info: Login:" in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)

    # -- a test's own IMAP client (the stdlib's, synchronous: call through asyncio.to_thread) ----

    def _client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        if self.tls_context is not None:  # so that every login on a TLS server is one over TLS
            client.starttls(self.tls_context)
        client.login(USER, PASSWORD)
        return client

    def append(self, *mails: bytes | EmailMessage, folder: str = "INBOX") -> None:
        """Deliver mails as a mail server would: by IMAP APPEND, unseen."""
        client = self._client()
        try:
            for mail in mails:
                raw = mail if isinstance(mail, bytes) else mail.as_bytes(policy=policy.SMTP)
                result, data = client.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)
                assert result == "OK", data
        finally:
            client.logout()

    def unsee(self, message_id: str, folder: str = "INBOX") -> None:
        """Take the \\Seen flag off a mail again (as a person reading the folder may)."""
        client = self._client()
        try:
            client.select(folder)
            result, data = client.uid("SEARCH", "HEADER", "Message-ID", f"<{message_id}>")
            assert result == "OK", data
            for uid in data[0].split():
                client.uid("STORE", uid, "-FLAGS", "(\\Seen)")
        finally:
            client.logout()

    def flags_by_message_id(self, folder: str = "INBOX") -> dict[str, set[str]]:
        """Every mail's flags, by its Message-ID (without angle brackets)."""
        client = self._client()
        try:
            client.select(folder, readonly=True)
            result, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            assert result == "OK", data
        finally:
            client.logout()
        found: dict[str, set[str]] = {}
        for item in data:
            if not isinstance(item, tuple):
                continue
            flags = set(re.findall(rb"\\\w+", item[0].split(b"BODY")[0]))
            message_id = re.search(rb"<([^>]+)>", item[1])
            if message_id:
                found[message_id[1].decode()] = {flag.decode() for flag in flags}
        return found


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _name(name: str) -> str | None:
    return name if _user(name) is not None else None


@dataclass
class ListServer:
    """aiosmtpd's handler: the mailing lists and the members' mailboxes, all in one.

    Every mail the bot sends is kept (``mails``). A mail to a list's address is also delivered back
    to the bot's own mailbox in Dovecot, as a list does for each member (the bot is one), with the
    list's headers and footer added: so the bot sees its own mails come back, as in real life.
    """

    list_addresses: set[str]
    dovecot: Dovecot | None = None
    mails: list[tuple[str, tuple[str, ...], bytes]] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)  # for each of ``mails``: did it come over TLS
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content
        recipients = tuple(envelope.rcpt_tos)
        # Implicit TLS or after STARTTLS alike, the transport the mail came on is then a TLS one.
        tls = server.transport.get_extra_info("ssl_object") is not None
        with self.lock:
            self.mails.append((envelope.mail_from, recipients, raw))
            self.over_tls.append(tls)
        listed = [r for r in recipients if r.lower() in self.list_addresses]
        if listed and self.dovecot is not None:
            self.dovecot.append(_as_list_delivery(raw, listed[0]))
        return "250 OK"

    def parsed(self) -> list[EmailMessage]:
        with self.lock:
            raws = [raw for _, _, raw in self.mails]
        return [message_from_bytes(raw, policy=policy.default) for raw in raws]

    def subjects(self) -> list[str]:
        return [str(mail["Subject"]) for mail in self.parsed()]

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            raws = [raw for _, recipients, raw in self.mails if address in recipients]
        return [message_from_bytes(raw, policy=policy.default) for raw in raws]


def _as_list_delivery(raw: bytes, list_address: str) -> bytes:
    name = list_address.split("@")[0]
    header = (f"List-Id: {name} <{name}.lists.example.org>\r\nPrecedence: list\r\n"
              f"List-Post: <mailto:{list_address}>\r\n").encode()
    return header + raw


@dataclass
class Smtp:
    controller: Controller
    handler: ListServer

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @classmethod
    def start(cls, handler: ListServer, tls: Tls = "none", certificates: TestCertificates | None = None) -> Smtp:
        """Plain SMTP, or with ``certificates`` implicit TLS (``"tls"``) or STARTTLS required before MAIL."""
        options: dict[str, Any] = {}
        if tls != "none":
            assert certificates is not None, "a TLS server needs certificates"
            if tls == "tls":
                options["ssl_context"] = certificates.server_context()
            else:
                options.update(tls_context=certificates.server_context(), require_starttls=True)
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
        controller.start()
        return cls(controller=controller, handler=handler)

    def stop(self) -> None:
        self.controller.stop()
