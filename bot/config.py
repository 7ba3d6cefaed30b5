"""The TOML configuration (DESIGN 4.2) read into typed, frozen settings.

Every problem is a :class:`~sessions.errors.ConfigError` whose one line names the file, the key
and the offending value. Secrets come only from the environment and never appear in a message.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from adapters.discord.settings import DiscordSettings
from adapters.email.settings import TLS_FORMS, EmailSettings, MailingList, Tls
from adapters.slack.settings import SlackSettings
from adapters.web.settings import SECRET_VARIABLE as WEB_SECRET_VARIABLE
from adapters.web.settings import WebSettings
from bot.prose_model import StorySettings
from sessions.channels import CHANNEL_REF_FORMS, Circle, parse_channel_ref
from sessions.engine import EngineSettings
from sessions.errors import ConfigError, PlanError
from sessions.plans import Offset, Plan, PromptSpec, parse_time, validate_plan
from sessions.rights import ORGANISER_FORMS, Organiser, parse_organiser
from storage.settings import StorageSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    source: Path
    storage: StorageSettings
    engine: EngineSettings
    plans: tuple[Plan, ...]
    console: bool
    slack: SlackSettings
    discord: DiscordSettings
    web: WebSettings = field(default_factory=WebSettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    story: StorySettings = field(default_factory=StorySettings)

    @property
    def storage_path(self) -> Path:
        """The SQLite file (``storage.path``); not used when ``storage.url`` is set."""
        return self.storage.path

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value in force, for the log redactor."""
        values = (
            self.slack.bot_token,
            self.slack.signing_secret,
            self.slack.app_token,
            self.discord.token,
            self.web.secret,
            self.email.smtp_password,
            self.email.imap_password,
            self.story.api_key,
        )
        return tuple(v for v in values if v)


class _Reader:
    """Typed access to one TOML table, with errors that say where."""

    def __init__(self, source: Path, table: Mapping[str, Any], where: str) -> None:
        self.source = source
        self.table = table
        self.where = where

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.key(key)}: {problem}")

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        if key not in self.table:
            if required:
                raise self.fail(key, "is missing")
            return default
        value = self.table[key]
        # bool is an int in Python; never accept true where a number is meant.
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            raise self.fail(key, f"expected {_kind_name(kind)}, got {value!r}")
        return value

    def sub(self, key: str) -> _Reader:
        value = self.get(key, dict, {})
        return _Reader(self.source, value, self.key(key))


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", bool: "true or false", int: "a whole number", list: "a list", dict: "a table"}
    return " or ".join(names.get(k, k.__name__) for k in _as_tuple(kind))


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None, *, secrets: bool = True) -> Config:
    """Read and check ``path``. With ``secrets=False`` no platform secret is read or demanded:
    for commands that only need the database (``popup sessions``, ``export``, ``backup``)."""
    source = Path(path)
    env = os.environ if env is None else env
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the configuration file ({exc.strerror})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    root = _Reader(source, data, "")

    plans = _plans(root)
    engine = dataclasses.replace(_engine(root.sub("session"), plans), circles=_circles(root))
    return Config(
        source=source,
        storage=_storage(root.sub("storage")),
        engine=engine,
        plans=plans,
        console=bool(root.sub("console").get("enabled", bool, False)),
        slack=_slack(root.sub("slack"), env if secrets else None),
        discord=_discord(root.sub("discord"), env if secrets else None),
        web=_web(root.sub("web"), env if secrets else None),
        email=_email(root.sub("email"), env if secrets else None),
        story=_story(root.sub("story"), env),
    )


def _storage(storage: _Reader) -> StorageSettings:
    path = Path(storage.get("path", str, "popup.db"))
    if not path.is_absolute():
        path = storage.source.resolve().parent / path  # relative to the config file
    url = storage.get("url", str, "").strip()
    if url:
        lease = storage.get("lease_seconds", (int, float), 15)
        if not 1 <= lease <= 3600:
            raise storage.fail("lease_seconds", f"{lease!r} must be from 1 to 3600 (seconds)")
        # path is not used then
        return StorageSettings(path=path, url=_postgres_url(storage, url), lease_seconds=float(lease))
    if not path.parent.is_dir():
        raise storage.fail("path", f"{str(path)!r}: folder {str(path.parent)!r} does not exist")
    return StorageSettings(path=path)


