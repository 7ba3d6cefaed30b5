"""``popup run --config F`` with ``[discord]`` pointed at a Discord-compatible server (our fake):
a whole session from the slash command to the recap, then a graceful SIGINT; and the one-line
refusal when the message content intent is off."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.discord.conftest import eventually
from tests.fakes.discord_server import FakeDiscord

pytestmark = pytest.mark.e2e

POPUP = Path(sys.executable).parent / "popup"


def write_config(path: Path, fake: FakeDiscord) -> Path:
    path.write_text(
        f"""
[storage]
path = "popup.db"

[session]
timezone = "UTC"
default_plan = "quick"
organisers = ["discord:role:{fake.organiser_role_id}"]

[[plans]]
name = "quick"
title = "A quick popup"
intro = "Two prompts a second apart, then the recap."
recap_at = "+4s"
  [[plans.prompts]]
  at = "+1s"
  text = "What are you learning this week?"
  [[plans.prompts]]
  at = "+2s"
  text = "Who helps you learn?"

[console]
enabled = false

[discord]
enabled = true
guild_ids = ["{fake.guild_id}"]
api_base_url = "{fake.api_base_url}"
gateway_url = "{fake.gateway_url}"
""",
        encoding="utf-8",
    )
    return path


async def popup_run(config: Path, token: str) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))}
    env["DISCORD_TOKEN"] = token
    return await asyncio.create_subprocess_exec(
        str(POPUP),
        "run",
        "--config",
        str(config),
        cwd=config.parent,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_popup_run_holds_a_whole_session_on_discord(fake: FakeDiscord, tmp_path: Path) -> None:
    process = await popup_run(write_config(tmp_path / "popup.toml", fake), fake.token)
    assert process.stderr is not None
    log: list[str] = []
    reader = asyncio.create_task(collect(process.stderr, log))
    try:
        await eventually(lambda: any("popup is ready" in line for line in log), within=20, what="popup to be ready")
        assert fake.connected
        start = await fake.invoke(fake.olga, "start")
        await eventually(lambda: bool(start.followups), within=10, what="the answer to /popup start")
        await eventually(lambda: len(fake.threads) == 2, within=10, what="both prompts")
        first, second = sorted(fake.threads)
        await fake.say(first, fake.max, "Rust, slowly")
        await fake.say(second, fake.olga, "My team, every day")
        await eventually(lambda: len(fake.bot_posts()) >= 4, within=15, what="the recap")
        recap = "\n".join(e.get("description", "") for e in fake.bot_posts()[-1]["embeds"])
        assert "Rust, slowly" in recap
        assert "My team, every day" in recap
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.wait(), timeout=20)
        await reader
    assert process.returncode == 0, "\n".join(log)


async def collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace"))


async def test_popup_run_names_the_missing_intent_in_one_line(fake: FakeDiscord, tmp_path: Path) -> None:
    fake.refuse_intents = True
    process = await popup_run(write_config(tmp_path / "popup.toml", fake), fake.token)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    lines = [line for line in stderr.decode().splitlines() if "Message Content Intent" in line]
    assert len(lines) == 1, stderr.decode()
