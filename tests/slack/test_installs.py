"""One Popup for many Slack workspaces, end to end over loopback: the "Add to Slack" page, the
redirect with Slack's code (exchanged at the fake's ``oauth.v2.access``), the installation kept in
the database with its token encrypted, signed commands from each installed team running sessions
posted with that team's own token (the fake refuses another's), a forged or replayed state, an
uninstall, and a second process on the same database posting with the token it finds there."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from cryptography.fernet import Fernet

from adapters.slack.adapter import SlackAdapter
from adapters.slack.settings import SlackSettings
from sessions.engine import Engine, EngineSettings
from sessions.errors import DeliveryError
from sessions.model import ChannelRef, Message
from sessions.wakeups import Wakeups, utc_now
from storage.sqlite import SqliteStore
from tests.fakes import slack_events as ev
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import BOT_TOKEN, CLIENT_ID, CLIENT_SECRET, TEAM_ID, FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.slack.conftest import http_settings
from tests.slack.test_e2e import offset_plan
from tests.support import eventually

pytestmark = pytest.mark.e2e

PLAN = offset_plan("+1s", recap="+1h")
ONE = ChannelRef(platform="slack", channel_id="C0ONE")
KEY = Fernet.generate_key().decode()
STATE_COOKIE = "slack-app-oauth-state"


def oauth_settings(fake: FakeSlack, **overrides: object) -> SlackSettings:
    values: dict[str, object] = {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token_key": KEY, "bot_token": "", **overrides,
    }
    return http_settings(fake, **values)


@dataclass
class Browser:
    """An installer's browser: follows the install page to Slack and back, with its cookie."""

    base: str
    # No cookie jar: each request carries exactly the cookie a test gives it.
    session: aiohttp.ClientSession = field(
        default_factory=lambda: aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
    )

    async def install_page(self) -> tuple[str, str]:
        """The authorize link's query (as a dict's state) and the state cookie the page set."""
        async with self.session.get(f"{self.base}/slack/install") as response:
            assert response.status == 200
            page = await response.text()
            cookie = response.cookies[STATE_COOKIE].value
        [link] = re.findall(r'id="add-to-slack" href="([^"]+)"', page)
        query = parse_qs(urlsplit(unescape(link)).query)
        assert query["client_id"] == [CLIENT_ID]
        assert "chat:write" in query["scope"][0].split(",")
        [state] = query["state"]
        return state, cookie

    async def back_from_slack(self, code: str, state: str, cookie: str | None) -> tuple[int, str]:
        headers = {"Cookie": f"{STATE_COOKIE}={cookie}"} if cookie is not None else {}
        params = {"code": code, "state": state}
        async with self.session.get(f"{self.base}/slack/oauth_redirect", params=params, headers=headers) as response:
            return response.status, await response.text()

    async def install(self, fake: FakeSlack, team_id: str) -> None:
        state, cookie = await self.install_page()
        status, page = await self.back_from_slack(fake.install_code(team_id), state, cookie)
        assert (status, "Popup is installed" in page) == (200, True), page

    async def close(self) -> None:
        await self.session.close()


@dataclass
class Rig:
    fake: FakeSlack
    store: SqliteStore
    adapter: SlackAdapter
    browser: Browser
    slack: SlackSender


async def _rig(tmp_path: Path, fake: FakeSlack, handler: Any = None, **overrides: object) -> AsyncIterator[Rig]:
    store = await SqliteStore.open(tmp_path / "popup.db")
    adapter = SlackAdapter(oauth_settings(fake, **overrides), installs=store, post_interval=0)
    engine = None
    if handler is None:
        handler = engine = Engine(
            store=store,
            ports={"slack": adapter},
            plans=[PLAN],
            settings=EngineSettings(timezone="UTC", default_plan=PLAN.name, organisers=()),
            wakeups=Wakeups(),
            clock=utc_now,
        )
    await adapter.start(handler)
    if engine is not None:
        await engine.start()
    base = f"http://127.0.0.1:{adapter.http_port}"
    browser = Browser(base)
    try:
        async with SlackSender(f"{base}/slack/events") as slack:
            yield Rig(fake=fake, store=store, adapter=adapter, browser=browser, slack=slack)
    finally:
        await browser.close()
        await adapter.stop()
        if engine is not None:
            await engine.stop()
        await store.close()


