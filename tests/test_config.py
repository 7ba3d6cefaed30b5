"""Bad configuration: one clear line naming the key, exit 2, no secret echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config
from sessions.errors import ConfigError
from sessions.rights import Organiser, OrganiserKind

GOOD = """
[storage]
path = "popup.db"
[session]
timezone = "Europe/Amsterdam"
default_plan = "day"
[[plans]]
name = "day"
title = "A day"
recap_at = "17:00"
  [[plans.prompts]]
  at = "09:00"
  text = "First?"
  [[plans.prompts]]
  at = "12:00"
  text = "Second?"
[console]
enabled = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_example_config_loads() -> None:
    config = load_config(Path(__file__).parent.parent / "config.example.toml", env={})
    assert config.engine.default_plan == "learning-culture"
    assert config.console
    assert not config.slack.enabled
    assert not config.discord.enabled
    assert [p.name for p in config.plans] == ["learning-culture", "quick"]


def test_a_good_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), env={})
    assert config.storage_path == tmp_path / "popup.db"
    assert config.engine.timezone == "Europe/Amsterdam"
    assert config.engine.organisers == ()


BAD = [
    ("malformed toml", GOOD.replace('title = "A day"', 'title = "A day'), r"not valid TOML"),
    (
        "unknown default plan",
        GOOD.replace('default_plan = "day"', 'default_plan = "night"'),
        r"session\.default_plan: 'night' is not a configured plan",
    ),
    (
        "bad time",
        GOOD.replace('at = "09:00"', 'at = "25:99"'),
        r"plans\[0\]\.prompts\[0\]\.at: '25:99' is not a time of day",
    ),
    (
        "no prompts",
        GOOD.split("  [[plans.prompts]]")[0] + "[console]\nenabled = true\n",
        r"plan 'day': prompts is empty",
    ),
    (
        "recap before last prompt",
        GOOD.replace('recap_at = "17:00"', 'recap_at = "10:00"'),
        r"plan 'day': recap_at \(10:00\) must come after the last prompt \(12:00\)",
    ),
    (
        "missing folder",
        GOOD.replace('path = "popup.db"', 'path = "nowhere/popup.db"'),
        r"storage\.path: .*does not exist",
    ),
    ("bad zone", GOOD.replace("Europe/Amsterdam", "Mars/Olympus"), r"session\.timezone: 'Mars/Olympus' is not an IANA"),
    (
        "wrong type",
        GOOD.replace("enabled = true", 'enabled = "yes"'),
        r"console\.enabled: expected true or false, got 'yes'",
    ),
    ("no plans", "[console]\nenabled = true\n", r"plans: no \[\[plans\]\] configured"),
    ("slack without token", GOOD + "[slack]\nenabled = true\n", r"SLACK_BOT_TOKEN is not set"),
    ("discord without token", GOOD + "[discord]\nenabled = true\n", r"DISCORD_TOKEN is not set"),
    ("bad guild id", GOOD + '[discord]\nguild_ids = ["abc"]\n', r"discord\.guild_ids\[0\]: 'abc' is not a guild id"),
    ("bad slack mode", GOOD + '[slack]\nmode = "carrier-pigeon"\n', r"slack\.mode: 'carrier-pigeon'"),
    (
        "organiser by role name",
        GOOD.replace('default_plan = "day"', 'default_plan = "day"\norganisers = ["slack:U0ORG", "Organiser"]'),
        r"session\.organisers\[1\]: 'Organiser' is not a platform-qualified id; use \"slack:U123\" \(a Slack user\), "
        r"\"discord:123456\" \(a Discord user\), \"discord:role:123456\" \(a Discord role\) or \"console:NAME\"$",
    ),
    (
        "organiser on an unknown platform",
        GOOD.replace('default_plan = "day"', 'default_plan = "day"\norganisers = ["teams:U0ORG"]'),
        r"session\.organisers\[0\]: 'teams:U0ORG' is not a platform-qualified id; use \"slack:U123\"",
    ),
    (
        "organiser as a bare number",
        GOOD.replace('default_plan = "day"', 'default_plan = "day"\norganisers = [123456]'),
        r"session\.organisers\[0\]: 123456 is not a platform-qualified id; use \"slack:U123\"",
    ),
    (
        "discord role by name",
        GOOD.replace('default_plan = "day"', 'default_plan = "day"\norganisers = ["discord:role:Organiser"]'),
        r"session\.organisers\[0\]: 'discord:role:Organiser' is not a platform-qualified id",
    ),
]


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_configs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), env={})


