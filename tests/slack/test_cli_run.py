"""``popup run --config F`` with ``[slack] mode = "http"`` and ``api_base_url`` at a Slack-compatible
server (our fake): a whole session driven by signed requests, then a graceful SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.fakes import slack_events as ev
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender

pytestmark = pytest.mark.e2e

POPUP = Path(sys.executable).parent / "popup"
CHANNEL = "C0CLI"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(path: Path, fake: FakeSlack, port: int) -> Path:
    path.write_text(
        f"""
[storage]
path = "popup.db"

[session]
timezone = "UTC"
default_plan = "quick"
organisers = ["slack:U0ORG"]

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

[slack]
enabled = true
mode = "http"
host = "127.0.0.1"
port = {port}
path = "/slack/events"
api_base_url = "{fake.base_url.rstrip("/")}"
""",
        encoding="utf-8",
    )
    return path


async def collect(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while line := await stream.readline():
        lines.append(line.decode(errors="replace"))


async def eventually(predicate: object, *, within: float, what: str) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_popup_run_holds_a_whole_session_on_slack_over_http(fake: FakeSlack, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "popup.toml", fake, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))}
    env.update({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET})
    process = await asyncio.create_subprocess_exec(
        str(POPUP), "run", "--config", str(config), cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    reader = asyncio.create_task(collect(process.stderr, log))
    try:
        await eventually(lambda: any("popup is ready" in line for line in log), within=20, what="popup to be ready")
        async with SlackSender(f"http://127.0.0.1:{port}/slack/events") as slack:
            refused = await slack.command(ev.command_form(CHANNEL, "U0ORG", "start", response_url="x"), signed=False)
            assert refused[0] == 401
            # Not an organiser: politely refused, only to the asker.
            await slack.command(ev.command_form(CHANNEL, "U0MEMBER", "start", response_url=fake.response_url("no")))
            await fake.wait_for(lambda: len(fake.responses) == 1)
            assert fake.responses[0]["response_type"] == "ephemeral"
            assert "organisers" in fake.responses[0]["text"]
            status, _ = await slack.command(
                ev.command_form(CHANNEL, "U0ORG", "start", response_url=fake.response_url("yes"))
            )
            assert status == 200

            def prompts() -> list[str]:
                return [
                    m["ts"] for m in fake.posts(CHANNEL)
                    if "thread_ts" not in m and ":prompt:" in m["metadata"]["event_payload"]["key"]
                ]

            await eventually(lambda: len(prompts()) == 2, within=10, what="both prompts")
            await asyncio.sleep(0.2)  # let the engine record the second post before replying to it
            first, second = prompts()
            for thread, user, text in ((first, "U1", "Rust, slowly"), (second, "U2", "My team, every day")):
                body = ev.event_callback(ev.reply_event(CHANNEL, thread, user, text))
                assert (await slack.event(body))[0] == 200

        def recap() -> str:
            posts = [m for m in fake.posts(CHANNEL) if m["metadata"]["event_payload"]["key"].endswith(":recap")]
            return json.dumps([m["blocks"] for m in posts])

        await eventually(lambda: "My team, every day" in recap(), within=15, what="the recap")
        assert "Rust, slowly" in recap()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), timeout=20)
        await reader
    assert process.returncode == 0, "".join(log)
