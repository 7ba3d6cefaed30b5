"""Odd commands, changing rights and secrets: answered politely, checked live, never leaked."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.logs import RedactSecrets
from sessions.commands import COMMANDS
from sessions.model import CommandInvoked
from sessions.rights import Organiser, OrganiserKind
from tests.support import Rig, close_rig, make_rig, member, offset_plan

words = st.one_of(
    st.sampled_from([*COMMANDS, "today", "tomorrow", "anonymous", "2030-01-01", "2030-13-45", "p", "-", "'", '"']),
    st.text(max_size=40),
)


async def _rig(tmp_path: Path, **settings: Any) -> Rig:
    return await make_rig(tmp_path / "popup.db", [offset_plan(recap="+1h", prompts=("+30m",))], **settings)


def test_odd_commands_get_an_answer_never_a_traceback(tmp_path: Path) -> None:
    # Hypothesis drives sync functions, so every example runs on one persistent loop of our own.
    with asyncio.Runner() as runner:
        rig = runner.run(_rig(tmp_path))

        async def ask(name: str, args: list[str]) -> None:
            reply = await rig.engine.on_command(
                CommandInvoked(
                    channel=rig.channel,
                    member=member("org", is_admin=True),
                    name=name,
                    args=tuple(args),
                    at=datetime.now(UTC),
                )
            )
            assert reply.text
            assert "Traceback" not in reply.text
            assert "went wrong on my side" not in reply.text
            if (await rig.store.active_session(rig.channel)) is not None:
                await rig.command("cancel")  # leave the channel free for the next example

        @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(name=st.one_of(st.sampled_from(COMMANDS), st.text(max_size=20)), args=st.lists(words, max_size=5))
        def check(name: str, args: list[str]) -> None:
            runner.run(ask(name, args))

        try:
            check()
        finally:
            runner.run(close_rig(rig))


async def test_losing_the_organiser_role_takes_effect_at_once(tmp_path: Path) -> None:
    rig = await _rig(tmp_path, organisers=(Organiser(platform="fake", kind=OrganiserKind.ROLE, id="r-org"),))
    try:
        with_role = member("carol", roles=("r-org",))
        without_role = member("carol", roles=())  # the same member, after the role was removed
        assert "Started" in await rig.command("start", who=with_role)
        assert "Only the session's organisers" in await rig.command("next", who=without_role)
        assert "Only the session's organisers" in await rig.command("stop", who=without_role)
        assert "Only the session's organisers" in await rig.command("cancel", who=without_role)
        assert "is running" in await rig.command("status", who=without_role)  # anyone may ask
        assert "Prompt 1 of 1 posted" in await rig.command("next", who=with_role)
    finally:
        await close_rig(rig)


def test_secrets_and_token_shapes_are_redacted_from_logs() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(["my-signing-secret-value"]))
    log = logging.getLogger("popup.test.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("sig %s", "my-signing-secret-value")
        log.warning("token xoxb-1234567890-abcdefghij in a message")
        try:
            raise RuntimeError("failed with my-signing-secret-value")
        except RuntimeError:
            log.exception("boom")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "my-signing-secret-value" not in text
    assert "xoxb-1234567890" not in text
    assert text.startswith("sig ***\ntoken *** in a message\nboom\n")
    assert "RuntimeError" in text  # the traceback itself is kept
