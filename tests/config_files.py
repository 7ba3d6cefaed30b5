"""The one TOML config writer of the suite, and the tables the tests put in it.

``write_config(tmp_path, session={"organisers": ["slack:U0ORG"]}, slack=slack_for(fake, port))`` writes
a config that loads, with only what the test cares about spelled out (see docs/architecture.md
for what the keys mean).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_api import FakeSlack

Table = dict[str, object]


def plan(name: str, recap_at: str, *prompts: tuple[str, str], title: str = "", intro: str = "") -> Table:
    """One ``[[plans]]`` table; ``prompts`` are ``(at, text)`` pairs and the title is "A NAME day"."""
    table: Table = {"name": name, "title": title or f"A {name} day"}
    if intro:
        table["intro"] = intro
    table["recap_at"] = recap_at
    table["prompts"] = [{"at": at, "text": text} for at, text in prompts]
    return table


DAY = plan("day", "17:00", ("09:00", "First?"), ("12:00", "Second?"), title="A day")
QUICK = plan(
    "quick",
    "+1h",  # never reached: a test ends the day with /popup stop once it has seen what it needs
    ("+1s", "What are you learning this week?"),
    ("+2s", "Who helps you learn?"),
    title="A quick popup",
    intro="Two prompts a second apart, then the recap.",
)


def write_config(tmp_path: Path, *, name: str = "config.toml", raw: str = "", **sections: object) -> Path:
    """Write ``tmp_path/name`` and return its path.

    Each keyword is a top-level key: a table (dict) is merged over the default one of that name,
    anything else replaces it, and None leaves it out. The defaults are ``[storage] path =
    "popup.db"``, ``[session] timezone = "UTC"`` with the first plan as ``default_plan``, and
    :data:`DAY` as the only plan. ``raw`` is appended as it is (to write a file that is broken).
    """
    plans = sections.get("plans", [DAY])
    root: dict[str, object] = {
        "storage": {"path": "popup.db"},
        "session": {"timezone": "UTC"},
        "plans": plans,
    }
    if isinstance(plans, Sequence) and plans:
        first = plans[0]
        assert isinstance(first, Mapping)
        root["session"] = {"timezone": "UTC", "default_plan": first["name"]}
    for key, value in sections.items():
        default = root.get(key)
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            root[key] = {**default, **value}
        else:
            root[key] = value
    path = tmp_path / name
    path.write_text(_toml({k: v for k, v in root.items() if v is not None}) + raw, encoding="utf-8")
    return path


def discord_for(fake: FakeDiscord) -> Table:
    """``[discord]`` pointed at the fake Discord (the token goes in the environment)."""
    return {
        "enabled": True,
        "guild_ids": [str(fake.guild_id)],
        "api_base_url": fake.api_base_url,
        "gateway_url": fake.gateway_url,
    }


def slack_for(fake: FakeSlack, port: int) -> Table:
    """``[slack]`` in HTTP mode on ``port``, its Web API the fake Slack (tokens in the environment)."""
    return {
        "enabled": True,
        "mode": "http",
        "host": "127.0.0.1",
        "port": port,
        "path": "/slack/events",
        "api_base_url": fake.base_url.rstrip("/"),
    }


def _toml(root: Mapping[str, object]) -> str:
    lines: list[str] = []
    for key, value in root.items():
        if isinstance(value, Mapping):
            nested = {k: v for k, v in value.items() if _is_tables(v)}
            lines += ["", f"[{key}]", *_pairs({k: v for k, v in value.items() if k not in nested})]
            for sub, tables in nested.items():  # e.g. [[email.lists]] under [email]
                for table in tables:
                    lines += [f"  {line}" for line in _array_table(f"{key}.{sub}", table) if line]
        elif isinstance(value, Sequence) and not isinstance(value, str) and all(isinstance(v, Mapping) for v in value):
            for table in value:
                lines += _array_table(key, table)
        else:
            lines.insert(0, f"{key} = {_value(value)}")
    return "\n".join(lines) + "\n"


def _is_tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _array_table(key: str, table: Mapping[str, object]) -> list[str]:
    nested = {k: v for k, v in table.items() if isinstance(v, list) and v and isinstance(v[0], Mapping)}
    lines = ["", f"[[{key}]]", *_pairs({k: v for k, v in table.items() if k not in nested and v != []})]
    for sub, tables in nested.items():
        for item in tables:
            lines += [f"  {line}" for line in _array_table(f"{key}.{sub}", item) if line]
    return lines


def _pairs(table: Mapping[str, object]) -> list[str]:
    return [f"{key} = {_value(value)}" for key, value in table.items()]


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")
