"""Platform outages and rate-limit storms: prompts and the recap are delayed, never lost nor doubled,
and the bot keeps answering. The real adapters, engine and store against the fake platforms."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from adapters.base import Adapter
from sessions.engine import Engine, EngineSettings
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.records import PromptState, SessionState
from sessions.rights import Organiser, OrganiserKind
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore
from tests.discord.conftest import make_adapter
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender, command_form
from tests.slack.conftest import http_settings
from tests.support import eventually

pytestmark = [pytest.mark.e2e]

PLAN = Plan(
    name="storm",
    title="Stormy day",
    intro="",
    recap_at=parse_time("+4s"),
    prompts=(PromptSpec(at=parse_time("+1s"), text="First?"), PromptSpec(at=parse_time("+2s"), text="Second?")),
)
QUICK_RETRIES = (0.25, 0.5, 1.0)  # the production schedule (1 s … 60 s) compressed for the test


@asynccontextmanager
async def running(
    tmp_path: Path, adapter: Adapter, organisers: tuple[Organiser, ...] = ()
) -> AsyncIterator[Engine]:
    store = await SqliteStore.open(tmp_path / "popup.db")
    engine = Engine(
        store=store,
        ports={adapter.platform: adapter},
        plans=[PLAN],
        settings=EngineSettings(default_plan=PLAN.name, organisers=organisers, retry_delays=QUICK_RETRIES),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    await adapter.start(engine)
    await engine.start()
    try:
        yield engine
    finally:
        await engine.stop()
        await adapter.stop()
        await store.close()


async def _closed_as_planned(engine: Engine) -> None:
    async def stored() -> bool:  # commands are acknowledged before they are carried out
        return await engine._store.get_session(1) is not None

    await eventually(stored, what="the session stored")
    session = await asyncio.wait_for(engine.wait_closed(1), 30)
    assert session.state is SessionState.CLOSED
    prompts = await engine._store.prompts(1)
    assert [p.state for p in prompts] == [PromptState.POSTED, PromptState.POSTED]


async def _taken_up(engine: Engine, position: int) -> bool:
    """The prompt fell due and is being posted (not pending any more, not posted yet)."""
    prompts = await engine._store.prompts(1)
    return any(p.position == position and p.state is PromptState.POSTING for p in prompts)


async def _closing(engine: Engine) -> bool:
    """The recap is due: the engine is closing the session (posting what is left, then the recap)."""
    session = await engine._store.get_session(1)
    return session is not None and session.state is SessionState.CLOSING


def _slack_keys(fake: FakeSlack) -> Counter[tuple[str, int]]:
    keys: Counter[tuple[str, int]] = Counter()
    for message in fake.posts("CSTORM"):
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        keys[(str(payload.get("key", "")).split(":", 3)[-1], int(payload.get("part", 0)))] += 1
    return keys


def _slack_refused(fake: FakeSlack, since: int) -> set[str]:
    """The posts (by key) the bot tried to make since call number ``since``, while Slack was down."""
    tried = set()
    for call in fake.calls[since:]:
        if call.method == "chat.postMessage":
            payload = (call.args.get("metadata") or {}).get("event_payload") or {}
            tried.add(str(payload.get("key", "")).split(":", 3)[-1])
    return tried


@pytest.mark.parametrize("fault", ["outage", "429 storm"])
async def test_slack_down_or_rate_limiting_delays_but_never_loses_or_doubles(tmp_path: Path, fault: str) -> None:
    fake = await FakeSlack(users={"UORG": "Org"}).start()
    adapter = __import__("adapters.slack.adapter", fromlist=["SlackAdapter"]).SlackAdapter(
        http_settings(fake), post_interval=0
    )
    try:
        async with (
            running(tmp_path, adapter) as engine,
            SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events") as sender,
        ):
            if fault == "429 storm":
                fake.rate_limit_posts = set(range(2, 9))  # every post after the opening, seven times over
            status, _ = await sender.command(
                command_form("CSTORM", "UORG", "start", response_url=fake.response_url("start"))
            )
            assert status == 200
            if fault == "outage":
                await eventually(lambda: ("opening", 0) in _slack_keys(fake))
                fake.outage = True  # down through both prompts and the recap time
                down_from = len(fake.calls)
                await eventually(lambda: "prompt:1" in _slack_refused(fake, down_from), what="a refused prompt")
                status, _ = await sender.command(
                    command_form("CSTORM", "UORG", "status", response_url=fake.response_url("status"))
                )
                assert status == 200  # still acknowledging commands while Slack's API is down
                # The second prompt falls due while Slack is down: it is taken up, and waits in its
                # channel behind the first (a channel gets its posts in timetable order).
                await eventually(partial(_taken_up, engine, 2), what="the second prompt taken up while down")
                assert "prompt:2" not in _slack_refused(fake, down_from)
                await eventually(partial(_closing, engine), what="the recap time to pass while down")
                fake.outage = False
            await _closed_as_planned(engine)
        keys = _slack_keys(fake)
        assert {k: n for k, n in keys.items() if n > 1} == {}
        assert keys[("recap", 0)] == 1
        assert {("opening", 0), ("prompt:1", 0), ("prompt:2", 0)} <= set(keys)
        assert [key for key, part in keys if part == 0] == ["opening", "prompt:1", "prompt:2", "recap"]  # in order
        assert len(fake.calls_to("chat.postMessage")) < 60  # retries are bounded, not a hammering
    finally:
        await fake.stop()


_MARKER = re.compile(r"Popup · ref ([0-9a-f]{16})(?: · (\d+)/(\d+))?")


def _discord_markers(fake: FakeDiscord) -> Counter[str]:
    found: Counter[str] = Counter()
    for message in fake.bot_posts():
        for embed in message.get("embeds") or []:
            if match := _MARKER.search(str((embed.get("footer") or {}).get("text", ""))):
                found[match[0]] += 1
    return found


def _invalid(fake: FakeDiscord) -> int:
    return sum(1 for call in fake.calls if call.status >= 400)


def _discord_refused(fake: FakeDiscord) -> set[str]:
    """Which of the day's prompts ("First?", "Second?") met a 503 (Discord down)."""
    bodies = [
        json.dumps(call.body) for call in fake.calls
        if call.status == 503 and call.method == "POST" and call.path.endswith("/messages")
    ]
    return {part for part in ("First?", "Second?") if any(part in body for body in bodies)}


