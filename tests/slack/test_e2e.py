"""Whole popup sessions on Slack: the real engine and SQLite store, the real bolt app over HTTP and
Socket Mode, signed requests, and the fake Slack Web API. An offset plan makes a day take seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.adapter import SlackAdapter
from sessions.engine import Engine, EngineSettings
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.records import PromptState, SessionRecord, SessionState
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore
from tests.fakes import slack_events as ev
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.slack.conftest import http_settings, socket_settings
from tests.support import eventually

pytestmark = pytest.mark.e2e

CHANNEL = "C0POPUP"


def offset_plan(*prompts: str, recap: str) -> Plan:
    return Plan(
        name="quick",
        title="Quick <!channel> day",
        intro="Context & a timetable.",
        recap_at=parse_time(recap),
        prompts=tuple(PromptSpec(at=parse_time(at), text=f"Question {i}?") for i, at in enumerate(prompts, 1)),
    )


@dataclass
class Rig:
    fake: FakeSlack
    store: SqliteStore
    adapter: SlackAdapter
    engine: Engine

    async def session(self) -> SessionRecord:
        [session] = await self.store.list_sessions()
        return session

    async def has_replies(self, count: int) -> bool:
        return (await self.store.session_stats((await self.session()).id)).replies == count

    async def replies(self) -> list[Any]:
        session = await self.session()
        return [r async for r in self.store.iter_replies(session.id)]

    def prompt_posts(self) -> list[dict[str, Any]]:
        """Top-level posts tagged as prompts, in order."""
        return [
            m
            for m in self.fake.posts(CHANNEL)
            if "thread_ts" not in m and ":prompt:" in m.get("metadata", {}).get("event_payload", {}).get("key", "")
        ]

    async def wait_prompt_recorded(self, position: int) -> None:
        session = await self.session()

        async def recorded() -> bool:
            return (await self.store.prompts(session.id))[position - 1].state is PromptState.POSTED

        await eventually(recorded, what=f"prompt {position} recorded as posted")

    async def wait_prompts(self, count: int) -> list[dict[str, Any]]:
        await eventually(lambda: len(self.prompt_posts()) >= count, within=10)
        return self.prompt_posts()


async def _rig(tmp_path: Path, fake: FakeSlack, plan: Plan, mode: str) -> AsyncIterator[Rig]:
    store = await SqliteStore.open(tmp_path / "t.db")
    settings = http_settings(fake) if mode == "http" else socket_settings(fake)
    adapter = SlackAdapter(settings, post_interval=0)
    engine = Engine(
        store=store,
        ports={"slack": adapter},
        plans=[plan],
        settings=EngineSettings(timezone="UTC", default_plan=plan.name, organisers=()),
        wakeups=Wakeups(),
        clock=utc_now,
    )
    await adapter.start(engine)
    await engine.start()
    try:
        yield Rig(fake=fake, store=store, adapter=adapter, engine=engine)
    finally:
        await adapter.stop()
        await engine.stop()
        await store.close()


UNTIL_STOPPED = "+1h"  # the tests end the day with /popup stop once they have seen what they need


def _recap_text(fake: FakeSlack) -> str:
    posts = [m for m in fake.posts(CHANNEL) if m.get("metadata", {}).get("event_payload", {}).get("key", "")
             .endswith(":recap")]
    return "\n".join(json.dumps(m["blocks"]) for m in posts)


async def test_a_whole_session_over_http(tmp_path: Path, fake: FakeSlack) -> None:
    fake.users.update({"U1": "Ana", "U2": "Ben"})
    fake.rate_limit_posts = {2}  # the first prompt's post meets a 429 with Retry-After
    fake.retry_after = 1
    plan = offset_plan("+1s", "+2s", recap=UNTIL_STOPPED)
    async for rig in _rig(tmp_path, fake, plan, "http"):
        url = f"http://127.0.0.1:{rig.adapter.http_port}/slack/events"
        async with SlackSender(url) as slack:
            status, text = await slack.command(
                ev.command_form(CHANNEL, "U1", "start", response_url=fake.response_url("start"))
            )
            assert (status, text) == (200, "")
            await eventually(lambda: len(fake.responses) == 1)
            assert fake.responses[0]["text"].startswith("Started session #1")
            assert fake.responses[0]["response_type"] == "ephemeral"
            opening = fake.posts(CHANNEL)[0]
            assert "Quick &lt;!channel&gt; day" in json.dumps(opening["blocks"])

            first, second = (p["ts"] for p in await rig.wait_prompts(2))
            await rig.wait_prompt_recorded(2)
            reply = ev.reply_event(CHANNEL, first, "U1", "We learn by <!channel> teaching <@U2> & asking")
            body = ev.event_callback(reply, event_id="EvREPLY1")
            for retry in (None, 1, 2, 3):  # one event delivered four times
                assert (await slack.event(body, retry_num=retry))[0] == 200
            assert (await slack.event(ev.event_callback(ev.reply_event(CHANNEL, second, "U2", "By doing it"))))[
                0
            ] == 200
            typo = ev.reply_event(CHANNEL, second, "U1", "By mistaks")
            await slack.event(ev.event_callback(typo))
            await slack.event(ev.event_callback(ev.edit_event(CHANNEL, second, "U1", typo["ts"], "By mistaks",
                                                              "By mistakes, together")))
            await slack.event(ev.event_callback(ev.reaction_event(CHANNEL, reply["ts"], "U2", "tada")))
            gone = ev.reply_event(CHANNEL, second, "U2", "never mind")
            await slack.event(ev.event_callback(gone))
            await slack.event(ev.event_callback(ev.delete_event(CHANNEL, second, "U2", gone["ts"])))
            top_level = ev.reply_event(CHANNEL, first, "U2", "not in a thread")
            del top_level["thread_ts"]
            await slack.event(ev.event_callback(top_level))

            # Unsigned and stale requests are refused and store nothing.
            sneaky = ev.event_callback(ev.reply_event(CHANNEL, first, "U9", "unsigned"))
            assert (await slack.event(sneaky, signed=False))[0] == 401
            stale = ev.event_callback(ev.reply_event(CHANNEL, first, "U9", "stale"))
            assert (await slack.event(stale, timestamp=int(time.time()) - 301))[0] == 401
            await slack.command(ev.command_form(CHANNEL, "U1", "stop", response_url=fake.response_url("stop")))

        closed = await rig.engine.wait_closed((await rig.session()).id)
        assert closed.state is SessionState.CLOSED
        replies = await rig.replies()
        assert sorted(r.text for r in replies) == [
            "By doing it",
            "By mistakes, together",
            "We learn by <!channel> teaching <@U2> & asking",  # stored verbatim
        ]
        assert {r.author_name for r in replies} == {"Ana", "Ben"}
        assert next(r for r in replies if r.author_id == "U1" and r.text.startswith("We")).reactions == 1

        # Each prompt posted exactly once, as a thread parent, despite the 429.
        prompts = rig.prompt_posts()
        assert len(prompts) == 2
        keys = [p["metadata"]["event_payload"]["key"] for p in prompts]
        assert len(set(keys)) == 2
        assert len(fake.calls_to("chat.postMessage")) == len(fake.posts(CHANNEL)) + 1  # + the one 429

        recap = _recap_text(fake)
        assert "We learn by &lt;!channel&gt; teaching &lt;@U2&gt; &amp; asking" in recap
        assert "By mistakes, together" in recap
        assert "never mind" not in recap
        assert "<!channel>" not in recap
        assert "<@U2>" not in recap
        assert "&gt; " in recap or '"> ' in recap  # replies are quoted


async def test_a_lost_answer_from_slack_does_not_double_post_a_prompt(tmp_path: Path, fake: FakeSlack) -> None:
    """chat.postMessage stores the prompt but the connection drops: the engine's ledger asks
    find_post, which finds it by its metadata, so the prompt is never posted twice."""
    fake.drop_posts = {2}
    plan = offset_plan("+1s", recap=UNTIL_STOPPED)
    async for rig in _rig(tmp_path, fake, plan, "http"):
        url = f"http://127.0.0.1:{rig.adapter.http_port}/slack/events"
        async with SlackSender(url) as slack:
            await slack.command(ev.command_form(CHANNEL, "U1", "start", response_url=fake.response_url()))
            [prompt] = await rig.wait_prompts(1)
            await rig.wait_prompt_recorded(1)  # a reply before that would find no known thread
            await slack.event(ev.event_callback(ev.reply_event(CHANNEL, prompt["ts"], "U1", "still counted")))
            await slack.command(ev.command_form(CHANNEL, "U1", "stop", response_url=fake.response_url("stop")))
        await rig.engine.wait_closed((await rig.session()).id)
        assert len(rig.prompt_posts()) == 1
        assert fake.calls_to("conversations.history")  # the ledger looked before posting again
        assert [r.text for r in await rig.replies()] == ["still counted"]


async def test_a_session_over_socket_mode(tmp_path: Path, fake: FakeSlack) -> None:
    fake.users["U1"] = "Ana"
    plan = offset_plan("+1s", recap=UNTIL_STOPPED)
    async for rig in _rig(tmp_path, fake, plan, "socket"):
        assert rig.adapter.http_port is None
        form = ev.command_form(CHANNEL, "U1", "start", response_url=fake.response_url("sock"))
        ack = await fake.send_envelope("slash_commands", form, accepts_response_payload=True)
        assert ack["envelope_id"].startswith("env-")
        await eventually(lambda: len(fake.responses) == 1)
        [prompt] = await rig.wait_prompts(1)
        reply = ev.event_callback(ev.reply_event(CHANNEL, prompt["ts"], "U1", "over the socket <!here>"))
        ack = await fake.send_envelope("events_api", reply)
        assert ack["envelope_id"]
        assert [r.text for r in await rig.replies()] == ["over the socket <!here>"]  # durable before the ack
        stop = ev.command_form(CHANNEL, "U1", "stop", response_url=fake.response_url())
        await fake.send_envelope("slash_commands", stop)
        closed = await rig.engine.wait_closed((await rig.session()).id)
        assert closed.state is SessionState.CLOSED
        assert "over the socket &lt;!here&gt;" in _recap_text(fake)
    assert fake.calls_to("apps.connections.open")


async def test_replies_posted_while_the_bot_was_down_are_caught_up_on_restart(
    tmp_path: Path, fake: FakeSlack
) -> None:
    fake.users["U3"] = "Cai"
    plan = offset_plan("+1s", recap="+4s")
    async for rig in _rig(tmp_path, fake, plan, "socket"):
        form = ev.command_form(CHANNEL, "U1", "start", response_url=fake.response_url())
        await fake.send_envelope("slash_commands", form)
        [prompt] = await rig.wait_prompts(1)
        await rig.wait_prompt_recorded(1)
    # The bot is down; a member answers meanwhile (and a bot chimes in, which does not count).
    fake.add_member_message(CHANNEL, ev.reply_event(CHANNEL, prompt["ts"], "U3", "Answered while you slept"))
    fake.add_member_message(CHANNEL, ev.reply_event(CHANNEL, prompt["ts"], "U4", "beep") | {"bot_id": "B4"})
    async for rig in _rig(tmp_path, fake, plan, "socket"):
        closed = await rig.engine.wait_closed((await rig.session()).id)
        assert closed.state is SessionState.CLOSED
        replies = await rig.replies()
        assert [(r.text, r.author_name) for r in replies] == [("Answered while you slept", "Cai")]
        assert "Answered while you slept" in _recap_text(fake)
        assert len(rig.prompt_posts()) == 1


async def test_a_thread_longer_than_a_page_is_caught_up_whole_on_restart(tmp_path: Path, fake: FakeSlack) -> None:
    """Slack hands a long thread out in pages: the back-fill follows the cursors to the end."""
    plan = offset_plan("+1s", recap=UNTIL_STOPPED)
    async for rig in _rig(tmp_path, fake, plan, "socket"):
        form = ev.command_form(CHANNEL, "U1", "start", response_url=fake.response_url())
        await fake.send_envelope("slash_commands", form)
        [prompt] = await rig.wait_prompts(1)
        await rig.wait_prompt_recorded(1)
    answers = [f"Answer {i} while you slept" for i in range(8)]
    for i, text in enumerate(answers):
        fake.add_member_message(CHANNEL, ev.reply_event(CHANNEL, prompt["ts"], f"U{i}", text))
    fake.page_limit = 3  # the parent and eight replies: three pages
    async for rig in _rig(tmp_path, fake, plan, "socket"):
        await eventually(partial(rig.has_replies, len(answers)), what="every reply of the long thread")
        assert sorted(r.text for r in await rig.replies()) == answers
        pages = [c for c in fake.calls_to("conversations.replies") if c.args.get("ts") == prompt["ts"]]
        assert [bool(c.args.get("cursor")) for c in pages] == [False, True, True]
