"""The store's contract (sessions.store.Store and RecapQueries), against SQLite and PostgreSQL alike.

Each test runs once per store (``backend``, see conftest.py). What only one store has (SQLite's
file, its backup and WAL; PostgreSQL's several processes) is tested beside its own store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import datetime, timedelta

import pytest

from sessions.model import ChannelRef, MessageRef, Posted, ThreadRef
from sessions.records import PromptState, RankedRow, SessionState
from sessions.store import Pruned, PruneHorizon, RecapQueries, Store, recap_queries
from storage.sqlite import SqliteStore
from tests.store_contract.conftest import AnyStore, Backend
from tests.store_contract.records import CHANNEL, T0, new_session, ref, reply, texts


async def test_reopening_keeps_data_and_does_not_remigrate(backend: Backend) -> None:
    first = await backend.open()
    created = await first.create_session(new_session())
    await first.close()
    second = await backend.open()
    try:
        assert created is not None
        again = await second.get_session(created.id)
        assert again == created
    finally:
        await second.close()


async def test_one_active_session_per_channel_even_when_racing(store: AnyStore) -> None:
    results = await asyncio.gather(*(store.create_session(new_session()) for _ in range(10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    other = await store.create_session(new_session(ChannelRef(platform="slack", channel_id="C2")))
    assert other is not None
    assert await store.set_session_state(winners[0].id, [SessionState.SCHEDULED], SessionState.CANCELLED, at=T0)
    assert await store.create_session(new_session()) is not None


async def test_session_record_round_trips(store: AnyStore) -> None:
    session = await store.create_session(new_session(prompts=3))
    assert session is not None
    assert session.state is SessionState.SCHEDULED
    assert session.channels == (CHANNEL,)
    assert session.started_at == T0
    prompts = await store.prompts(session.id)
    assert [(p.position, p.text, p.state) for p in prompts] == [
        (1, "q0", PromptState.PENDING),
        (2, "q1", PromptState.PENDING),
        (3, "q2", PromptState.PENDING),
    ]
    assert await store.active_session(CHANNEL) == session
    assert await store.latest_session(CHANNEL) == session
    assert await store.list_sessions() == [session]
    assert await store.list_sessions([SessionState.RUNNING]) == []


async def test_sessions_closed_since_a_moment(store: AnyStore) -> None:
    early, late, running = [
        await store.create_session(new_session(ChannelRef(platform="slack", channel_id=c))) for c in ("C1", "C2", "C3")
    ]
    assert early is not None
    assert late is not None
    assert running is not None
    assert await store.set_session_state(early.id, [SessionState.SCHEDULED], SessionState.CLOSED, at=T0)
    later = T0 + timedelta(hours=2)
    assert await store.set_session_state(late.id, [SessionState.SCHEDULED], SessionState.CANCELLED, at=later)
    since = T0 + timedelta(hours=1)
    assert [s.id for s in await store.list_sessions(closed_since=since)] == [late.id]
    assert [s.id for s in await store.list_sessions(closed_since=later)] == [late.id]  # at that moment or later
    assert [s.id for s in await store.list_sessions(closed_since=T0)] == [early.id, late.id]
    assert await store.list_sessions([SessionState.CLOSED], closed_since=since) == []
    assert [s.id for s in await store.list_sessions([SessionState.CLOSED], closed_since=T0)] == [early.id]
    assert [s.id for s in await store.list_sessions([SessionState.SCHEDULED])] == [running.id]


async def test_compare_and_set_moves_once(store: AnyStore) -> None:
    session = await store.create_session(new_session())
    assert session is not None
    moves = await asyncio.gather(
        *(store.set_session_state(session.id, [SessionState.SCHEDULED], SessionState.RUNNING) for _ in range(5))
    )
    assert moves.count(True) == 1
    prompt = (await store.prompts(session.id))[0]
    assert await store.set_prompt_state(prompt.id, [PromptState.PENDING], PromptState.POSTING)
    assert not await store.set_prompt_state(prompt.id, [PromptState.PENDING], PromptState.POSTING)
    assert await store.set_prompt_state(prompt.id, [PromptState.POSTING], PromptState.POSTED, at=T0)
    assert (await store.prompts(session.id))[0].posted_at == T0
    assert await store.set_session_state(session.id, [SessionState.RUNNING], SessionState.CLOSED, at=T0)
    closed = await store.get_session(session.id)
    assert closed is not None
    assert closed.closed_at == T0
    assert await store.active_session(CHANNEL) is None


async def test_outbound_ledger_claims_once_and_finds_threads(store: AnyStore) -> None:
    session = await store.create_session(new_session())
    assert session is not None
    prompt = (await store.prompts(session.id))[0]
    first = await store.claim_post(session.id, "prompt:1", CHANNEL, prompt_id=prompt.id)
    again = await store.claim_post(session.id, "prompt:1", CHANNEL, prompt_id=prompt.id)
    assert first == again
    assert not first.posted
    assert first.attempts == 0
    await store.note_attempt(first.id)
    thread = ThreadRef(channel=CHANNEL, thread_id="C1:1.5")
    await store.record_posted(first.id, Posted(message=ref("1.5"), thread=thread), at=T0)
    done = await store.claim_post(session.id, "prompt:1", CHANNEL, prompt_id=prompt.id)
    assert done.posted
    assert done.attempts == 1
    assert done.thread == thread
    assert await store.posts(session.id) == [done]
    target = await store.thread_target("slack", "C1:1.5")
    assert target is not None
    assert (target.session_id, target.prompt_id) == (session.id, prompt.id)
    assert await store.thread_target("slack", "C1:9.9") is None


async def test_a_prompt_post_attempted_but_not_recorded_is_under_way(store: AnyStore) -> None:
    session = await store.create_session(new_session())
    assert session is not None
    prompt = (await store.prompts(session.id))[0]
    opening = await store.claim_post(session.id, "opening", CHANNEL)
    await store.note_attempt(opening.id)
    assert not await store.thread_post_under_way("slack")  # no thread is opened by a post of no prompt
    post = await store.claim_post(session.id, "prompt:1", CHANNEL, prompt_id=prompt.id)
    assert not await store.thread_post_under_way("slack")  # claimed, not attempted yet
    await store.note_attempt(post.id)
    assert await store.thread_post_under_way("slack")
    assert not await store.thread_post_under_way("discord")
    thread = ThreadRef(channel=CHANNEL, thread_id="C1:1.5")
    await store.record_posted(post.id, Posted(message=ref("1.5"), thread=thread), at=T0)
    assert not await store.thread_post_under_way("slack")
    again = await store.claim_post(session.id, "prompt:2", CHANNEL, prompt_id=prompt.id)
    await store.note_attempt(again.id)
    assert await store.thread_post_under_way("slack")
    assert await store.set_session_state(session.id, [SessionState.SCHEDULED], SessionState.CANCELLED, at=T0)
    assert not await store.thread_post_under_way("slack")  # a session that is over posts nothing more


@pytest.fixture
async def running(store: AnyStore) -> tuple[int, int, int]:
    session = await store.create_session(new_session())
    assert session is not None
    prompts = await store.prompts(session.id)
    return session.id, prompts[0].id, prompts[1].id


async def test_replies_are_stored_once_however_often_delivered(store: AnyStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    await asyncio.gather(*(store.add_reply(reply(sid, p1, "1.1", "same")) for _ in range(4)))
    assert await texts(store, sid) == ["same"]


ODD_TEXTS = [
    "👩🏽‍💻👨‍👩‍👧‍👦🏳️‍🌈" * 2000,  # emoji sequences
    "zero\u200bwidth\u200d\ufeffjoiners\u2060",
    "\u202eright-to-left override\u202c עברית العربية",
    "Robert'); DROP TABLE replies;--",
    "<script>alert(1)</script> @everyone <!channel> <@U123>",
    "e\u0301\u0302\u0303 combining marks",
    "nul\x00inside",
    "x" * 40_000,
    "🙂" * 40_000,
]


@pytest.mark.parametrize("text", ODD_TEXTS, ids=range(len(ODD_TEXTS)))
async def test_odd_text_is_stored_byte_exact(store: AnyStore, running: tuple[int, int, int], text: str) -> None:
    sid, p1, _ = running
    name = "n\x00" + text[:50]  # a display name is a member's words too
    await store.add_reply(dataclasses.replace(reply(sid, p1, "1.1", text), author_name=name))
    await store.edit_reply(ref("1.1"), text + "!", at=T0 + timedelta(minutes=2))
    [stored] = [r async for r in store.iter_replies(sid)]
    assert stored.text.encode("utf-8") == (text + "!").encode("utf-8")
    assert stored.author_name == name
    async with contextlib.aclosing(store.recap_ranked_rows(sid, p1)) as batches:
        [[ranked]] = [batch async for batch in batches]
    assert (ranked.text, ranked.author_name) == (stored.text, stored.author_name)
    assert ranked.size == len((text + "!").encode("utf-8"))


async def test_edits_apply_in_platform_time_order(store: AnyStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    await store.add_reply(reply(sid, p1, "1.1", "v0"))
    await store.edit_reply(ref("1.1"), "v2", at=T0 + timedelta(minutes=3))
    await store.edit_reply(ref("1.1"), "v1", at=T0 + timedelta(minutes=2))  # arrives late
    await store.edit_reply(ref("1.1"), "v2", at=T0 + timedelta(minutes=3))  # redelivered
    [stored] = [r async for r in store.iter_replies(sid)]
    assert (stored.text, stored.edits) == ("v2", 2)
    assert stored.edited_at == T0 + timedelta(minutes=3)


async def test_an_edit_that_overtakes_its_message_is_kept_only_when_asked(
    store: AnyStore, running: tuple[int, int, int]
) -> None:
    sid, p1, _ = running
    await store.edit_reply(ref("1.1"), "edited first", at=T0 + timedelta(minutes=5), keep_if_unknown=True)
    await store.edit_reply(ref("2.2"), "not a reply of ours", at=T0 + timedelta(minutes=5))
    await store.add_reply(reply(sid, p1, "1.1", "original"))
    await store.add_reply(reply(sid, p1, "2.2", "original two"))
    assert await texts(store, sid) == ["edited first", "original two"]


async def test_a_deletion_wins_even_before_its_message(store: AnyStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    await store.delete_reply(ref("1.1"), at=T0)
    await store.add_reply(reply(sid, p1, "1.1", "gone"))
    await store.add_reply(reply(sid, p1, "1.2", "stays"))
    await store.delete_reply(ref("1.2"), at=T0)
    await store.delete_reply(ref("1.2"), at=T0)
    assert await texts(store, sid) == []
    stats = await store.session_stats(sid)
    assert stats.replies == 0


async def test_reactions_count_once_and_newest_change_wins(store: AnyStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    await store.add_reply(reply(sid, p1, "1.1"))
    t = T0 + timedelta(minutes=1)
    for _ in range(3):
        await store.set_reaction(ref("1.1"), "U3", "👍", added=True, at=t)
    await store.set_reaction(ref("1.1"), "U4", "👍", added=True, at=t)
    await store.set_reaction(ref("1.1"), "U4", "👍", added=False, at=t + timedelta(seconds=5))
    await store.set_reaction(ref("1.1"), "U4", "👍", added=True, at=t)  # a stale redelivery of the add
    await store.set_reaction(ref("9.9"), "U4", "👍", added=True, at=t)  # not a reply: not kept
    [stored] = [r async for r in store.iter_replies(sid)]
    assert stored.reactions == 1


async def test_stats_ranked_rows_and_order(store: AnyStore, running: tuple[int, int, int]) -> None:
    sid, p1, p2 = running
    await store.add_reply(reply(sid, p2, "2.1", "later prompt", author="U9"))
    await store.add_reply(reply(sid, p1, "1.1", "short", author="U2"))
    await store.add_reply(reply(sid, p1, "1.2", "a longer reply", author="U3"))
    await store.add_reply(reply(sid, p1, "1.3", "liked", author="U2"))
    await store.add_reply(reply(sid, p1, "1.4", "gone, though the longest reply", author="U4"))
    await store.delete_reply(ref("1.4"), at=T0 + timedelta(minutes=2))
    await store.set_reaction(ref("1.3"), "U3", "❤️", added=True, at=T0)
    stats = await store.session_stats(sid)
    assert (stats.replies, stats.participants, stats.reactions) == (4, 3, 1)
    assert stats.replies_per_prompt == {p1: 3, p2: 1}
    assert await store.recap_last_reply_at(sid) == T0 + timedelta(minutes=1)

    async def ranked(best: int | None) -> list[RankedRow]:
        async with contextlib.aclosing(store.recap_ranked_rows(sid, p1, best=best)) as batches:
            return [row async for batch in batches for row in batch]

    # Most reactions first, then the largest text; deleted replies and other prompts left out.
    everything = await ranked(None)
    assert [r.text for r in everything] == ["liked", "a longer reply", "short"]
    assert [(r.reactions, r.size, r.author_name, r.edited) for r in everything] == [
        (1, 5, "u2", 0),
        (0, 14, "u3", 0),
        (0, 5, "u2", 0),
    ]
    assert all(isinstance(r, RankedRow) for r in everything)
    assert [r.text for r in await ranked(1)] == ["liked"]  # nothing less reacted can be the best one
    assert await ranked(2) == everything
    assert await texts(store, sid) == ["short", "a longer reply", "liked", "later prompt"]
    assert [r.text async for r in store.iter_replies(sid, prompt_id=p2)] == ["later prompt"]


async def test_the_store_is_both_ports(store: AnyStore) -> None:
    engine_side: Store = store  # mypy checks the engine's port...
    recap_side: RecapQueries = store  # ...and the recap's
    assert recap_queries(engine_side) is recap_side  # what the recap finds on the store the engine hands it
    assert not {"integrity_check", "backup", "top_replies"} & set(dir(Store))  # nothing store-specific on the port


async def test_forget_removes_only_the_askers_replies_and_reactions(
    store: AnyStore, running: tuple[int, int, int]
) -> None:
    sid, p1, _ = running
    await store.add_reply(reply(sid, p1, "1.1", "mine", author="U2"))
    await store.add_reply(reply(sid, p1, "1.2", "theirs", author="U3"))
    await store.edit_reply(ref("1.1"), "mine, edited", at=T0 + timedelta(minutes=2))
    await store.set_reaction(ref("1.2"), "U2", "👍", added=True, at=T0)
    await store.set_reaction(ref("1.2"), "U4", "👍", added=True, at=T0)
    assert await store.forget_author(sid, "slack", "U2") == 1
    remaining = [r async for r in store.iter_replies(sid)]
    assert [(r.text, r.reactions) for r in remaining] == [("theirs", 1)]
    assert await store.forget_author(sid, "slack", "U2") == 0
    stats = await store.session_stats(sid)
    assert (stats.replies, stats.participants, stats.reactions) == (1, 1, 1)
    if isinstance(store, SqliteStore):
        assert await store.integrity_check() == "ok"


async def test_many_concurrent_writes_are_all_durable(backend: Backend) -> None:
    store = await backend.open()
    session = await store.create_session(new_session())
    assert session is not None
    prompt = (await store.prompts(session.id))[0]
    await asyncio.gather(*(store.add_reply(reply(session.id, prompt.id, f"m{i}", f"t{i}")) for i in range(2000)))
    await store.close()  # no explicit flush: every awaited write was already committed
    reopened = await backend.open()
    try:
        assert (await reopened.session_stats(session.id)).replies == 2000
    finally:
        await reopened.close()


async def test_forget_covers_replies_still_queued_when_it_is_asked(
    store: AnyStore, running: tuple[int, int, int]
) -> None:
    sid, p1, _ = running
    queued = [asyncio.ensure_future(store.add_reply(reply(sid, p1, f"q{i}", author="U2"))) for i in range(300)]
    await asyncio.sleep(0)  # queued, not yet committed
    removed = await store.forget_author(sid, "slack", "U2")
    await asyncio.gather(*queued)
    assert removed == 300
    assert await texts(store, sid) == []


async def test_reads_see_each_awaited_write(store: AnyStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    for i in range(1, 41):
        await store.add_reply(reply(sid, p1, f"r{i}", f"t{i}"))
        assert (await store.session_stats(sid)).replies == i


async def test_a_second_store_on_the_same_database_sees_and_respects_the_first(backend: Backend) -> None:
    # Two processes on one SQLite file is not how Popup runs it, but the contract holds there too.
    first, second = await backend.open(), await backend.open()
    try:
        starts = await asyncio.gather(*(s.create_session(new_session()) for s in (first, second) for _ in range(3)))
        [session] = [s for s in starts if s is not None]
        prompt = (await second.prompts(session.id))[0]
        moves = await asyncio.gather(
            *(s.set_prompt_state(prompt.id, [PromptState.PENDING], PromptState.POSTING) for s in (first, second))
        )
        assert sorted(moves) == [False, True]
        claims = await asyncio.gather(*(s.claim_post(session.id, "prompt:1", CHANNEL) for s in (first, second)))
        assert claims[0] == claims[1]
        # A deletion through one and its reply through the other, at once: the deletion still wins.
        await asyncio.gather(
            first.delete_reply(ref("gone"), at=T0),
            second.add_reply(reply(session.id, prompt.id, "gone")),
            *(
                s.add_reply(reply(session.id, prompt.id, f"m{i}", author=f"U{i % 3}"))
                for i in range(40)
                for s in (first, second)
            ),
        )
        for store in (first, second):
            stats = await store.session_stats(session.id)
            assert (stats.replies, stats.participants) == (40, 3)
            assert len(await texts(store, session.id)) == 40
    finally:
        await first.close()
        await second.close()


# -- what grows with use is pruned: delivery ids and deletions ------------------------------------

NOW = T0 + timedelta(days=3)
HORIZON = PruneHorizon(
    deliveries_before=NOW - timedelta(hours=24),
    deletions_before=NOW - timedelta(hours=24),
    stray_deletions_before=NOW - timedelta(hours=1),
)


async def rows_of(backend: Backend, store: AnyStore, table: str, key: str) -> set[str]:
    return {row[0] for row in await backend.rows(store, f"SELECT {key} FROM {table}")}


async def test_prune_keeps_only_what_can_still_matter_in_bounded_batches(backend: Backend, store: AnyStore) -> None:
    session = await store.create_session(new_session())
    assert session is not None
    prompt = (await store.prompts(session.id))[0]
    # A prompt whose thread is a channel of its own (as on Discord): its deletions wait too.
    record = await store.claim_post(session.id, "prompt:1", CHANNEL, prompt_id=prompt.id)
    thread = ThreadRef(channel=ChannelRef(platform="slack", channel_id="T1"), thread_id="T1")
    await store.record_posted(record.id, Posted(message=ref("1.0"), thread=thread), at=T0)
    await store.add_reply(reply(session.id, prompt.id, "stored"))

    def ago(hours: float) -> datetime:
        return NOW - timedelta(hours=hours)

    for name, hours in (("old-1", 30), ("old-2", 25), ("old-3", 24.5), ("new-1", 23), ("new-2", 0)):
        await store.set_reaction(ref("stored"), "U9", "x", added=True, at=ago(hours), delivery_id=name)
    deletions = {
        # (channel, message): how long ago, and whether it must stay
        ("C1", "stored"): (2, False),  # applied: the reply carries it
        ("C1", "waits"): (2, True),  # its message may still come, in the session's channel
        ("T1", "waits-in-thread"): (2, True),  # or in a prompt's thread channel
        ("C1", "too-old"): (25, False),  # its message would have come by now
        ("ELSEWHERE", "stray-old"): (2, False),  # a channel of no session
        ("ELSEWHERE", "stray-new"): (0.5, True),  # ... within the grace: a thread not known yet
        ("ELSEWHERE", "stray-older"): (3, False),
    }
    for (channel, message), (hours, _) in deletions.items():
        await store.delete_reply(
            MessageRef(channel=ChannelRef(platform="slack", channel_id=channel), message_id=message), at=ago(hours)
        )

    batches = []
    while True:
        pruned = await store.prune(HORIZON, limit=2)
        batches.append(pruned)
        assert pruned.deliveries <= 2
        assert pruned.deletions <= 2
        if pruned.deliveries < 2 and pruned.deletions < 2:
            break
    assert sum((b for b in batches), Pruned()) == Pruned(deliveries=3, deletions=4)
    assert len(batches) == 3  # (2, 2), (1, 2), then (0, 0): nothing more is due
    assert await rows_of(backend, store, "inbound_events", "delivery_id") == {"new-1", "new-2"}
    kept = {message for (_, message), (_, stays) in deletions.items() if stays}
    assert await rows_of(backend, store, "deletions", "message_id") == kept
    assert await store.prune(HORIZON, limit=2) == Pruned()

    # What was kept still wins over its late message; what was pruned took nothing standing with it.
    await store.add_reply(reply(session.id, prompt.id, "waits"))
    assert await texts(store, session.id) == []
    figures = await store.storage_figures()
    assert figures.rows["deletions"] == 3
    assert figures.rows["inbound_events"] == 2
    assert figures.rows["replies"] == 2
    assert figures.size_bytes > 0


async def test_storage_figures_count_the_growing_tables(store: AnyStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    empty = await store.storage_figures()
    assert set(empty.rows) >= {"sessions", "replies", "reactions", "deletions", "inbound_events"}
    assert (empty.rows["sessions"], empty.rows["replies"], empty.rows["inbound_events"]) == (1, 0, 0)
    for n in range(3):
        await store.add_reply(reply(sid, p1, f"1.{n}"))
    await store.delete_reply(ref("9.9"), at=T0, delivery_id="Ev1")
    figures = await store.storage_figures()
    assert (figures.rows["replies"], figures.rows["deletions"], figures.rows["inbound_events"]) == (3, 1, 1)


async def test_a_wave_of_compare_and_sets_at_once_moves_each_prompt_once(store: AnyStore) -> None:
    # Many prompts falling due at once (SQLite's writer commits their statements together; on
    # PostgreSQL each is a statement of its own): every first move wins, every second one does not.
    channels = [ChannelRef(platform="slack", channel_id=f"C{k}") for k in range(40)]
    sessions = [await store.create_session(new_session(channel)) for channel in channels]
    prompts = [(await store.prompts(s.id))[0] for s in sessions if s is not None]
    assert len(prompts) == 40
    moves = [store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTING) for p in prompts]
    again = [store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTING) for p in prompts[:10]]
    results = await asyncio.gather(*moves, *again)
    assert results[:40] == [True] * 40
    assert results[40:] == [False] * 10
    posted = [store.set_prompt_state(p.id, [PromptState.POSTING], PromptState.POSTED, at=T0) for p in prompts]
    assert await asyncio.gather(*posted) == [True] * 40
    firsts = [p for s in sessions if s is not None for p in await store.prompts(s.id) if p.position == 1]
    assert {(p.state, p.posted_at) for p in firsts} == {(PromptState.POSTED, T0)}
