"""Reading one mail from the folder: is it an answer to a prompt, a "forget", or none of ours?

A pure function of the mail's bytes (and the clock), so the same mail read twice gives the same
answer, with the same message id: the store keeps each mail once however often it is fetched.
Nothing of the raw mail is kept: only the text the member wrote, their display name, and a digest
of their address (for telling people apart and for ``forget``; the address itself is never stored
or shown).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from adapters.email import ids, quotes
from adapters.email.ids import OwnId

_log = logging.getLogger(__name__)

# compat32 keeps headers as the strings they are: an order of magnitude quicker than building the
# modern policy's header objects, and this reads only a handful of headers per mail.
_PARSER = BytesParser(policy=policy.compat32)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
_FORGET = re.compile(r"\s*forget[\s.!]*", re.IGNORECASE)

# Who never writes answers: mailer daemons, bounce handlers, no-reply senders, list robots.
_ROBOT = re.compile(
    r"^(?:mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|notifications?|auto-?reply|daemon"
    r"|listserv|majordomo|mailman)(?:[+.-].*)?$|-(?:request|owner|bounces?|admin)(?:[+.-].*)?$",
    re.IGNORECASE,
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?(?:reply|response|antwort)|out of (?:the )?office|abwesenheit|"
    r"r[ée]ponse automatique|undeliver(?:able|ed)|delivery status notification|returned mail|"
    r"mail delivery (?:failed|failure|system))",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sender:
    author_id: str  # a digest of the address: the same person gets the same id, and nobody can read it
    display_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MailReply:
    """An answer to a prompt, ready to store."""

    list_name: str
    thread_id: str  # the prompt mail's id (``OwnId.id``)
    message_id: str  # this mail's Message-ID, without angle brackets
    sender: Sender
    text: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MailForget:
    """``forget`` sent in answer to any of a session's mails."""

    list_name: str
    message_id: str
    sender: Sender
    address: str = ""  # where the confirmation goes; used for that and dropped


@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    """A mail that is none of Popup's business (it is left as it is in the folder)."""

    reason: str


ReadMail = MailReply | MailForget | Skipped


def author_id(address: str) -> str:
    """The stored identity of a mail participant: a digest of the address, the same for every mail."""
    return "mail-" + hashlib.sha256(address.strip().lower().encode()).hexdigest()[:24]


def read_mail(raw: bytes, *, own_address: str, lists: Mapping[str, str], now: datetime) -> ReadMail:
    """What ``raw`` is to Popup. ``lists`` maps each configured list's name, lowercased, to its name.

    Never raises: a mail that cannot be made sense of is :class:`Skipped` (and logged).
    """
    try:
        return _read(_PARSER.parsebytes(raw), raw, own_address=own_address, lists=lists, now=now)
    except Exception:  # a mail is anybody's bytes; one that breaks the parser must not stop the folder
        _log.warning("e-mail: a mail could not be read; it is left in the folder", exc_info=True)
        return Skipped(reason="unreadable")


def _read(mail: Message, raw: bytes, *, own_address: str, lists: Mapping[str, str], now: datetime) -> ReadMail:
    domain = own_address.rpartition("@")[2].lower()
    message_id = _message_id(mail, raw)
    if ids.read_own_id(message_id, domain=domain) is not None:
        return Skipped(reason="one of Popup's own mails")
    # The address from the raw header, then the name decoded: an encoded name may hold a comma.
    raw_name, address = next(
        ((n, a) for n, a in getaddresses([str(mail.get("From", ""))]) if "@" in a), parseaddr("")
    )
    name = _decoded_header(raw_name)
    if _same_mailbox(address, own_address):
        return Skipped(reason="from Popup itself")
    robot = _robot_reason(mail, address)
    if robot:
        return Skipped(reason=robot)
    answered = _answered(mail, domain=domain, lists=lists)
    if answered is None:
        return Skipped(reason="answers none of Popup's mails")
    if "@" not in address:
        return Skipped(reason="no sender address")
    sender = Sender(author_id=author_id(address), display_name=_display_name(name, answered.list_name))
    text = _text_of(mail)
    if _FORGET.fullmatch(text):
        return MailForget(list_name=answered.list_name, message_id=message_id, sender=sender, address=address)
    if not answered.opens_thread:
        return Skipped(reason="answers a mail that is not a prompt")
    if not text:
        return Skipped(reason="no text of its own")
    return MailReply(
        list_name=answered.list_name,
        thread_id=answered.id,
        message_id=message_id,
        sender=sender,
        text=text,
        at=_sent_at(mail, now),
    )


def _header(mail: Message, name: str) -> str:
    """A header's value with RFC 2047 encoded words decoded; "" when absent."""
    value = mail.get(name)
    return "" if value is None else _decoded_header(value)


def _headers(mail: Message, name: str) -> list[str]:
    return [_decoded_header(value) for value in mail.get_all(name) or []]


