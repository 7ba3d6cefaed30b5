"""Three ``popup run`` processes on one PostgreSQL database, one killed (SIGKILL) at random moments
of a session on Slack and Discord and started again.

Slack in HTTP mode, each process on its own port, each signed event sent to any of them (as a load
balancer would) and sent again, to any, until one acknowledges it. Discord through the fake gateway,
each process one shard of three (``shard_ids = [n]``, ``shard_count = 3``), so only one of them
hears the guild: the session starts on Slack, the guild's channel joins it with ``/popup join
CODE``, and members answer in its prompt threads too. The process of the guild's shard is killed at
random like the others, and once more after the last prompt: the session is stopped from Slack while
it is down and it starts again only once the session is closed. What was said while it was away
reaches the database by its back-fill after the restart, also for the session that closed meanwhile.

Afterwards: every acknowledged Slack reply and every Discord message in a prompt thread before the
recap is stored once, every prompt and the recap are posted once in each channel (Slack by key,
Discord by footer marker), and no step went out later than one lease time (plus the machine's
slack) after it was due: a killed holder's work is taken over by another process when its lease
runs out, not when it comes back.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from tests.config_files import discord_for, plan, slack_for, write_config
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SIGNING_SECRET, SlackSender, command_form
from tests.faults.figures import FIGURES
from tests.faults.test_kill_restart_discord import _footer, _is_recap
from tests.faults.test_kill_restart_slack import CHANNEL, MEMBERS, Members, _keys
from tests.postgres import new_database
from tests.process import PopupProcess, free_port, popup_command
from tests.support import eventually

PROCESSES = 3
LEASE_SECONDS = 3
# A ceiling for a loaded 2-core machine on top of the lease: starting a step, a slow request.
SLACK_SECONDS = 5.0
# chat.postMessage calls (1-based) answered 429 (prompts 2 and 3); their poster is killed while it waits.
HELD_POSTS = (3, 5)
RETRY_AFTER = 2
RESUME_SETTLES = 3.0  # seconds after a restart is ready within which its resume's back-fill is done
# The process (and Discord shard) that hears the guild: the fake gives the guild an id on it.
GUILD_SHARD = 1
_JOIN = re.compile(r"/popup join ([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{5})")

# The recap comes by `/popup stop` once the last prompt is out (see the test), long before its time.
CLUSTER_DAY = plan("cluster", "+40s", *((f"+{at}s", f"Prompt at {at}s?") for at in (3, 6, 9, 11)), title="Cluster day")


def _post_calls(fake: FakeSlack) -> int:
    return sum(1 for call in fake.calls if call.method == "chat.postMessage")


async def _holder_pid(url: str) -> int | None:
    """The process holding the session's lease (its holder is ``host:pid:token``), if any."""
    rows = await _rows(url, "SELECT holder FROM session_leases")
    return int(str(rows[0]["holder"]).split(":")[1]) if rows else None


class DiscordMembers:
    """Members talking in the newest prompt thread of the Discord channel until its recap is out.

    Discord waits for no acknowledgement: what is said while the guild's shard is down is only in
    the channel's history (``away`` holds those messages: the back-fill after the restart must
    bring them in)."""

    def __init__(self, fake: FakeDiscord, seed: int) -> None:
        self.fake = fake
        self.random = random.Random(seed)
        self.said: list[int] = []
        self.away: set[int] = set()
        self.shard_down = False
        self._stop = asyncio.Event()

    async def run(self) -> None:
        fake = self.fake
        members = [fake.olga, fake.max, fake.admin]
        while not self._stop.is_set():
            if fake.threads and not any(_is_recap(m) for m in fake.bot_posts()):
                message = await fake.say(max(fake.threads), self.random.choice(members), f"reply {len(self.said)} 👋")
                self.said.append(int(message["id"]))
                if self.shard_down:
                    self.away.add(int(message["id"]))
            await asyncio.sleep(self.random.uniform(0.03, 0.12))

    def stop(self) -> None:
        self._stop.set()


def _discord_recapped(fake: FakeDiscord) -> bool:
    return any(_is_recap(m) for m in fake.bot_posts())