def _postgres_url(storage: _Reader, url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError as exc:
        raise storage.fail("url", f"{url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        shown = url if password is None else "postgresql://…"
        raise storage.fail("url", f'{shown!r} must start with "postgresql://" (e.g. postgresql://popup@db:5432/popup)')
    if password is not None:
        # Never echo it: the message goes to terminals and logs.
        host = parts.hostname or ""
        raise storage.fail(
            "url",
            f"holds a password (postgresql://{parts.username}:…@{host}…); keep it out of the file and set "
            "PGPASSWORD in the environment instead",
        )
    return url


def _engine(session: _Reader, plans: tuple[Plan, ...]) -> EngineSettings:
    timezone = session.get("timezone", str, "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise session.fail("timezone", f'{timezone!r} is not an IANA time zone such as "Europe/Amsterdam"') from None
    names = [p.name for p in plans]
    default_plan = session.get("default_plan", str, names[0] if names else "")
    if default_plan not in names:
        known = ", ".join(repr(n) for n in names) or "none"
        raise session.fail("default_plan", f"{default_plan!r} is not a configured plan (plans: {known})")
    organisers = _organisers(session)
    grace_text = session.get("late_grace", str, "15m")
    try:
        grace = parse_time(grace_text if grace_text.startswith("+") else f"+{grace_text}")
    except ValueError as exc:
        raise session.fail("late_grace", str(exc)) from None
    assert isinstance(grace, Offset)
    return EngineSettings(
        default_plan=default_plan,
        timezone=timezone,
        organisers=organisers,
        late_grace=timedelta(seconds=grace.seconds),
    )


def _organisers(session: _Reader) -> tuple[Organiser, ...]:
    organisers: list[Organiser] = []
    for index, who in enumerate(session.get("organisers", list, [])):
        organiser = parse_organiser(who) if isinstance(who, str) else None
        if organiser is None:
            raise session.fail(f"organisers[{index}]", f"{who!r} is not a platform-qualified id; use {ORGANISER_FORMS}")
        organisers.append(organiser)
    return tuple(organisers)


def _plans(root: _Reader) -> tuple[Plan, ...]:
    tables = root.get("plans", list, [])
    if not tables:
        raise root.fail("plans", "no [[plans]] configured; add at least one (see config.example.toml)")
    plans: list[Plan] = []
    for index, table in enumerate(tables):
        where = f"plans[{index}]"
        if not isinstance(table, dict):
            raise root.fail(where, "expected a [[plans]] table")
        plan = _Reader(root.source, table, where)
        name = plan.get("name", str, required=True).strip()
        if not name or any(ch.isspace() for ch in name):
            raise plan.fail("name", f"{name!r} must be one word (it is typed after /popup start)")
        if name in {p.name for p in plans}:
            raise plan.fail("name", f"{name!r} is used by two plans")
        prompts = []
        prompt_tables = plan.get("prompts", list, [])
        for p_index, p_table in enumerate(prompt_tables):
            if not isinstance(p_table, dict):
                raise plan.fail(f"prompts[{p_index}]", "expected a [[plans.prompts]] table")
            prompt = _Reader(root.source, p_table, f"{where}.prompts[{p_index}]")
            prompts.append(PromptSpec(at=_time(prompt, "at"), text=prompt.get("text", str, required=True)))
        built = Plan(
            name=name,
            title=plan.get("title", str, name),
            intro=plan.get("intro", str, ""),
            recap_at=_time(plan, "recap_at"),
            prompts=tuple(prompts),
            anonymous=plan.get("anonymous", bool, False),
            pulse_at=_time(plan, "pulse_at") if "pulse_at" in plan.table else None,
        )
        try:
            validate_plan(built)
        except PlanError as exc:
            raise ConfigError(f"{root.source}: {exc}") from None
        plans.append(built)
    return tuple(plans)


def _circles(root: _Reader) -> tuple[Circle, ...]:
    circles: list[Circle] = []
    for index, table in enumerate(root.get("circles", list, [])):
        where = f"circles[{index}]"
        if not isinstance(table, dict):
            raise root.fail(where, "expected a [[circles]] table")
        circle = _Reader(root.source, table, where)
        name = circle.get("name", str, required=True).strip()
        if not name or any(ch.isspace() for ch in name):
            raise circle.fail("name", f"{name!r} must be one word (it is typed as circle:NAME)")
        if name in {c.name for c in circles}:
            raise circle.fail("name", f"{name!r} is used by two circles")
        refs = circle.get("channels", list, required=True)
        channels = []
        for c_index, ref in enumerate(refs):
            channel = parse_channel_ref(ref) if isinstance(ref, str) else None
            if channel is None:
                raise circle.fail(f"channels[{c_index}]", f"{ref!r} is not a channel ref; use {CHANNEL_REF_FORMS}")
            if channel not in channels:
                channels.append(channel)
        if not channels:
            raise circle.fail("channels", "is empty; list the channels the circle meets in")
        circles.append(Circle(name=name, channels=tuple(channels)))
    return tuple(circles)


def _time(table: _Reader, key: str) -> Any:
    value = table.get(key, str, required=True)
    try:
        return parse_time(value)
    except ValueError as exc:
        raise table.fail(key, str(exc)) from None


def _secret(env: Mapping[str, str], name: str, section: _Reader, *, prefix: str = "") -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"{section.source}: [{section.where}] is enabled but the environment variable {name} is not set"
        )
    if prefix and not value.startswith(prefix):
        # Say what it should look like, never what it is.
        raise ConfigError(
            f"{section.source}: [{section.where}]: {name} does not look right (it should start with {prefix!r})"
        )
    return value


def _slack(slack: _Reader, env: Mapping[str, str] | None) -> SlackSettings:
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
        bot_token=_secret(env, "SLACK_BOT_TOKEN", slack, prefix="xoxb-"),
        signing_secret=_secret(env, "SLACK_SIGNING_SECRET", slack)
        if mode == "http"
        else env.get("SLACK_SIGNING_SECRET", ""),
        app_token=_secret(env, "SLACK_APP_TOKEN", slack, prefix="xapp-") if mode == "socket" else "",
    )


def _discord(discord: _Reader, env: Mapping[str, str] | None) -> DiscordSettings:
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
        token=_secret(env, "DISCORD_TOKEN", discord) if enabled and env is not None else "",
        shard_ids=shard_ids,
        shard_count=shard_count,
    )


