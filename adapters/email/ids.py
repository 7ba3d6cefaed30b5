"""The Message-IDs Popup gives its mails, and finding them again in the mails that answer them.

Every mail Popup sends for a session gets a Message-ID made from the outbound ledger's key and
the list's name, so a mail sent again after a crash carries the same Message-ID as the first try
(lists, mail servers and mail programs collapse mails by it), and the ID alone says which list a
reply belongs to and whether it answers a prompt::

    <popup.LIST.KIND DIGEST@DOMAIN>     KIND: "p" a prompt (opens a thread), "m" any other mail

The same ``LIST.KIND DIGEST`` is the reply token: at the end of the subject (``[#learning.p…]``)
for lists that rewrite ``In-Reply-To``/``References``, and understood after a "+" in the address
a reply was sent to (``popup+learning.p…@example.org``) where the mail provider supports it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

PROMPT = "p"  # a mail that opens a thread: replies to it are answers to the prompt
OTHER = "m"  # the opening, the recap, notices: a reply to it is read only for "forget"
_DIGEST_CHARS = 16  # 64 bits: two posts of one deployment never meet on the same ID

_TOKEN = r"([A-Za-z0-9][A-Za-z0-9_-]{0,39})\.([pm])([0-9a-f]{16})"
_IN_ANGLES = re.compile(r"<([^<>\s]{1,998})>")
_OWN_ID = re.compile(rf"popup\.{_TOKEN}@([^<>\s@]+)", re.IGNORECASE)
_SUBJECT_TOKEN = re.compile(rf"\[#{_TOKEN}\]", re.IGNORECASE)
_ADDRESS_TOKEN = re.compile(rf"\+{_TOKEN}@([^<>\s@]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnId:
    """The identity of one mail Popup sent (or will send) to one list."""

    list_name: str
    kind: str  # PROMPT or OTHER
    digest: str
    domain: str

    @property
    def token(self) -> str:
        return f"{self.list_name}.{self.kind}{self.digest}"

    @property
    def id(self) -> str:
        """The Message-ID without its angle brackets: the post's message id, a prompt's thread id."""
        return f"popup.{self.token}@{self.domain}"

    @property
    def header(self) -> str:
        return f"<{self.id}>"

    @property
    def opens_thread(self) -> bool:
        return self.kind == PROMPT


def own_id(key: str, *, list_name: str, thread: bool, domain: str) -> OwnId:
    """The Message-ID of the post ``key`` (the ledger's marker) to ``list_name``."""
    digest = hashlib.sha256(f"{key}\x00{list_name}".encode()).hexdigest()[:_DIGEST_CHARS]
    return OwnId(list_name=list_name, kind=PROMPT if thread else OTHER, digest=digest, domain=domain.lower())


def message_ids(header: str) -> list[str]:
    """Every ``<id>`` in a header such as ``References``, in order, without the angle brackets."""
    return _IN_ANGLES.findall(header)


def read_own_id(message_id: str, *, domain: str) -> OwnId | None:
    """``message_id`` as one of Popup's own, if it is one (of this deployment's domain)."""
    found = _OWN_ID.fullmatch(message_id.strip())
    if found is None or found[4].lower() != domain.lower():
        return None
    return OwnId(list_name=found[1], kind=found[2].lower(), digest=found[3].lower(), domain=domain.lower())


def subject_tokens(subject: str, *, domain: str) -> list[OwnId]:
    return [_from_token(found, domain) for found in _SUBJECT_TOKEN.finditer(subject)]


def address_tokens(addresses: Iterable[str], *, domain: str) -> list[OwnId]:
    found_ids = []
    for address in addresses:
        for found in _ADDRESS_TOKEN.finditer(address):
            if found[4].lower() == domain.lower():
                found_ids.append(_from_token(found, domain))
    return found_ids


def _from_token(found: re.Match[str], domain: str) -> OwnId:
    return OwnId(list_name=found[1], kind=found[2].lower(), digest=found[3].lower(), domain=domain.lower())
