"""Settings of the Slack adapter, as read from ``[slack]`` and the environment by ``bot.config``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# The bot scopes an OAuth install asks for: slack-manifest.yml's.
DEFAULT_SCOPES = (
    "commands",
    "chat:write",
    "channels:history",
    "groups:history",
    "reactions:read",
    "users:read",
    "files:write",
)
TOKEN_KEY_VARIABLE = "POPUP_TOKEN_KEY"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackSettings:
    enabled: bool = False
    mode: Literal["socket", "http"] = "socket"
    host: str = "127.0.0.1"
    port: int = 3000
    path: str = "/slack/events"
    api_base_url: str = ""  # "" = Slack's own; otherwise always ends with "/"
    # Many workspaces (OAuth installs), on when client_id is set: then bot_token is optional.
    client_id: str = ""
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    install_path: str = "/slack/install"  # the "Add to Slack" page
    redirect_path: str = "/slack/oauth_redirect"  # where Slack sends the installer back
    redirect_url: str = ""  # the full redirect URL registered with Slack, when it must be named
    store_tokens: Literal["encrypted", "plain"] = "encrypted"  # how installs' bot tokens are kept
    # Secrets come from the environment only and are kept out of repr (and so out of logs).
    bot_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
    client_secret: str = field(default="", repr=False)
    token_key: str = field(default="", repr=False)  # POPUP_TOKEN_KEY: Fernet keys, newest first

    @property
    def installs(self) -> bool:
        """Whether workspaces install the app themselves (OAuth), rather than SLACK_BOT_TOKEN alone."""
        return bool(self.client_id)
