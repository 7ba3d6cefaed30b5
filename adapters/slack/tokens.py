"""Installs' bot tokens at rest: sealed before they reach the database, opened when read back.

The operator chooses (``[slack] store_tokens``): ``"encrypted"`` (the default) seals each token with
Fernet (AES-128-CBC and HMAC-SHA256) under ``POPUP_TOKEN_KEY``, which holds one or more keys
separated by commas, newest first: the first seals, any opens. So a key is rotated by putting the
new one in front, restarting every process (each seals the stored tokens again under the new key on
start, :meth:`TokenSealer.stale`), then dropping the old one. ``"plain"`` keeps tokens as they are,
for a database that is itself protected. Each stored value says its form (``fernet:…`` or
``plain:…``): a token stored plain before a key was set is still read, and sealed on the next start.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from adapters.slack.settings import TOKEN_KEY_VARIABLE
from sessions.errors import PopupError

_FERNET = "fernet:"
_PLAIN = "plain:"


class SealError(PopupError):
    """A stored token that cannot be opened (sealed under a key no longer given, or damaged)."""


def fernet_keys(text: str) -> list[Fernet]:
    """The keys in ``POPUP_TOKEN_KEY`` (comma-separated, newest first); ValueError naming the bad one."""
    keys: list[Fernet] = []
    for position, part in enumerate(text.split(","), start=1):
        try:
            keys.append(Fernet(part.strip().encode()))
        except ValueError:
            # Say which and what it should be, never what it is.
            raise ValueError(
                f"{TOKEN_KEY_VARIABLE}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make "
                "one with: python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None
    return keys


class TokenSealer:
    """Seals and opens tokens: with Fernet keys (newest first), or plainly with none."""

    def __init__(self, keys: list[Fernet] | None = None) -> None:
        self._keys = keys or []
        self._all = MultiFernet(self._keys) if self._keys else None

    @classmethod
    def from_setting(cls, store_tokens: str, token_key: str) -> TokenSealer:
        return cls(fernet_keys(token_key)) if store_tokens == "encrypted" else cls()

    @property
    def encrypts(self) -> bool:
        return self._all is not None

    def seal(self, token: str) -> str:
        if self._all is None:
            return _PLAIN + token
        return _FERNET + self._all.encrypt(token.encode()).decode()

    def open(self, stored: str) -> str:
        if stored.startswith(_PLAIN):
            return stored.removeprefix(_PLAIN)
        if not stored.startswith(_FERNET):
            raise SealError("a stored token of unknown form")
        if self._all is None:
            raise SealError(f"a stored token is encrypted, and {TOKEN_KEY_VARIABLE} is not set")
        try:
            return self._all.decrypt(stored.removeprefix(_FERNET).encode()).decode()
        except InvalidToken:
            raise SealError(f"a stored token opens with none of the keys in {TOKEN_KEY_VARIABLE}") from None

    def stale(self, stored: str) -> bool:
        """Whether ``stored`` should be sealed again: plain while a key is set, or under an older key."""
        if self._all is None:
            return False
        if not stored.startswith(_FERNET):
            return True
        try:
            self._keys[0].decrypt(stored.removeprefix(_FERNET).encode())
        except InvalidToken:
            return True
        return False
