"""The real engine on a real SQLite file, through a recording port, on fake time: timetable,
commands, retries, restarts. Time moves only when a test advances the clock, and every wake-up
due by then has run (and been awaited) when ``advance`` returns."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from sessions.engine import Engine, EngineSettings
from sessions.model import (
    ChannelRef,
    CommandInvoked,
    Message,
    MessageRef,
    Posted,
    ReactionChanged,
    ReplyDeleted,
    ReplyEdited,
    ReplyPosted,
    ThreadRef,
)
from sessions.plans import Plan, PromptSpec, parse_time
from sessions.records import PromptState, SessionRecord, SessionState
from sessions.rights import Organiser, OrganiserKind
from sessions.store import Store
from storage.sqlite import SqliteStore
from tests.fakes.clock import FakeClock
from tests.support import RecordingPort, Rig, make_rig, member, offset_plan

ADA = member("ada", "Ada")
BOB = member("bob", "Bob")
ORGANISER_ROLE = Organiser(platform="fake", kind=OrganiserKind.ROLE, id="r-org")

MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[MakeRig]:
    """Makes started engines on one database file and the fake clock; a second one is a restart."""
    made: list[Rig] = []

    async def make(plans: list[Plan], *, port: RecordingPort | None = None, **settings: Any) -> Rig:
        started = await make_rig(
            tmp_path / "db", plans, port=port, clock=clock.now, wakeups=clock.wakeups(), **settings
        )
        made.append(started)
        return started

    yield make
    for each in made:
        await each.close()
    assert clock.failures == []


async def closed(rig: Rig, session_id: int = 1) -> SessionRecord:
    """The session, which the test expects to be over already (the timeout turns a hang into a failure)."""
    async with asyncio.timeout(10):
        return await rig.engine.wait_closed(session_id)


async def test_a_whole_session_runs_on_its_timetable(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(prompts=("+0s", "+1s"), recap="+2s")])
    assert "Started session #1" in await day.command("start")
    await clock.advance(0)
    assert day.port.sent() == ["opening", "prompt:1"]
    first = await day.reply(1, "Learning by teaching 👩🏽‍🏫", ADA, "m1")
    await day.reply(1, "Pairing", BOB, "m2")
    await day.engine.on_event(ReactionChanged(message=first, user_id="bob", emoji="👍", added=True, at=clock.now()))
    await clock.advance(1)
    assert day.port.sent()[-1] == "prompt:2"
    await day.reply(2, "Time", ADA, "m3")
    await clock.advance(1)
    session = await closed(day)
    assert session.state is SessionState.CLOSED
    assert day.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
    recap = day.port.posts[-1][1]
    text = recap.plain_text()
    assert "2 people took part" in text
    assert "3 replies" in text
    assert "Learning by teaching 👩🏽‍🏫 — Ada (1 reaction)" in text
    assert "Time — Ada" in text


async def test_each_post_waits_for_its_time(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(prompts=("+10s", "+20s"), recap="+30s")])
    await day.command("start")
    await clock.advance(9.9)
    assert day.port.sent() == ["opening"]
    await clock.advance(0.1)
    assert day.port.sent() == ["opening", "prompt:1"]
    await clock.advance(19.9)
    assert day.port.sent() == ["opening", "prompt:1", "prompt:2"]
    await clock.advance(0.1)
    assert day.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]


async def test_replies_outside_prompt_threads_and_from_bots_are_ignored(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(recap="+30s")])
    await day.command("start")
    await clock.advance(0)
    await day.reply(1, "from a bot", member("bot", is_bot=True), "b1")
    stray = ThreadRef(channel=day.channel, thread_id="not-a-prompt")
    await day.engine.on_event(
        ReplyPosted(
            thread=stray,
            message=MessageRef(channel=day.channel, message_id="x"),
            author=ADA,
            text="elsewhere",
            at=clock.now(),
        )
    )
    assert (await day.store.session_stats(1)).replies == 0


async def test_an_edit_event_in_a_prompt_thread_is_kept_even_before_its_message(
    rig: MakeRig, clock: FakeClock
) -> None:
    day = await rig([offset_plan(recap="+30s")])
    await day.command("start")
    await clock.advance(0)
    thread = day.port.thread_of(1)
    message = MessageRef(channel=day.channel, message_id="late")
    later = clock.now() + timedelta(seconds=5)
    await day.engine.on_event(ReplyEdited(message=message, text="edited", at=later, thread=thread))
    await day.reply(1, "original", ADA, "late")
    assert [r.text async for r in day.store.iter_replies(1)] == ["edited"]


async def test_duplicate_wake_ups_post_nothing_twice(rig: MakeRig) -> None:
    day = await rig([offset_plan(prompts=("+0s", "+30s"), recap="+60s")])
    await day.command("start")
    prompts = await day.store.prompts(1)
    await asyncio.gather(*(day.engine.post_prompt(1, prompts[0].id) for _ in range(5)))
    await asyncio.gather(*(day.engine.close_session(1) for _ in range(3)))
    assert day.port.sent() == ["opening", "prompt:1", "recap"]


async def test_start_refusals(rig: MakeRig) -> None:
    plans = [offset_plan(recap="+30s"), offset_plan("other", recap="+30s")]
    day = await rig(plans, organisers=(ORGANISER_ROLE,))
    refused = await day.command("start", who=ADA)
    assert "Only the session's organisers" in refused
    assert day.port.posts == []
    by_role = member("carol", roles=("r-org",))
    assert "Started" in await day.command("start", "other", who=by_role)
    second = await day.command("start", who=by_role)
    assert "already running in this channel" in second
    assert "I don't know 'nonsense'" in await day.command("start", "nonsense", who=by_role)
    assert "Two days given" in await day.command("start", "today", "tomorrow", who=by_role)
    assert "has passed" in await day.command("start", "2001-01-01", who=by_role)
    session = await day.store.active_session(day.channel)
    assert session is not None
    assert session.plan_name == "other"


async def test_without_organisers_only_the_starter_or_an_admin_may_end_or_advance(
    rig: MakeRig, clock: FakeClock
) -> None:
    day = await rig([offset_plan(prompts=("+0s", "+1h"), recap="+2h")])
    assert "Started session #1" in await day.command("start", who=ADA)  # anyone may start
    await clock.advance(0)
    ada_elsewhere = member("ada", "Ada", platform="slack")  # the same user id on another platform
    for word, what in (("next", "post its next prompt"), ("stop", "stop it"), ("cancel", "cancel it")):
        for stranger in (BOB, ada_elsewhere):
            answer = await day.command(word, who=stranger)
            assert f"Only the member who started this session, or an admin, can {what}." in answer
    assert day.port.sent() == ["opening", "prompt:1"]
    assert "Prompt 2 of 2 posted" in await day.command("next", who=ADA)
    assert "closed; the recap is posted" in await day.command("stop", who=ADA)
    assert "Started session #2" in await day.command("start", who=BOB)
    assert "Only the member who started" in await day.command("cancel", who=ADA)
    assert "cancelled" in await day.command("cancel", who=member("root", is_admin=True))
    states = [s.state for s in await day.store.list_sessions()]
    assert sorted(states, key=str) == [SessionState.CANCELLED, SessionState.CLOSED]


async def test_listed_organisers_and_admins_may_run_any_session_and_nobody_else(
    rig: MakeRig, clock: FakeClock
) -> None:
    olga = Organiser(platform="fake", kind=OrganiserKind.USER, id="olga")
    day = await rig([offset_plan(prompts=("+0s", "+1h"), recap="+2h")], organisers=(olga, ORGANISER_ROLE))
    assert "Started session #1" in await day.command("start", who=member("olga"))
    await clock.advance(0)
    impostors = (
        ADA,  # the starter of nothing, and no organiser
        member("olga", platform="slack"),  # the organiser's user id, on another platform
        member("carol", platform="slack", roles=("r-org",)),  # the organisers' role id, on another platform
        member("r-org"),  # a user whose id is the role's
    )
    for who in impostors:
        for word in ("next", "stop", "cancel", "start"):
            assert "Only the session's organisers can do that." in await day.command(word, who=who)
    assert day.port.sent() == ["opening", "prompt:1"]
    assert "Prompt 2 of 2 posted" in await day.command("next", who=member("carol", roles=("r-org",)))
    assert "closed; the recap is posted" in await day.command("stop", who=member("admin", is_admin=True))


async def test_a_clock_time_already_passed_today_suggests_tomorrow(rig: MakeRig, clock: FakeClock) -> None:
    plan = Plan(
        name="day",
        title="Day",
        intro="",
        recap_at=parse_time("17:00"),
        prompts=(PromptSpec(at=parse_time("09:00"), text="q"), PromptSpec(at=parse_time("12:00"), text="r")),
    )
    await clock.advance_to(datetime(2026, 6, 1, 10, 30, tzinfo=UTC))  # 12:30 in Amsterdam
    day = await rig([plan], timezone="Europe/Amsterdam")
    answer = await day.command("start")
    assert "09:00 has already passed on 2026-06-01" in answer
    assert "/popup start day tomorrow" in answer
    assert "Started" in await day.command("start", "tomorrow")
    [session] = await day.store.list_sessions()
    prompts = await day.store.prompts(session.id)
    assert prompts[0].due_at == datetime(2026, 6, 2, 7, 0, tzinfo=UTC)
    assert session.recap_at == datetime(2026, 6, 2, 15, 0, tzinfo=UTC)


async def test_commands_status_next_stop_plans_help(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(prompts=("+0s", "+1h", "+2h"), recap="+3h")])
    assert "No popup session has run" in await day.command("status")
    assert "No popup session is running" in await day.command("stop")
    await day.command("start")
    await clock.advance(0)
    await day.reply(1, "one", ADA, "m1")
    status = await day.command("status")
    assert "Prompts posted: 1 of 3" in status
    assert "1 reply from 1 person" in status
    assert "Prompt 2 of 3 posted" in await day.command("next")
    assert day.port.sent()[-1] == "prompt:2"
    assert "p (default)" in await day.command("plans")
    assert "/popup start [PLAN]" in await day.command("help")
    assert "/popup start [PLAN]" in await day.command("whatever")
    assert "closed; the recap is posted" in await day.command("stop")
    states = [p.state for p in await day.store.prompts(1)]
    assert states == [PromptState.POSTED, PromptState.POSTED, PromptState.SKIPPED]
    assert day.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
    assert "is closed" in await day.command("status")
    await clock.advance(3 * 3600)  # prompt 2's and prompt 3's times, and the recap's, pass quietly
    assert day.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]


async def test_cancel_ends_without_recap_and_ignores_later_replies(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(prompts=("+0s", "+1s"), recap="+2s")])
    await day.command("start")
    await clock.advance(0)
    assert "cancelled; no recap" in await day.command("cancel")
    assert "No popup session is running" in await day.command("cancel")
    await day.reply(1, "too late", ADA, "m1")
    await clock.advance(2.3)
    assert day.port.sent() == ["opening", "prompt:1", "notice:cancelled"]
    assert (await day.store.session_stats(1)).replies == 0
    session = await closed(day)
    assert session.state is SessionState.CANCELLED


async def test_forget_removes_only_the_askers_replies(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(recap="+30s")])
    await day.command("start")
    await clock.advance(0)
    await day.reply(1, "mine", ADA, "m1")
    await day.reply(1, "mine too", ADA, "m2")
    await day.reply(1, "bob's", BOB, "m3")
    assert "Removed your 2 replies" in await day.command("forget", who=ADA)
    assert [r.text async for r in day.store.iter_replies(1)] == ["bob's"]


async def test_a_command_from_another_channel_cannot_touch_the_session(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(recap="+30s")])
    await day.command("start")
    elsewhere = CommandInvoked(
        channel=ChannelRef(platform="fake", channel_id="C2"),
        member=member("org", is_admin=True),
        name="stop",
        at=clock.now(),
    )
    assert "No popup session is running" in (await day.engine.on_command(elsewhere)).text
    session = await day.store.get_session(1)
    assert session is not None
    assert session.state is SessionState.RUNNING


async def test_a_lost_response_is_reconciled_not_reposted(rig: MakeRig, clock: FakeClock) -> None:
    port = RecordingPort(fail_next=1, lose_response=True)
    day = await rig([offset_plan(prompts=("+0s",), recap="+30s")], port=port)
    await day.command("start")  # the opening reaches the platform but the answer is lost
    await clock.advance(0.05)  # the retry
    assert day.port.sent() == ["opening", "prompt:1"]
    assert day.port.find_calls == 1
    session = await day.store.get_session(1)
    assert session is not None
    assert session.state is SessionState.RUNNING


async def test_a_failed_post_is_retried_until_it_lands(rig: MakeRig, clock: FakeClock) -> None:
    port = RecordingPort(fail_next=3)
    day = await rig([offset_plan(prompts=("+0s",), recap="+30s")], port=port)
    await day.command("start")
    await clock.advance(1)
    assert day.port.sent() == ["opening", "prompt:1"]


async def test_failed_posts_are_retried_after_the_configured_delays(rig: MakeRig, clock: FakeClock) -> None:
    port = RecordingPort(fail_next=3)
    day = await rig([offset_plan(prompts=("+0s",), recap="+1h")], port=port, retry_delays=(1.0, 2.0, 5.0))
    await day.command("start")  # fails at once; retries after 1 s, 2 s more, then 5 s more
    await clock.advance(7.9)
    assert day.port.sent() == []
    assert port.fail_next == 0  # the third retry is the one that lands…
    await clock.advance(0.1)
    assert day.port.sent() == ["opening", "prompt:1"]  # …8 s after the first try


async def test_restart_mid_session_goes_on_without_repeats(rig: MakeRig, clock: FakeClock) -> None:
    plan = offset_plan(prompts=("+0s", "+1s", "+2s"), recap="+3s")
    first = await rig([plan])
    await first.command("start")
    await clock.advance(0)
    await first.reply(1, "before the crash", ADA, "m1")
    await first.close()  # the bot goes away before prompt 2
    port = first.port  # the same platform: it still has what was posted
    again = await rig([plan], port=port)
    await clock.advance(3)
    session = await closed(again)
    assert session.state is SessionState.CLOSED
    assert port.sent() == ["opening", "prompt:1", "prompt:2", "prompt:3", "recap"]
    assert "before the crash" in port.posts[-1][1].plain_text()


async def test_restart_after_recap_time_posts_late_prompts_within_grace_and_one_recap(
    rig: MakeRig, clock: FakeClock
) -> None:
    plan = offset_plan(prompts=("+0s", "+1s"), recap="+2s")
    first = await rig([plan])
    await first.command("start")
    await first.close()
    await clock.advance(2.2)  # down through both prompts and the recap time
    again = await rig([plan], port=first.port)
    await clock.advance(0)
    await closed(again)
    assert first.port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
    assert [p.state for p in await again.store.prompts(1)] == [PromptState.POSTED, PromptState.POSTED]


async def test_a_prompt_past_the_grace_is_missed_and_named_in_the_recap(rig: MakeRig, clock: FakeClock) -> None:
    plan = offset_plan(prompts=("+0s", "+1s"), recap="+2s")
    first = await rig([plan], late_grace=timedelta(milliseconds=200))
    await first.command("start")
    await clock.advance(0)
    assert first.port.sent() == ["opening", "prompt:1"]
    await first.close()
    await clock.advance(1.5)
    again = await rig([plan], port=first.port, late_grace=timedelta(milliseconds=200))
    await clock.advance(0.5)
    await closed(again)
    assert first.port.sent() == ["opening", "prompt:1", "recap"]
    states = [p.state for p in await again.store.prompts(1)]
    assert states == [PromptState.POSTED, PromptState.MISSED]
    assert "Missed prompts" in first.port.posts[-1][1].plain_text()


@pytest.mark.parametrize("crash_in", ["opening", "prompt"])
async def test_a_crash_between_post_and_record_is_found_not_reposted(
    rig: MakeRig, clock: FakeClock, crash_in: str
) -> None:
    """The platform has the post, the ledger has only the intent and an attempt: restart finds it."""
    plan = offset_plan(prompts=("+0s",), recap="+1s")
    port = RecordingPort()
    first = await rig([plan], port=port)
    if crash_in == "opening":
        port.fail_next, port.lose_response = 1, True
    await first.command("start")
    if crash_in == "prompt":
        port.fail_next, port.lose_response = 1, True
        await clock.advance(0)
    assert port.sent() == (["opening"] if crash_in == "opening" else ["opening", "prompt:1"])
    assert port.fail_next == 0  # the post reached the platform, and its answer was lost
    await first.close()  # the crash, before any retry
    again = await rig([plan], port=port)
    await clock.advance(1)
    await closed(again)
    assert port.sent() == ["opening", "prompt:1", "recap"]
    assert port.find_calls == 1  # the restart looked for the lost post, and found it


async def test_an_outage_through_the_recap_time_posts_every_prompt_then_the_recap(
    rig: MakeRig, clock: FakeClock
) -> None:
    port = RecordingPort()
    day = await rig([offset_plan(prompts=("+1s", "+2s"), recap="+3s")], port=port)
    await day.command("start")
    port.fail_next = 10**6  # the platform goes down before the first prompt is due
    await clock.advance(3.5)  # …and stays down past the recap time
    assert port.sent() == ["opening"]
    port.fail_next = 0
    await clock.advance(0.05)  # the next retry
    await closed(day)
    assert port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]
    assert [p.state for p in await day.store.prompts(1)] == [PromptState.POSTED, PromptState.POSTED]


async def test_the_engine_prunes_what_can_no_longer_matter_on_its_own_clock(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(prompts=("+0s",), recap="+2h")])
    assert "Started session #1" in await day.command("start")
    await clock.advance(0)
    thread = day.port.thread_of(1)
    answer = MessageRef(channel=day.channel, message_id="answer")
    await day.engine.on_event(
        ReplyPosted(thread=thread, message=answer, author=ADA, text="Mine.", at=clock.now(), delivery_id="Ev1")
    )
    elsewhere = MessageRef(channel=ChannelRef(platform="fake", channel_id="no-session"), message_id="chatter")
    await day.engine.on_event(ReplyDeleted(message=elsewhere, at=clock.now(), delivery_id="Ev2"))
    early = MessageRef(channel=day.channel, message_id="not-here-yet")
    await day.engine.on_event(ReplyDeleted(message=early, at=clock.now(), delivery_id="Ev3"))

    async def kept() -> tuple[int, int]:
        rows = (await day.store.storage_figures()).rows
        return rows["deletions"], rows["inbound_events"]

    assert await kept() == (2, 3)
    await clock.advance(50 * 60)  # pruned every 10 minutes: nothing is old enough yet
    assert await kept() == (2, 3)
    await clock.advance(20 * 60)  # over an hour: the deletion in a channel of no session goes
    assert await kept() == (1, 3)
    await clock.advance(23 * 3600)  # over a day: the delivery ids, and the deletion that waited in vain
    assert await kept() == (0, 0)
    assert [r.text async for r in day.store.iter_replies(1)] == ["Mine."]
    await day.engine.on_event(ReplyDeleted(message=elsewhere, at=clock.now()))  # and it goes on
    assert await kept() == (1, 0)
    await clock.advance(70 * 60)
    assert await kept() == (0, 0)


async def test_resuming_reads_each_session_once_and_no_lock_outlives_its_session(
    rig: MakeRig, clock: FakeClock, tmp_path: Path
) -> None:
    plan = offset_plan(prompts=("+0s", "+1h"), recap="+2h")
    first = await rig([plan])
    for k in range(5):
        first.channel = ChannelRef(platform="fake", channel_id=f"C{k}")
        assert "Started session" in await first.command("start")
    await clock.advance(0)
    await first.close()

    class Counting:
        """The store, counting what the engine asks of it."""

        def __init__(self, store: SqliteStore) -> None:
            self.store = store
            self.calls: Counter[str] = Counter()

        def __getattr__(self, name: str) -> Any:
            self.calls[name] += 1
            return getattr(self.store, name)

    counting = Counting(await SqliteStore.open(tmp_path / "db"))
    engine = Engine(
        store=cast(Store, counting),
        ports={first.port.platform: first.port},
        plans=[plan],
        settings=EngineSettings(default_plan=plan.name),
        wakeups=clock.wakeups(),
        clock=clock.now,
    )
    await engine.start()
    try:
        await clock.advance(1)
        # Nothing was due and the port cannot back-fill: one read of each session's prompts, and one
        # of its posts (which channels are behind, to catch them up).
        assert counting.calls["prompts"] == 5
        assert counting.calls["posts"] == 5
        await clock.advance(2 * 3600)
        assert [(await engine.wait_closed(k + 1)).state for k in range(5)] == [SessionState.CLOSED] * 5
        assert len(engine._lock) == 0
    finally:
        await engine.stop()
        await counting.store.close()


async def test_a_graceful_stop_lets_a_command_under_way_finish(rig: MakeRig, clock: FakeClock) -> None:
    day = await rig([offset_plan(prompts=("+0s",), recap="+1h")])
    await day.command("start")
    await clock.advance(0)
    posting, held = asyncio.Event(), asyncio.Event()
    post = day.port.post

    async def slow_recap(channel: ChannelRef, content: Message, *, key: str) -> Posted:
        if key.endswith(":recap"):
            posting.set()
            await held.wait()  # the platform takes its time with the recap
        return await post(channel, content, key=key)

    day.port.post = slow_recap  # type: ignore[method-assign]
    stop_command = asyncio.create_task(day.command("stop"))
    await asyncio.wait_for(posting.wait(), 10)
    shutdown = asyncio.create_task(day.engine.stop())
    for _ in range(50):  # turns of the loop (no time passes) for stop() to return, were it not waiting
        await asyncio.sleep(0)
    assert not shutdown.done()  # stop waits for the command under way ...
    held.set()
    await shutdown
    assert "closed" in await stop_command
    session = await day.store.get_session(1)
    assert session is not None
    assert session.state is SessionState.CLOSED  # ... so the day is closed, not left closing
    assert day.port.sent() == ["opening", "prompt:1", "recap"]
