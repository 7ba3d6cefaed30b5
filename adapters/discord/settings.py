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
    # Several processes split the gateway: each runs the shards it names of shard_count in all
    # (bot.config checks the numbers). Empty and 0: one process, one connection.
    shard_ids: tuple[int, ...] = ()
    shard_count: int = 0

    @property
    def shard(self) -> tuple[int, int] | None:
        """``(shard_id, shard_count)`` of this process's gateway connection, or None unsharded."""
        if not self.shard_ids:
            return None
        return self.shard_ids[0], self.shard_count

    def serves(self, guild_id: int) -> bool:
        """Whether this process's connection gets the guild's events (Discord's shard formula)."""
        if not self.shard_ids:
            return True
        return (guild_id >> 22) % self.shard_count in self.shard_ids
