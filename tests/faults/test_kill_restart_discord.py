"""Kill ``popup run`` (SIGKILL) at random moments of a Discord session and start it again.

The real process and discord.py client against the fake gateway and REST API. Discord does not
wait for acknowledgements, so the bar is higher than for Slack: every member message in a prompt
thread before the recap must be stored, whether it came live or by back-fill after a restart.
No bot message (by its footer marker and part) may exist twice, and there is one recap.
"""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.config_files import discord_for, plan, write_config
from tests.fakes.discord_server import FakeDiscord
from tests.faults.figures import FIGURES
from tests.process import PopupProcess, wait_closed
from tests.support import eventually

_MARKER = re.compile(r"Popup · ref ([0-9a-f]{16})(?: · (\d+)/(\d+))?")

FAULT_DAY = plan("fault", "+15s", *((f"+{at}s", f"Prompt at {at}s?") for at in (3, 6, 9, 12)), title="Fault day")


def _footer(message: dict[str, Any]) -> tuple[str, int] | None:
    for embed in message.get("embeds") or []:
        found = _MARKER.search(str((embed.get("footer") or {}).get("text", "")))
        if found:
            return found[1], int(found[2] or 1)
    found = _MARKER.search(str(message.get("content") or ""))
    return (found[1], int(found[2] or 1)) if found else None


def _is_recap(message: dict[str, Any]) -> bool:
    return any(str(e.get("title", "")).startswith("Recap") for e in message.get("embeds") or [])


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("seed", [3])
async def test_kill_and_restart_through_a_discord_session(tmp_path: Path, seed: int) -> None:
    fake = FakeDiscord()
    await fake.start()
    organisers = [f"discord:role:{fake.organiser_role_id}"]
    config = write_config(tmp_path, session={"organisers": organisers}, plans=[FAULT_DAY], discord=discord_for(fake))
    popup = PopupProcess(config, {"DISCORD_TOKEN": fake.token})
    chaos = random.Random(seed)
    members = [fake.olga, fake.max, fake.admin]
    said: list[int] = []
    kills = 0
    stop_talking = asyncio.Event()

    async def talk() -> None:
        talker = random.Random(seed)
        while not stop_talking.is_set():
            if fake.threads and not any(_is_recap(m) for m in fake.bot_posts()):
                thread_id = max(fake.threads)
                message = await fake.say(thread_id, talker.choice(members), f"reply {len(said)} 👋")
                said.append(int(message["id"]))
            await asyncio.sleep(talker.uniform(0.02, 0.1))

    try:
        await popup.start()
        start = await fake.invoke(fake.olga, "start")
        await eventually(lambda: bool(start.followups), what="the answer to /popup start")
        traffic = asyncio.create_task(talk())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        # Kill at random moments until the recap is out, and at least five times (on a slow
        # machine, restarts take longer and fewer of them fit before the recap).
        while loop.time() < deadline and (kills < 5 or not any(_is_recap(m) for m in fake.bot_posts())):
            await asyncio.sleep(chaos.uniform(0.3, 1.8))
            await popup.kill()
            kills += 1
            await popup.start()
        await wait_closed(tmp_path / "popup.db")
        stop_talking.set()
        await traffic
        await popup.kill()  # once more after the recap: nothing may be posted again
        kills += 1
        await popup.start()
        await asyncio.sleep(1.0)
        assert await popup.stop() == 0
    finally:
        if popup.running:
            await popup.kill()
        await fake.close()

    posts = fake.bot_posts()
    recaps = [m for m in posts if _is_recap(m)]
    assert recaps, popup.stderr[-3000:]
    recap_id = int(recaps[0]["id"])
    expected = {m for m in said if m < recap_id}  # snowflakes are time-ordered
    with sqlite3.connect(tmp_path / "popup.db") as db:
        stored = {int(row[0]) for row in db.execute("SELECT message_id FROM replies")}
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    markers = Counter(marker for m in posts if (marker := _footer(m)) is not None)
    duplicates = sum(count - 1 for count in markers.values() if count > 1)
    lost = expected - stored
    FIGURES.sessions += 1
    FIGURES.trials += kills
    FIGURES.replies_acked += len(expected)
    FIGURES.replies_lost += len(lost)
    FIGURES.duplicate_posts += duplicates
    FIGURES.recaps_missing += 0 if len(recaps) >= 1 else 1
    assert kills >= 5
    assert len(expected) > 30
    assert lost == set()
    assert duplicates == 0, markers
    assert len([m for m in recaps if (_footer(m) or ("", 1))[1] == 1]) == 1
    assert len(fake.threads) == 4
    assert fake.token not in popup.stderr
