"""Bad configuration: one clear line naming the key, exit 2, no secret echoed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config
from sessions.errors import ConfigError

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
        "story url not http",
        GOOD + '[story]\nllm_base_url = "ftp://127.0.0.1/v1"\nllm_model = "m"\n',
        r"story\.llm_base_url: 'ftp://127\.0\.0\.1/v1' must be an http\(s\) URL",
    ),
    (
        "story url without model",
        GOOD + '[story]\nllm_base_url = "http://127.0.0.1:8080/v1"\n',
        r"story\.llm_model: is empty",
    ),
    ("story model not text", GOOD + "[story]\nllm_model = 3\n", r"story\.llm_model: expected a string, got 3"),
    ("story unknown key", GOOD + '[story]\nllm_key = "x"\n', r"story\.llm_key: is not a \[story\] key"),
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


def test_the_story_writer_model_is_optional_and_its_key_secret(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD), env={}).story.llm_base_url == ""
    text = GOOD + '[story]\nllm_base_url = "http://127.0.0.1:8080/v1/"\nllm_model = "tiny"\n'
    config = load_config(write(tmp_path, text), env={"POPUP_LLM_API_KEY": "sk-very-secret"})
    assert (config.story.llm_base_url, config.story.llm_model) == ("http://127.0.0.1:8080/v1", "tiny")
    assert config.story.api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(config)
    assert "sk-very-secret" in config.secrets  # so the log redactor hides it


@pytest.mark.parametrize("bad", ["story url not http", "story url without model"])
def test_a_bad_story_key_exits_2_naming_it(tmp_path: Path, bad: str) -> None:
    text, message = next((t, m) for n, t, m in BAD if n == bad)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(write(tmp_path, text))],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    import re

    assert re.search(message, result.stderr.strip().splitlines()[-1])
