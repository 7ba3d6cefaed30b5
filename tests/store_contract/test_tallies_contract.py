"""The recap's tallies always say what a brute-force count of the replies says, on every store
(SQLite's migration 0003, PostgreSQL's 0001); and a reply's votes are one per member, none from its
author (SQLite's 0004, PostgreSQL's 0004). The checker is tests/store_contract/tallies.py.

Every path a reply's contribution can change by is driven here: duplicate deliveries, deletions
before and after their reply, reactions added, removed, re-added, stale and early, edits, a member
forgotten, in batches the writer reorders, across two sessions. The updates nothing makes (a reply
moved, re-timed or un-deleted) are refused by the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions.errors import StorageError
from sessions.model import MessageRef
from sessions.recap import build_recap
from sessions.recap.story import _timeline
from sessions.records import Participation, PeopleWhoWrote
from storage.sqlite import SqliteStore
from tests.recap.conftest import CHANNEL as DAY_CHANNEL
from tests.recap.conftest import new_day
from tests.store_contract.conftest import AnyStore, Backend
from tests.store_contract.tallies import (
    EARLY_REACTION,
    MOVE,
    PEOPLE,
    PLATFORM,
    PROMPTS,
    RETIME,
    T0,
    UNDELETE,
    Place,
    assert_tallies_right,
    votes,
)

# -- hypothesis: any mix of events, in any order ------------------------------------------------

offsets = st.one_of(
    st.integers(min_value=-2 * 3600 * 1000, max_value=12 * 3600 * 1000),  # before the origin too
    st.sampled_from([0, 59_999, 60_000, 60_001, -1, 900_000, 3_600_000 - 1]),  # minute and bin edges
)
message = st.tuples(st.integers(0, PROMPTS - 1), st.sampled_from(PEOPLE), offsets)
place = st.integers(0, 1)
slot = st.integers(0, 5)
at = st.integers(0, 4)  # few distinct times: ties and stale redeliveries
event = st.one_of(
    st.tuples(st.just("reply"), place, slot),
    st.tuples(st.just("delete"), place, slot, at),
    st.tuples(st.just("react"), place, slot, st.sampled_from(PEOPLE), st.sampled_from("ab"), st.booleans(), at),
    st.tuples(st.just("early"), place, slot, st.sampled_from(PEOPLE), st.sampled_from("ab"), st.booleans(), at),
    st.tuples(st.just("edit"), place, slot, st.booleans(), at),
    st.tuples(st.just("forget"), place, st.sampled_from(PEOPLE)),
)


async def apply(
    backend: Backend, store: AnyStore, places: Sequence[Place], messages: Sequence[Sequence[Any]], ev: Any
) -> None:
    kind, where = ev[0], places[ev[1]]
    if kind == "forget":
        await store.forget_author(where.session.id, PLATFORM, ev[2])
        return
    shape = messages[ev[1]]
    index = ev[2] % len(shape)
    message_id = f"m{ev[1]}.{index}"
    key = (PLATFORM, where.channel.channel_id, message_id)
    if kind == "reply":
        prompt, author, offset = shape[index]
        await store.add_reply(where.reply(message_id, prompt, author, offset))
    elif kind == "delete":
        await store.delete_reply(where.ref(message_id), at=T0 + timedelta(seconds=ev[3]))
    elif kind == "react":
        _, _, _, user, emoji, added, when = ev
        await store.set_reaction(where.ref(message_id), user, emoji, added=added, at=T0 + timedelta(seconds=when))
    elif kind == "early":
        _, _, _, user, emoji, added, when = ev
        await backend.write(
            store, EARLY_REACTION, (*key, user, emoji, int(added), (T0 + timedelta(seconds=when)).timestamp())
        )
    else:
        assert kind == "edit"
        await store.edit_reply(where.ref(message_id), "edited", at=T0 + timedelta(seconds=ev[4]), keep_if_unknown=ev[3])


def test_tallies_match_a_brute_force_count_whatever_happens(backend: Backend) -> None:
    # Hypothesis drives sync functions, so every example runs on one persistent loop of our own;
    # each example gets two fresh sessions in fresh channels of the same store.
    with asyncio.Runner() as runner:
        store = runner.run(backend.open())

        async def run(shapes: list[list[Any]], batches: list[list[Any]]) -> None:
            places = [await Place.create(store), await Place.create(store)]
            for batch in batches:
                # Concurrent writes share a transaction, grouped by statement: another order again.
                await asyncio.gather(*(apply(backend, store, places, shapes, ev) for ev in batch))
                for where in places:
                    await assert_tallies_right(backend, store, where.session.id)

        @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            shapes=st.lists(st.lists(message, min_size=1, max_size=6), min_size=2, max_size=2),
            batches=st.lists(st.lists(event, min_size=1, max_size=6), min_size=1, max_size=8),
        )
        def check(shapes: list[list[Any]], batches: list[list[Any]]) -> None:
            runner.run(run(shapes, batches))

        try:
            check()
            if isinstance(store, SqliteStore):
                assert runner.run(store.integrity_check()) == "ok"
        finally:
            runner.run(store.close())


# -- the same paths, one by one -------------------------------------------------------------------


async def test_each_path_keeps_the_tallies_right(backend: Backend) -> None:
    store = await backend.open()
    try:
        a, b = await Place.create(store), await Place.create(store)
        at = T0 + timedelta(minutes=30)

        async def check() -> None:
            await assert_tallies_right(backend, store, a.session.id)
            await assert_tallies_right(backend, store, b.session.id)

        await store.add_reply(a.reply("1", 0, "U1", 60_000))
        await store.add_reply(a.reply("1", 0, "U1", 60_000))  # redelivered
        await store.add_reply(a.reply("2", 0, "U1", 61_000))  # same person, prompt and minute
        await store.add_reply(b.reply("1", 0, "U1", 60_000))  # same message id, other channel
        before_1970 = -round((T0 - datetime(1969, 12, 31, 23, 59, 30, tzinfo=UTC)).total_seconds() * 1000)
        await store.add_reply(b.reply("2", 1, "U2", before_1970))  # a negative minute floors, not truncates
        await check()
        await store.delete_reply(a.ref("3"), at=at)  # before its reply
        await backend.write(store, EARLY_REACTION, (PLATFORM, a.channel.channel_id, "4", "U2", "a", 1, at.timestamp()))
        await store.add_reply(a.reply("3", 1, "U2", 120_000))
        await store.add_reply(a.reply("4", 1, "U2", 120_000))
        await check()
        assert (await store.recap_participants(a.session.id)).people_per_prompt == {a.prompts[0]: 1, a.prompts[1]: 1}
        for added, seconds in ((True, 1), (False, 2), (True, 1), (True, 3)):  # add, remove, stale, re-add
            await store.set_reaction(a.ref("1"), "U3", "a", added=added, at=at + timedelta(seconds=seconds))
            await check()
        await store.edit_reply(a.ref("1"), "edited", at=at)
        await store.delete_reply(a.ref("2"), at=at)
        await store.delete_reply(a.ref("2"), at=at)
        await check()
        await store.set_reaction(a.ref("2"), "U3", "a", added=True, at=at)  # on a deleted reply
        await check()
        await store.set_reaction(a.ref("4"), "U1", "b", added=True, at=at)
        assert await store.forget_author(a.session.id, PLATFORM, "U1") == 2
        await check()
        await store.forget_author(a.session.id, PLATFORM, "U2")
        await check()
        # Nothing of the forgotten is left in the tallies.
        for table in ("tally_by_minute", "tally_by_author", "tally_by_prompt"):
            assert await backend.rows(store, f"SELECT * FROM {table} WHERE session_id = ?", (a.session.id,)) == []
        assert await store.recap_participants(b.session.id) == Participation(
            people_per_prompt={b.prompts[0]: 1, b.prompts[1]: 1}, distribution=(PeopleWhoWrote(replies=1, people=2),)
        )
    finally:
        await store.close()


async def test_moving_retiming_or_undeleting_a_reply_is_refused(backend: Backend) -> None:
    store = await backend.open()
    try:
        a, b = await Place.create(store), await Place.create(store)
        await store.add_reply(a.reply("1", 0, "U1", 60_000))
        await store.add_reply(a.reply("2", 0, "U2", 60_000))
        await store.delete_reply(a.ref("2"), at=T0 + timedelta(minutes=5))
        key = (PLATFORM, a.channel.channel_id)
        later = (T0 + timedelta(hours=2)).timestamp()
        for sql, params in (
            (MOVE, (b.session.id, b.prompts[1], "U1", later, *key, "1")),  # to another session
            (MOVE, (a.session.id, a.prompts[1], "U1", T0.timestamp() + 60, *key, "1")),  # another prompt
            (MOVE, (a.session.id, a.prompts[0], "U3", T0.timestamp() + 60, *key, "1")),  # another author
            (RETIME, (later, *key, "1")),
            (UNDELETE, (*key, "2")),
        ):
            with pytest.raises(StorageError):
                await backend.write(store, sql, params)
            await assert_tallies_right(backend, store, a.session.id)
            await assert_tallies_right(backend, store, b.session.id)
        # What the store does still works: a deletion time set once, a reaction on a standing reply.
        await store.set_reaction(a.ref("1"), "U2", "a", added=True, at=T0 + timedelta(minutes=6))
        await assert_tallies_right(backend, store, a.session.id)
    finally:
        await store.close()


# -- the tally and the scan give the recap the same timeline ----------------------------------------


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        ("Europe/Amsterdam", T0),
        ("Asia/Kathmandu", T0),  # +05:45
        ("Pacific/Chatham", T0),  # +12:45
        ("Australia/Lord_Howe", datetime(2026, 4, 4, 14, 0, tzinfo=UTC)),  # back half an hour at 15:00 UTC
        ("America/St_Johns", T0),  # -02:30
        ("Africa/Monrovia", datetime(1971, 6, 1, 7, 0, tzinfo=UTC)),  # -00:44:30: midnight is off the minute
    ],
)
@pytest.mark.parametrize("span_hours", [0.1, 0.3, 2, 9, 30])  # 10 s, 30 s, ... hour-wide bins
async def test_timeline_is_the_same_from_tallies_and_from_the_replies(
    backend: Backend, zone: str, start: datetime, span_hours: float
) -> None:
    store = await backend.open()
    try:
        where = await Place.create(store, timezone=zone, start=start)
        shift = round((start - T0).total_seconds() * 1000)
        step = round(span_hours * 3600 * 1000 / 40)
        for i in range(41):
            await store.add_reply(where.reply(f"m{i}", i % PROMPTS, PEOPLE[i % 3], shift - 5000 + i * step))
        await store.set_reaction(where.ref("m7"), "U4", "a", added=True, at=start)
        await store.delete_reply(where.ref("m8"), at=start)
        prompts = await store.prompts(where.session.id)
        tallied = await _timeline(store, where.session, prompts)

        class Scanning:
            """The store, with every time bin read from the replies."""

            def __getattr__(self, name: str) -> Any:
                return getattr(store, name)

            async def recap_time_bins(self, session_id: int, origin: datetime, width: float) -> Any:
                return await store._recap.time_bins_from_replies(session_id, origin.timestamp(), width)

        scanned = await _timeline(Scanning(), where.session, prompts)  # RecapQueries, through __getattr__
        assert tallied == scanned
        assert sum(tallied[0].totals) == 40
        # Today's zones start their days on a minute boundary, so bins of whole minutes (any real
        # day's) come from the tally; Monrovia's old midnight at 00:44:30 UTC falls back to the scan.
        if tallied[0].width >= timedelta(minutes=1):
            assert (tallied[0].origin.timestamp() % 60 == 0) is (zone != "Africa/Monrovia")
    finally:
        await store.close()


# -- one vote per member per reply, and none from its author ----------------------------------------


async def test_a_member_votes_once_per_reply_and_never_for_their_own(backend: Backend, store: AnyStore) -> None:
    where = await Place.create(store)
    sid = where.session.id
    await store.add_reply(where.reply("own", 0, "U1", 1000))
    await store.add_reply(where.reply("liked", 0, "U2", 2000))
    at = T0 + timedelta(minutes=5)
    for emoji in "abcdefgh":  # the author games their own reply with every emoji there is
        await store.set_reaction(where.ref("own"), "U1", emoji, added=True, at=at)
    for user in ("U3", "U4"):  # two members like the other one, each with three emoji
        for emoji in "abc":
            await store.set_reaction(where.ref("liked"), user, emoji, added=True, at=at)
    await store.set_reaction(where.ref("own"), "U2", "a", added=True, at=at)  # one honest vote
    assert await votes(store, sid) == {"own": 1, "liked": 2}
    await assert_tallies_right(backend, store, sid)

    # Taking back some of one's emoji keeps the vote; taking back the last one ends it.
    for emoji, counted in (("a", 2), ("b", 2), ("c", 1)):
        await store.set_reaction(where.ref("liked"), "U3", emoji, added=False, at=at + timedelta(seconds=1))
        assert (await votes(store, sid))["liked"] == counted
    await store.set_reaction(where.ref("liked"), "U3", "a", added=True, at=at)  # stale: newest change wins
    assert (await votes(store, sid))["liked"] == 1
    await store.set_reaction(where.ref("liked"), "U3", "z", added=True, at=at + timedelta(seconds=2))
    assert (await votes(store, sid))["liked"] == 2
    await assert_tallies_right(backend, store, sid)

    # The ranking the recap's highlights come from sees the same.
    async with contextlib.aclosing(store.recap_ranked_rows(sid, where.prompts[0])) as ranked:
        first = [row async for batch in ranked for row in batch]
    assert [(row.text, row.reactions) for row in first] == [("reply liked", 2), ("reply own", 1)]

    # Forgetting a member with two emoji on a reply takes exactly one vote away (on PostgreSQL,
    # both of their emoji change in one statement).
    await store.add_reply(where.reply("u4", 1, "U4", 3000))
    await store.forget_author(sid, PLATFORM, "U4")
    assert await votes(store, sid) == {"own": 1, "liked": 1}
    await assert_tallies_right(backend, store, sid)


async def test_early_reactions_fold_in_as_one_vote_per_member_without_the_author(
    backend: Backend, store: AnyStore
) -> None:
    where = await Place.create(store)
    at = (T0 + timedelta(minutes=1)).timestamp()
    key = (PLATFORM, where.channel.channel_id, "m1")
    for user, emoji in (("U1", "a"), ("U1", "b"), ("U2", "a"), ("U2", "b"), ("U3", "a")):
        await backend.write(store, EARLY_REACTION, (*key, user, emoji, 1, at))
    await store.add_reply(where.reply("m1", 0, "U1", 1000))  # U1 wrote it: their two emoji do not count
    assert await votes(store, where.session.id) == {"m1": 2}
    await assert_tallies_right(backend, store, where.session.id)


async def test_the_highlights_of_a_recap_cannot_be_gamed_with_many_emoji(store: AnyStore) -> None:
    day = await new_day(store, prompts=("Only prompt?",))
    honest = await day.reply(1, "Pairing with a mentor taught me the most.", author="U1", reactions=2)
    gamed = await day.reply(1, "Me me me, the best answer of the day by far.", author="U2")
    for n in range(3, 6):
        await day.reply(1, f"Another answer, number {n}.", author=f"U{n}")
    for emoji in ("+1", "fire", "star", "heart", "tada", "rocket"):  # its author, six times over
        await store.set_reaction(
            MessageRef(channel=DAY_CHANNEL, message_id=gamed), "U2", emoji, added=True, at=T0 + timedelta(hours=1)
        )
    recap = await build_recap(store, await day.fresh())
    [section] = [s for s in recap.message.sections if s.heading.startswith("1. ")]
    top = section.quotes[0]
    assert (top.text, top.note) == (day.texts[honest], "2 reactions")
    assert [q.note for q in section.quotes if q.text == day.texts[gamed]] in ([], [""])  # no votes at all
