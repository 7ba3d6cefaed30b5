"""Three ``popup run`` processes on one PostgreSQL database, one killed (SIGKILL) at random moments
of a Slack session and started again.

Slack in HTTP mode, each process on its own port, each signed event sent to any of them (as a load
balancer would) and sent again, to any, until one acknowledges it. Afterwards: every acknowledged
reply is stored once, every prompt and the recap are posted once in the channel, and no step went
out later than one lease time (plus the machine's slack) after it was due: a killed holder's work
is taken over by another process when its lease runs out, not when it comes back.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import asyncpg
import pytest

from tests.config_files import plan, slack_for, write_config
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender, command_form
from tests.faults.figures import FIGURES
from tests.faults.test_kill_restart_slack import CHANNEL, MEMBERS, Members, _keys
from tests.postgres import new_database
from tests.process import PopupProcess, free_port, popup_command
from tests.support import eventually

PROCESSES = 3
LEASE_SECONDS = 3
# A ceiling for a loaded 2-core machine on top of the lease: starting a step, a slow request.
SLACK_SECONDS = 5.0
# chat.postMessage calls (1-based) answered 429; their poster is killed while it waits.
HELD_POSTS = (3, 6)
RETRY_AFTER = 2

CLUSTER_DAY = plan("cluster", "+14s", *((f"+{at}s", f"Prompt at {at}s?") for at in (3, 6, 9, 11)), title="Cluster day")


def _post_calls(fake: FakeSlack) -> int:
    return sum(1 for call in fake.calls if call.method == "chat.postMessage")


async def _holder_pid(url: str) -> int | None:
    """The process holding the session's lease (its holder is ``host:pid:token``), if any."""
    rows = await _rows(url, "SELECT holder FROM session_leases")
    return int(str(rows[0]["holder"]).split(":")[1]) if rows else None


async def _rows(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


@pytest.mark.e2e
@pytest.mark.slow
async def test_three_processes_on_one_database_survive_kills(tmp_path: Path) -> None:
    seed = 17
    async with new_database() as url:
        fake = await FakeSlack(
            users={u: u.title() for u in [*MEMBERS, "UORG"]}, rate_limit_posts=set(HELD_POSTS), retry_after=RETRY_AFTER
        ).start()
        ports = [free_port() for _ in range(PROCESSES)]
        configs = [
            write_config(
                tmp_path,
                name=f"popup{n}.toml",
                storage={"url": url, "lease_seconds": LEASE_SECONDS},
                session={"organisers": ["slack:UORG"]},
                plans=[CLUSTER_DAY],
                slack=slack_for(fake, port),
            )
            for n, port in enumerate(ports)
        ]
        migrated = await popup_command("migrate", "--config", str(configs[0]))
        assert migrated.code == 0, migrated.err
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
        processes = [PopupProcess(config, env) for config in configs]
        chaos = random.Random(seed)
        kills = 0
        takeovers: list[float] = []  # seconds from killing a lease holder mid-post to the next post
        restarting = asyncio.Lock()  # one kill-and-restart at a time

        async def kill_and_restart(victim: PopupProcess) -> None:
            nonlocal kills
            async with restarting:
                await victim.kill()
                kills += 1
                await victim.start()

        async def kill_the_waiting_holders() -> None:
            """Kill the poster waiting out a 429; time how long the others take to post again."""
            nonlocal kills
            loop = asyncio.get_running_loop()
            for call in HELD_POSTS:
                await eventually(lambda: _post_calls(fake) >= call, within=40, what=f"post call {call}")  # noqa: B023
                async with restarting:
                    pid = await _holder_pid(url)
                    victims = [p for p in processes if p.running and p.proc is not None and p.proc.pid == pid]
                    if not victims:
                        continue
                    await victims[0].kill()
                    kills += 1
                    killed_at = loop.time()
                    await eventually(lambda: _post_calls(fake) > call, within=30, what="a takeover")  # noqa: B023
                    takeovers.append(loop.time() - killed_at)
                    await victims[0].start()

        try:
            await asyncio.gather(*(p.start() for p in processes))
            senders = [SlackSender(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET) for port in ports]
            for sender in senders:
                await sender.__aenter__()
            try:
                status, _ = await senders[chaos.randrange(PROCESSES)].command(
                    command_form(CHANNEL, "UORG", "start cluster", response_url=fake.response_url())
                )
                assert status == 200
                await eventually(lambda: any(k[0] == "opening" for k in _keys(fake)), within=20)
                members = Members(senders, fake, seed, pause=(0.02, 0.1), attempts=300)
                traffic = asyncio.create_task(members.run())
                holders = asyncio.create_task(kill_the_waiting_holders())
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 40
                while loop.time() < deadline and (kills < 4 or not any(k[0] == "recap" for k in _keys(fake))):
                    await asyncio.sleep(chaos.uniform(0.5, 2.5))
                    await kill_and_restart(processes[chaos.randrange(PROCESSES)])
                await eventually(lambda: any(k[0] == "recap" for k in _keys(fake)), within=20)
                await holders

                async def closed() -> bool:
                    return [tuple(r) for r in await _rows(url, "SELECT state FROM sessions")] == [("closed",)]

                await eventually(closed, within=20, what="the session closed")
                members.stop()
                await traffic
            finally:
                for sender in senders:
                    await sender.__aexit__(None, None, None)
            codes = await asyncio.gather(*(p.stop() for p in processes))
            assert codes == [0] * PROCESSES
        finally:
            for p in processes:
                if p.running:
                    await p.kill()
            await fake.stop()

        stored = [str(r["message_id"]) for r in await _rows(url, "SELECT message_id FROM replies")]
    keys = _keys(fake)
    lost = members.acked - set(stored)
    duplicates = sum(count - 1 for count in keys.values() if count > 1)
    recaps = keys[("recap", 0)]
    FIGURES.sessions += 1
    FIGURES.trials += kills
    FIGURES.replies_acked += len(members.acked)
    FIGURES.replies_lost += len(lost)
    FIGURES.duplicate_posts += duplicates
    FIGURES.recaps_missing += 0 if recaps else 1
    assert kills >= 4
    assert len(takeovers) == len(HELD_POSTS), takeovers  # the lease's takeover was put to the test
    assert len(members.acked) > 30
    assert lost == set()
    assert len(stored) == len(set(stored))  # each stored once
    assert duplicates == 0, keys
    assert recaps == 1
    assert {("opening", 0), ("prompt:1", 0), ("prompt:2", 0), ("prompt:3", 0), ("prompt:4", 0)} <= set(keys)
    # The lease runs out, the watcher's next look, the post: never the killed process's restart.
    assert max(takeovers) <= LEASE_SECONDS + SLACK_SECONDS, takeovers
