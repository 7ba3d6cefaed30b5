"""Kill ``popup run`` (SIGKILL) at random moments of a Slack session and start it again.

The real process, Slack in HTTP mode, its Web API pointed at the fake Slack; members' replies
arrive as signed events and, like Slack, are sent again until acknowledged. Afterwards: every
acknowledged reply is stored, no post (opening, prompt, recap, any part) exists twice, and the
recap is posted exactly once.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender, command_form, event_callback, next_ts, reply_event
from tests.faults.figures import FIGURES
from tests.faults.process import PopupProcess, free_port, wait_closed

CHANNEL = "CFAULT"
MEMBERS = [f"UMEMBER{i}" for i in range(6)]

CONFIG = """
[storage]
path = "popup.db"
[session]
timezone = "UTC"
default_plan = "fault"
organisers = ["slack:UORG"]
[[plans]]
name = "fault"
title = "Fault day"
recap_at = "+{recap}s"
{prompts}
[slack]
enabled = true
mode = "http"
host = "127.0.0.1"
port = {port}
path = "/slack/events"
api_base_url = "{api}"
"""


def _config(tmp_path: Path, api: str, port: int, prompt_at: list[int], recap: int) -> Path:
    prompts = "\n".join(f'  [[plans.prompts]]\n  at = "+{at}s"\n  text = "Prompt at {at}s?"' for at in prompt_at)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(api=api, port=port, prompts=prompts, recap=recap), encoding="utf-8")
    return path


def _keys(fake: FakeSlack) -> Counter[tuple[str, int]]:
    keys: Counter[tuple[str, int]] = Counter()
    for message in fake.posts(CHANNEL):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if "key" in payload:
            keys[
                (
                    str(payload["key"]).rsplit(":", 2)[-2] + ":" + str(payload["key"]).rsplit(":", 1)[-1]
                    if ":prompt:" in str(payload["key"])
                    else str(payload["key"]).rsplit(":", 1)[-1],
                    int(payload.get("part", 0)),
                )
            ] += 1
    return keys


def _prompt_threads(fake: FakeSlack) -> list[str]:
    threads = []
    for message in fake.posts(CHANNEL):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if ":prompt:" in str(payload.get("key", "")) and payload.get("part", 0) == 0:
            threads.append(str(message["ts"]))
    return threads


class Members:
    """Replies into the newest prompt thread, each sent until the app acknowledges it (as Slack does)."""

    def __init__(self, sender: SlackSender, fake: FakeSlack, seed: int) -> None:
        self.sender = sender
        self.fake = fake
        self.random = random.Random(seed)
        self.acked: set[str] = set()
        self.unacked: set[str] = set()
        self._stop = asyncio.Event()

    async def run(self) -> None:
        tasks: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            threads = _prompt_threads(self.fake)
            if threads:
                task = asyncio.create_task(self._deliver(threads[-1]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(self.random.uniform(0.01, 0.08))
        await asyncio.gather(*tasks)

    async def _deliver(self, thread_ts: str) -> None:
        ts = next_ts()
        user = self.random.choice(MEMBERS)
        payload = event_callback(reply_event(CHANNEL, thread_ts, user, f"reply {ts} from {user} 👋", ts=ts))
        self.unacked.add(ts)
        for attempt in range(200):  # Slack gives up after 3 tries; we keep going, to make "lost" strict
            try:
                status, _ = await self.sender.event(payload, retry_num=attempt or None)
            except aiohttp.ClientError:
                status = 0
            if status == 200:
                self.unacked.discard(ts)
                self.acked.add(ts)
                return
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
async def test_kill_and_restart_through_a_slack_session(tmp_path: Path, seed: int) -> None:
    fake = await FakeSlack(users={u: u.title() for u in [*MEMBERS, "UORG"]}).start()
    port = free_port()
    config = _config(tmp_path, fake.base_url, port, prompt_at=[3, 6, 9, 12], recap=15)
    popup = PopupProcess(config, {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET})
    chaos = random.Random(seed)
    kills = 0
    try:
        await popup.start()
        async with SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET) as sender:
            status, _ = await sender.command(
                command_form(CHANNEL, "UORG", "start fault", response_url=fake.response_url())
            )
            assert status == 200
            await fake.wait_for(lambda: any(k[0] == "opening" for k in _keys(fake)))
            members = Members(sender, fake, seed)
            traffic = asyncio.create_task(members.run())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 25
            # Kill at random moments until the recap is out, then once more just after it.
            while loop.time() < deadline and not any(k[0] == "recap" for k in _keys(fake)):
                await asyncio.sleep(chaos.uniform(0.2, 1.6))
                await popup.kill()
                kills += 1
                await popup.start()
            await fake.wait_for(lambda: any(k[0] == "recap" for k in _keys(fake)), within=30)
            await popup.kill()
            kills += 1
            await popup.start()
            await wait_closed(tmp_path / "popup.db")
            members.stop()
            await traffic
        assert await popup.stop() == 0
    finally:
        if popup.running:
            await popup.kill()
        await fake.stop()

    with sqlite3.connect(tmp_path / "popup.db") as db:
        stored = {row[0] for row in db.execute("SELECT message_id FROM replies")}
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        states = db.execute("SELECT state FROM sessions").fetchall()
    keys = _keys(fake)
    lost = members.acked - stored
    duplicates = sum(count - 1 for count in keys.values() if count > 1)
    recaps = keys[("recap", 0)]
    FIGURES.sessions += 1
    FIGURES.trials += kills
    FIGURES.replies_acked += len(members.acked)
    FIGURES.replies_lost += len(lost)
    FIGURES.duplicate_posts += duplicates
    FIGURES.recaps_missing += 0 if recaps else 1
    assert kills >= 5
    assert len(members.acked) > 50
    assert lost == set()
    assert duplicates == 0, keys
    assert recaps == 1
    assert {("opening", 0), ("prompt:1", 0), ("prompt:2", 0), ("prompt:3", 0), ("prompt:4", 0)} <= set(keys)
    assert states == [("closed",)]
    # Secrets: never in the logs of any of the runs, nor in any export.
    assert BOT_TOKEN not in popup.stderr
    assert SIGNING_SECRET not in popup.stderr
    for fmt in ("md", "html", "json", "csv"):
        export = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "export",
            "1",
            "--config",
            str(config),
            "--format",
            fmt,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await export.communicate()
        assert export.returncode == 0, out
        assert BOT_TOKEN.encode() not in out
        assert SIGNING_SECRET.encode() not in out
