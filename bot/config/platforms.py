"""The chat platforms: ``[slack]`` and ``[discord]``, their tokens from the environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from adapters.discord.settings import DiscordSettings
from adapters.slack.settings import SlackSettings
from bot.config.reader import Reader, require_secret


def read_slack(slack: Reader, env: Mapping[str, str] | None) -> SlackSettings:
    enabled = slack.get("enabled", bool, False)
    mode = slack.get("mode", str, "socket")
    if mode not in ("socket", "http"):
        raise slack.fail("mode", f'{mode!r} must be "socket" or "http"')
    port = slack.get("port", int, 3000)
    if not 0 <= port <= 65535:
        raise slack.fail("port", f"{port} is not a TCP port")
    path = slack.get("path", str, "/slack/events")
    if not path.startswith("/"):
        raise slack.fail("path", f'{path!r} must start with "/"')
    base = slack.get("api_base_url", str, "")
    if base and not base.startswith(("http://", "https://")):
        raise slack.fail("api_base_url", f"{base!r} must be an http(s) URL")
    if base and not base.endswith("/"):
        base += "/"  # the Slack client joins method names onto it
    settings = SlackSettings(
        enabled=enabled,
        mode=mode,
        host=slack.get("host", str, "127.0.0.1"),
        port=port,
        path=path,
        api_base_url=base,
    )
    if not enabled or env is None:
        return settings
    return dataclasses.replace(
        settings,
        bot_token=require_secret(env, "SLACK_BOT_TOKEN", slack, prefix="xoxb-"),
        signing_secret=require_secret(env, "SLACK_SIGNING_SECRET", slack)
        if mode == "http"
        else env.get("SLACK_SIGNING_SECRET", ""),
        app_token=require_secret(env, "SLACK_APP_TOKEN", slack, prefix="xapp-") if mode == "socket" else "",
    )


def read_discord(discord: Reader, env: Mapping[str, str] | None) -> DiscordSettings:
    enabled = discord.get("enabled", bool, False)
    guild_ids: list[int] = []
    for index, value in enumerate(discord.get("guild_ids", list, [])):
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit():
            raise discord.fail(f"guild_ids[{index}]", f"{value!r} is not a guild id (a number)")
        guild_ids.append(int(text))
    for key in ("api_base_url", "gateway_url"):
        url = discord.get(key, str, "")
        schemes = ("http://", "https://") if key == "api_base_url" else ("ws://", "wss://")
        if url and not url.startswith(schemes):
            raise discord.fail(key, f"{url!r} must start with {' or '.join(schemes)}")
    shard_ids, shard_count = _shards(discord)
    return DiscordSettings(
        enabled=enabled,
        guild_ids=tuple(guild_ids),
        api_base_url=discord.get("api_base_url", str, "").rstrip("/"),
        gateway_url=discord.get("gateway_url", str, "").rstrip("/"),
        token=require_secret(env, "DISCORD_TOKEN", discord) if enabled and env is not None else "",
        shard_ids=shard_ids,
        shard_count=shard_count,
    )


def _shards(discord: Reader) -> tuple[tuple[int, ...], int]:
    count = discord.get("shard_count", int, 0)
    if isinstance(count, bool) or count < 0:
        raise discord.fail("shard_count", f"{count!r} must be 0 (one process) or the number of shards")
    ids: list[int] = []
    for index, value in enumerate(discord.get("shard_ids", list, [])):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < max(count, 1):
            raise discord.fail(f"shard_ids[{index}]", f"{value!r} is not a shard from 0 to shard_count - 1 ({count})")
        if value in ids:
            raise discord.fail(f"shard_ids[{index}]", f"shard {value} is named twice")
        ids.append(value)
    if count and not ids:
        raise discord.fail("shard_ids", f"name the shards this process runs, of shard_count = {count}")
    if ids and not count:
        raise discord.fail("shard_count", "set it (the number of shards in all) when shard_ids is set")
    if len(ids) > 1:
        # One discord.py client is one gateway connection: a process runs one shard.
        raise discord.fail("shard_ids", f"{ids!r}: a process runs one shard; start one popup run per shard")
    return tuple(ids), count
