"""The TOML configuration (docs/architecture.md §9) read into typed, frozen settings.

Every problem is a :class:`~sessions.errors.ConfigError` whose one line names the file, the key
and the offending value. Secrets come only from the environment and never appear in a message.
Each group of sections is read by a module of its own: :mod:`bot.config.database` (``[storage]``),
:mod:`bot.config.plans` (``[session]``, ``[[plans]]``, ``[[circles]]``), :mod:`bot.config.platforms`
(``[slack]``, ``[discord]``) and :mod:`bot.config.outlets` (``[web]``, ``[email]``, ``[story]``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.discord.settings import DiscordSettings
from adapters.email.settings import EmailSettings
from adapters.slack.settings import SlackSettings
from adapters.web.settings import WebSettings
from bot.config.database import read_storage
from bot.config.outlets import read_email, read_story, read_web
from bot.config.plans import read_circles, read_engine, read_plans
from bot.config.platforms import read_discord, read_slack
from bot.config.reader import Reader
from bot.prose_model import StorySettings
from sessions.engine import EngineSettings
from sessions.errors import ConfigError
from sessions.plans import Plan
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
            self.slack.client_secret,
            self.slack.token_key,
            self.discord.token,
            self.web.secret,
            self.email.smtp_password,
            self.email.imap_password,
            self.story.api_key,
        )
        return tuple(v for v in values if v)


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
    root = Reader(source, data, "")

    plans = read_plans(root)
    email = read_email(root.sub("email"), env if secrets else None)
    lists = tuple(item.name for item in email.lists) if email.enabled else ()
    engine = dataclasses.replace(read_engine(root.sub("session"), plans), circles=read_circles(root, lists))
    slack = read_slack(root.sub("slack"), env if secrets else None)
    web = read_web(root.sub("web"), env if secrets else None)
    if slack.enabled and slack.installs and slack.mode == "socket" and not web.enabled:
        raise root.sub("slack").fail(
            "client_id", 'the install pages need a web server: set [web] enabled = true, or [slack] mode = "http"'
        )
    return Config(
        source=source,
        storage=read_storage(root.sub("storage")),
        engine=engine,
        plans=plans,
        console=bool(root.sub("console").get("enabled", bool, False)),
        slack=slack,
        discord=read_discord(root.sub("discord"), env if secrets else None),
        web=web,
        email=email,
        story=read_story(root.sub("story"), env),
    )
