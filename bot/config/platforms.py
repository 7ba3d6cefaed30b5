"""The chat platforms: ``[slack]`` and ``[discord]``, their tokens from the environment."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from adapters.discord.settings import DiscordSettings
from adapters.slack.settings import DEFAULT_SCOPES, TOKEN_KEY_VARIABLE, SlackSettings
from adapters.slack.tokens import fernet_keys
from bot.config.reader import Reader, require_secret
from sessions.errors import ConfigError


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
    host = slack.get("host", str, "127.0.0.1")
    settings = _installs(
        slack, SlackSettings(enabled=enabled, mode=mode, host=host, port=port, path=path, api_base_url=base)
    )
    if not enabled or env is None:
        return settings
    installs = settings.installs
    bot_token = env.get("SLACK_BOT_TOKEN", "").strip()
    settings = dataclasses.replace(
        settings,
        # With installs, SLACK_BOT_TOKEN is optional: if set, its workspace is served as well.
        bot_token=require_secret(env, "SLACK_BOT_TOKEN", slack, prefix="xoxb-") if bot_token or not installs else "",
        signing_secret=require_secret(env, "SLACK_SIGNING_SECRET", slack)
        if mode == "http"
        else env.get("SLACK_SIGNING_SECRET", ""),
        app_token=require_secret(env, "SLACK_APP_TOKEN", slack, prefix="xapp-") if mode == "socket" else "",
    )
    if not installs:
        return settings
    return dataclasses.replace(
        settings,
        client_secret=require_secret(env, "SLACK_CLIENT_SECRET", slack),
        token_key=_token_key(slack, env) if settings.store_tokens == "encrypted" else "",
    )


def _installs(slack: Reader, settings: SlackSettings) -> SlackSettings:
    """``settings`` with the keys of OAuth installs (one Popup for many workspaces), on when
    ``client_id`` is set."""
    client_id = slack.get("client_id", str, "").strip()
    scopes = slack.get("scopes", list, list(DEFAULT_SCOPES))
    for index, scope in enumerate(scopes):
        if not isinstance(scope, str) or not scope.strip() or "," in scope:
            raise slack.fail(f"scopes[{index}]", f"{scope!r} is not a Slack scope, such as \"chat:write\"")
    paths: dict[str, str] = {}
    for key, default in (("install_path", "/slack/install"), ("redirect_path", "/slack/oauth_redirect")):
        value = slack.get(key, str, default)
        if not value.startswith("/") or "?" in value:
            raise slack.fail(key, f"{value!r} must be a path starting with \"/\"")
        if value == settings.path or value in paths.values():
            raise slack.fail(key, f"{value!r} is already the path of another route")
        paths[key] = value
    redirect_url = slack.get("redirect_url", str, "").strip()
    if redirect_url and not redirect_url.startswith(("http://", "https://")):
        raise slack.fail("redirect_url", f"{redirect_url!r} must be an http(s) URL")
    store_tokens = slack.get("store_tokens", str, "encrypted")
    if store_tokens not in ("encrypted", "plain"):
        raise slack.fail("store_tokens", f'{store_tokens!r} must be "encrypted" (with {TOKEN_KEY_VARIABLE}) or "plain"')
    return dataclasses.replace(
        settings,
        client_id=client_id,
        scopes=tuple(s.strip() for s in scopes),
        redirect_url=redirect_url,
        store_tokens=store_tokens,
        install_path=paths["install_path"],
        redirect_path=paths["redirect_path"],
    )


def _token_key(slack: Reader, env: Mapping[str, str]) -> str:
    """POPUP_TOKEN_KEY, checked: installs' bot tokens are encrypted with it before they are stored."""
    key = env.get(TOKEN_KEY_VARIABLE, "").strip()
    if not key:
        raise ConfigError(
            f"{slack.source}: [slack] client_id is set and the environment variable {TOKEN_KEY_VARIABLE} is not: "
            "installs' bot tokens are encrypted with it "
            '(or set [slack] store_tokens = "plain" to store them unencrypted)'
        )
    try:
        fernet_keys(key)
    except ValueError as error:
        raise ConfigError(f"{slack.source}: [slack]: {error}") from None
    return key


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
