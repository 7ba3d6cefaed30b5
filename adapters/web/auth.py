"""Signing: the pages' unguessable tokens, cookies, CSRF tokens and sign-in links.

Everything is an HMAC-SHA256 under a key derived from ``POPUP_WEB_SECRET``, each use under a
purpose of its own, so a value signed for one use (a browser's id) is no good for another (a CSRF
token). A page's token is derived from its session id rather than stored: a new secret retires
every page URL, every cookie and every link at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from sessions.model import Member

PAGE_TOKEN_CHARS = 22  # 132 bits of an HMAC: not guessable, short enough for a QR code


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the web side needs a secret")
        self._key = hashlib.sha256(b"popup-web\0" + secret.encode("utf-8")).digest()

    def mac(self, purpose: str, value: str) -> str:
        digest = hmac.new(self._key, f"{purpose}\0{value}".encode(), hashlib.sha256).digest()
        return _b64(digest)

    def check(self, purpose: str, value: str, mac: str) -> bool:
        return hmac.compare_digest(self.mac(purpose, value).encode(), mac.encode("utf-8", "replace"))

    # -- a session's page ----------------------------------------------------------------------

    def page_token(self, session_id: int) -> str:
        return self.mac("page", str(session_id))[:PAGE_TOKEN_CHARS]

    def page_session(self, slug: str) -> int | None:
        """The session id of a page slug ``ID.TOKEN``, or None if the token is not its own."""
        head, dot, token = slug.partition(".")
        if not dot or not head.isdigit() or len(head) > 12:
            return None
        expected = self.page_token(int(head))
        return int(head) if hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace")) else None

    def page_slug(self, session_id: int) -> str:
        return f"{session_id}.{self.page_token(session_id)}"

    # -- sealed values: a value with its expiry and a MAC ------------------------------------------

    def seal(self, purpose: str, value: str, *, ttl: int | None = None) -> str:
        expires = str(int(time.time()) + ttl) if ttl is not None else "0"
        body = f"{_b64(value.encode('utf-8'))}.{expires}"
        return f"{body}.{self.mac(purpose, body)}"

    def unseal(self, purpose: str, sealed: str | None) -> str | None:
        if not sealed or sealed.count(".") != 2:
            return None
        encoded, expires, mac = sealed.split(".")
        if not self.check(purpose, f"{encoded}.{expires}", mac):
            return None
        if not expires.isdigit() or (expires != "0" and int(expires) < time.time()):
            return None
        try:
            return _unb64(encoded).decode("utf-8")
        except ValueError:
            return None

    # -- CSRF: a token bound to the browser's own id -----------------------------------------------

    def csrf(self, browser: str) -> str:
        return self.mac("csrf", browser)

    def csrf_ok(self, browser: str | None, token: str | None) -> bool:
        return bool(browser) and bool(token) and self.check("csrf", browser or "", token or "")


def new_browser_id() -> str:
    return secrets.token_urlsafe(12)


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    """What the database keeps of a sign-in token: its hash (the token itself signs someone in)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Organiser:
    """Who is signed in to the dashboard: the chat member who asked for the link."""

    member: Member

    def to_json(self) -> str:
        m = self.member
        return json.dumps(
            {
                "platform": m.platform,
                "user_id": m.user_id,
                "name": m.display_name,
                "roles": list(m.roles),
                "admin": m.is_admin,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Organiser | None:
        try:
            data = json.loads(text)
            member = Member(
                platform=str(data["platform"]),
                user_id=str(data["user_id"]),
                display_name=str(data["name"]),
                roles=tuple(str(r) for r in data["roles"]),
                is_admin=bool(data["admin"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        return cls(member=member)
