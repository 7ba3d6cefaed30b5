"""Settings of the Slack adapter, as read from ``[slack]`` and the environment by ``bot.config``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackSettings:
    enabled: bool = False
    mode: Literal["socket", "http"] = "socket"
    host: str = "127.0.0.1"
    port: int = 3000
    path: str = "/slack/events"
    api_base_url: str = ""  # "" = Slack's own; otherwise always ends with "/"
    # Secrets come from the environment only and are kept out of repr (and so out of logs).
    bot_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    app_token: str = field(default="", repr=False)
