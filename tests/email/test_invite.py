"""``/popup invite email:NAME`` on the real engine and a real SQLite file, on fake time: a list joins
the way a channel joins (``Store.attach_channel``, then ``Engine.channel_joined``), and is refused
clearly. The mail servers are left out here (tests/email/test_adapter.py has them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessions.engine import Engine, EngineSettings
from sessions.model import ChannelRef, CommandInvoked, Member
from storage.sqlite import SqliteStore
from tests.fakes.clock import FakeClock
from tests.support import RecordingPort, member, offset_plan

HERE = ChannelRef(platform="fake", channel_id="C1")
THERE = ChannelRef(platform="fake", channel_id="C2")
LEARNING = ChannelRef(platform="email", channel_id="learning")
ORG = member("org", "Olga", is_admin=True)
ADDRESSES = {"learning": "learning@lists.example.org", "makers": "makers@lists.example.org"}


@dataclass
class ListsPort(RecordingPort):
    """The e-mail adapter's side the engine sees: posts, and the configured lists by name and address."""

    platform: str = "email"

    def channel_names(self) -> tuple[str, ...]:
        return tuple(ADDRESSES)

    async def channel_name(self, channel: ChannelRef) -> str | None:
        return ADDRESSES.get(channel.channel_id)

    def keys(self, channel: ChannelRef) -> list[str]:
        return [marker.split(":", 3)[3] for posted_in, _, marker in self.posts if posted_in == channel]


@dataclass
class Bot:
    store: SqliteStore
    engine: Engine
    chat: RecordingPort
    lists: ListsPort
    clock: FakeClock

    async def say(self, line: str, *, where: ChannelRef = HERE, who: Member = ORG) -> str:
        name, *args = line.split()
        invoked = CommandInvoked(channel=where, member=who, name=name, args=tuple(args), at=self.clock.now())
        return (await self.engine.on_command(invoked)).text


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    clock = FakeClock()
    store = await SqliteStore.open(tmp_path / "popup.db")
    chat, lists = RecordingPort(), ListsPort()
    engine = Engine(
        store=store,
        ports={"fake": chat, "email": lists},
        plans=[offset_plan(prompts=("+0s", "+10s"), recap="+20s")],
        settings=EngineSettings(default_plan="p", retry_delays=(1.0,)),
        wakeups=clock.wakeups(),
        clock=clock.now,
    )
    await engine.start()
    yield Bot(store=store, engine=engine, chat=chat, lists=lists, clock=clock)
    await engine.stop()
    await store.close()
    assert clock.failures == []


async def test_an_invited_list_is_caught_up_then_gets_the_rest_of_the_day(bot: Bot) -> None:
    assert (await bot.say("start")).startswith("Started session #1")
    await bot.clock.advance(0)
    answer = await bot.say("invite email:Learning")  # list names match in any case
    assert answer == (
        "Invited the list learning to session #1: it has the opening and the prompts so far, and gets the rest "
        "at their times and the recap by mail."
    )
    assert bot.lists.keys(LEARNING) == ["opening", "prompt:1"]
    [_, joined] = await bot.store.session_channels(1)
    assert (joined.channel, joined.name, joined.joined_by) == (LEARNING, "learning@lists.example.org", "fake:org")
    assert await bot.say("invite email:learning") == "The list learning is already in session #1 “Plan p”."
    await bot.clock.advance(20)
    assert bot.lists.keys(LEARNING) == ["opening", "prompt:1", "prompt:2", "recap"]
    assert bot.chat.sent() == ["opening", "prompt:1", "prompt:2", "recap"]


async def test_a_list_the_mail_server_refuses_for_now_is_caught_up_later(bot: Bot) -> None:
    await bot.say("start")
    await bot.clock.advance(0)
    bot.lists.fail_next = 1
    answer = await bot.say("invite email:learning")
    assert "the mail server did not take every mail yet" in answer
    await bot.clock.advance(1)
    assert bot.lists.keys(LEARNING) == ["opening", "prompt:1"]


async def test_invite_refusals_say_why(bot: Bot) -> None:
    assert "No popup session is running in this channel" in await bot.say("invite email:learning")
    await bot.say("start")
    assert "Usage: /popup invite email:NAME" in await bot.say("invite")
    assert "I can invite mailing lists" in await bot.say("invite slack:C0123")
    assert "no email channel 'nowhere' (configured: learning, makers)" in await bot.say("invite email:nowhere")
    ada = member("ada", "Ada")
    assert "can invite a mailing list to it" in await bot.say("invite email:learning", who=ada)
    # A list in another running session is refused until that session ends.
    await bot.say("invite email:learning")
    await bot.say("start", where=THERE)
    refused = await bot.say("invite email:learning", where=THERE)
    assert refused == "The list learning is already in session #1 “Plan p”, which is still running."
    assert [c.channel for c in await bot.store.session_channels(2)] == [THERE]
    await bot.say("stop")
    assert (await bot.say("invite email:learning", where=THERE)).startswith("Invited the list learning to session #2")
    assert bot.lists.keys(LEARNING)[-1] == "opening"  # session 2's, after session 1's recap


async def test_without_the_email_adapter_there_is_no_list_to_invite(tmp_path: Path) -> None:
    clock = FakeClock()
    store = await SqliteStore.open(tmp_path / "popup.db")
    engine = Engine(
        store=store, ports={"fake": RecordingPort()}, plans=[offset_plan()], settings=EngineSettings(default_plan="p"),
        wakeups=clock.wakeups(), clock=clock.now,
    )
    await engine.start()
    try:
        bot = Bot(store=store, engine=engine, chat=RecordingPort(), lists=ListsPort(), clock=clock)
        await bot.say("start")
        assert "Popup has no mailing lists here" in await bot.say("invite email:learning")
        assert len(await store.session_channels(1)) == 1
    finally:
        await engine.stop()
        await store.close()


async def test_a_list_is_taken_out_by_name_from_a_channel_of_its_session(bot: Bot) -> None:
    await bot.say("start")
    await bot.clock.advance(0)
    assert "The list learning is not in session #1" in await bot.say("leave email:learning")
    await bot.say("invite email:learning")
    assert "Usage: /popup leave email:NAME" in await bot.say("leave email:learning email:makers")
    assert "I can leave mailing lists" in await bot.say("leave discord:123")
    assert "whoever brought this channel in" in await bot.say("leave email:learning", who=member("ada", "Ada"))
    answer = await bot.say("leave email:Learning")
    assert answer == (
        "The list learning left session #1 “Plan p”. Replies already given to it stay in it; nothing more of it "
        "is posted to it."
    )
    assert [c.channel for c in await bot.store.session_channels(1)] == [HERE]
    await bot.clock.advance(20)
    assert bot.lists.keys(LEARNING) == ["opening", "prompt:1"]  # nothing after it left
    assert bot.chat.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
