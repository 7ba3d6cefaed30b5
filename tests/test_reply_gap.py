"""A reply in a thread another process has opened but not yet recorded: it is not stored yet, and
not dropped either (``NotStored``, so the platform or adapter hands it over again), and stored once
when it comes again after the post is recorded. One engine on a real SQLite file and the fake
clock; the other process's post is its rows in the outbound ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from sessions.errors import NotStored
from sessions.inbound import Inbound
from sessions.model import MessageRef, Posted, ReplyPosted, ThreadRef
from sessions.records import ThreadTarget
from sessions.store import Store
from sessions.threads import ThreadIndex
from tests.fakes.clock import FakeClock
from tests.support import Rig, make_rig, member, offset_plan

ADA = member("ada", "Ada")


@pytest.fixture
async def day(tmp_path: Path) -> AsyncIterator[tuple[Rig, FakeClock]]:
    clock = FakeClock()
    started = await make_rig(
        tmp_path / "db",
        [offset_plan(prompts=("+0s", "+1h"), recap="+2h")],
        clock=clock.now,
        wakeups=clock.wakeups(),
    )
    # As a cluster's engine reads its events (the SQLite store has no leases to make one with).
    started.engine._inbound = Inbound(store=started.store, threads=started.engine._threads, shared_database=True)
    yield started, clock
    await started.close()
    assert clock.failures == []


def reply_in(rig: Rig, clock: FakeClock, thread_id: str) -> ReplyPosted:
    return ReplyPosted(
        thread=ThreadRef(channel=rig.channel, thread_id=thread_id),
        message=MessageRef(channel=rig.channel, message_id=f"{thread_id}-answer"),
        author=ADA,
        text="Mine.",
        at=clock.now(),
        delivery_id=f"Ev-{thread_id}",
    )


async def test_a_reply_in_a_thread_being_opened_elsewhere_is_not_stored_until_the_post_is_recorded(
    day: tuple[Rig, FakeClock],
) -> None:
    rig, clock = day
    await rig.command("start")
    await clock.advance(0)
    assert rig.port.sent() == ["opening", "prompt:1"]
    # Nothing under way: a thread we do not know is none of ours.
    await rig.engine.on_event(reply_in(rig, clock, "stray"))
    assert (await rig.store.session_stats(1)).replies == 0

    # Another process of the cluster claims prompt 2 and makes its attempt; the platform has the
    # thread, and a member answers in it before that process records it.
    second = (await rig.store.prompts(1))[1]
    post = await rig.store.claim_post(1, "prompt:2", rig.channel, prompt_id=second.id)
    await rig.store.note_attempt(post.id)
    early = reply_in(rig, clock, "T2")
    with pytest.raises(NotStored) as raised:
        await rig.engine.on_event(early)
    assert raised.value.key == "Ev-T2"
    assert (await rig.store.session_stats(1)).replies == 0

    # Recorded: the redelivery is stored, once however often it comes.
    thread = ThreadRef(channel=rig.channel, thread_id="T2")
    posted = Posted(message=MessageRef(channel=rig.channel, message_id="T2"), thread=thread)
    await rig.store.record_posted(post.id, posted, at=clock.now())
    await rig.engine.on_event(early)
    await rig.engine.on_event(early)
    assert (await rig.store.session_stats(1)).replies == 1
    # And a thread that is still not ours is again simply ignored.
    await rig.engine.on_event(reply_in(rig, clock, "stray"))
    assert (await rig.store.session_stats(1)).replies == 1


async def test_a_lone_process_never_holds_back_an_unknown_thread(tmp_path: Path) -> None:
    clock = FakeClock()
    rig = await make_rig(
        tmp_path / "db", [offset_plan(prompts=("+0s", "+1h"), recap="+2h")], clock=clock.now, wakeups=clock.wakeups()
    )
    try:
        await rig.command("start")
        await clock.advance(0)
        second = (await rig.store.prompts(1))[1]
        post = await rig.store.claim_post(1, "prompt:2", rig.channel, prompt_id=second.id)
        await rig.store.note_attempt(post.id)  # a post under way (an outage, say): none elsewhere
        await rig.engine.on_event(reply_in(rig, clock, "stray"))  # ignored, not refused
        assert (await rig.store.session_stats(1)).replies == 0
    finally:
        await rig.close()
    assert clock.failures == []


class RecordedMeanwhile:
    """The store as the engine sees it while another process records its thread post between the
    engine's two reads: right after the first look-up of the thread (which finds nothing)."""

    def __init__(self, store: Store, record: Callable[[], Awaitable[None]]) -> None:
        self._store = store
        self._record: Callable[[], Awaitable[None]] | None = record

    async def thread_target(self, platform: str, thread_id: str) -> ThreadTarget | None:
        found = await self._store.thread_target(platform, thread_id)
        if self._record is not None:
            record, self._record = self._record, None
            await record()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_reply_in_a_thread_recorded_between_the_two_looks_is_stored(day: tuple[Rig, FakeClock]) -> None:
    rig, clock = day
    await rig.command("start")
    await clock.advance(0)
    second = (await rig.store.prompts(1))[1]
    post = await rig.store.claim_post(1, "prompt:2", rig.channel, prompt_id=second.id)
    await rig.store.note_attempt(post.id)
    thread = ThreadRef(channel=rig.channel, thread_id="T2")
    posted = Posted(message=MessageRef(channel=rig.channel, message_id="T2"), thread=thread)

    async def record() -> None:  # the other process, just after our first look found no thread
        await rig.store.record_posted(post.id, posted, at=clock.now())

    store = cast(Store, RecordedMeanwhile(rig.store, record))
    inbound = Inbound(store=store, threads=ThreadIndex(store), shared_database=True)
    # No post under way by the second look, yet the thread is ours: stored, not taken for a stranger's.
    await inbound.on_event(reply_in(rig, clock, "T2"))
    assert (await rig.store.session_stats(1)).replies == 1
