"""Settings of the Discord adapter, as read from ``[discord]`` and the environment by ``bot.config``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscordSettings:
    enabled: bool = False
    guild_ids: tuple[int, ...] = ()  # sync commands to these guilds at once; empty = global
    api_base_url: str = ""  # REST proxy base such as "http://127.0.0.1:8080/api/v10"; "" = Discord's
    gateway_url: str = ""  # gateway proxy such as "ws://127.0.0.1:8081"; "" = Discord's
    token: str = field(default="", repr=False)
