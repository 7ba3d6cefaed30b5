"""The store's contract, against a real SQLite file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sessions.errors import StorageError
from sessions.model import ChannelRef, MessageRef, Posted, ThreadRef
from sessions.records import NewPrompt, NewReply, NewSession, PromptState, RankedRow, SessionState
from sessions.store import Pruned, PruneHorizon, RecapQueries, Store, recap_queries
from storage.sqlite import SqliteStore

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CHANNEL = ChannelRef(platform="slack", channel_id="C1")


def new_session(channel: ChannelRef = CHANNEL, prompts: int = 2) -> NewSession:
    return NewSession(
        plan_name="p",
        title="Title",
        intro="Intro",
        timezone="UTC",
        channel=channel,
        anonymous=False,
        started_by="U1",
        started_at=T0,
        recap_at=T0 + timedelta(hours=8),
        prompts=tuple(NewPrompt(text=f"q{i}", due_at=T0 + timedelta(hours=i)) for i in range(prompts)),
    )


def reply(session_id: int, prompt_id: int, message_id: str, text: str = "hi", author: str = "U2") -> NewReply:
    return NewReply(
        session_id=session_id,
        prompt_id=prompt_id,
        platform="slack",
        channel_id="C1",
        message_id=message_id,
        author_id=author,
        author_name=author.lower(),
        text=text,
        created_at=T0 + timedelta(minutes=1),
    )


def ref(message_id: str) -> MessageRef:
    return MessageRef(channel=CHANNEL, message_id=message_id)


async def texts(store: SqliteStore, session_id: int) -> list[str]:
    return [r.text async for r in store.iter_replies(session_id)]


async def test_file_is_private_and_pragmas_are_set(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    store = await SqliteStore.open(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert await store.integrity_check() == "ok"
    finally:
        await store.close()


async def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        await SqliteStore.open(tmp_path / "nope" / "popup.db")


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "future.db"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 999")
    with pytest.raises(StorageError, match="newer than this Popup"):
        await SqliteStore.open(path)


async def test_reopening_keeps_data_and_does_not_remigrate(tmp_path: Path) -> None:
    path = tmp_path / "popup.db"
    first = await SqliteStore.open(path)
    created = await first.create_session(new_session())
    await first.close()
    second = await SqliteStore.open(path)
    try:
        assert created is not None
        again = await second.get_session(created.id)
        assert again == created
    finally:
        await second.close()


async def test_one_active_session_per_channel_even_when_racing(store: SqliteStore) -> None:
    results = await asyncio.gather(*(store.create_session(new_session()) for _ in range(10)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    other = await store.create_session(new_session(ChannelRef(platform="slack", channel_id="C2")))
    assert other is not None
    assert await store.set_session_state(winners[0].id, [SessionState.SCHEDULED], SessionState.CANCELLED, at=T0)
    assert await store.create_session(new_session()) is not None


async def test_session_record_round_trips(store: SqliteStore) -> None:
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


async def test_compare_and_set_moves_once(store: SqliteStore) -> None:
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


async def test_outbound_ledger_claims_once_and_finds_threads(store: SqliteStore) -> None:
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
    target = await store.thread_target("slack", "C1:1.5")
    assert target is not None
    assert (target.session_id, target.prompt_id) == (session.id, prompt.id)
    assert await store.thread_target("slack", "C1:9.9") is None


@pytest.fixture
async def running(store: SqliteStore) -> tuple[int, int, int]:
    session = await store.create_session(new_session())
    assert session is not None
    prompts = await store.prompts(session.id)
    return session.id, prompts[0].id, prompts[1].id


async def test_replies_are_stored_once_however_often_delivered(
    store: SqliteStore, running: tuple[int, int, int]
) -> None:
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
async def test_odd_text_is_stored_byte_exact(store: SqliteStore, running: tuple[int, int, int], text: str) -> None:
    sid, p1, _ = running
    await store.add_reply(reply(sid, p1, "1.1", text))
    await store.edit_reply(ref("1.1"), text + "!", at=T0 + timedelta(minutes=2))
    [stored] = [r async for r in store.iter_replies(sid)]
    assert stored.text.encode("utf-8") == (text + "!").encode("utf-8")


async def test_edits_apply_in_platform_time_order(store: SqliteStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    await store.add_reply(reply(sid, p1, "1.1", "v0"))
    await store.edit_reply(ref("1.1"), "v2", at=T0 + timedelta(minutes=3))
    await store.edit_reply(ref("1.1"), "v1", at=T0 + timedelta(minutes=2))  # arrives late
    await store.edit_reply(ref("1.1"), "v2", at=T0 + timedelta(minutes=3))  # redelivered
    [stored] = [r async for r in store.iter_replies(sid)]
    assert (stored.text, stored.edits) == ("v2", 2)


async def test_an_edit_that_overtakes_its_message_is_kept_only_when_asked(
    store: SqliteStore, running: tuple[int, int, int]
) -> None:
    sid, p1, _ = running
    await store.edit_reply(ref("1.1"), "edited first", at=T0 + timedelta(minutes=5), keep_if_unknown=True)
    await store.edit_reply(ref("2.2"), "not a reply of ours", at=T0 + timedelta(minutes=5))
    await store.add_reply(reply(sid, p1, "1.1", "original"))
    await store.add_reply(reply(sid, p1, "2.2", "original two"))
    assert await texts(store, sid) == ["edited first", "original two"]


async def test_a_deletion_wins_even_before_its_message(store: SqliteStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    await store.delete_reply(ref("1.1"), at=T0)
    await store.add_reply(reply(sid, p1, "1.1", "gone"))
    await store.add_reply(reply(sid, p1, "1.2", "stays"))
    await store.delete_reply(ref("1.2"), at=T0)
    await store.delete_reply(ref("1.2"), at=T0)
    assert await texts(store, sid) == []
    stats = await store.session_stats(sid)
    assert stats.replies == 0


async def test_reactions_count_once_and_newest_change_wins(store: SqliteStore, running: tuple[int, int, int]) -> None:
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


async def test_stats_ranked_rows_and_order(store: SqliteStore, running: tuple[int, int, int]) -> None:
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


async def test_the_sqlite_store_is_both_ports(store: SqliteStore) -> None:
    engine_side: Store = store  # mypy checks the engine's port...
    recap_side: RecapQueries = store  # ...and the recap's
    assert recap_queries(engine_side) is recap_side  # what the recap finds on the store the engine hands it
    assert not {"integrity_check", "backup", "top_replies"} & set(dir(Store))  # nothing SQLite-only on the port


async def test_forget_removes_only_the_askers_replies_and_reactions(
    store: SqliteStore, running: tuple[int, int, int]
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
    assert await store.integrity_check() == "ok"


async def test_many_concurrent_writes_are_all_durable(tmp_path: Path) -> None:
    path = tmp_path / "burst.db"
    store = await SqliteStore.open(path)
    session = await store.create_session(new_session())
    assert session is not None
    prompt = (await store.prompts(session.id))[0]
    await asyncio.gather(*(store.add_reply(reply(session.id, prompt.id, f"m{i}", f"t{i}")) for i in range(2000)))
    await store.close()  # no explicit flush: every awaited write was already committed
    reopened = await SqliteStore.open(path)
    try:
        assert (await reopened.session_stats(session.id)).replies == 2000
    finally:
        await reopened.close()


async def test_backup_is_a_consistent_private_copy(
    store: SqliteStore, running: tuple[int, int, int], tmp_path: Path
) -> None:
    sid, p1, _ = running
    await store.add_reply(reply(sid, p1, "1.1", "kept"))
    target = tmp_path / "copy.db"
    await store.backup(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    copy = await SqliteStore.open(target)
    try:
        assert await texts(copy, sid) == ["kept"]
    finally:
        await copy.close()


async def test_forget_covers_replies_still_queued_when_it_is_asked(
    store: SqliteStore, running: tuple[int, int, int]
) -> None:
    sid, p1, _ = running
    queued = [asyncio.ensure_future(store.add_reply(reply(sid, p1, f"q{i}", author="U2"))) for i in range(300)]
    await asyncio.sleep(0)  # queued, not yet committed
    removed = await store.forget_author(sid, "slack", "U2")
    await asyncio.gather(*queued)
    assert removed == 300
    assert await texts(store, sid) == []


async def test_reads_on_their_own_connection_see_each_awaited_write(
    store: SqliteStore, running: tuple[int, int, int]
) -> None:
    sid, p1, _ = running
    for i in range(1, 41):
        await store.add_reply(reply(sid, p1, f"r{i}", f"t{i}"))
        assert (await store.session_stats(sid)).replies == i


async def test_the_read_connection_refuses_to_write(store: SqliteStore, running: tuple[int, int, int]) -> None:
    sid, _, _ = running
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store._all("DELETE FROM replies WHERE session_id = ?", (sid,))


async def test_checkpoints_reach_the_database_file_without_the_commit_doing_them(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = await SqliteStore.open(path)
    try:
        assert [tuple(row) for row in await store._db.execute_fetchall("PRAGMA wal_autocheckpoint", ())] == [(0,)]
        session = await store.create_session(new_session())
        assert session is not None
        prompt = (await store.prompts(session.id))[0]
        checkpointer = store._checkpointer
        assert checkpointer is not None
        checkpointer._interval = 0.0
        await asyncio.gather(*(store.add_reply(reply(session.id, prompt.id, f"m{i}")) for i in range(500)))
        await store.add_reply(reply(session.id, prompt.id, "last"))
        if checkpointer._task is not None:
            await checkpointer._task  # begun by an earlier batch: it may not cover the last ones
        checkpointer.poke()  # (or the writer already began one after its last commit)
        assert checkpointer._task is not None
        await checkpointer._task
        # The database file alone, without its WAL, already holds the replies.
        alone = tmp_path / "alone.db"
        alone.write_bytes(path.read_bytes())
        with contextlib.closing(sqlite3.connect(alone)) as copy:
            assert copy.execute("SELECT count(*) FROM replies").fetchone()[0] >= 500
    finally:
        await store.close()
    # The last connection to close checkpoints the rest and removes the WAL.
    assert not (tmp_path / "wal.db-wal").exists()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT count(*) FROM replies").fetchone()[0] == 501


# -- what grows with use is pruned: delivery ids and deletions ------------------------------------

NOW = T0 + timedelta(days=3)
HORIZON = PruneHorizon(
    deliveries_before=NOW - timedelta(hours=24),
    deletions_before=NOW - timedelta(hours=24),
    stray_deletions_before=NOW - timedelta(hours=1),
)


async def rows_of(store: SqliteStore, table: str, key: str) -> set[str]:
    return {row[0] for row in await store._all(f"SELECT {key} FROM {table}", ())}


async def test_prune_keeps_only_what_can_still_matter_in_bounded_batches(store: SqliteStore) -> None:
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
    assert await rows_of(store, "inbound_events", "delivery_id") == {"new-1", "new-2"}
    assert await rows_of(store, "deletions", "message_id") == {m for (_, m), (_, kept) in deletions.items() if kept}
    assert await store.prune(HORIZON, limit=2) == Pruned()

    # What was kept still wins over its late message; what was pruned took nothing standing with it.
    await store.add_reply(reply(session.id, prompt.id, "waits"))
    assert await texts(store, session.id) == []
    figures = await store.storage_figures()
    assert figures.rows["deletions"] == 3
    assert figures.rows["inbound_events"] == 2
    assert figures.rows["replies"] == 2
    assert figures.size_bytes > 0


async def test_storage_figures_count_the_growing_tables(store: SqliteStore, running: tuple[int, int, int]) -> None:
    sid, p1, _ = running
    empty = await store.storage_figures()
    assert set(empty.rows) >= {"sessions", "replies", "reactions", "deletions", "inbound_events"}
    assert (empty.rows["sessions"], empty.rows["replies"], empty.rows["inbound_events"]) == (1, 0, 0)
    for n in range(3):
        await store.add_reply(reply(sid, p1, f"1.{n}"))
    await store.delete_reply(ref("9.9"), at=T0, delivery_id="Ev1")
    figures = await store.storage_figures()
    assert (figures.rows["replies"], figures.rows["deletions"], figures.rows["inbound_events"]) == (3, 1, 1)


async def test_statements_queued_together_share_a_commit_but_not_each_others_errors(store: SqliteStore) -> None:
    channels = [ChannelRef(platform="slack", channel_id=f"C{k}") for k in range(40)]
    sessions = [await store.create_session(new_session(channel)) for channel in channels]
    prompts = [(await store.prompts(s.id))[0] for s in sessions if s is not None]
    assert len(prompts) == 40
    # A wave of prompts falling due at once: each moves its state, twice over, and one statement
    # among them breaks (the schema refuses a state it does not know).
    moves = [store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTING) for p in prompts]
    again = [store.set_prompt_state(p.id, [PromptState.PENDING], PromptState.POSTING) for p in prompts[:10]]
    broken = store._writer.statement("UPDATE prompts SET state = 'lost' WHERE id = ? RETURNING id", (prompts[0].id,))
    results = await asyncio.gather(*moves, *again, broken, return_exceptions=True)
    assert results[:40] == [True] * 40
    assert results[40:50] == [False] * 10  # compare-and-set: the first of each won
    assert isinstance(results[50], StorageError | sqlite3.IntegrityError)
    assert {p.state for s in sessions if s is not None for p in await store.prompts(s.id) if p.position == 1} == {
        PromptState.POSTING
    }
    # And without a broken one among them, all in one transaction.
    posted = [store.set_prompt_state(p.id, [PromptState.POSTING], PromptState.POSTED, at=T0) for p in prompts]
    assert await asyncio.gather(*posted) == [True] * 40
    assert {p.posted_at for s in sessions if s is not None for p in await store.prompts(s.id) if p.position == 1} == {
        T0
    }
