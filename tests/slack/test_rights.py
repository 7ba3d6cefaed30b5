"""Who may end or advance a session on Slack: the real engine and bolt app over signed HTTP, the
admin flags read from the fake Web API's ``users.info``, and the cache that remembers them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.adapter import SlackAdapter
from adapters.slack.client import NameCache, make_clients
from sessions.engine import Engine, EngineSettings
from sessions.model import Member
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.records import SessionState
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore
from tests.fakes import slack_events as ev
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.slack.conftest import http_settings
from tests.support import eventually

CHANNEL = "C0RIGHTS"
PLAN = Plan(
    name="slow",
    title="A slow day",
    intro="",
    recap_at=parse_time("+3h"),
    prompts=(PromptSpec(at=parse_time("+1h"), text="First?"), PromptSpec(at=parse_time("+2h"), text="Second?")),
)


@dataclass
class Channel:
    fake: FakeSlack
    store: SqliteStore
    slack: SlackSender
    asked: int = 0

    async def command(self, user: str, text: str) -> dict[str, Any]:
        """``/popup TEXT`` typed by ``user``; the answer Slack's response URL received."""
        self.asked += 1
        rid = f"r{self.asked}"
        form = ev.command_form(CHANNEL, user, text, response_url=self.fake.response_url(rid))
        assert (await self.slack.command(form))[0] == 200
        await eventually(lambda: len(self.fake.responses) == self.asked)
        return self.fake.responses[-1]

    async def states(self) -> list[SessionState]:
        return [s.state for s in sorted(await self.store.list_sessions(), key=lambda s: s.id)]


@pytest.fixture
async def channel(tmp_path: Path, fake: FakeSlack) -> AsyncIterator[Channel]:
    """A Slack channel served by a whole Popup with no organisers configured (the default)."""
    store = await SqliteStore.open(tmp_path / "popup.db")
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    engine = Engine(
        store=store,
        ports={"slack": adapter},
        plans=[PLAN],
        settings=EngineSettings(timezone="UTC", default_plan=PLAN.name),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    await adapter.start(engine)
    await engine.start()
    try:
        async with SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events") as slack:
            yield Channel(fake=fake, store=store, slack=slack)
    finally:
        await adapter.stop()
        await engine.stop()
        await store.close()


@pytest.mark.e2e
async def test_only_the_starter_or_a_workspace_admin_may_end_or_advance_a_session(channel: Channel) -> None:
    fake = channel.fake
    fake.users.update({"UANA": "Ana", "UBEN": "Ben", "UADA": "Ada", "UOLA": "Ola"})
    fake.admins.add("UADA")
    fake.owners.add("UOLA")
    assert (await channel.command("UANA", "start"))["text"].startswith("Started session #1")
    for word, what in (("stop", "stop it"), ("next", "post its next prompt"), ("cancel", "cancel it")):
        refused = await channel.command("UBEN", word)
        assert refused["response_type"] == "ephemeral"
        assert f"Only the member who started this session, or an admin, can {what}." in refused["text"]
    assert await channel.states() == [SessionState.RUNNING]
    assert len(fake.posts(CHANNEL)) == 1  # the opening only: no prompt was pushed out by Ben
    assert "Prompt 1 of 2 posted" in (await channel.command("UADA", "next"))["text"]  # an admin
    assert "closed; the recap is posted" in (await channel.command("UANA", "stop"))["text"]  # the starter

    assert (await channel.command("UBEN", "start"))["text"].startswith("Started session #2")
    assert "Only the member who started" in (await channel.command("UANA", "cancel"))["text"]
    assert "cancelled" in (await channel.command("UOLA", "cancel"))["text"]  # an owner
    assert await channel.states() == [SessionState.CLOSED, SessionState.CANCELLED]


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_users_info_admin_flags_are_cached_with_the_name_and_looked_up_again_once_stale(
    fake: FakeSlack,
) -> None:
    fake.users["UADA"] = "Ada"
    fake.admins.add("UADA")
    _, reader = make_clients(token=BOT_TOKEN, base_url=fake.base_url)
    ticks = Ticks()
    names = NameCache(reader, clock=ticks, rights_max_age=60.0)
    asking = Member(platform="slack", user_id="UADA", display_name="ada")
    assert await names.get("UADA") == "Ada"  # a reply's author: the name is looked up and kept
    ticks.now += 59
    assert await names.member(asking) == Member(platform="slack", user_id="UADA", display_name="Ada", is_admin=True)
    assert len(fake.calls_to("users.info")) == 1  # the same call served the name and the flags
    fake.admins.discard("UADA")  # demoted in the workspace
    ticks.now += 2
    assert (await names.member(asking)).is_admin is False  # rights are never older than a minute
    assert len(fake.calls_to("users.info")) == 2
    assert names.cached("UADA") == "Ada"


async def test_a_member_is_no_admin_when_users_info_cannot_be_asked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    _, reader = make_clients(token=BOT_TOKEN, base_url="http://127.0.0.1:9/api/")  # nothing listens
    reader.retry_handlers = []
    names = NameCache(reader)
    asking = Member(platform="slack", user_id="UADA", display_name="ada", is_admin=True)
    found = await asyncio.gather(names.member(asking), names.member(asking))
    assert [m.is_admin for m in found] == [False, False]  # fail closed: no unproven admin
    assert [m.display_name for m in found] == ["ada", "ada"]
    assert any("users.info for UADA failed" in r.getMessage() for r in caplog.records)
