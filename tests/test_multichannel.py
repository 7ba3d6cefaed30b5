"""One session across channels and platforms, on the real engine and a real SQLite file, on fake
time: join codes, leave, linked identities, the pulse, late replies, and one channel's outage
that holds no other (issue 13). Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sessions.channels import Circle
from sessions.engine import Engine, EngineSettings
from sessions.ledger import PER_PLATFORM
from sessions.model import ChannelRef, CommandInvoked, Member, Message, MessageRef, Posted, ReplyPosted
from sessions.plans import Plan, parse_time
from sessions.recap.exports import export
from sessions.records import SessionRecord, SessionState
from sessions.rights import Organiser, OrganiserKind
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests.fakes.clock import FakeClock
from tests.support import RecordingPort, eventually, member, offset_plan

SLACK = ChannelRef(platform="slack", channel_id="CLEARN")
DISCORD = ChannelRef(platform="discord", channel_id="987")
DISCORD_TOO = ChannelRef(platform="discord", channel_id="654")
ORG = member("org", "Olga", platform="slack", is_admin=True)
ADA_SLACK = member("UADA", "Ada", platform="slack")
ADA_DISCORD = member("111", "ada_d", platform="discord")
BOB = member("222", "Bob", platform="discord")
CODE = re.compile(r"/popup join ([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{5})")


@dataclass
class ChannelPort(RecordingPort):
    """A platform with several channels; ``down`` channels refuse every post (bot removed, archived)."""

    down: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    # The same key is posted in every channel: a platform finds a post in its own channel only.
    found: dict[tuple[ChannelRef, str], Posted] = field(default_factory=dict)

    def _post(self, channel: ChannelRef, content: Message, key: str, *, thread: bool) -> Posted:
        if channel.channel_id in self.down:
            raise ConnectionError(f"channel {channel.channel_id} is gone")
        posted = super()._post(channel, content, key, thread=thread)
        self.found[(channel, key)] = posted
        return posted

    async def find_post(self, channel: ChannelRef, key: str) -> Posted | None:
        self.find_calls += 1
        return self.found.get((channel, key))

    async def channel_name(self, channel: ChannelRef) -> str | None:
        return self.names.get(channel.channel_id)

    def keys(self, channel: ChannelRef) -> list[str]:
        return [marker.split(":", 3)[3] for posted_in, _, marker in self.posts if posted_in == channel]

    def content(self, channel: ChannelRef, key: str) -> Message:
        return next(c for posted_in, c, marker in self.posts if posted_in == channel and marker.endswith(":" + key))

    def thread(self, channel: ChannelRef, position: int) -> Any:
        for posted_in, _, marker in self.posts:
            if posted_in == channel and marker.endswith(f":prompt:{position}"):
                return self.found[(channel, marker)].thread
        raise AssertionError(f"prompt {position} not posted in {channel}")


@dataclass
class HeldPort(ChannelPort):
    """Holds every post until ``release`` is set, counting how many channels wait at once."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0
    most: int = 0

    async def post(self, channel: ChannelRef, content: Message, *, key: str) -> Posted:
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        try:
            await self.release.wait()
        finally:
            self.waiting -= 1
        return await super().post(channel, content, key=key)


@dataclass
class PacedPort(HeldPort):
    """A platform whose adapter paces the whole fan-out itself (as Discord's does)."""

    @property
    def parallel_channels(self) -> int:
        return 40


