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
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest

from tests.config_files import plan, slack_for, write_config
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender, command_form, event_callback, next_ts, reply_event
from tests.faults.figures import FIGURES
from tests.process import PopupProcess, free_port, popup_command, wait_closed
from tests.support import eventually

CHANNEL = "CFAULT"
MEMBERS = [f"UMEMBER{i}" for i in range(6)]

FAULT_DAY = plan("fault", "+15s", *((f"+{at}s", f"Prompt at {at}s?") for at in (3, 6, 9, 12)), title="Fault day")


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

    def __init__(
        self,
        senders: Sequence[SlackSender],
        fake: FakeSlack,
        seed: int,
        *,
        pause: tuple[float, float] = (0.01, 0.08),
        attempts: int = 200,
    ) -> None:
        """Each reply goes to one of ``senders`` (several: processes behind a load balancer), again
        until one acknowledges it, at most ``attempts`` times; a new reply every ``pause`` seconds."""
        self.senders = list(senders)
        self.fake = fake
        self.random = random.Random(seed)
        self.pause = pause
        self.attempts = attempts
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
            await asyncio.sleep(self.random.uniform(*self.pause))
        await asyncio.gather(*tasks)

    async def _deliver(self, thread_ts: str) -> None:
        ts = next_ts()
        user = self.random.choice(MEMBERS)
        payload = event_callback(reply_event(CHANNEL, thread_ts, user, f"reply {ts} from {user} 👋", ts=ts))
        self.unacked.add(ts)
        for attempt in range(self.attempts):  # Slack gives up after 3 tries; we keep going, to make "lost" strict
            sender = self.senders[0] if len(self.senders) == 1 else self.random.choice(self.senders)
            try:
                status, _ = await sender.event(payload, retry_num=attempt or None)
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
    organisers = ["slack:UORG"]
    config = write_config(tmp_path, session={"organisers": organisers}, plans=[FAULT_DAY], slack=slack_for(fake, port))
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
            await eventually(lambda: any(k[0] == "opening" for k in _keys(fake)))
            members = Members([sender], fake, seed)
            traffic = asyncio.create_task(members.run())
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            # Kill at random moments until the recap is out, and at least five times (on a slow
            # machine, restarts take longer and fewer of them fit before the recap); then once
            # more just after it.
            while loop.time() < deadline and (kills < 5 or not any(k[0] == "recap" for k in _keys(fake))):
                await asyncio.sleep(chaos.uniform(0.2, 1.6))
                await popup.kill()
                kills += 1
                await popup.start()
            await eventually(lambda: any(k[0] == "recap" for k in _keys(fake)), within=30)
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
        export = await popup_command("export", "1", "--config", str(config), "--format", fmt)
        assert export.code == 0, export.err
        for secret in (BOT_TOKEN, SIGNING_SECRET):
            assert secret not in export.out
            assert secret not in export.err