def _post_tokens(fake: FakeSlack, channel: str) -> set[str]:
    return {c.token for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == channel}


async def test_two_workspaces_install_and_each_runs_a_session_posted_with_its_own_token(
    tmp_path: Path, fake: FakeSlack
) -> None:
    teams = {"T0NEW1": "C0ONE", "T0NEW2": "C0TWO"}
    fake.channel_teams.update({channel: team for team, channel in teams.items()})
    async for rig in _rig(tmp_path, fake):
        for team in teams:
            await rig.browser.install(fake, team)
        assert len(fake.calls_to("oauth.v2.access")) == 2
        # The token reached the database only encrypted.
        with sqlite3.connect(tmp_path / "popup.db") as db:
            stored = dict(db.execute("SELECT team_id, bot_token FROM installs").fetchall())
        assert set(stored) == set(teams)
        for team, sealed in stored.items():
            assert sealed.startswith("fernet:")
            assert fake.workspace(team).token not in sealed

        for team, channel in teams.items():
            form = ev.command_form(channel, "U1", "start", response_url=fake.response_url(team), team_id=team)
            assert (await rig.slack.command(form))[0] == 200
        await eventually(lambda: len(fake.responses) == 2, what="both commands answered")
        assert all(r["text"].startswith("Started session") for r in fake.responses), fake.responses

        def prompted(channel: str) -> bool:
            return any(":prompt:1" in m["metadata"]["event_payload"]["key"] for m in fake.posts(channel))

        for team, channel in teams.items():
            await eventually(partial(prompted, channel), what=f"the prompt in {channel}")
            assert _post_tokens(fake, channel) == {fake.workspace(team).token}
            assert {m["bot_id"] for m in fake.posts(channel)} == {fake.workspace(team).bot_id}
            assert (await rig.store.channel_workspace("slack", channel)) is not None
        # No call was refused for a wrong token (the fake answers channel_not_found to one).
        assert not [c for c in fake.calls_to("chat.postMessage") if c.token == BOT_TOKEN]


async def test_a_forged_missing_or_replayed_state_installs_nothing(tmp_path: Path, fake: FakeSlack) -> None:
    async for rig in _rig(tmp_path, fake, handler=RecordingHandler()):
        state, cookie = await rig.browser.install_page()
        code = fake.install_code("T0NEW1")
        forged = "x" * len(state)
        assert (await rig.browser.back_from_slack(code, forged, forged))[0] == 401  # never issued
        assert (await rig.browser.back_from_slack(code, state, None))[0] == 400  # not the browser it was given to
        assert (await rig.browser.back_from_slack(code, state, cookie))[0] == 200
        status, page = await rig.browser.back_from_slack(code, state, cookie)  # the same redirect again
        assert status == 401
        assert "has been used or has expired" in page
        assert len(fake.calls_to("oauth.v2.access")) == 1
        assert [i.team_id for i in await rig.store.installs("slack")] == ["T0NEW1"]