def _join_code(fake: FakeSlack) -> str | None:
    for response in fake.responses:
        found = _JOIN.search(str(response.get("text")))
        if found:
            return found[1]
    return None


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
        discord = FakeDiscord(guild_shard=(GUILD_SHARD, PROCESSES))
        await discord.start()
        ports = [free_port() for _ in range(PROCESSES)]
        configs = [
            write_config(
                tmp_path,
                name=f"popup{n}.toml",
                storage={"url": url, "lease_seconds": LEASE_SECONDS},
                session={"organisers": ["slack:UORG", f"discord:role:{discord.organiser_role_id}"]},
                plans=[CLUSTER_DAY],
                slack=slack_for(fake, port),
                discord={**discord_for(discord), "shard_ids": [n], "shard_count": PROCESSES},
                console={"enabled": False},
            )
            for n, port in enumerate(ports)
        ]
        migrated = await popup_command("migrate", "--config", str(configs[0]))
        assert migrated.code == 0, migrated.err
        env = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "DISCORD_TOKEN": discord.token}
        processes = [PopupProcess(config, env) for config in configs]
        guild_shard = processes[GUILD_SHARD]
        chaos = random.Random(seed)
        talkers = DiscordMembers(discord, seed)
        kills = 0
        shard_kills = 0  # of the process that hears the guild
        takeovers: list[float] = []  # seconds from killing a lease holder mid-post to the next post
        # Kills one at a time, none while a takeover is timed; restarts outside it (they are slower
        # than a retry-after, and the holder waiting one out is to be killed at once).
        killing = asyncio.Lock()
        down: set[PopupProcess] = set()  # killed, not ready again yet
        killed_at: dict[int, float] = {}  # pid -> when it was killed
        ready_at = 0.0  # when the latest restart was ready
        loop = asyncio.get_running_loop()

        async def kill(victim: PopupProcess) -> None:
            nonlocal kills, shard_kills
            assert victim.proc is not None
            down.add(victim)
            talkers.shard_down = guild_shard in down
            killed_at[victim.proc.pid] = loop.time()
            await victim.kill()
            kills += 1
            shard_kills += victim is guild_shard

        async def restart(victim: PopupProcess) -> None:
            nonlocal ready_at
            try:
                await victim.start()
                ready_at = loop.time()
            finally:
                down.discard(victim)
                talkers.shard_down = guild_shard in down

        async def kill_and_restart(victim: PopupProcess) -> None:
            async with killing:
                if victim in down:  # the holder killed mid-post, waiting for its takeover
                    return
                await kill(victim)
            await restart(victim)

        async def kill_the_waiting_holders() -> None:
            """Kill the poster waiting out a 429; time how long the others take to post again."""
            restarts = []  # in the background: the next held post may come before a slow restart is done
            for call in HELD_POSTS:
                await eventually(lambda: _post_calls(fake) >= call, within=40, what=f"post call {call}")  # noqa: B023
                victim = None
                async with killing:
                    pid = await _holder_pid(url)
                    if pid is None:
                        continue
                    if pid not in killed_at:  # else a random kill just got it: time that one
                        victims = [p for p in processes if p.proc is not None and p.proc.pid == pid]
                        if not victims:
                            continue
                        victim = victims[0]
                        await kill(victim)
                    await eventually(lambda: _post_calls(fake) > call, within=30, what="a takeover")  # noqa: B023
                    takeovers.append(loop.time() - killed_at[pid])
                if victim is not None:
                    restarts.append(asyncio.create_task(restart(victim)))
            await asyncio.gather(*restarts)

        def recapped() -> bool:
            return any(k[0] == "recap" for k in _keys(fake)) and _discord_recapped(discord)

        async def closed() -> bool:
            return [tuple(r) for r in await _rows(url, "SELECT state FROM sessions")] == [("closed",)]

        async def close_while_the_guilds_shard_is_down(senders: list[SlackSender]) -> list[int]:
            """Once the last prompt is out: kill the guild's shard, let members talk, stop the session
            from Slack; start the shard again only once the session is closed. What was said in
            between reaches no process live, and the restarted one finds no running session: only a
            back-fill of the session that closed while it was away brings it in."""
            await holders
            await eventually(lambda: len(discord.threads) == 4, within=30, what="the last prompt on Discord")
            async with killing:
                # Nor a restart under way or just done: a process starting back-fills the running
                # session (a few REST calls after "ready"), which would bring in what is said next.
                settled = lambda: not down and loop.time() - ready_at > RESUME_SETTLES  # noqa: E731
                await eventually(settled, within=30, what="every process up and resumed")
                await kill(guild_shard)
                first = len(talkers.said)
                await eventually(lambda: len(talkers.said) >= first + 5, within=10, what="talk while the shard is down")
                live = [sender for sender, p in zip(senders, processes, strict=True) if p not in down]
                stop = command_form(CHANNEL, "UORG", "stop", response_url=fake.response_url())
                assert (await live[0].command(stop))[0] == 200
                await eventually(recapped, within=30, what="the recap on both platforms")
                await eventually(closed, within=20, what="the session closed")
                across = talkers.said[first:]
            await restart(guild_shard)

            async def backfilled() -> bool:
                rows = await _rows(url, "SELECT message_id FROM replies WHERE platform = 'discord'")
                return {str(m) for m in across} <= {str(r["message_id"]) for r in rows}

            await eventually(backfilled, within=30, what="what was said across the recap, back-filled")
            return across

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
                await eventually(lambda: _join_code(fake) is not None, within=20, what="the join code")
                # The guild's channel joins from Discord: only its shard's process hears the command.
                joined = await discord.invoke(discord.olga, "join", {"code": _join_code(fake)})
                answered = lambda: any("joined session" in str(f.get("content")) for f in joined.followups)  # noqa: E731
                await eventually(answered, within=20, what="the answer to /popup join")
                await eventually(lambda: any(k[0] == "opening" for k in _keys(fake)), within=20)
                members = Members(senders, fake, seed, pause=(0.02, 0.1), attempts=300)
                traffic = asyncio.create_task(members.run())
                talking = asyncio.create_task(talkers.run())
                holders = asyncio.create_task(kill_the_waiting_holders())
                across_the_recap = asyncio.create_task(close_while_the_guilds_shard_is_down(senders))
                deadline = loop.time() + 40
                # The guild's shard first (once its first prompt thread is open), then any process.
                await eventually(lambda: bool(discord.threads), within=20, what="a prompt thread on Discord")
                victims = [guild_shard]
                while loop.time() < deadline and (kills < 4 or not recapped()):
                    await asyncio.sleep(chaos.uniform(0.5, 2.5))
                    await kill_and_restart(victims.pop() if victims else processes[chaos.randrange(PROCESSES)])
                await eventually(recapped, within=20, what="the recap on both platforms")
                await holders
                across = await across_the_recap
                await eventually(closed, within=20, what="the session closed")
                members.stop()
                talkers.stop()
                await traffic
                await talking
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
            await discord.close()

        rows = await _rows(url, "SELECT platform, message_id FROM replies")
    stored = [(str(r["platform"]), str(r["message_id"])) for r in rows]
    keys = _keys(fake)
    posts = discord.bot_posts()
    discord_recaps = [m for m in posts if _is_recap(m) and (_footer(m) or ("", 1))[1] == 1]
    recap_id = int(discord_recaps[0]["id"]) if discord_recaps else 2**64
    said = {str(m) for m in talkers.said if m < recap_id}  # before the recap (snowflakes are time-ordered)
    footers = Counter(marker for m in posts if (marker := _footer(m)) is not None)
    lost = {("slack", ts) for ts in members.acked} | {("discord", m) for m in said}
    lost -= set(stored)
    duplicates = sum(count - 1 for count in [*keys.values(), *footers.values()] if count > 1)
    recaps = keys[("recap", 0)]
    FIGURES.sessions += 1
    FIGURES.trials += kills
    FIGURES.replies_acked += len(members.acked) + len(said)
    FIGURES.replies_lost += len(lost)
    FIGURES.duplicate_posts += duplicates
    FIGURES.recaps_missing += (0 if recaps else 1) + (0 if discord_recaps else 1)
    assert kills >= 4
    assert shard_kills >= 1
    assert len(takeovers) == len(HELD_POSTS), takeovers  # the lease's takeover was put to the test
    assert len(members.acked) > 30
    assert len(said) > 30
    assert {str(m) for m in talkers.away} & said, "nothing was said while the guild's shard was down"
    assert {str(m) for m in across} <= said  # said before the recap, while its shard was down
    assert lost == set(), sorted(lost)
    assert len(stored) == len(set(stored))  # each stored once
    assert duplicates == 0, (keys, footers)
    assert recaps == 1
    assert len(discord_recaps) == 1
    assert {("opening", 0), ("prompt:1", 0), ("prompt:2", 0), ("prompt:3", 0), ("prompt:4", 0)} <= set(keys)
    titles = [str(e.get("title", "")) for m in posts for e in (m.get("embeds") or [])[:1]]
    assert len([t for t in titles if t.startswith("Popup learning session")]) == 1, titles
    assert len([t for t in titles if t.startswith("Prompt ")]) == 4, titles
    assert len(discord.threads) == 4  # each prompt opened its thread once
    # The lease runs out, the watcher's next look, the post: never the killed process's restart.
    assert max(takeovers) <= LEASE_SECONDS + SLACK_SECONDS, takeovers
