"""Whole popup sessions: the real engine and SQLite store, the Discord adapter on a real
discord.Client, and the fake Discord gateway and REST API over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from adapters.discord.adapter import DiscordAdapter
from sessions.engine import Engine, EngineSettings
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.records import SessionRecord, SessionState
from sessions.rights import Organiser, OrganiserKind
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore
from tests.discord.conftest import make_adapter
from tests.fakes.discord_server import EPHEMERAL, FakeDiscord
from tests.support import eventually

pytestmark = pytest.mark.e2e

OFFSETS = Plan(
    name="offsets",
    title="Popup learning: how do we learn together?",
    intro="A short day of three questions.",
    recap_at=parse_time("+1h"),  # the tests end the day with /popup stop once they have seen what they need
    prompts=(
        PromptSpec(at=parse_time("+1s"), text="What did you learn this week?"),
        PromptSpec(at=parse_time("+2s"), text="Who did you learn it from?"),
    ),
)
LONG_DAY = Plan(
    name="long-day",
    title="A longer day",
    intro="Prompts now and later.",
    recap_at=parse_time("+1h"),
    prompts=(PromptSpec(at=parse_time("+1s"), text="First question"), PromptSpec(at=parse_time("+50m"), text="Later")),
)


@dataclass
class Bot:
    store: SqliteStore
    engine: Engine
    adapter: DiscordAdapter

    async def stop(self) -> None:
        await self.adapter.stop()
        await self.engine.stop()
        await self.store.close()


async def boot(fake: FakeDiscord, db: Path, plan: Plan, *, organisers: tuple[Organiser, ...] | None = None) -> Bot:
    """A bot whose organisers are, unless told otherwise, the fake's Organiser role (by id)."""
    if organisers is None:
        organisers = (Organiser(platform="discord", kind=OrganiserKind.ROLE, id=str(fake.organiser_role_id)),)
    store = await SqliteStore.open(db)
    adapter = make_adapter(fake, plan_names=[plan.name])
    engine = Engine(
        store=store,
        ports={"discord": adapter},
        plans=[plan],
        settings=EngineSettings(timezone="UTC", default_plan=plan.name, organisers=organisers),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    await adapter.start(engine)
    await engine.start()
    return Bot(store=store, engine=engine, adapter=adapter)


@pytest.fixture
async def bots(fake: FakeDiscord) -> AsyncIterator[list[Bot]]:
    running: list[Bot] = []
    yield running
    for bot in running:
        await bot.stop()


async def only_session(store: SqliteStore) -> SessionRecord:
    sessions = await store.list_sessions()
    assert len(sessions) == 1
    return sessions[0]


def thread_ids(fake: FakeDiscord) -> list[int]:
    return sorted(fake.threads)


def recap_text(fake: FakeDiscord) -> str:
    posts = fake.bot_posts()
    return "\n".join(f"{e.get('title', '')}\n{e.get('description', '')}" for m in posts for e in m["embeds"])


async def test_a_whole_session_from_slash_command_to_recap(fake: FakeDiscord, bots: list[Bot], tmp_path: Path) -> None:
    bot = await boot(fake, tmp_path / "popup.db", OFFSETS)
    bots.append(bot)
    fake.rate_limits = {2: True}  # the first prompt's create meets a global 429
    start = await fake.invoke(fake.olga, "start", {"plan": "offsets"})
    await eventually(lambda: bool(start.followups), what="the answer to /popup start")
    assert start.callbacks[0]["type"] == 5  # deferred within Discord's 3 s
    session = await only_session(bot.store)
    assert session.state in (SessionState.SCHEDULED, SessionState.RUNNING)

    await eventually(lambda: len(fake.threads) == 2, within=6, what="both prompts with their threads")
    first, second = thread_ids(fake)
    reply = await fake.say(first, fake.max, "I learned to ask for help @everyone")
    await fake.say(second, fake.olga, "From **Max**, mostly")
    await fake.react(first, reply["id"], fake.olga, "🎉")
    await eventually(partial(_stats, bot, session.id, (2, 2, 1)), what="both replies and the reaction stored")
    await fake.invoke(fake.olga, "stop")

    closed = await asyncio.wait_for(bot.engine.wait_closed(session.id), timeout=15)
    assert closed.state is SessionState.CLOSED
    stats = await bot.store.session_stats(session.id)
    assert (stats.replies, stats.participants, stats.reactions) == (2, 2, 1)

    posts = fake.bot_posts()
    titles = [m["embeds"][0].get("title", "") for m in posts]
    assert OFFSETS.title in titles[0]  # the opening message
    names = [fake.threads[t]["name"] for t in (first, second)]
    assert all(0 < len(name) <= 100 for name in names), names
    text = recap_text(fake)
    assert "I learned to ask for help @\u200beveryone" in text  # quoted, and it cannot ping
    assert "From \\*\\*Max\\*\\*, mostly" in text
    assert len(posts) == 4  # opening, two prompts (the 429 did not double one), recap
    creates = [c for c in fake.calls if c.method == "POST" and c.path == f"/channels/{fake.channel_id}/messages"]
    assert [c.status for c in creates] == [200, 429, 200, 200, 200]
    assert all(c.body["allowed_mentions"] == {"parse": []} for c in creates)
    assert creates[1].body["nonce"] == creates[2].body["nonce"]  # the retry is the same request


async def test_a_non_organisers_start_is_refused_privately(fake: FakeDiscord, bots: list[Bot], tmp_path: Path) -> None:
    bot = await boot(fake, tmp_path / "popup.db", OFFSETS)
    bots.append(bot)
    refused = await fake.invoke(fake.max, "start", {"plan": "offsets"})
    await eventually(lambda: bool(refused.followups), what="the refusal")
    (answer,) = refused.followups
    assert answer["flags"] & EPHEMERAL
    assert "organisers" in answer["content"]
    assert await bot.store.list_sessions() == []
    assert fake.bot_posts() == []


async def test_without_organisers_only_the_starter_or_a_server_admin_ends_a_session(
    fake: FakeDiscord, bots: list[Bot], tmp_path: Path
) -> None:
    bot = await boot(fake, tmp_path / "popup.db", LONG_DAY, organisers=())
    bots.append(bot)
    started = await fake.invoke(fake.max, "start", {"plan": "long-day"})  # anyone may start
    await eventually(lambda: bool(started.followups), what="the answer to /popup start")
    assert "Started session #1" in started.followups[0]["content"]
    # Olga has the role once named in organisers; without organisers it grants nothing.
    refused = await fake.invoke(fake.olga, "cancel")
    await eventually(lambda: bool(refused.followups), what="the refusal")
    (answer,) = refused.followups
    assert answer["flags"] & EPHEMERAL
    assert "Only the member who started this session, or an admin, can cancel it." in answer["content"]
    assert (await only_session(bot.store)).state is SessionState.RUNNING
    cancelled = await fake.invoke(fake.admin, "cancel")  # Manage Server
    await eventually(lambda: bool(cancelled.followups), what="the admin's cancel")
    assert "cancelled" in cancelled.followups[0]["content"]
    assert (await only_session(bot.store)).state is SessionState.CANCELLED


async def test_a_dropped_gateway_mid_session_loses_no_reply(fake: FakeDiscord, bots: list[Bot], tmp_path: Path) -> None:
    bot = await boot(fake, tmp_path / "popup.db", OFFSETS)
    bots.append(bot)
    await fake.invoke(fake.olga, "start")
    await eventually(lambda: len(fake.threads) >= 1, within=6, what="the first prompt")
    first = thread_ids(fake)[0]
    await fake.drop_connection()
    await fake.say(first, fake.max, "said while the gateway was down")
    await eventually(lambda: fake.connected and fake.resumes == 1, what="the RESUME")
    session = await only_session(bot.store)
    await eventually(partial(_replies, bot, session.id, 1), what="the reply replayed on RESUME stored")
    await fake.invoke(fake.olga, "stop")
    closed = await asyncio.wait_for(bot.engine.wait_closed(session.id), timeout=15)
    assert closed.state is SessionState.CLOSED
    assert (await bot.store.session_stats(session.id)).replies == 1
    assert "said while the gateway was down" in recap_text(fake)
    assert fake.identifies == 1


async def test_replies_posted_while_offline_are_backfilled_once(
    fake: FakeDiscord, bots: list[Bot], tmp_path: Path
) -> None:
    db = tmp_path / "popup.db"
    bot = await boot(fake, db, LONG_DAY)
    await fake.invoke(fake.olga, "start")
    await eventually(lambda: len(fake.threads) == 1, within=6, what="the first prompt")
    (thread,) = thread_ids(fake)
    await fake.say(thread, fake.max, "before the restart")
    session = await only_session(bot.store)
    await eventually(lambda: _replies(bot, session.id, 1), what="the live reply stored")
    await bot.stop()

    fake.say_offline(thread, fake.olga, "while the bot was down")
    fake.say_offline(thread, fake.max, "also while it was down")
    for _ in range(2):  # two restarts: the second back-fill finds nothing new
        restarted = await boot(fake, db, LONG_DAY)
        await eventually(partial(_replies, restarted, session.id, 3), what="the back-filled replies")
        await restarted.stop()
    bot = await boot(fake, db, LONG_DAY)
    bots.append(bot)
    await asyncio.sleep(0.3)  # let a (wrong) third copy land if it were going to
    assert (await bot.store.session_stats(session.id)).replies == 3
    assert fake.identifies == 4
    assert len(fake.threads) == 1
    assert len(fake.bot_posts()) == 2


async def _replies(bot: Bot, session_id: int, expected: int) -> bool:
    return (await bot.store.session_stats(session_id)).replies == expected


async def _stats(bot: Bot, session_id: int, expected: tuple[int, int, int]) -> bool:
    stats = await bot.store.session_stats(session_id)
    return (stats.replies, stats.participants, stats.reactions) == expected
