"""Only our installation is served: a correctly signed request for another workspace or app (the
same app installed elsewhere signs with the same secret) is acknowledged and dropped, on every path:
HTTP events (the fast path), slash commands and interactive payloads (through bolt), Socket Mode.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from adapters.slack.adapter import SlackAdapter
from adapters.slack.installation import Installation, origin_of
from sessions.errors import ConfigError
from sessions.model import CommandReply, ReplyPosted
from tests.fakes import slack_events as ev
from tests.fakes.recording_handler import RecordingHandler
from tests.fakes.slack_api import APP_ID, BOT_ID, FakeSlack
from tests.fakes.slack_events import SlackSender
from tests.slack.conftest import http_settings, socket_settings
from tests.support import eventually

PARENT = "1700000001.000100"
OTHER_TEAM = "T0OTHER99"
OTHER_APP = "A0OTHER99"
ORG = "E0ORG0001"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "not this installation" in r.getMessage()]


# -- what "ours" means ----------------------------------------------------------------------------


def test_a_workspace_install_is_its_team_and_app() -> None:
    ours = Installation(team_id="T1", app_id="A1")
    assert ours.is_ours(team_id="T1", enterprise_id="", app_id="A1")
    assert not ours.is_ours(team_id="T1", enterprise_id=ORG, app_id="A1")  # we are on no Grid org
    assert not ours.is_ours(team_id="T2", enterprise_id="", app_id="A1")
    assert not ours.is_ours(team_id="T1", enterprise_id="", app_id="A2")
    assert not ours.is_ours(team_id="", enterprise_id="", app_id="A1")  # what is not named is not ours
    assert not ours.is_ours(team_id="T1", enterprise_id="", app_id="")


def test_a_workspace_inside_a_grid_org_must_also_be_in_our_org() -> None:
    ours = Installation(team_id="T1", app_id="A1", enterprise_id=ORG)
    assert ours.is_ours(team_id="T1", enterprise_id=ORG, app_id="A1")
    assert ours.is_ours(team_id="T1", enterprise_id="", app_id="A1")  # slash commands may not name it
    assert not ours.is_ours(team_id="T1", enterprise_id="E0ELSE", app_id="A1")
    assert not ours.is_ours(team_id="T2", enterprise_id=ORG, app_id="A1")  # another workspace of the org


def test_an_org_wide_install_takes_every_workspace_of_its_org_only() -> None:
    ours = Installation(team_id="", app_id="A1", enterprise_id=ORG, org_wide=True)
    assert ours.is_ours(team_id="T1", enterprise_id=ORG, app_id="A1")
    assert ours.is_ours(team_id="T2", enterprise_id=ORG, app_id="A1")
    assert not ours.is_ours(team_id="T1", enterprise_id="E0ELSE", app_id="A1")
    assert not ours.is_ours(team_id="T1", enterprise_id="", app_id="A1")
    assert not ours.is_ours(team_id="T1", enterprise_id=ORG, app_id="A2")


def test_the_origin_of_each_kind_of_payload() -> None:
    event = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "x"), team_id="T7", enterprise_id=ORG)
    assert (origin_of(event).team_id, origin_of(event).enterprise_id, origin_of(event).app_id) == ("T7", ORG, APP_ID)
    form = ev.command_form("C1", "U1", "stop", response_url="http://127.0.0.1:9/r", team_id="T8", enterprise_id=ORG)
    assert (origin_of(form).team_id, origin_of(form).enterprise_id) == ("T8", ORG)
    action = ev.block_actions("C1", "U1", response_url="http://127.0.0.1:9/r", team_id="T9", app_id="A9",
                              enterprise_id=ORG)
    assert (origin_of(action).team_id, origin_of(action).enterprise_id, origin_of(action).app_id) == ("T9", ORG, "A9")
    # Slack Connect: the envelope names the other side's team; the authorization is the installation.
    shared = {**event, "team_id": "T0THEIRS", "is_ext_shared_channel": True}
    assert origin_of(shared).team_id == "T7"
    home = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "x"), team_id="T7")  # on no Grid org
    theirs_on_grid = {**home, "team_id": "T0THEIRS", "enterprise_id": "E0THEIRS", "is_ext_shared_channel": True}
    assert (origin_of(theirs_on_grid).team_id, origin_of(theirs_on_grid).enterprise_id) == ("T7", "")
    # A modal opened from a shared channel names the team that installed the app.
    view: dict[str, Any] = {"type": "view_submission", "team": {"id": "T0USER"}, "api_app_id": "A1",
                            "view": {"app_installed_team_id": "T0INSTALL"}}
    assert origin_of(view).team_id == "T0INSTALL"
    assert origin_of({"team": 7, "authorizations": "x", "api_app_id": None}).team_id == ""  # never raises


# -- over HTTP --------------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_start_up_learns_our_app_from_bots_info(http_adapter: SlackAdapter, fake: FakeSlack) -> None:
    [call] = fake.calls_to("bots.info")
    assert call.args["bot"] == BOT_ID


@pytest.mark.e2e
async def test_events_for_another_team_or_app_are_acknowledged_and_dropped(
    sender: SlackSender, handler: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    theirs = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "from elsewhere"), team_id=OTHER_TEAM)
    other_app = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "from another app"), app_id=OTHER_APP)
    other_org = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "from another org"), enterprise_id="E0ELSE")
    for body in (theirs, other_app, other_org):
        assert (await sender.event(body))[0] == 200  # not retried by Slack, and not stored
    assert handler.events == []
    [logged] = _refusals(caplog)  # once a minute, whatever the number
    assert OTHER_TEAM in logged
    ours = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "from home"))
    assert (await sender.event(ours))[0] == 200
    assert [e.text for e in handler.events if isinstance(e, ReplyPosted)] == ["from home"]


@pytest.mark.e2e
async def test_a_command_from_another_team_does_nothing(
    sender: SlackSender, handler: RecordingHandler, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    handler.reply = CommandReply(text="Closed", ephemeral=False)
    form = ev.command_form("C1", "U1", "stop", response_url=fake.response_url("theirs"), team_id=OTHER_TEAM)
    status, text = await sender.command(form)
    assert status == 200
    assert json.loads(text)["response_type"] == "ephemeral"  # only the one who typed it learns why
    assert "another Slack workspace" in json.loads(text)["text"]
    other_app = ev.command_form("C1", "U1", "stop", response_url=fake.response_url("app"), app_id=OTHER_APP)
    assert (await sender.command(other_app))[0] == 200
    assert _refusals(caplog)
    # Ours still works, and is the only command the engine ever saw.
    await sender.command(ev.command_form("C1", "U1", "status", response_url=fake.response_url("ours")))
    await eventually(lambda: len(fake.responses) == 1)
    assert [c.name for c in handler.commands] == ["status"]


@pytest.mark.e2e
async def test_an_interactive_payload_from_another_team_is_refused_before_routing(
    sender: SlackSender, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    theirs = ev.block_actions("C1", "U1", response_url=fake.response_url(), team_id=OTHER_TEAM)
    assert (await sender.interactive(theirs))[0] == 200
    [logged] = _refusals(caplog)
    assert "block_actions" in logged
    ours = ev.block_actions("C1", "U1", response_url=fake.response_url())
    await sender.interactive(ours)  # no listener for buttons yet: bolt's own answer, not a refusal
    assert len(_refusals(caplog)) == 1


@pytest.mark.e2e
async def test_an_org_wide_install_serves_every_workspace_of_its_org(fake: FakeSlack) -> None:
    fake.team_id, fake.enterprise_id, fake.org_wide = "", ORG, True
    handler = RecordingHandler()
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    await adapter.start(handler)
    try:
        async with SlackSender(f"http://127.0.0.1:{adapter.http_port}/slack/events") as sender:
            for team, org, text in (("T0EAST", ORG, "east"), ("T0WEST", ORG, "west"), ("T0EAST", "E0ELSE", "x")):
                body = ev.event_callback(ev.reply_event("C1", PARENT, "U1", text), team_id=team, enterprise_id=org,
                                         org_wide=True)
                assert (await sender.event(body))[0] == 200
    finally:
        await adapter.stop()
    assert [e.text for e in handler.events if isinstance(e, ReplyPosted)] == ["east", "west"]


@pytest.mark.e2e
async def test_without_its_app_id_the_adapter_does_not_start(fake: FakeSlack) -> None:
    fake.bots_info_error = "missing_scope"
    adapter = SlackAdapter(http_settings(fake), post_interval=0)
    with pytest.raises(ConfigError, match=r"bots\.info was refused \(missing_scope\)"):
        await adapter.start(RecordingHandler())
    await adapter.stop()
    assert adapter.http_port is None  # nothing listens that could not tell ours from theirs


# -- over Socket Mode -----------------------------------------------------------------------------------


@pytest.mark.e2e
async def test_socket_mode_acks_and_drops_what_is_not_ours(fake: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.slack")
    handler = RecordingHandler()
    adapter = SlackAdapter(socket_settings(fake), post_interval=0)
    await adapter.start(handler)
    try:
        theirs = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "theirs"), team_id=OTHER_TEAM)
        assert (await fake.send_envelope("events_api", theirs))["envelope_id"]  # acked: not sent again
        form = ev.command_form("C1", "U1", "stop", response_url=fake.response_url(), team_id=OTHER_TEAM)
        await fake.send_envelope("slash_commands", form, accepts_response_payload=True)
        action = ev.block_actions("C1", "U1", response_url=fake.response_url(), app_id=OTHER_APP)
        await fake.send_envelope("interactive", action)
        assert handler.events == []
        assert handler.commands == []
        assert _refusals(caplog)
        ours = ev.event_callback(ev.reply_event("C1", PARENT, "U1", "ours"))
        await fake.send_envelope("events_api", ours)
        assert [e.text for e in handler.events if isinstance(e, ReplyPosted)] == ["ours"]
        assert fake.responses == []  # the foreign /popup stop was never answered through the engine
    finally:
        await adapter.stop()