def _decoded_header(value: object) -> str:
    text = str(value)
    if "=?" not in text:
        return " ".join(text.split())
    try:
        return " ".join(str(make_header(decode_header(text))).split())
    except (HeaderParseError, LookupError, UnicodeError, ValueError):  # a broken or unknown encoding
        return " ".join(text.split())


def _message_id(mail: Message, raw: bytes) -> str:
    found = ids.message_ids(_header(mail, "Message-ID"))
    if found:
        return found[0][:900]
    # No Message-ID (some robots, some broken clients): the bytes themselves are what is fetched again.
    return f"sha256.{hashlib.sha256(raw).hexdigest()[:40]}@message-id.invalid"


def _same_mailbox(address: str, own_address: str) -> bool:
    local, _, domain = address.lower().rpartition("@")
    own_local, _, own_domain = own_address.lower().rpartition("@")
    return bool(local) and domain == own_domain and (local == own_local or local.startswith(own_local + "+"))


def _robot_reason(mail: Message, address: str) -> str:
    """Why the mail was written by a program rather than a person ("" when by a person)."""
    auto = _header(mail, "Auto-Submitted").strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto[:40]}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated", "X-Auto-Reply"):
        if _header(mail, name):
            return name
    if mail.get_content_type() == "multipart/report" or _header(mail, "X-Failed-Recipients"):
        return "a delivery report (bounce)"
    if _header(mail, "Return-Path").strip() == "<>":
        return "a bounce (empty Return-Path)"
    if _AUTO_SUBJECT.match(_header(mail, "Subject")):
        return "an automatic reply (by its subject)"
    local = address.rpartition("@")[0]
    precedence = _header(mail, "Precedence").strip().lower()
    if precedence in ("junk", "auto_reply"):
        return f"Precedence: {precedence}"
    if precedence in ("bulk", "list") and (not local or _ROBOT.search(local)):
        return f"Precedence: {precedence} from a robot"
    if local and _ROBOT.search(local):
        return "from a robot address"
    return ""


def _answered(mail: Message, *, domain: str, lists: Mapping[str, str]) -> OwnId | None:
    """The mail of Popup's this one answers: a prompt where any is named, else any other of its mails.

    In-Reply-To first, then References from the newest back (a reply to a reply names the prompt
    further back), then the token in the subject or in the address it was sent to.
    """
    candidates: list[OwnId] = []
    named = ids.message_ids(_header(mail, "In-Reply-To")) + ids.message_ids(_header(mail, "References"))[::-1]
    for message_id in named:
        own = ids.read_own_id(message_id, domain=domain)
        if own is not None:
            candidates.append(own)
    candidates += ids.subject_tokens(_header(mail, "Subject"), domain=domain)
    recipients = [
        address
        for _, address in getaddresses(
            [*_headers(mail, "To"), *_headers(mail, "Cc"), *_headers(mail, "Delivered-To"),
             *_headers(mail, "X-Original-To")]
        )
    ]
    candidates += ids.address_tokens(recipients, domain=domain)
    known = [
        OwnId(list_name=lists[own.list_name.lower()], kind=own.kind, digest=own.digest, domain=own.domain)
        for own in candidates
        if own.list_name.lower() in lists
    ]
    return next((own for own in known if own.opens_thread), known[0] if known else None)


def _display_name(name: str, list_name: str) -> str:
    cleaned = " ".join(_CONTROL.sub(" ", name).split()).strip("\"' ")
    if not cleaned or "@" in cleaned:  # no name, or the address in its place: never show an address
        return f"someone on {list_name}"
    return cleaned[:80]


def _text_of(mail: Message) -> str:
    """The member's words: the plain-text body (else the HTML one, made text), quotes cut away.
    Attachments, and mails forwarded inside this one, are not read."""
    body = _body(mail)
    if body is None:
        return ""
    content = _decoded(body)
    if body.get_content_subtype() == "html":
        content = quotes.html_to_text(content)
    return quotes.strip_reply(content)


def _body(mail: Message) -> Message | None:
    """The first text/plain part that is not an attachment, else the first such text/html part."""
    found: dict[str, Message] = {}
    parts: list[Message] = [mail]
    while parts and "plain" not in found:
        part = parts.pop(0)
        if part.is_multipart():
            payload = part.get_payload()
            if part.get_content_maintype() == "multipart" and isinstance(payload, list):
                parts[:0] = [child for child in payload if isinstance(child, Message)]
            continue  # message/rfc822: a forwarded mail is not the sender's words
        if part.get_content_maintype() != "text" or part.get_content_disposition() == "attachment":
            continue
        subtype = part.get_content_subtype()
        if subtype in ("plain", "html"):
            found.setdefault(subtype, part)
    return found.get("plain") or found.get("html")


def _decoded(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", "replace")


def _sent_at(mail: Message, now: datetime) -> datetime:
    """The Date the sender's program wrote, unless it is missing, nonsense or in the future."""
    try:
        sent = parsedate_to_datetime(_header(mail, "Date"))
    except (TypeError, ValueError, IndexError):
        return now
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    return now if sent > now or sent.year < 2000 else sent.astimezone(UTC)