async def test_after_app_uninstalled_the_team_is_refused_and_its_channels_cannot_be_posted_in(
    tmp_path: Path, fake: FakeSlack
) -> None:
    handler = RecordingHandler()
    fake.channel_teams["C0ONE"] = "T0NEW1"
    async for rig in _rig(tmp_path, fake, handler=handler):
        await rig.browser.install(fake, "T0NEW1")
        form = ev.command_form("C0ONE", "U1", "status", response_url=fake.response_url("1"), team_id="T0NEW1")
        assert (await rig.slack.command(form))[0] == 200
        await eventually(lambda: len(handler.commands) == 1)
        posted = await rig.adapter.post(ONE, Message(body="hello"), key="k1")
        assert posted.message.message_id

        uninstalled = ev.event_callback({"type": "app_uninstalled", "event_ts": ev.next_ts()}, team_id="T0NEW1")
        assert (await rig.slack.event(uninstalled))[0] == 200
        fake.uninstall("T0NEW1")
        assert await rig.store.installs("slack") == []

        again = ev.command_form("C0ONE", "U1", "status", response_url=fake.response_url("2"), team_id="T0NEW1")
        status, text = await rig.slack.command(again)
        assert status == 200
        assert "another Slack workspace" in text
        reply = ev.event_callback(ev.reply_event("C0ONE", posted.message.message_id, "U1", "hi"), team_id="T0NEW1")
        assert (await rig.slack.event(reply))[0] == 200
        assert len(handler.commands) == 1
        assert handler.events == []
        with pytest.raises(DeliveryError):
            await rig.adapter.post(ONE, Message(body="hello again"), key="k2")


async def test_tokens_revoked_for_users_only_keeps_the_install_and_for_our_bot_ends_it(
    tmp_path: Path, fake: FakeSlack
) -> None:
    async for rig in _rig(tmp_path, fake, handler=RecordingHandler()):
        await rig.browser.install(fake, "T0NEW1")
        bot_user = fake.workspace("T0NEW1").bot_user_id
        users_only = {"type": "tokens_revoked", "tokens": {"oauth": ["U1"]}, "event_ts": ev.next_ts()}
        assert (await rig.slack.event(ev.event_callback(users_only, team_id="T0NEW1")))[0] == 200
        assert len(await rig.store.installs("slack")) == 1
        ours = {"type": "tokens_revoked", "tokens": {"bot": [bot_user]}, "event_ts": ev.next_ts()}
        assert (await rig.slack.event(ev.event_callback(ours, team_id="T0NEW1")))[0] == 200
        assert await rig.store.installs("slack") == []


async def test_another_process_on_the_database_posts_with_the_channels_workspace_token(
    tmp_path: Path, fake: FakeSlack
) -> None:
    fake.channel_teams.update({"C0ONE": "T0NEW1", "C0MAIN": TEAM_ID})
    async for rig in _rig(tmp_path, fake, handler=RecordingHandler(), bot_token=BOT_TOKEN):
        await rig.browser.install(fake, "T0NEW1")
        form = ev.command_form("C0ONE", "U1", "status", response_url=fake.response_url("1"), team_id="T0NEW1")
        assert (await rig.slack.command(form))[0] == 200
        await eventually(lambda: len(fake.responses) == 1)
        # The SLACK_BOT_TOKEN workspace keeps working beside the installs.
        main = ev.command_form("C0MAIN", "U1", "status", response_url=fake.response_url("2"))
        assert (await rig.slack.command(main))[0] == 200
        await eventually(lambda: len(fake.responses) == 2)

        other_store = await SqliteStore.open(tmp_path / "popup.db")
        other = SlackAdapter(oauth_settings(fake, bot_token=BOT_TOKEN), installs=other_store, post_interval=0)
        await other.start(RecordingHandler())
        try:
            for channel in ("C0ONE", "C0MAIN"):
                where = ChannelRef(platform="slack", channel_id=channel)
                await other.post(where, Message(body="from the other process"), key=channel)
        finally:
            await other.stop()
            await other_store.close()
        assert _post_tokens(fake, "C0ONE") == {fake.workspace("T0NEW1").token}
        assert _post_tokens(fake, "C0MAIN") == {BOT_TOKEN}



