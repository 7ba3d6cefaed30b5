"""Settings of the web side, as read from ``[web]`` and the environment by ``bot.config``."""

from __future__ import annotations

from dataclasses import dataclass, field

SECRET_VARIABLE = "POPUP_WEB_SECRET"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSettings:
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # as configured; see :attr:`base_url`
    # Signs page tokens, cookies and CSRF tokens; from the environment only, kept out of repr.
    secret: str = field(default="", repr=False)
    # Not config keys: the limits the web side keeps, set apart so tests and the bench can vary them.
    max_request_bytes: int = 64 * 1024
    max_answer_chars: int = 4000
    max_name_chars: int = 60
    answers_per_minute: float = 12.0  # per client address, with a burst of ``answer_burst``
    answer_burst: int = 6
    sign_in_ttl_seconds: int = 15 * 60
    login_ttl_seconds: int = 12 * 3600

    @property
    def base_url(self) -> str:
        """How people reach the server, without a trailing ``/``: ``public_url``, else ``http://host:port``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")