def _shards(discord: _Reader) -> tuple[tuple[int, ...], int]:
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


_STORY_KEYS = ("llm_base_url", "llm_model")


def _story(story: _Reader, env: Mapping[str, str]) -> StorySettings:
    for key in story.table:
        if key not in _STORY_KEYS:
            raise story.fail(key, f"is not a [story] key (the keys are {' and '.join(_STORY_KEYS)})")
    base = story.get("llm_base_url", str, "").strip()
    if base and not base.startswith(("http://", "https://")):
        raise story.fail("llm_base_url", f"{base!r} must be an http(s) URL, e.g. http://127.0.0.1:8080/v1")
    model = story.get("llm_model", str, "").strip()
    if base and not model:
        raise story.fail("llm_model", "is empty; name the model when llm_base_url is set")
    # The key is optional (a local server needs none); it is read only when a model is configured.
    key = env.get("POPUP_LLM_API_KEY", "").strip() if base else ""
    return StorySettings(llm_base_url=base.rstrip("/"), llm_model=model, api_key=key)


def _web(web: _Reader, env: Mapping[str, str] | None) -> WebSettings:
    enabled = web.get("enabled", bool, False)
    port = web.get("port", int, 8080)
    if not 0 <= port <= 65535:
        raise web.fail("port", f"{port} is not a TCP port")
    public_url = web.get("public_url", str, "").strip()
    if public_url and (not public_url.startswith(("http://", "https://")) or "?" in public_url or "#" in public_url):
        raise web.fail("public_url", f"{public_url!r} must be an http(s) URL without a query, e.g. https://popup.example.org")
    settings = WebSettings(enabled=enabled, host=web.get("host", str, "127.0.0.1"), port=port, public_url=public_url)
    if not enabled or env is None:
        return settings
    secret = _secret(env, WEB_SECRET_VARIABLE, web)
    if len(secret) < 16:
        # Say what it should be, never what it is.
        raise ConfigError(
            f"{web.source}: [web]: {WEB_SECRET_VARIABLE} is too short (at least 16 characters; "
            "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return dataclasses.replace(settings, secret=secret)


# A plain addr-spec (local@domain): enough to tell a typo from an address; the mail server judges the rest.
_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
# A list's name travels inside Message-IDs and after "/popup invite email:": one plain word.
_LIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def _email(email: _Reader, env: Mapping[str, str] | None) -> EmailSettings:
    enabled = email.get("enabled", bool, False)
    defaults = EmailSettings()

    def address(reader: _Reader, key: str, default: str, *, required: bool) -> str:
        value = str(reader.get(key, str, default, required=required)).strip()
        if not _ADDRESS.fullmatch(value):
            raise reader.fail(key, f"{value!r} is not an e-mail address (name@example.org)")
        return value

    def port(key: str, default: int) -> int:
        value = email.get(key, int, default)
        if not 1 <= value <= 65535:
            raise email.fail(key, f"{value} is not a TCP port")
        return int(value)

    def tls(key: str, default: Tls) -> Tls:
        value = email.get(key, str, default)
        for form in TLS_FORMS:
            if value == form:
                return form
        raise email.fail(key, f'{value!r} must be "starttls", "tls" or "none"')

    def host(key: str, default: str) -> str:
        value = email.get(key, str, default).strip()
        if not value or any(ch.isspace() or ch in "/:@" for ch in value.strip("[]")):
            raise email.fail(key, f"{value!r} is not a host name or address")
        return str(value)

    folder = email.get("imap_folder", str, defaults.imap_folder)
    if not folder.strip() or any(ch in folder for ch in '\r\n"'):
        raise email.fail("imap_folder", f"{folder!r} is not a folder name")
    lists: list[MailingList] = []
    for index, table in enumerate(email.get("lists", list, [])):
        where = f"lists[{index}]"
        if not isinstance(table, dict):
            raise email.fail(where, "expected an [[email.lists]] table")
        entry = _Reader(email.source, table, email.key(where))
        name = entry.get("name", str, required=True).strip()
        if not _LIST_NAME.fullmatch(name):
            raise entry.fail("name", f"{name!r} must be one word of letters, digits, - or _ (it is typed after "
                                     "/popup invite email:)")
        if name.lower() in {item.name.lower() for item in lists}:
            raise entry.fail("name", f"{name!r} is used by two lists")
        lists.append(MailingList(name=name, address=address(entry, "address", "", required=True)))
    settings = EmailSettings(
        enabled=enabled,
        address=address(email, "address", defaults.address, required=enabled),
        smtp_host=host("smtp_host", defaults.smtp_host),
        smtp_port=port("smtp_port", defaults.smtp_port),
        smtp_tls=tls("smtp_tls", defaults.smtp_tls),
        imap_host=host("imap_host", defaults.imap_host),
        imap_port=port("imap_port", defaults.imap_port),
        imap_tls=tls("imap_tls", defaults.imap_tls),
        imap_folder=folder,
        lists=tuple(lists),
    )
    if enabled and not lists:
        raise email.fail("lists", "[email] is enabled but no [[email.lists]] is configured")
    if not enabled or env is None:
        return settings
    smtp_user = env.get("POPUP_SMTP_USER", "").strip()
    smtp_password = env.get("POPUP_SMTP_PASSWORD", "")
    if bool(smtp_user) != bool(smtp_password):
        missing = "POPUP_SMTP_PASSWORD" if smtp_user else "POPUP_SMTP_USER"
        raise ConfigError(f"{email.source}: [email]: POPUP_SMTP_USER and POPUP_SMTP_PASSWORD go together; {missing} "
                          "is not set (set neither for a server that takes mail without logging in)")
    return dataclasses.replace(
        settings,
        smtp_user=smtp_user,
        smtp_password=smtp_password,
        imap_user=_secret(env, "POPUP_IMAP_USER", email),
        imap_password=_secret(env, "POPUP_IMAP_PASSWORD", email),
    )