@dataclass
class Day:
    store: SqliteStore | PostgresStore
    engine: Engine
    slack: ChannelPort
    discord: ChannelPort
    clock: FakeClock
    said: int = 0

    async def command(self, channel: ChannelRef, name: str, *args: str, who: Member = ORG) -> str:
        invoked = CommandInvoked(channel=channel, member=who, name=name, args=args, at=self.clock.now())
        return (await self.engine.on_command(invoked)).text

    async def reply(self, channel: ChannelRef, position: int, text: str, who: Member) -> None:
        port = self.slack if channel.platform == "slack" else self.discord
        thread = port.thread(channel, position)
        self.said += 1
        # On Discord a reply lives in its thread (a channel of its own); on Slack in the channel.
        where = thread.channel
        if channel.platform == "discord":
            where = ChannelRef(platform="discord", channel_id=thread.thread_id)
        await self.engine.on_event(
            ReplyPosted(
                thread=thread,
                message=MessageRef(channel=where, message_id=f"m{self.said}"),
                author=who,
                text=text,
                at=self.clock.now(),
            )
        )

    async def closed(self) -> SessionRecord:
        async with asyncio.timeout(10):
            return await self.engine.wait_closed(1)

    async def close(self) -> None:
        await self.engine.stop()
        await self.store.close()