def test_a_malformed_token_is_refused_without_being_echoed(tmp_path: Path) -> None:
    secret = "not-a-token-but-very-secret-123"
    text = GOOD + '[slack]\nenabled = true\nmode = "socket"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={"SLACK_BOT_TOKEN": secret, "SLACK_APP_TOKEN": "xapp-1"})
    assert "SLACK_BOT_TOKEN does not look right" in str(caught.value)
    assert secret not in str(caught.value)


def test_the_slack_base_url_gets_its_trailing_slash(tmp_path: Path) -> None:
    text = GOOD + '[slack]\napi_base_url = "http://127.0.0.1:9/api"\n'
    assert load_config(write(tmp_path, text), env={}).slack.api_base_url == "http://127.0.0.1:9/api/"


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    text = GOOD + "[discord]\nenabled = true\n"
    config = load_config(write(tmp_path, text), env={"DISCORD_TOKEN": "sekrit-token-value"})
    assert "sekrit-token-value" not in repr(config)
    assert config.secrets == ("sekrit-token-value",)


@pytest.mark.parametrize(("text", "message"), [(t, m) for _, t, m in BAD[:3]], ids=[n for n, _, _ in BAD[:3]])
def test_the_cli_exits_2_with_one_line(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, text)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("popup: error: ")
    import re

    assert re.search(message, lines[0])


def test_organisers_are_read_as_platform_qualified_ids(tmp_path: Path) -> None:
    forms = '["slack:U0ORG", "discord:80351110224678912", "discord:role:41771983423143936", "console:you"]'
    text = GOOD.replace('default_plan = "day"', f'default_plan = "day"\norganisers = {forms}')
    config = load_config(write(tmp_path, text), env={})
    assert config.engine.organisers == (
        Organiser(platform="slack", kind=OrganiserKind.USER, id="U0ORG"),
        Organiser(platform="discord", kind=OrganiserKind.USER, id="80351110224678912"),
        Organiser(platform="discord", kind=OrganiserKind.ROLE, id="41771983423143936"),
        Organiser(platform="console", kind=OrganiserKind.USER, id="you"),
    )


def test_the_cli_names_a_bad_organiser_in_one_line_and_exits_2(tmp_path: Path) -> None:
    config = write(tmp_path, GOOD.replace('default_plan = "day"', 'default_plan = "day"\norganisers = ["Organiser"]'))
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


def test_the_cli_refuses_bad_usage_with_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "export", "1"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2


def test_database_commands_read_the_config_without_secrets(tmp_path: Path) -> None:
    text = GOOD + "[slack]\nenabled = true\n[discord]\nenabled = true\n"
    with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN is not set"):
        load_config(write(tmp_path, text), env={})
    config = load_config(write(tmp_path, text), env={}, secrets=False)
    assert config.storage_path == tmp_path / "popup.db"
    assert config.secrets == ()


def test_a_postgresql_url_replaces_the_path(tmp_path: Path) -> None:
    text = GOOD.replace(
        'path = "popup.db"', 'path = "no/such/folder/popup.db"\nurl = "postgresql://popup@db:5432/popup"'
    )
    config = load_config(write(tmp_path, text), env={})
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
    path = write(tmp_path, GOOD.replace('path = "popup.db"', f'url = "{url}"'))
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
