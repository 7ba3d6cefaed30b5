"""Bad configuration: one clear line naming the key, exit 2, no secret echoed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from sessions.errors import ConfigError
from sessions.rights import Organiser, OrganiserKind
from tests.config_files import DAY, plan, write_config
from tests.process import PopupProcess, popup_command

GOOD: dict[str, Any] = {"session": {"timezone": "Europe/Amsterdam"}, "console": {"enabled": True}}


def write(tmp_path: Path, **overrides: Any) -> Path:
    """The good config with ``overrides`` (one whole top-level key each; see write_config)."""
    return write_config(tmp_path, **{**GOOD, **overrides})


def test_the_example_config_loads() -> None:
    config = load_config(Path(__file__).parent.parent / "config.example.toml", env={})
    assert config.engine.default_plan == "learning-culture"
    assert config.console
    assert not config.slack.enabled
    assert not config.discord.enabled
    assert [p.name for p in config.plans] == ["learning-culture", "quick"]


def test_a_good_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path), env={})
    assert config.storage_path == tmp_path / "popup.db"
    assert config.engine.timezone == "Europe/Amsterdam"
    assert config.engine.organisers == ()


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("malformed toml", {"raw": 'title = "A day'}, r"not valid TOML"),
    (
        "unknown default plan",
        {"session": {"default_plan": "night"}},
        r"session\.default_plan: 'night' is not a configured plan",
    ),
    (
        "bad time",
        {"plans": [plan("day", "17:00", ("25:99", "First?"), ("12:00", "Second?"))]},
        r"plans\[0\]\.prompts\[0\]\.at: '25:99' is not a time of day",
    ),
    ("no prompts", {"plans": [plan("day", "17:00")]}, r"plan 'day': prompts is empty"),
    (
        "recap before last prompt",
        {"plans": [plan("day", "10:00", ("09:00", "First?"), ("12:00", "Second?"))]},
        r"plan 'day': recap_at \(10:00\) must come after the last prompt \(12:00\)",
    ),
    ("missing folder", {"storage": {"path": "nowhere/popup.db"}}, r"storage\.path: .*does not exist"),
    ("bad zone", {"session": {"timezone": "Mars/Olympus"}}, r"session\.timezone: 'Mars/Olympus' is not an IANA"),
    ("wrong type", {"console": {"enabled": "yes"}}, r"console\.enabled: expected true or false, got 'yes'"),
    ("no plans", {"storage": None, "session": None, "plans": None}, r"plans: no \[\[plans\]\] configured"),
    ("slack without token", {"slack": {"enabled": True}}, r"SLACK_BOT_TOKEN is not set"),
    ("discord without token", {"discord": {"enabled": True}}, r"DISCORD_TOKEN is not set"),
    ("bad guild id", {"discord": {"guild_ids": ["abc"]}}, r"discord\.guild_ids\[0\]: 'abc' is not a guild id"),
    (
        "shard out of range",
        {"discord": {"shard_ids": [2], "shard_count": 2}},
        r"discord\.shard_ids\[0\]: 2 is not a shard from 0 to shard_count - 1 \(2\)",
    ),
    ("shards without count", {"discord": {"shard_ids": [0]}}, r"discord\.shard_count: set it"),
    ("count without shards", {"discord": {"shard_count": 2}}, r"discord\.shard_ids: name the shards this process runs"),
    (
        "two shards in one process",
        {"discord": {"shard_ids": [0, 1], "shard_count": 4}},
        r"discord\.shard_ids: \[0, 1\]: a process runs one shard; start one popup run per shard",
    ),
    ("bad slack mode", {"slack": {"mode": "carrier-pigeon"}}, r"slack\.mode: 'carrier-pigeon'"),
    (
        "organiser by role name",
        {"session": {"organisers": ["slack:U0ORG", "Organiser"]}},
        r"session\.organisers\[1\]: 'Organiser' is not a platform-qualified id; use \"slack:U123\" \(a Slack user\), "
        r"\"discord:123456\" \(a Discord user\), \"discord:role:123456\" \(a Discord role\) or \"console:NAME\"$",
    ),
    (
        "organiser on an unknown platform",
        {"session": {"organisers": ["teams:U0ORG"]}},
        r"session\.organisers\[0\]: 'teams:U0ORG' is not a platform-qualified id; use \"slack:U123\"",
    ),
    (
        "organiser as a bare number",
        {"session": {"organisers": [123456]}},
        r"session\.organisers\[0\]: 123456 is not a platform-qualified id; use \"slack:U123\"",
    ),
    (
        "web without its secret",
        {"web": {"enabled": True}},
        r"\[web\] is enabled but the environment variable POPUP_WEB_SECRET is not set",
    ),
    ("web on a bad port", {"web": {"port": 70000}}, r"web\.port: 70000 is not a TCP port"),
    (
        "web public_url not http",
        {"web": {"public_url": "popup.example.org"}},
        r"web\.public_url: 'popup.example.org' must be an http\(s\) URL",
    ),
    (
        "discord role by name",
        {"session": {"organisers": ["discord:role:Organiser"]}},
        r"session\.organisers\[0\]: 'discord:role:Organiser' is not a platform-qualified id",
    ),
    (
        "story url not http",
        {"story": {"llm_base_url": "ftp://127.0.0.1/v1", "llm_model": "m"}},
        r"story\.llm_base_url: 'ftp://127\.0\.0\.1/v1' must be an http\(s\) URL",
    ),
    (
        "story url without model",
        {"story": {"llm_base_url": "http://127.0.0.1:8080/v1"}},
        r"story\.llm_model: is empty",
    ),
    ("story model not text", {"story": {"llm_model": 3}}, r"story\.llm_model: expected a string, got 3"),
    ("story unknown key", {"story": {"llm_key": "x"}}, r"story\.llm_key: is not a \[story\] key"),
]


@pytest.mark.parametrize(("overrides", "message"), [(o, m) for _, o, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_configs_name_the_problem(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, **overrides), env={})


def test_a_malformed_token_is_refused_without_being_echoed(tmp_path: Path) -> None:
    secret = "not-a-token-but-very-secret-123"
    path = write(tmp_path, slack={"enabled": True, "mode": "socket"})
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"SLACK_BOT_TOKEN": secret, "SLACK_APP_TOKEN": "xapp-1"})
    assert "SLACK_BOT_TOKEN does not look right" in str(caught.value)
    assert secret not in str(caught.value)


def test_the_slack_base_url_gets_its_trailing_slash(tmp_path: Path) -> None:
    config = write(tmp_path, slack={"api_base_url": "http://127.0.0.1:9/api"})
    assert load_config(config, env={}).slack.api_base_url == "http://127.0.0.1:9/api/"


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, discord={"enabled": True}), env={"DISCORD_TOKEN": "sekrit-token-value"})
    assert "sekrit-token-value" not in repr(config)
    assert config.secrets == ("sekrit-token-value",)


@pytest.mark.parametrize(("overrides", "message"), [(o, m) for _, o, m in BAD[:3]], ids=[n for n, _, _ in BAD[:3]])
async def test_the_cli_exits_2_with_one_line(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    popup = PopupProcess(write(tmp_path, **overrides))
    await popup.launch()
    assert await popup.wait() == 2
    lines = popup.stderr.strip().splitlines()
    assert len(lines) == 1, popup.stderr
    assert lines[0].startswith("popup: error: ")
    assert re.search(message, lines[0])


def test_organisers_are_read_as_platform_qualified_ids(tmp_path: Path) -> None:
    forms = '["slack:U0ORG", "discord:80351110224678912", "discord:role:41771983423143936", "console:you"]'
    config = load_config(write(tmp_path, session={"organisers": json.loads(forms)}), env={})
    assert config.engine.organisers == (
        Organiser(platform="slack", kind=OrganiserKind.USER, id="U0ORG"),
        Organiser(platform="discord", kind=OrganiserKind.USER, id="80351110224678912"),
        Organiser(platform="discord", kind=OrganiserKind.ROLE, id="41771983423143936"),
        Organiser(platform="console", kind=OrganiserKind.USER, id="you"),
    )


def test_the_cli_names_a_bad_organiser_in_one_line_and_exits_2(tmp_path: Path) -> None:
    config = write(tmp_path, session={"organisers": ["Organiser"]})
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "session.organisers[0]: 'Organiser' is not a platform-qualified id" in line
    assert '"discord:role:123456" (a Discord role)' in line


async def test_the_cli_refuses_bad_usage_with_2() -> None:
    assert (await popup_command("export", "1")).code == 2


def test_database_commands_read_the_config_without_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, slack={"enabled": True}, discord={"enabled": True})
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        load_config(path, env={})
    config = load_config(path, env={}, secrets=False)
    assert config.storage_path == tmp_path / "popup.db"
    assert config.secrets == ()


def test_the_web_side_reads_its_keys_and_secret(tmp_path: Path) -> None:
    web = {"enabled": True, "host": "0.0.0.0", "port": 8443, "public_url": "https://popup.example.org/"}
    config = load_config(write(tmp_path, web=web), env={"POPUP_WEB_SECRET": "a-long-enough-web-secret"})
    assert config.web.enabled
    assert config.web.port == 8443
    assert config.web.base_url == "https://popup.example.org"
    assert config.web.secure_cookies
    assert "a-long-enough-web-secret" not in repr(config)
    assert "a-long-enough-web-secret" in config.secrets
    plain = load_config(write(tmp_path, web={"port": 9000}), env={})
    assert plain.web.base_url == "http://127.0.0.1:9000"
    assert not plain.web.secure_cookies


def test_a_short_web_secret_is_refused_without_being_echoed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, web={"enabled": True}), env={"POPUP_WEB_SECRET": "short-s3cret"})
    assert "POPUP_WEB_SECRET is too short" in str(caught.value)
    assert "short-s3cret" not in str(caught.value)


async def test_popup_run_refuses_the_web_without_its_secret_and_exits_2(tmp_path: Path) -> None:
    popup = PopupProcess(write(tmp_path, web={"enabled": True}))
    popup.env.pop("POPUP_WEB_SECRET", None)  # a developer's own secret must not make the test pass
    await popup.launch()
    assert await popup.wait() == 2
    [line] = popup.stderr.strip().splitlines()
    assert "POPUP_WEB_SECRET is not set" in line


def test_a_postgresql_url_replaces_the_path(tmp_path: Path) -> None:
    storage = {"path": "no/such/folder/popup.db", "url": "postgresql://popup@db:5432/popup"}
    config = load_config(write(tmp_path, storage=storage), env={})
    assert config.storage.url == "postgresql://popup@db:5432/popup"
    assert config.storage.is_postgres
    assert config.storage.where == "postgresql://popup@db:5432/popup"  # the path's missing folder does not matter


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://popup@db/popup", r"storage\.url: 'mysql://popup@db/popup' must start with \"postgresql://\""),
        ("postgresql://popup:s3cret@db:5432/popup", r"storage\.url: holds a password .*PGPASSWORD"),
        ("postgres://:s3cret@db/popup", r"storage\.url: holds a password"),
    ],
)
def test_a_bad_postgresql_url_is_named_and_a_password_never_echoed(tmp_path: Path, url: str, message: str) -> None:
    path = write(tmp_path, storage={"url": url})
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(path, env={})
    assert "s3cret" not in str(caught.value)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sessions", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "storage.url" in result.stderr
    assert "s3cret" not in result.stderr


def test_the_story_writer_model_is_optional_and_its_key_secret(tmp_path: Path) -> None:
    assert load_config(write(tmp_path), env={}).story.llm_base_url == ""
    story = {"llm_base_url": "http://127.0.0.1:8080/v1/", "llm_model": "tiny"}
    config = load_config(write(tmp_path, story=story), env={"POPUP_LLM_API_KEY": "sk-very-secret"})
    assert (config.story.llm_base_url, config.story.llm_model) == ("http://127.0.0.1:8080/v1", "tiny")
    assert config.story.api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(config)
    assert "sk-very-secret" in config.secrets  # so the log redactor hides it


@pytest.mark.parametrize("bad", ["story url not http", "story url without model"])
def test_a_bad_story_key_exits_2_naming_it(tmp_path: Path, bad: str) -> None:
    overrides, message = next((o, m) for n, o, m in BAD if n == bad)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(write(tmp_path, **overrides))],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert re.search(message, result.stderr.strip().splitlines()[-1])


def test_pulse_at_and_circles_are_read() -> None:
    config = load_config(Path(__file__).parent.parent / "config.example.toml", env={})
    assert str(config.plans[0].pulse_at) == "13:00"
    amsterdam = {"name": "amsterdam", "channels": ["slack:C0123ABC", "discord:987654321", "console:here"]}
    with tempfile.TemporaryDirectory() as folder:
        loaded = load_config(write(Path(folder), plans=[{**DAY, "pulse_at": "+3h"}], circles=[amsterdam]), env={})
    assert str(loaded.plans[0].pulse_at) == "+3h"
    (circle,) = loaded.engine.circles
    assert circle.name == "amsterdam"
    assert [f"{c.platform}:{c.channel_id}" for c in circle.channels] == [
        "slack:C0123ABC",
        "discord:987654321",
        "console:here",
    ]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"name": "a", "channels": ["#learning"]}, "circles[0].channels[0]"),
        ({"name": "a", "channels": []}, "circles[0].channels"),
        ({"name": "two words", "channels": ["slack:C1234"]}, "circles[0].name"),
    ],
)
def test_bad_circles_name_the_key(tmp_path: Path, extra: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(write(tmp_path, circles=[extra]), env={})


def test_a_pulse_after_the_recap_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pulse_at"):
        load_config(write(tmp_path, plans=[{**DAY, "pulse_at": "18:00"}]), env={})


# -- Slack for many workspaces (OAuth installs) ----------------------------------------------------

INSTALLS = {"enabled": True, "mode": "http", "client_id": "1111.2222"}
INSTALL_ENV = {"SLACK_SIGNING_SECRET": "s", "SLACK_CLIENT_SECRET": "client-s3cret-value"}
FERNET_KEY = "q7_8ZwXwqVgQdKpP5m4lYqz5cJkVbRtg7i7xR6tq1rE="  # a well-formed key, for these tests only


def test_with_a_client_id_the_bot_token_is_optional_and_the_install_keys_are_read(tmp_path: Path) -> None:
    slack = {**INSTALLS, "scopes": ["commands", "chat:write"], "install_path": "/add", "redirect_path": "/back",
             "redirect_url": "https://popup.example.org/back"}
    config = load_config(write(tmp_path, slack=slack), env={**INSTALL_ENV, "POPUP_TOKEN_KEY": FERNET_KEY})
    assert config.slack.installs
    assert config.slack.bot_token == ""
    assert (config.slack.scopes, config.slack.install_path, config.slack.redirect_path) == (
        ("commands", "chat:write"), "/add", "/back"
    )
    assert config.slack.store_tokens == "encrypted"
    assert set(config.secrets) >= {"client-s3cret-value", FERNET_KEY}
    assert FERNET_KEY not in repr(config)
    assert "client-s3cret-value" not in repr(config)
    plain = load_config(write(tmp_path, slack={**INSTALLS, "store_tokens": "plain"}), env=INSTALL_ENV)
    assert (plain.slack.store_tokens, plain.slack.token_key) == ("plain", "")
    with_token = load_config(write(tmp_path, slack=INSTALLS), env={
        **INSTALL_ENV, "POPUP_TOKEN_KEY": FERNET_KEY, "SLACK_BOT_TOKEN": "xoxb-1"})
    assert with_token.slack.bot_token == "xoxb-1"  # that workspace keeps working beside the installs


INSTALLS_BAD = [
    ("no client secret", INSTALLS, {"POPUP_TOKEN_KEY": FERNET_KEY, "SLACK_SIGNING_SECRET": "s"},
     r"SLACK_CLIENT_SECRET is not set"),
    ("no token key", INSTALLS, INSTALL_ENV, r'POPUP_TOKEN_KEY is not: .*store_tokens = "plain"'),
    ("a bad token key", INSTALLS, {**INSTALL_ENV, "POPUP_TOKEN_KEY": f"{FERNET_KEY},not-a-key"},
     r"POPUP_TOKEN_KEY: key 2 is not a Fernet key"),
    ("store_tokens", {**INSTALLS, "store_tokens": "rot13"}, INSTALL_ENV, r'slack\.store_tokens: .*"plain"'),
    ("a path taken", {**INSTALLS, "install_path": "/slack/events"}, INSTALL_ENV, r"slack\.install_path: .* another"),
    ("a bad scope", {**INSTALLS, "scopes": ["chat:write,users:read"]}, INSTALL_ENV, r"slack\.scopes\[0\]"),
    ("socket mode without the web", {**INSTALLS, "mode": "socket"},
     {**INSTALL_ENV, "POPUP_TOKEN_KEY": FERNET_KEY, "SLACK_APP_TOKEN": "xapp-1"}, r"slack\.client_id: .*\[web\]"),
]


@pytest.mark.parametrize(("slack", "env", "message"), [c[1:] for c in INSTALLS_BAD], ids=[c[0] for c in INSTALLS_BAD])
def test_bad_install_settings_name_the_problem(tmp_path: Path, slack: dict[str, Any], env: dict[str, str],
                                               message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(write(tmp_path, slack=slack), env=env)
    assert "not-a-key" not in str(caught.value)


async def test_popup_run_without_the_token_key_exits_2_naming_it(tmp_path: Path) -> None:
    popup = PopupProcess(write(tmp_path, slack={**INSTALLS, "port": 0}), INSTALL_ENV)
    popup.env.pop("POPUP_TOKEN_KEY", None)  # a developer's own key must not make the test pass
    await popup.launch()
    assert await popup.wait() == 2
    [line] = popup.stderr.strip().splitlines()
    assert line.startswith("popup: error: ")
    assert "POPUP_TOKEN_KEY is not" in line