MakeDay = Callable[..., Awaitable[Day]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
async def day(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[MakeDay]:
    """Starts engines on one database with a Slack and a Discord port; a second one is a restart."""
    made: list[Day] = []
    url: str | None = request.getfixturevalue("postgres_url") if request.param == "postgres" else None

    async def open_store() -> SqliteStore | PostgresStore:
        return await SqliteStore.open(tmp_path / "db") if url is None else await PostgresStore.open(url)

    async def make(
        plans: list[Plan], *, slack: ChannelPort | None = None, discord: ChannelPort | None = None, **settings: Any
    ) -> Day:
        store = await open_store()
        slack = slack or ChannelPort(platform="slack", names={"CLEARN": "#learning"})
        discord = discord or ChannelPort(platform="discord", names={"987": "#general"})
        engine = Engine(
            store=store,
            ports={"slack": slack, "discord": discord},
            plans=plans,
            settings=EngineSettings(**{"default_plan": plans[0].name, "retry_delays": (1.0,), **settings}),
            wakeups=clock.wakeups(),
            clock=clock.now,
        )
        await engine.start()
        made.append(Day(store=store, engine=engine, slack=slack, discord=discord, clock=clock))
        return made[-1]

    yield make
    for each in made:
        await each.close()
    assert clock.failures == []


async def joined_then_down(day: MakeDay, clock: FakeClock, plan: Plan) -> Day:
    """A day started on Slack at its first prompt, #general on Discord joined, then gone (bot removed)."""
    started = await day([plan])
    code = join_code(await started.command(SLACK, "start"))
    await clock.advance(0)
    await started.command(DISCORD, "join", code, who=BOB)
    started.discord.down.add("987")
    return started


def join_code(answer: str) -> str:
    found = CODE.search(answer)
    assert found is not None, answer
    return found[1]


async def test_a_channel_on_another_platform_joins_and_gets_the_whole_day(day: MakeDay, clock: FakeClock) -> None:
    d = await day([offset_plan(prompts=("+0s", "+10s"), recap="+20s")])
    answer = await d.command(SLACK, "start")
    code = join_code(answer)
    assert f"/popup join {code}" in answer.splitlines()
    await clock.advance(0)
    assert d.slack.keys(SLACK) == ["opening", "prompt:1"]
    await d.reply(SLACK, 1, "From Slack", ADA_SLACK)

    joined = await d.command(DISCORD, "join", code.upper(), who=BOB)
    assert "joined session #1" in joined
    assert "#learning on Slack" in joined
    # At once: the opening and the prompt already out, so its members can answer them.
    assert d.discord.keys(DISCORD) == ["opening", "prompt:1"]
    await d.reply(DISCORD, 1, "From Discord", BOB)

    await clock.advance(10)
    assert d.slack.keys(SLACK)[-1] == d.discord.keys(DISCORD)[-1] == "prompt:2"
    await d.reply(DISCORD, 2, "Later, from Discord", BOB)
    await clock.advance(10)
    assert (await d.closed()).state is SessionState.CLOSED
    assert d.slack.keys(SLACK) == d.discord.keys(DISCORD) == ["opening", "prompt:1", "prompt:2", "recap"]

    recap = d.slack.content(SLACK, "recap").plain_text()
    assert recap == d.discord.content(DISCORD, "recap").plain_text()
    assert "2 people took part, with 3 replies" in recap
    assert "The day ran in 2 channels on Discord and Slack" in recap
    assert "#learning on Slack: 1 reply from 1 person" in recap
    assert "#general on Discord: 2 replies from 1 person" in recap
    assert "in #general on Discord" in recap  # where a quoted voice came from

    status = await d.command(DISCORD, "status", who=BOB)
    assert "Channels: 2 on Discord, Slack" in status
    assert "• #general on Discord: 2 replies from 1 person" in status

    out = io.StringIO()
    await export(d.store, (await d.store.get_session(1)) or pytest.fail("no session"), "json", out)
    data = json.loads(out.getvalue())
    assert sorted((r["platform"], r["text"]) for r in data["replies"]) == [
        ("discord", "From Discord"),
        ("discord", "Later, from Discord"),
        ("slack", "From Slack"),
    ]
    # Each reply's own channel: on Discord the prompt's thread (a channel there), on Slack the channel.
    assert {r["channel"] for r in data["replies"] if r["platform"] == "slack"} == {"CLEARN"}
    assert all(r["channel"].startswith("th") for r in data["replies"] if r["platform"] == "discord")
    assert [c["name"] for c in data["session"]["channels"]] == ["#learning", "#general"]


async def test_join_refusals_and_the_code_ends_with_the_session(day: MakeDay, clock: FakeClock) -> None:
    organiser = Organiser(platform="slack", kind=OrganiserKind.USER, id="org")
    d = await day([offset_plan(prompts=("+0s",), recap="+20s")], organisers=(organiser,))
    code = join_code(await d.command(SLACK, "start"))
    await clock.advance(0)
    assert "Only the session's organisers" in await d.command(DISCORD, "join", code, who=BOB)
    assert "not a Popup code" in await d.command(DISCORD, "join", "hello", who=ORG)
    assert "no running session" in await d.command(DISCORD, "join", "aaaa-bbbb-ccccc", who=ORG)
    assert "already in session #1" in await d.command(SLACK, "join", code, who=ORG)
    # A channel busy with a session of its own gets a clear refusal.
    assert "Started session #2" in await d.command(DISCORD_TOO, "start", who=ORG)
    refused = await d.command(DISCORD_TOO, "join", code, who=ORG)
    assert "already in session #2" in refused
    assert "still running" in refused
    assert d.discord.keys(DISCORD_TOO) == ["opening"]
    await d.command(SLACK, "stop", who=ORG)
    assert "no running session" in await d.command(DISCORD, "join", code, who=ORG)
    assert d.discord.keys(DISCORD) == []


async def test_leave_stops_the_posts_and_keeps_the_replies(day: MakeDay, clock: FakeClock) -> None:
    d = await day([offset_plan(prompts=("+0s", "+10s"), recap="+20s")])
    code = join_code(await d.command(SLACK, "start"))
    await clock.advance(0)
    await d.command(DISCORD, "join", code, who=BOB)
    await d.reply(DISCORD, 1, "Said before leaving", BOB)
    assert "cannot leave" in await d.command(SLACK, "leave")
    assert "Only the session's organisers" in await d.command(DISCORD, "leave", who=ADA_DISCORD)
    assert "left session #1" in await d.command(DISCORD, "leave", who=BOB)  # who brought it in
    await clock.advance(20)
    await d.closed()
    assert d.discord.keys(DISCORD) == ["opening", "prompt:1"]
    recap = d.slack.content(SLACK, "recap").plain_text()
    assert "1 person took part, with 1 reply" in recap
    assert "987 on Discord: 1 reply from 1 person (left early)" in recap


async def test_linked_identities_count_as_one_person(day: MakeDay, clock: FakeClock) -> None:
    d = await day([offset_plan(prompts=("+0s",), recap="+20s")])
    code = join_code(await d.command(SLACK, "start"))
    await clock.advance(0)
    await d.command(DISCORD, "join", code, who=BOB)
    await d.reply(SLACK, 1, "Ada on Slack", ADA_SLACK)
    await d.reply(DISCORD, 1, "Ada on Discord", ADA_DISCORD)
    await d.reply(DISCORD, 1, "Bob", BOB)
    answer = await d.command(SLACK, "link", who=ADA_SLACK)
    link = re.search(r"/popup link (\S+)", answer)
    assert link is not None
    assert "unknown, used or expired" in await d.command(DISCORD, "link", "aaaa-bbbb-ccccc", who=ADA_DISCORD)
    assert "Linked" in await d.command(DISCORD, "link", link[1], who=ADA_DISCORD)
    assert "unknown, used or expired" in await d.command(DISCORD, "link", link[1], who=BOB)  # one time
    await clock.advance(20)
    await d.closed()
    recap = d.slack.content(SLACK, "recap").plain_text()
    assert "2 people took part, with 3 replies" in recap
    assert "1 member linked their accounts across platforms" in recap
    assert "3 replies from 2 people" in recap  # the prompt counts Ada once as well


async def test_a_link_code_expires(day: MakeDay, clock: FakeClock) -> None:
    d = await day([offset_plan(prompts=("+0s",), recap="+2h")])
    answer = await d.command(SLACK, "link", who=ADA_SLACK)
    link = re.search(r"/popup link (\S+)", answer)
    assert link is not None
    await clock.advance(16 * 60)
    assert "expired" in await d.command(DISCORD, "link", link[1], who=ADA_DISCORD)


async def test_the_pulse_tells_each_channel_what_the_others_say_once(day: MakeDay, clock: FakeClock) -> None:
    d = await day([offset_plan(prompts=("+0s", "+30s"), recap="+60s", pulse_at=parse_time("+20s"))])
    code = join_code(await d.command(SLACK, "start"))
    await clock.advance(0)
    await d.command(DISCORD, "join", code, who=BOB)
    await d.reply(SLACK, 1, "A Slack thought", ADA_SLACK)
    await d.reply(DISCORD, 1, "A Discord thought", BOB)
    await clock.advance(20)
    assert d.slack.keys(SLACK)[-1] == d.discord.keys(DISCORD)[-1] == "pulse"
    to_slack = d.slack.content(SLACK, "pulse").plain_text()
    to_discord = d.discord.content(DISCORD, "pulse").plain_text()
    assert "A Discord thought — Bob (in #general on Discord)" in to_slack
    assert "A Slack thought" not in to_slack
    assert "A Slack thought — Ada (in #learning on Slack)" in to_discord
    assert "A Discord thought" not in to_discord
    assert "#learning on Slack: 1 reply from 1 person" in to_discord

    await d.close()  # a restart after the pulse posts it nowhere again
    plan = offset_plan(prompts=("+0s", "+30s"), recap="+60s", pulse_at=parse_time("+20s"))
    again = await day([plan], slack=d.slack, discord=d.discord)
    await clock.advance(40)
    await again.closed()
    assert d.slack.keys(SLACK).count("pulse") == d.discord.keys(DISCORD).count("pulse") == 1


async def test_an_anonymous_pulse_quotes_without_names(day: MakeDay, clock: FakeClock) -> None:
    d = await day([offset_plan(prompts=("+0s",), recap="+60s", pulse_at=parse_time("+20s"), anonymous=True)])
    code = join_code(await d.command(SLACK, "start"))
    await clock.advance(0)
    await d.command(DISCORD, "join", code, who=BOB)
    await d.reply(DISCORD, 1, "A Discord thought", BOB)
    await clock.advance(20)
    text = d.slack.content(SLACK, "pulse").plain_text()
    assert "> A Discord thought\n" in text + "\n"
    assert "Bob" not in text


async def test_a_late_reply_is_kept_and_marked_and_the_recap_is_not_posted_again(
    day: MakeDay, clock: FakeClock
) -> None:
    d = await day([offset_plan(prompts=("+0s",), recap="+10s")])
    await d.command(SLACK, "start")
    await clock.advance(0)
    await d.reply(SLACK, 1, "On time", ADA_SLACK)
    await clock.advance(10)
    await d.closed()
    await clock.advance(5)
    await d.reply(SLACK, 1, "After the recap", ADA_SLACK)
    await clock.advance(60)
    assert d.slack.keys(SLACK).count("recap") == 1
    session = await d.store.get_session(1)
    assert session is not None
    out = io.StringIO()
    await export(d.store, session, "json", out)
    late = {r["text"]: r["late"] for r in json.loads(out.getvalue())["replies"]}
    assert late == {"On time": False, "After the recap": True}
    article = io.StringIO()
    await export(d.store, session, "md", article)
    assert "late: after the recap" in article.getvalue()


async def test_one_channel_down_holds_no_other_and_catches_up_in_order(day: MakeDay, clock: FakeClock) -> None:
    discord = ChannelPort(platform="discord", names={"987": "#general"})
    d = await day([offset_plan(prompts=("+0s", "+10s"), recap="+20s")], discord=discord, retry_delays=(3.0,))
    code = join_code(await d.command(SLACK, "start"))
    await clock.advance(0)
    await d.command(DISCORD, "join", code, who=BOB)
    await d.command(DISCORD_TOO, "join", code, who=BOB)
    discord.down.add("987")  # the bot was removed from #general
    await clock.advance(10)
    # Prompt 2 went out at its time everywhere else; #general is behind and the organiser told once.
    assert d.slack.keys(SLACK) == ["opening", "prompt:1", "prompt:2", "notice:outage:discord:987"]
    assert d.discord.keys(DISCORD_TOO) == ["opening", "prompt:1", "prompt:2"]
    assert d.discord.keys(DISCORD) == ["opening", "prompt:1"]
    notice = d.slack.content(SLACK, "notice:outage:discord:987").plain_text()
    assert "#general on Discord" in notice
    await clock.advance(9)  # retries fail meanwhile; nothing is said again
    await clock.advance(1)
    await d.closed()
    assert d.slack.keys(SLACK)[-1] == "recap"
    assert d.discord.keys(DISCORD_TOO)[-1] == "recap"
    assert [k for k in d.slack.keys(SLACK) if k.startswith("notice")] == ["notice:outage:discord:987"]
    discord.down.clear()  # back: it gets what it missed, in the order the others got it
    await clock.advance(3)
    assert d.discord.keys(DISCORD) == ["opening", "prompt:1", "prompt:2", "recap"]
    for channel, port in ((SLACK, d.slack), (DISCORD, d.discord), (DISCORD_TOO, d.discord)):
        keys = port.keys(channel)
        assert len(keys) == len(set(keys)), keys


async def test_a_restart_posts_nothing_twice_in_any_channel_and_catches_up_the_one_behind(
    day: MakeDay, clock: FakeClock
) -> None:
    plan = offset_plan(prompts=("+0s", "+10s"), recap="+20s")
    first = await joined_then_down(day, clock, plan)
    await clock.advance(10)
    await first.close()
    first.discord.down.clear()
    second = await day([plan], slack=first.slack, discord=first.discord)
    await clock.advance(0)  # the resume catches #general up at once
    assert first.discord.keys(DISCORD) == ["opening", "prompt:1", "prompt:2"]
    await clock.advance(10)
    await second.closed()
    assert first.slack.keys(SLACK) == ["opening", "prompt:1", "prompt:2", "notice:outage:discord:987", "recap"]
    assert first.discord.keys(DISCORD) == ["opening", "prompt:1", "prompt:2", "recap"]


async def test_a_circle_starts_in_all_its_channels_at_once(day: MakeDay, clock: FakeClock) -> None:
    elsewhere = ChannelRef(platform="teams", channel_id="T1")
    circle = Circle(name="amsterdam", channels=(SLACK, DISCORD, DISCORD_TOO, elsewhere))
    d = await day([offset_plan(prompts=("+0s",), recap="+10s")], circles=(circle,))
    assert "Started session #1" in await d.command(DISCORD_TOO, "start", who=ORG)
    answer = await d.command(SLACK, "start", "circle:amsterdam")
    assert "Started session #2" in answer
    assert "Already busy with another session: 654 on Discord" in answer
    assert "Not started (Popup does not run there): T1 on teams" in answer
    assert "There is no circle" in await d.command(SLACK, "start", "circle:nowhere")
    await clock.advance(10)
    assert d.slack.keys(SLACK) == ["opening", "prompt:1", "recap"]
    assert d.discord.keys(DISCORD) == ["opening", "prompt:1", "recap"]
    session = await d.store.get_session(2)
    assert session is not None
    assert session.channels == (SLACK, DISCORD)


async def test_a_day_in_many_channels_lists_the_busiest_and_counts_the_rest(day: MakeDay, clock: FakeClock) -> None:
    many = tuple(ChannelRef(platform="discord", channel_id=str(500 + n)) for n in range(12))
    d = await day([offset_plan(prompts=("+0s",), recap="+10s")], circles=(Circle(name="all", channels=(SLACK, *many)),))
    assert "Started session #1" in await d.command(SLACK, "start", "circle:all")
    await clock.advance(0)
    await d.reply(many[-1], 1, "From the last channel", BOB)  # 13th in the day's order, busiest
    await clock.advance(10)
    recap = d.slack.content(SLACK, "recap").plain_text()
    assert "The day ran in 13 channels" in recap
    assert "511 on Discord: 1 reply from 1 person" in recap
    assert "…and 3 more channels with 0 replies between them; the article names every channel." in recap
    listed = [line for line in recap.splitlines() if ": 0 replies from 0 people" in line]
    assert len(listed) == 9  # ten lines: the busy channel and the first nine of the others
    assert "510 on Discord" not in recap.split("Channels", 1)[1]


@pytest.mark.parametrize("paced", [False, True], ids=["ledger-bound", "port-paced"])
async def test_a_port_that_paces_itself_gets_its_whole_fan_out_at_once(
    day: MakeDay, clock: FakeClock, paced: bool
) -> None:
    many = tuple(ChannelRef(platform="discord", channel_id=str(700 + n)) for n in range(30))
    discord = PacedPort(platform="discord") if paced else HeldPort(platform="discord")
    circle = Circle(name="all", channels=many)
    d = await day([offset_plan(prompts=("+60s",), recap="+120s")], discord=discord, circles=(circle,))
    start = asyncio.create_task(d.command(many[0], "start", "circle:all"))
    expected = 30 if paced else PER_PLATFORM
    await eventually(lambda: discord.waiting == expected, what=f"{expected} channels waiting")
    discord.release.set()
    assert "Started session #1" in await start
    assert discord.most == expected
    assert sorted(c.channel_id for c, _, _ in discord.posts) == sorted(c.channel_id for c in many)


async def test_a_channel_still_without_the_recap_gets_it_after_a_restart(day: MakeDay, clock: FakeClock) -> None:
    plan = offset_plan(prompts=("+0s",), recap="+10s")
    first = await joined_then_down(day, clock, plan)
    await clock.advance(10)
    assert (await first.closed()).state is SessionState.CLOSED
    assert first.discord.keys(DISCORD) == ["opening", "prompt:1"]
    await first.close()  # its catch-up wake-ups go with it
    first.discord.down.clear()
    second = await day([plan], slack=first.slack, discord=first.discord)
    await clock.advance(1)
    assert second.discord.keys(DISCORD) == ["opening", "prompt:1", "recap"]
    assert second.slack.keys(SLACK).count("recap") == 1
    assert {p.channel for p in await second.store.posts(1) if p.key == "recap" and p.posted} == {SLACK, DISCORD}
    await clock.advance(3600)
    assert second.discord.keys(DISCORD) == ["opening", "prompt:1", "recap"]
