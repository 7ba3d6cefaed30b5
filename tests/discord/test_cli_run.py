"""``popup run --config F`` with ``[discord]`` pointed at a Discord-compatible server (our fake):
a whole session from the slash command to the recap, then a graceful SIGINT; and the one-line
refusal when the message content intent is off."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.config_files import QUICK, discord_for, write_config
from tests.fakes.discord_server import FakeDiscord
from tests.process import SCRIPT, PopupProcess, stored_replies
from tests.support import eventually

pytestmark = pytest.mark.e2e


def popup_on(fake: FakeDiscord, tmp_path: Path) -> PopupProcess:
    config = write_config(
        tmp_path,
        name="popup.toml",
        session={"organisers": [f"discord:role:{fake.organiser_role_id}"]},
        plans=[QUICK],
        console={"enabled": False},
        discord=discord_for(fake),
    )
    return PopupProcess(config, {"DISCORD_TOKEN": fake.token}, program=SCRIPT)


async def test_popup_run_holds_a_whole_session_on_discord(fake: FakeDiscord, tmp_path: Path) -> None:
    popup = popup_on(fake, tmp_path)
    await popup.start()
    try:
        assert fake.connected
        start = await fake.invoke(fake.olga, "start")
        await eventually(lambda: bool(start.followups), what="the answer to /popup start")
        await eventually(lambda: len(fake.threads) == 2, what="both prompts")
        first, second = sorted(fake.threads)
        await fake.say(first, fake.max, "Rust, slowly")
        await fake.say(second, fake.olga, "My team, every day")
        await eventually(lambda: len(stored_replies(tmp_path / "popup.db")) == 2, what="both replies stored")
        await fake.invoke(fake.olga, "stop")
        await eventually(lambda: len(fake.bot_posts()) >= 4, what="the recap")
        recap = "\n".join(e.get("description", "") for e in fake.bot_posts()[-1]["embeds"])
        assert "Rust, slowly" in recap
        assert "My team, every day" in recap
    finally:
        code = await popup.stop(signal.SIGINT)
    assert code == 0, popup.stderr


async def test_popup_run_names_the_missing_intent_in_one_line(fake: FakeDiscord, tmp_path: Path) -> None:
    fake.refuse_intents = True
    popup = popup_on(fake, tmp_path)
    await popup.launch()
    assert await popup.wait() == 2
    lines = [line for line in popup.stderr.splitlines() if "Message Content Intent" in line]
    assert len(lines) == 1, popup.stderr