@pytest.mark.parametrize("fault", ["outage", "global 429 storm"])
async def test_discord_down_or_rate_limiting_delays_but_never_loses_or_doubles(tmp_path: Path, fault: str) -> None:
    fake = FakeDiscord()
    await fake.start()
    adapter = make_adapter(fake, plan_names=[PLAN.name])
    try:
        olga_role = Organiser(platform="discord", kind=OrganiserKind.ROLE, id=str(fake.organiser_role_id))
        async with running(tmp_path, adapter, organisers=(olga_role,)) as engine:
            if fault == "global 429 storm":
                fake.rate_limits = {n: n % 2 == 0 for n in range(2, 12)}  # global and per-route 429s
            start: Any = await fake.invoke(fake.olga, "start")
            await eventually(lambda: bool(start.followups), what="the answer to /popup start")
            if fault == "outage":
                fake.outage = True  # down through both prompts and the recap time
                await eventually(lambda: _discord_refused(fake) == {"First?"}, what="the first prompt refused")
                # The second falls due while down and waits behind the first, in timetable order.
                await eventually(partial(_taken_up, engine, 2), what="the second prompt taken up while down")
                assert _discord_refused(fake) == {"First?"}
                await eventually(partial(_closing, engine), what="the recap time to pass while down")
                fake.outage = False
            await _closed_as_planned(engine)
        markers = _discord_markers(fake)
        assert {m: n for m, n in markers.items() if n > 1} == {}
        assert len(markers) >= 4  # opening, two prompts, the recap
        assert len(fake.threads) == 2
        assert _invalid(fake) < 100  # far below Discord's 10,000 invalid requests per 10 minutes
    finally:
        await fake.close()
