"""``popup run --config F`` with ``[slack] mode = "http"`` and ``api_base_url`` at a Slack-compatible
server (our fake): a whole session driven by signed requests, then a graceful SIGINT."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.config_files import QUICK, slack_for, write_config
from tests.fakes import slack_events as ev
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender
from tests.process import SCRIPT, PopupProcess, free_port, posted_prompts, stored_replies
from tests.support import eventually

pytestmark = pytest.mark.e2e

CHANNEL = "C0CLI"


async def test_popup_run_holds_a_whole_session_on_slack_over_http(fake: FakeSlack, tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path,
        name="popup.toml",
        session={"organisers": ["slack:U0ORG"]},
        plans=[QUICK],
        console={"enabled": False},
        slack=slack_for(fake, port),
    )
    db = tmp_path / "popup.db"
    popup = PopupProcess(config, {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}, program=SCRIPT)
    await popup.start()
    try:
        async with SlackSender(f"http://127.0.0.1:{port}/slack/events") as slack:
            refused = await slack.command(ev.command_form(CHANNEL, "U0ORG", "start", response_url="x"), signed=False)
            assert refused[0] == 401
            # Not an organiser: politely refused, only to the asker.
            await slack.command(ev.command_form(CHANNEL, "U0MEMBER", "start", response_url=fake.response_url("no")))
            await eventually(lambda: len(fake.responses) == 1)
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

            await eventually(lambda: len(prompts()) == 2, what="both prompts")
            await eventually(lambda: posted_prompts(db) == 2, what="the engine to record both prompts")
            first, second = prompts()
            for thread, user, text in ((first, "U1", "Rust, slowly"), (second, "U2", "My team, every day")):
                body = ev.event_callback(ev.reply_event(CHANNEL, thread, user, text))
                assert (await slack.event(body))[0] == 200
            assert len(stored_replies(db)) == 2  # acknowledged only once stored
            await slack.command(ev.command_form(CHANNEL, "U0ORG", "stop", response_url=fake.response_url("stop")))

        def recap() -> str:
            posts = [m for m in fake.posts(CHANNEL) if m["metadata"]["event_payload"]["key"].endswith(":recap")]
            return json.dumps([m["blocks"] for m in posts])

        await eventually(lambda: "My team, every day" in recap(), what="the recap")
        assert "Rust, slowly" in recap()
    finally:
        code = await popup.stop(signal.SIGINT)
    assert code == 0, popup.stderr
