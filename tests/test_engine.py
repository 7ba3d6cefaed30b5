"""The real engine on a real SQLite file, through a recording port: timetable, commands, restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sessions.model import ChannelRef, CommandInvoked, ReactionChanged, ReplyEdited
from sessions.records import PromptState, SessionState
from tests.support import RecordingPort, close_rig, make_rig, member, offset_plan, wait_for

ADA = member("ada", "Ada")
BOB = member("bob", "Bob")


async def test_a_whole_session_runs_in_seconds(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(prompts=("+0s", "+1s"), recap="+2s")])
    try:
        assert "Started session #1" in await rig.command("start")
        await rig.posted("prompt:1")
        first = await rig.reply(1, "Learning by teaching 👩🏽‍🏫", ADA, "m1")
        await rig.reply(1, "Pairing", BOB, "m2")
        await rig.engine.on_event(
            ReactionChanged(message=first, user_id="bob", emoji="👍", added=True, at=datetime.now(UTC))
        )
        await rig.posted("prompt:2")
        await rig.reply(2, "Time", ADA, "m3")
        session = await rig.engine.wait_closed(1)
        assert session.state is SessionState.CLOSED
        assert rig.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
        recap = rig.port.posts[-1][1]
        text = recap.plain_text()
        assert "2 people took part" in text
        assert "3 replies" in text
        assert "Learning by teaching 👩🏽‍🏫 — Ada (1 reaction)" in text
        assert "Time — Ada" in text
    finally:
        await close_rig(rig)


async def test_replies_outside_prompt_threads_and_from_bots_are_ignored(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(recap="+30s")])
    try:
        await rig.command("start")
        await rig.posted("prompt:1")
        await rig.reply(1, "from a bot", member("bot", is_bot=True), "b1")
        from sessions.model import MessageRef, ReplyPosted, ThreadRef

        stray = ThreadRef(channel=rig.channel, thread_id="not-a-prompt")
        await rig.engine.on_event(
            ReplyPosted(
                thread=stray,
                message=MessageRef(channel=rig.channel, message_id="x"),
                author=ADA,
                text="elsewhere",
                at=datetime.now(UTC),
            )
        )
        assert (await rig.store.session_stats(1)).replies == 0
    finally:
        await close_rig(rig)


async def test_an_edit_event_in_a_prompt_thread_is_kept_even_before_its_message(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(recap="+30s")])
    try:
        await rig.command("start")
        await rig.posted("prompt:1")
        thread = rig.port.thread_of(1)
        from sessions.model import MessageRef

        message = MessageRef(channel=rig.channel, message_id="late")
        later = datetime.now(UTC) + timedelta(seconds=5)
        await rig.engine.on_event(ReplyEdited(message=message, text="edited", at=later, thread=thread))
        await rig.reply(1, "original", ADA, "late")
        assert [r.text async for r in rig.store.iter_replies(1)] == ["edited"]
    finally:
        await close_rig(rig)


async def test_duplicate_wake_ups_post_nothing_twice(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(prompts=("+0s", "+30s"), recap="+60s")])
    try:
        await rig.command("start")
        prompts = await rig.store.prompts(1)
        await asyncio.gather(*(rig.engine._post_prompt(1, prompts[0].id) for _ in range(5)))
        await asyncio.gather(*(rig.engine._close(1) for _ in range(3)))
        assert rig.port.sent() == ["opening", "prompt:1", "recap"]
    finally:
        await close_rig(rig)


async def test_start_refusals(tmp_path: Path) -> None:
    plans = [offset_plan(recap="+30s"), offset_plan("other", recap="+30s")]
    rig = await make_rig(tmp_path / "db", plans, organisers=("Organiser",))
    try:
        refused = await rig.command("start", who=ADA)
        assert "Only the session's organisers" in refused
        assert rig.port.posts == []
        by_role = member("carol", roles=("Organiser",))
        assert "Started" in await rig.command("start", "other", who=by_role)
        second = await rig.command("start", who=by_role)
        assert "already running in this channel" in second
        assert "I don't know 'nonsense'" in await rig.command("start", "nonsense", who=by_role)
        assert "Two days given" in await rig.command("start", "today", "tomorrow", who=by_role)
        assert "has passed" in await rig.command("start", "2001-01-01", who=by_role)
        session = await rig.store.active_session(rig.channel)
        assert session is not None
        assert session.plan_name == "other"
    finally:
        await close_rig(rig)


async def test_a_clock_time_already_passed_today_suggests_tomorrow(tmp_path: Path) -> None:
    from sessions.plans import Plan, PromptSpec, parse_time

    plan = Plan(
        name="day",
        title="Day",
        intro="",
        recap_at=parse_time("17:00"),
        prompts=(PromptSpec(at=parse_time("09:00"), text="q"), PromptSpec(at=parse_time("12:00"), text="r")),
    )
    noon = datetime(2026, 6, 1, 10, 30, tzinfo=UTC)  # 12:30 in Amsterdam
    rig = await make_rig(tmp_path / "db", [plan], clock=lambda: noon, timezone="Europe/Amsterdam")
    try:
        answer = await rig.command("start")
        assert "09:00 has already passed on 2026-06-01" in answer
        assert "/popup start day tomorrow" in answer
        assert "Started" in await rig.command("start", "tomorrow")
        [session] = await rig.store.list_sessions()
        prompts = await rig.store.prompts(session.id)
        assert prompts[0].due_at == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
        assert session.recap_at == datetime(2026, 6, 2, 15, 0, tzinfo=UTC)
    finally:
        await close_rig(rig)


async def test_commands_status_next_stop_plans_help(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(prompts=("+0s", "+1h", "+2h"), recap="+3h")])
    try:
        assert "No popup session has run" in await rig.command("status")
        assert "No popup session is running" in await rig.command("stop")
        await rig.command("start")
        await rig.posted("prompt:1")
        await rig.reply(1, "one", ADA, "m1")
        status = await rig.command("status")
        assert "Prompts posted: 1 of 3" in status
        assert "1 reply from 1 person" in status
        assert "Prompt 2 of 3 posted" in await rig.command("next")
        assert rig.port.sent()[-1] == "prompt:2"
        assert "p (default)" in await rig.command("plans")
        assert "/popup start [PLAN]" in await rig.command("help")
        assert "/popup start [PLAN]" in await rig.command("whatever")
        assert "closed; the recap is posted" in await rig.command("stop")
        states = [p.state for p in await rig.store.prompts(1)]
        assert states == [PromptState.POSTED, PromptState.POSTED, PromptState.SKIPPED]
        assert rig.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
        assert "is closed" in await rig.command("status")
    finally:
        await close_rig(rig)


async def test_cancel_ends_without_recap_and_ignores_later_replies(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(prompts=("+0s", "+1s"), recap="+2s")])
    try:
        await rig.command("start")
        assert "cancelled; no recap" in await rig.command("cancel")
        await rig.reply(1, "too late", ADA, "m1")
        await asyncio.sleep(2.3)
        assert rig.port.sent() == ["opening", "prompt:1", "notice:cancelled"]
        assert (await rig.store.session_stats(1)).replies == 0
        session = await rig.engine.wait_closed(1)
        assert session.state is SessionState.CANCELLED
    finally:
        await close_rig(rig)


async def test_forget_removes_only_the_askers_replies(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(recap="+30s")])
    try:
        await rig.command("start")
        await rig.posted("prompt:1")
        await rig.reply(1, "mine", ADA, "m1")
        await rig.reply(1, "mine too", ADA, "m2")
        await rig.reply(1, "bob's", BOB, "m3")
        assert "Removed your 2 replies" in await rig.command("forget", who=ADA)
        assert [r.text async for r in rig.store.iter_replies(1)] == ["bob's"]
    finally:
        await close_rig(rig)


async def test_a_command_from_another_channel_cannot_touch_the_session(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path / "db", [offset_plan(recap="+30s")])
    try:
        await rig.command("start")
        elsewhere = CommandInvoked(
            channel=ChannelRef(platform="fake", channel_id="C2"),
            member=member("org", is_admin=True),
            name="stop",
            at=datetime.now(UTC),
        )
        assert "No popup session is running" in (await rig.engine.on_command(elsewhere)).text
        session = await rig.store.get_session(1)
        assert session is not None
        assert session.state is SessionState.RUNNING
    finally:
        await close_rig(rig)


async def test_a_lost_response_is_reconciled_not_reposted(tmp_path: Path) -> None:
    port = RecordingPort(fail_next=1, lose_response=True)
    rig = await make_rig(tmp_path / "db", [offset_plan(prompts=("+0s",), recap="+30s")], port=port)
    try:
        await rig.command("start")  # the opening reaches the platform but the answer is lost
        await wait_for(lambda: "prompt:1" in rig.port.sent())
        assert rig.port.sent() == ["opening", "prompt:1"]
        assert rig.port.find_calls == 1
        session = await rig.store.get_session(1)
        assert session is not None
        assert session.state is SessionState.RUNNING
    finally:
        await close_rig(rig)


async def test_a_failed_post_is_retried_until_it_lands(tmp_path: Path) -> None:
    port = RecordingPort(fail_next=3)
    rig = await make_rig(tmp_path / "db", [offset_plan(prompts=("+0s",), recap="+30s")], port=port)
    try:
        await rig.command("start")
        await wait_for(lambda: "prompt:1" in rig.port.sent())
        assert rig.port.sent() == ["opening", "prompt:1"]
    finally:
        await close_rig(rig)


async def test_restart_mid_session_goes_on_without_repeats(tmp_path: Path) -> None:
    db = tmp_path / "db"
    plan = offset_plan(prompts=("+0s", "+1s", "+2s"), recap="+3s")
    rig = await make_rig(db, [plan])
    await rig.command("start")
    await rig.posted("prompt:1")
    await rig.reply(1, "before the crash", ADA, "m1")
    await close_rig(rig)  # the bot goes away before prompt 2
    port = rig.port  # the same platform: it still has what was posted
    again = await make_rig(db, [plan], port=port)
    try:
        session = await again.engine.wait_closed(1)
        assert session.state is SessionState.CLOSED
        assert port.sent() == ["opening", "prompt:1", "prompt:2", "prompt:3", "recap"]
        assert "before the crash" in port.posts[-1][1].plain_text()
    finally:
        await close_rig(again)


async def test_restart_after_recap_time_posts_late_prompts_within_grace_and_one_recap(tmp_path: Path) -> None:
    db = tmp_path / "db"
    plan = offset_plan(prompts=("+0s", "+1s"), recap="+2s")
    rig = await make_rig(db, [plan])
    await rig.command("start")
    await close_rig(rig)
    await asyncio.sleep(2.2)  # down through prompt 2 and the recap time
    again = await make_rig(db, [plan], port=rig.port)
    try:
        await again.engine.wait_closed(1)
        assert rig.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
    finally:
        await close_rig(again)


async def test_a_prompt_past_the_grace_is_missed_and_named_in_the_recap(tmp_path: Path) -> None:
    db = tmp_path / "db"
    plan = offset_plan(prompts=("+0s", "+1s"), recap="+2s")
    rig = await make_rig(db, [plan], late_grace=timedelta(milliseconds=200))
    await rig.command("start")
    await rig.posted("prompt:1")
    await close_rig(rig)
    await asyncio.sleep(1.5)
    again = await make_rig(db, [plan], port=rig.port, late_grace=timedelta(milliseconds=200))
    try:
        await again.engine.wait_closed(1)
        assert rig.port.sent() == ["opening", "prompt:1", "recap"]
        states = [p.state for p in await again.store.prompts(1)]
        assert states == [PromptState.POSTED, PromptState.MISSED]
        assert "Missed prompts" in rig.port.posts[-1][1].plain_text()
    finally:
        await close_rig(again)


@pytest.mark.parametrize("crash_in", ["opening", "prompt"])
async def test_a_crash_between_post_and_record_is_found_not_reposted(tmp_path: Path, crash_in: str) -> None:
    """The platform has the post, the ledger has only the intent and an attempt: restart finds it."""
    db = tmp_path / "db"
    plan = offset_plan(prompts=("+0s",), recap="+1s")
    port = RecordingPort()
    rig = await make_rig(db, [plan], port=port)
    if crash_in == "opening":
        port.fail_next, port.lose_response = 1, True
        rig.engine._settings = type(rig.engine._settings)(default_plan="p", retry_delays=(3600.0,))
    await rig.command("start")
    await close_rig(rig)
    again = await make_rig(db, [plan], port=port)
    try:
        await again.engine.wait_closed(1)
        assert port.sent() == ["opening", "prompt:1", "recap"]
    finally:
        await close_rig(again)


async def test_an_outage_through_the_recap_time_posts_every_prompt_then_the_recap(tmp_path: Path) -> None:
    port = RecordingPort()
    rig = await make_rig(tmp_path / "db", [offset_plan(prompts=("+1s", "+2s"), recap="+3s")], port=port)
    try:
        await rig.command("start")
        port.fail_next = 10**6  # the platform goes down before the first prompt is due
        await asyncio.sleep(3.5)  # …and stays down past the recap time
        port.fail_next = 0
        await rig.engine.wait_closed(1)
        assert port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
        assert [p.state for p in await rig.store.prompts(1)] == [PromptState.POSTED, PromptState.POSTED]
    finally:
        await close_rig(rig)