async def test_with_the_web_on_the_install_pages_are_the_web_servers(tmp_path: Path, fake: FakeSlack) -> None:
    from bot.app import App
    from bot.config import load_config
    from tests.config_files import write_config

    config = write_config(
        tmp_path,
        console={"enabled": False},
        slack={"enabled": True, "mode": "http", "port": 0, "api_base_url": fake.base_url, "client_id": CLIENT_ID},
        web={"enabled": True, "port": 0},
    )
    env = {"SLACK_SIGNING_SECRET": "s", "SLACK_CLIENT_SECRET": CLIENT_SECRET, "POPUP_TOKEN_KEY": KEY,
           "POPUP_WEB_SECRET": "w" * 32}
    app = App(load_config(config, env=env), console_stdin=False)
    await app.start()
    browser = Browser("")
    try:
        from adapters.web.adapter import WebAdapter

        slack, web = (next(a for a in app.adapters if a.platform == name) for name in ("slack", "web"))
        assert isinstance(slack, SlackAdapter)
        assert isinstance(web, WebAdapter)
        async with browser.session.get(f"http://127.0.0.1:{slack.http_port}/slack/install") as response:
            assert response.status == 404  # not served twice
        browser.base = f"http://127.0.0.1:{web.port}"
        await browser.install(fake, "T0NEW1")
        assert app.store is not None
        assert [i.team_id for i in await app.store.installs("slack")] == ["T0NEW1"]
    finally:
        await browser.close()
        await app.stop()


async def test_over_socket_mode_app_uninstalled_ends_the_slack_bot_token_workspace_too(fake: FakeSlack) -> None:
    """Without installs (SLACK_BOT_TOKEN alone), an uninstall still stops the bot serving that
    workspace: its later commands and events are refused, and its channels cannot be posted in."""
    from tests.slack.conftest import socket_settings

    handler = RecordingHandler()
    adapter = SlackAdapter(socket_settings(fake), post_interval=0)
    await adapter.start(handler)
    try:
        main = ChannelRef(platform="slack", channel_id="C1")
        await adapter.post(main, Message(body="before"), key="k1")
        uninstalled = ev.event_callback({"type": "app_uninstalled", "event_ts": ev.next_ts()})
        await fake.send_envelope("events_api", uninstalled)
        form = ev.command_form("C1", "U1", "status", response_url=fake.response_url())
        ack = await fake.send_envelope("slash_commands", form, accepts_response_payload=True)
        assert "another Slack workspace" in str(ack.get("payload"))
        await fake.send_envelope("events_api", ev.event_callback(ev.reply_event("C1", "1700000001.000100", "U1", "x")))
        assert (handler.commands, handler.events) == ([], [])
        with pytest.raises(DeliveryError):
            await adapter.post(main, Message(body="after"), key="k2")
    finally:
        await adapter.stop()


async def test_an_org_wide_install_serves_every_workspace_of_its_org_only(tmp_path: Path, fake: FakeSlack) -> None:
    handler = RecordingHandler()
    async for rig in _rig(tmp_path, fake, handler=handler):
        state, cookie = await rig.browser.install_page()
        code = fake.install_code("", enterprise_id="E0ORG", org_wide=True)
        assert (await rig.browser.back_from_slack(code, state, cookie))[0] == 200
        [install] = await rig.store.installs("slack")
        assert (install.enterprise_id, install.team_id, install.org_wide) == ("E0ORG", "", True)
        for team in ("T0A", "T0B"):
            form = ev.command_form(f"C{team}", "U1", "status", response_url=fake.response_url(team), team_id=team,
                                   enterprise_id="E0ORG")
            assert (await rig.slack.command(form))[0] == 200
        elsewhere = ev.command_form("C0X", "U1", "status", response_url=fake.response_url("x"), team_id="T0X",
                                    enterprise_id="E0ELSE")
        assert "another Slack workspace" in (await rig.slack.command(elsewhere))[1]
        await eventually(lambda: len(handler.commands) == 2)
        await rig.adapter.post(ChannelRef(platform="slack", channel_id="CT0B"), Message(body="hi"), key="k")
        [call] = [c for c in fake.calls_to("chat.postMessage") if c.args.get("channel") == "CT0B"]
        assert call.token in fake.installed
        assert fake.installed[call.token].enterprise_id == "E0ORG"  # the org's own token
