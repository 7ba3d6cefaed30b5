"""Several engines on one PostgreSQL database, as several ``popup run`` processes: each post goes
out once cluster-wide, sessions started by one are run by all, and a holder that died mid-post is
taken over once its lease runs out, finding its post instead of posting again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from sessions.cluster import Cluster
from sessions.engine import Engine, EngineSettings
from sessions.model import ChannelRef, CommandInvoked, Message, MessageRef, Posted, ThreadRef
from sessions.plans import Plan
from sessions.ports import Backfills
from sessions.records import PromptState, SessionState
from sessions.wakeups import Wakeups, utc_now
from storage.postgres import PostgresStore
from tests.store_contract.records import new_session
from tests.support import RecordingPort, eventually, member, offset_plan


@dataclass
class BackfillingPort(RecordingPort):
    """A platform that can tell what was said in a thread (:class:`sessions.ports.Backfills`)."""

    backfilled: list[ThreadRef] = field(default_factory=list)

    async def backfill(self, threads: Sequence[ThreadRef]) -> None:
        self.backfilled.extend(threads)


@dataclass
class Process:
    """One of the engines, as one ``popup run`` process would have it."""

    store: PostgresStore
    engine: Engine

    async def start_session(self) -> None:
        channel = ChannelRef(platform=RecordingPort.platform, channel_id="C1")
        await self.engine.on_command(
            CommandInvoked(channel=channel, member=member("org", is_admin=True), name="start", at=utc_now())
        )

    async def close(self) -> None:
        await self.engine.stop()
        await self.store.close()


async def engines_on(url: str, plan: Plan, port: RecordingPort, count: int) -> list[Process]:
    rigs = []
    for n in range(count):
        store = await PostgresStore.open(url)
        engine = Engine(
            store=store,
            ports={port.platform: port},
            plans=[plan],
            settings=EngineSettings(default_plan=plan.name, retry_delays=(0.05,)),
            wakeups=Wakeups(),
            clock=utc_now,
            cluster=Cluster(store, holder=f"engine-{n}", lease_seconds=3.0, watch_seconds=0.05),
        )
        await engine.start()
        rigs.append(Process(store=store, engine=engine))
    return rigs


@pytest.fixture
async def cluster(postgres_url: str) -> AsyncIterator[tuple[list[Process], RecordingPort]]:
    port = RecordingPort()
    rigs = await engines_on(postgres_url, offset_plan(prompts=("+0s", "+3s"), recap="+5s"), port, 3)
    try:
        yield rigs, port
    finally:
        for rig in rigs:
            await rig.close()


async def wait_closed(rig: Process, session_id: int, within: float = 20.0) -> None:
    """Wait for the stored state (any engine may be the one that closes it)."""

    async def closed() -> bool:
        session = await rig.store.get_session(session_id)
        return session is not None and session.state is SessionState.CLOSED

    await eventually(closed, within, what=f"session {session_id} closed")


async def test_every_post_goes_out_once_whichever_engine_wakes(cluster: tuple[list[Process], RecordingPort]) -> None:
    rigs, port = cluster
    await rigs[0].start_session()
    [session] = await rigs[2].store.list_sessions()
    await wait_closed(rigs[1], session.id)
    assert port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]


async def test_a_holder_that_died_mid_post_is_taken_over_and_its_post_found(
    cluster: tuple[list[Process], RecordingPort],
) -> None:
    rigs, port = cluster
    await rigs[0].start_session()
    [session] = await rigs[1].store.list_sessions()
    await eventually(lambda: "prompt:1" in port.sent(), what="prompt 1 posted")
    second = (await rigs[1].store.prompts(session.id))[1]
    # A process takes the session's lease for prompt 2, marks it posting, notes its attempt, gets
    # the post onto the platform and dies before recording it: its lease outlives the due time.
    store = rigs[1].store
    async def taken() -> bool:  # the live engines give it back between steps
        return (await store.take_lease(session.id, "the-dead-one", 4.0)).held

    await eventually(taken, what="the lease free between steps")
    assert await store.set_prompt_state(second.id, [PromptState.PENDING], PromptState.POSTING)
    record = await store.claim_post(session.id, "prompt:2", session.channel, prompt_id=second.id)
    await store.note_attempt(record.id)
    marker = f"popup:{session.id}:{int(session.started_at.timestamp())}:prompt:2"
    await port.open_thread(session.channel, Message(title="Prompt 2"), key=marker)

    await wait_closed(rigs[2], session.id)
    assert port.sent() == ["opening", "prompt:1", "prompt:2", "recap"]  # found, not posted again
    assert port.find_calls >= 1
    [posted] = [p for p in await store.posts(session.id) if p.key == "prompt:2"]
    assert posted.posted
    assert (await store.prompts(session.id))[1].state is PromptState.POSTED


async def test_a_lease_is_one_holders_until_it_runs_out(postgres_url: str) -> None:
    store = await PostgresStore.open(postgres_url)
    try:
        session = await store.create_session(new_session())
        assert session is not None
        mine = await store.take_lease(session.id, "a", 30.0)
        theirs = await store.take_lease(session.id, "b", 30.0)
        assert mine.held
        assert not theirs.held
        assert theirs.until == mine.until  # when b may look again
        renewed = await store.take_lease(session.id, "a", 60.0)
        assert renewed.held
        assert renewed.until > mine.until
        await store.release_lease(session.id, "b")  # not b's to give back
        assert not (await store.take_lease(session.id, "b", 30.0)).held
        await store.release_lease(session.id, "a")
        assert (await store.take_lease(session.id, "b", 30.0)).held
        run_out = await store.take_lease(session.id, "b", -1.0)  # renewed into the past: free again
        assert run_out.held
        assert (await store.take_lease(session.id, "c", 30.0)).held
    finally:
        await store.close()


async def test_a_process_started_after_a_session_closed_elsewhere_backfills_its_threads(postgres_url: str) -> None:
    """While this process was down, another closed a session. What was said in its threads while
    this one was away reached no process if only this one hears that channel (its Discord shard),
    so, started again, it back-fills the threads of the sessions closed lately too, not only
    those still running; a session closed long ago is not read again at every start."""
    plan = offset_plan(prompts=("+0s",), recap="+1s")
    port = BackfillingPort()
    [other] = await engines_on(postgres_url, plan, port, 1)
    try:
        await other.start_session()
        [session] = await other.store.list_sessions()
        await wait_closed(other, session.id)
        [thread] = [p.thread for p in await other.store.posts(session.id) if p.thread is not None]
        long_ago = await other.store.create_session(new_session(ChannelRef(platform=port.platform, channel_id="C9")))
        assert long_ago is not None
        first = (await other.store.prompts(long_ago.id))[0]
        record = await other.store.claim_post(long_ago.id, "prompt:1", long_ago.channel, prompt_id=first.id)
        old_thread = ThreadRef(channel=long_ago.channel, thread_id="th-old")
        posted = Posted(message=MessageRef(channel=long_ago.channel, message_id="m-old"), thread=old_thread)
        await other.store.record_posted(record.id, posted, at=utc_now() - timedelta(days=3))
        assert await other.store.set_session_state(
            long_ago.id, [SessionState.SCHEDULED], SessionState.CLOSED, at=utc_now() - timedelta(days=3)
        )

        restarted = BackfillingPort()
        assert isinstance(restarted, Backfills)
        [this] = await engines_on(postgres_url, plan, restarted, 1)
        try:
            await eventually(lambda: restarted.backfilled == [thread], what="the closed session's thread back-filled")
        finally:
            await this.close()
        assert old_thread not in restarted.backfilled
    finally:
        await other.close()
