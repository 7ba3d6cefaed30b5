"""The recap's tallies (migration 0003) always say what a brute-force count of the replies says.

Every path a reply's contribution can change by is driven here: duplicate deliveries, deletions
before and after their reply, reactions added, removed, re-added, stale and early, edits, a member
forgotten, in batches the writer reorders, across two sessions. The updates nothing makes (a reply
moved, re-timed or un-deleted) are refused by the schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sessions.errors import StorageError
from sessions.model import ChannelRef, MessageRef
from sessions.recap import build_recap
from sessions.recap.story import _timeline
from sessions.records import NewPrompt, NewReply, NewSession, Participation, PeopleWhoWrote, SessionRecord, TimeBin
from storage.sqlite import SqliteStore
from storage.sqlite.migrate import migrations
from tests.recap.conftest import CHANNEL as DAY_CHANNEL
from tests.recap.conftest import new_day

T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
PLATFORM = "slack"
PROMPTS = 3
PEOPLE = ("U1", "U2", "U3", "U4")  # they reply and react, so forgetting one touches both

# The brute force: standing replies straight from the table, counted in Python.
STANDING = (
    "SELECT prompt_id, platform, author_id, created_at, reactions FROM replies "
    "WHERE session_id = ? AND deleted_at IS NULL"
)
# Every reaction present on the session's replies, deleted replies' included (they keep counting).
VOTES = (
    "SELECT x.channel_id, x.message_id, x.user_id FROM reactions AS x JOIN replies AS r "
    "ON r.platform = x.platform AND r.channel_id = x.channel_id AND r.message_id = x.message_id "
    "WHERE r.session_id = ? AND x.present = 1"
)
# A reaction kept although its message is unknown: what the folding trigger is for. The store's
# own statement only keeps reactions on known replies, so this is the schema's path, not the API's.
EARLY_REACTION = (
    "INSERT INTO reactions (platform, channel_id, message_id, user_id, emoji, present, changed_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (platform, channel_id, message_id, user_id, emoji) DO UPDATE "
    "SET present = excluded.present, changed_at = excluded.changed_at WHERE excluded.changed_at >= reactions.changed_at"
)
MOVE = (
    "UPDATE replies SET session_id = ?, prompt_id = ?, author_id = ?, created_at = ? "
    "WHERE platform = ? AND channel_id = ? AND message_id = ?"
)
RETIME = "UPDATE replies SET created_at = ? WHERE platform = ? AND channel_id = ? AND message_id = ?"
UNDELETE = "UPDATE replies SET deleted_at = NULL WHERE platform = ? AND channel_id = ? AND message_id = ?"

# (origin offset from T0 in seconds, bin width): on minute boundaries (the tally) and off them
# (the scan), with replies before the origin (negative bins) and after it.
BINNINGS = (
    (0, 60.0),
    (0, 900.0),
    (-3600, 120.0),
    (7 * 60, 3600.0),
    (10 * 3600, 300.0),
    (-86400, 86400.0),
    (0, 10.0),
    (0, 30.0),
    (30, 900.0),
    (0.25, 60.0),
    (0, 90.0),
)

_channels = itertools.count(1)


def new_session(channel: ChannelRef, *, timezone: str = "UTC", start: datetime = T0) -> NewSession:
    return NewSession(
        plan_name="p",
        title="Tallies",
        intro="Intro",
        timezone=timezone,
        channel=channel,
        anonymous=False,
        started_by="UORG",
        started_at=start,
        recap_at=start + timedelta(hours=8),
        prompts=tuple(NewPrompt(text=f"q{i}", due_at=start + timedelta(hours=i)) for i in range(PROMPTS)),
    )


@dataclass(frozen=True)
class Place:
    """A session under test: its record, prompt ids and channel."""

    session: SessionRecord
    prompts: tuple[int, ...]
    channel: ChannelRef

    @classmethod
    async def create(cls, store: SqliteStore, **extra: Any) -> Place:
        channel = ChannelRef(platform=PLATFORM, channel_id=f"C{next(_channels)}")
        session = await store.create_session(new_session(channel, **extra))
        assert session is not None
        return cls(session, tuple(p.id for p in await store.prompts(session.id)), channel)

    def ref(self, message_id: str) -> MessageRef:
        return MessageRef(channel=self.channel, message_id=message_id)

    def reply(self, message_id: str, prompt: int, author: str, offset_ms: int) -> NewReply:
        return NewReply(
            session_id=self.session.id,
            prompt_id=self.prompts[prompt],
            platform=PLATFORM,
            channel_id=self.channel.channel_id,
            message_id=message_id,
            author_id=author,
            author_name=author.lower(),
            text=f"reply {message_id}",
            created_at=T0 + timedelta(milliseconds=offset_ms),
        )


async def assert_tallies_right(store: SqliteStore, session_id: int) -> None:
    rows = [tuple(r) for r in await store._all(STANDING, (session_id,))]

    minutes: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for prompt, _, _, created, reactions in rows:
        minutes[(prompt, math.floor(created / 60))][0] += 1
        minutes[(prompt, math.floor(created / 60))][1] += reactions
    per_author = Counter((platform, author) for _, platform, author, _, _ in rows)
    per_prompt = Counter(prompt for prompt, _, _ in {(r[0], r[1], r[2]) for r in rows})

    # The tables themselves: exactly the counts, and no row for anything that counts nothing.
    got_minutes = await store._all(
        "SELECT prompt_id, minute, replies, reactions FROM tally_by_minute WHERE session_id = ?", (session_id,)
    )
    assert {(r[0], r[1]): [r[2], r[3]] for r in got_minutes} == dict(minutes)
    got_authors = await store._all(
        "SELECT platform, author_id, replies FROM tally_by_author WHERE session_id = ?", (session_id,)
    )
    assert {(r[0], r[1]): r[2] for r in got_authors} == dict(per_author)
    got_prompts = await store._all("SELECT prompt_id, people FROM tally_by_prompt WHERE session_id = ?", (session_id,))
    assert {r[0]: r[1] for r in got_prompts} == dict(per_prompt)

    # And what the recap and `/popup status` ask.
    distribution = tuple(PeopleWhoWrote(replies=n, people=k) for n, k in sorted(Counter(per_author.values()).items()))
    assert await store.recap_participants(session_id) == Participation(
        people_per_prompt=dict(per_prompt), distribution=distribution
    )
    # Each reply's votes: the members with a reaction present on it, its author left out.
    voters: dict[tuple[str, str], set[str]] = defaultdict(set)
    for channel, message, user in await store._all(VOTES, (session_id,)):
        voters[(channel, message)].add(user)
    got_votes = await store._all(
        "SELECT channel_id, message_id, author_id, reactions FROM replies WHERE session_id = ?", (session_id,)
    )
    expected_votes = {(r[0], r[1]): len(voters[(r[0], r[1])] - {r[2]}) for r in got_votes}
    assert {(r[0], r[1]): r[3] for r in got_votes} == expected_votes

    stats = await store.session_stats(session_id)
    assert stats.replies == len(rows)
    assert stats.participants == len(per_author)
    assert stats.reactions == sum(r[4] for r in rows)
    assert stats.replies_per_prompt == dict(Counter(r[0] for r in rows))
    for shift, width in BINNINGS:
        origin = T0 + timedelta(seconds=shift)
        bins: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
        for prompt, _, _, created, reactions in rows:
            index = math.floor((created - origin.timestamp()) / width)
            bins[(prompt, index)][0] += 1
            bins[(prompt, index)][1] += reactions
        expected = sorted(TimeBin(p, b, n, r) for (p, b), (n, r) in bins.items())
        got = await store.recap_time_bins(session_id, origin, width)
        assert got == expected, (shift, width)
        assert all(type(row) is TimeBin for row in got)


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


async def apply(store: SqliteStore, places: Sequence[Place], messages: Sequence[Sequence[Any]], ev: Any) -> None:
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
        await store._writer.write(
            (EARLY_REACTION, (*key, user, emoji, int(added), (T0 + timedelta(seconds=when)).timestamp()))
        )
    else:
        assert kind == "edit"
        await store.edit_reply(where.ref(message_id), "edited", at=T0 + timedelta(seconds=ev[4]), keep_if_unknown=ev[3])


def test_tallies_match_a_brute_force_count_whatever_happens(tmp_path: Path) -> None:
    # Hypothesis drives sync functions, so every example runs on one persistent loop of our own;
    # each example gets two fresh sessions in fresh channels of the same store.
    with asyncio.Runner() as runner:
        store = runner.run(SqliteStore.open(tmp_path / "tallies.db"))

        async def run(shapes: list[list[Any]], batches: list[list[Any]]) -> None:
            places = [await Place.create(store), await Place.create(store)]
            for batch in batches:
                # Concurrent writes share a transaction, grouped by statement: another order again.
                await asyncio.gather(*(apply(store, places, shapes, ev) for ev in batch))
                for where in places:
                    await assert_tallies_right(store, where.session.id)

        @settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(
            shapes=st.lists(st.lists(message, min_size=1, max_size=6), min_size=2, max_size=2),
            batches=st.lists(st.lists(event, min_size=1, max_size=6), min_size=1, max_size=8),
        )
        def check(shapes: list[list[Any]], batches: list[list[Any]]) -> None:
            runner.run(run(shapes, batches))

        try:
            check()
            assert runner.run(store.integrity_check()) == "ok"
        finally:
            runner.run(store.close())


# -- the same paths, one by one -------------------------------------------------------------------


async def test_each_path_keeps_the_tallies_right(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "paths.db")
    try:
        a, b = await Place.create(store), await Place.create(store)
        at = T0 + timedelta(minutes=30)

        async def check() -> None:
            await assert_tallies_right(store, a.session.id)
            await assert_tallies_right(store, b.session.id)

        await store.add_reply(a.reply("1", 0, "U1", 60_000))
        await store.add_reply(a.reply("1", 0, "U1", 60_000))  # redelivered
        await store.add_reply(a.reply("2", 0, "U1", 61_000))  # same person, prompt and minute
        await store.add_reply(b.reply("1", 0, "U1", 60_000))  # same message id, other channel
        before_1970 = -round((T0 - datetime(1969, 12, 31, 23, 59, 30, tzinfo=UTC)).total_seconds() * 1000)
        await store.add_reply(b.reply("2", 1, "U2", before_1970))  # a negative minute floors, not truncates
        await check()
        await store.delete_reply(a.ref("3"), at=at)  # before its reply
        await store._writer.write((EARLY_REACTION, (PLATFORM, a.channel.channel_id, "4", "U2", "a", 1, at.timestamp())))
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
            assert await store._all(f"SELECT * FROM {table} WHERE session_id = ?", (a.session.id,)) == []
        assert await store.recap_participants(b.session.id) == Participation(
            people_per_prompt={b.prompts[0]: 1, b.prompts[1]: 1}, distribution=(PeopleWhoWrote(replies=1, people=2),)
        )
    finally:
        await store.close()


async def test_moving_retiming_or_undeleting_a_reply_is_refused(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "refused.db")
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
                await store._writer.write((sql, params))
            await assert_tallies_right(store, a.session.id)
            await assert_tallies_right(store, b.session.id)
        # What the store does still works: a deletion time set once, a reaction on a standing reply.
        await store.set_reaction(a.ref("1"), "U2", "a", added=True, at=T0 + timedelta(minutes=6))
        await assert_tallies_right(store, a.session.id)
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
    tmp_path: Path, zone: str, start: datetime, span_hours: float
) -> None:
    store = await SqliteStore.open(tmp_path / "zones.db")
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


# -- migration -------------------------------------------------------------------------------------


def _schema_2(path: Path) -> None:
    """A database as Popup left it before migration 0003, with a session's replies in it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for number, script in migrations():
            if number <= 2:
                db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
        db.execute("BEGIN")
        for session_id in (1, 2):
            db.execute(
                "INSERT INTO sessions VALUES (?, 'p', 't', 'i', 'UTC', 'running', 0, 'U0', ?, ?, NULL)",
                (session_id, T0.timestamp(), T0.timestamp() + 8 * 3600),
            )
            db.execute("INSERT INTO session_channels VALUES (?, 0, ?, ?)", (session_id, PLATFORM, f"old{session_id}"))
            for position in range(PROMPTS):
                db.execute(
                    "INSERT INTO prompts (session_id, position, text, due_at, state) VALUES (?, ?, 'q', ?, 'posted')",
                    (session_id, position + 1, T0.timestamp() + position * 3600),
                )
        prompts = {
            s: [r[0] for r in db.execute("SELECT id FROM prompts WHERE session_id = ? ORDER BY position", (s,))]
            for s in (1, 2)
        }
        # Through the schema-2 triggers, as the bot would have written them: a deletion before its
        # reply, reactions, a deletion after.
        db.execute("INSERT INTO deletions VALUES (?, 'old1', 'early', ?)", (PLATFORM, T0.timestamp()))
        for n in range(200):
            session_id = 1 + n % 2
            db.execute(
                "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
                "author_name, text, created_at) VALUES (?, ?, ?, ?, ?, ?, 'name', 'text', ?)",
                (
                    session_id,
                    prompts[session_id][n % PROMPTS],
                    PLATFORM,
                    f"old{session_id}",
                    f"r{n}",
                    f"U{n % 7}",
                    T0.timestamp() + n * 97.5,
                ),
            )
            if n % 3 == 0:
                db.execute(
                    "INSERT INTO reactions VALUES (?, ?, ?, 'UR', 'a', 1, ?)",
                    (PLATFORM, f"old{session_id}", f"r{n}", T0.timestamp()),
                )
            if n % 11 == 0:
                db.execute(
                    "INSERT INTO deletions VALUES (?, ?, ?, ?)", (PLATFORM, f"old{session_id}", f"r{n}", T0.timestamp())
                )
        db.execute(
            "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
            "author_name, text, created_at) VALUES (1, ?, ?, 'old1', 'early', 'U1', 'name', 'text', ?)",
            (prompts[1][0], PLATFORM, T0.timestamp()),
        )
        db.execute("COMMIT")
    finally:
        db.close()


async def test_migration_counts_what_is_already_there(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _schema_2(path)
    store = await SqliteStore.open(path)
    try:
        # Migrated through 0003 and every later migration: the newest schema.
        newest = migrations()[-1][0]
        assert newest >= 3
        assert [tuple(row) for row in await store._all("PRAGMA user_version", ())] == [(newest,)]
        for session_id in (1, 2):
            await assert_tallies_right(store, session_id)
        assert (await store.session_stats(1)).replies == 100 - 10  # r0, r22, ... deleted; "early" too
        # And they keep counting from there, with a deletion that arrived before the upgrade.
        session = await store.get_session(1)
        assert session is not None
        old = Place(
            session, tuple(p.id for p in await store.prompts(1)), ChannelRef(platform=PLATFORM, channel_id="old1")
        )
        await store.delete_reply(old.ref("late"), at=T0)
        await store.add_reply(old.reply("late", 2, "U9", 1000))
        await store.add_reply(old.reply("new", 2, "U9", 2000))
        await store.set_reaction(old.ref("r2"), "UR", "a", added=True, at=T0)
        await store.delete_reply(old.ref("r4"), at=T0)
        assert await store.forget_author(1, PLATFORM, "U3") > 0
        for session_id in (1, 2):
            await assert_tallies_right(store, session_id)
    finally:
        await store.close()


# -- one vote per member per reply, and none from its author ----------------------------------------


async def votes(store: SqliteStore, session_id: int) -> dict[str, int]:
    return {reply.message_id: reply.reactions async for reply in store.iter_replies(session_id)}


async def test_a_member_votes_once_per_reply_and_never_for_their_own(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "votes.db")
    try:
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
        await assert_tallies_right(store, sid)

        # Taking back some of one's emoji keeps the vote; taking back the last one ends it.
        for emoji, counted in (("a", 2), ("b", 2), ("c", 1)):
            await store.set_reaction(where.ref("liked"), "U3", emoji, added=False, at=at + timedelta(seconds=1))
            assert (await votes(store, sid))["liked"] == counted
        await store.set_reaction(where.ref("liked"), "U3", "a", added=True, at=at)  # stale: newest change wins
        assert (await votes(store, sid))["liked"] == 1
        await store.set_reaction(where.ref("liked"), "U3", "z", added=True, at=at + timedelta(seconds=2))
        assert (await votes(store, sid))["liked"] == 2
        await assert_tallies_right(store, sid)

        # The ranking the recap's highlights come from sees the same.
        async with contextlib.aclosing(store.recap_ranked_rows(sid, where.prompts[0])) as ranked:
            first = [row async for batch in ranked for row in batch]
        assert [(row.text, row.reactions) for row in first] == [("reply liked", 2), ("reply own", 1)]

        # Forgetting a member with two emoji on a reply takes exactly one vote away.
        await store.add_reply(where.reply("u4", 1, "U4", 3000))
        await store.forget_author(sid, PLATFORM, "U4")
        assert await votes(store, sid) == {"own": 1, "liked": 1}
        await assert_tallies_right(store, sid)
    finally:
        await store.close()


async def test_early_reactions_fold_in_as_one_vote_per_member_without_the_author(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "early.db")
    try:
        where = await Place.create(store)
        at = (T0 + timedelta(minutes=1)).timestamp()
        key = (PLATFORM, where.channel.channel_id, "m1")
        for user, emoji in (("U1", "a"), ("U1", "b"), ("U2", "a"), ("U2", "b"), ("U3", "a")):
            await store._writer.write((EARLY_REACTION, (*key, user, emoji, 1, at)))
        await store.add_reply(where.reply("m1", 0, "U1", 1000))  # U1 wrote it: their two emoji do not count
        assert await votes(store, where.session.id) == {"m1": 2}
        await assert_tallies_right(store, where.session.id)
    finally:
        await store.close()


async def test_the_highlights_of_a_recap_cannot_be_gamed_with_many_emoji(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "recap.db")
    try:
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
    finally:
        await store.close()


async def test_migration_4_recounts_votes_already_gamed(tmp_path: Path) -> None:
    path = tmp_path / "schema3.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        for number, script in migrations():
            if number <= 3:
                db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO sessions VALUES (1, 'p', 't', 'i', 'UTC', 'running', 0, 'U0', ?, ?, NULL)",
            (T0.timestamp(), T0.timestamp() + 8 * 3600),
        )
        db.execute("INSERT INTO session_channels VALUES (1, 0, ?, 'old')", (PLATFORM,))
        db.execute("INSERT INTO prompts (session_id, position, text, due_at, state) VALUES (1, 1, 'q', ?, 'posted')",
                   (T0.timestamp(),))
        for n, author in enumerate(("U1", "U2", "U3")):
            db.execute(
                "INSERT INTO replies (session_id, prompt_id, platform, channel_id, message_id, author_id, "
                "author_name, text, created_at) VALUES (1, 1, ?, 'old', ?, ?, 'name', 'text', ?)",
                (PLATFORM, f"r{n}", author, T0.timestamp() + n),
            )
        # r0: its author's five emoji and one of another member's; r1: two members, two emoji each;
        # r2: deleted, with its author's emoji (it stays out of the tallies either way).
        reactions = [("r0", "U1", e) for e in "abcde"] + [("r0", "U2", "a")]
        reactions += [("r1", u, e) for u in ("U3", "U4") for e in "ab"] + [("r2", "U3", "a")]
        for message, user, emoji in reactions:
            db.execute("INSERT INTO reactions VALUES (?, 'old', ?, ?, ?, 1, ?)",
                       (PLATFORM, message, user, emoji, T0.timestamp()))
        db.execute("INSERT INTO deletions VALUES (?, 'old', 'r2', ?)", (PLATFORM, T0.timestamp()))
        db.execute("COMMIT")
        assert [r[0] for r in db.execute("SELECT reactions FROM replies ORDER BY id")] == [6, 4, 1]  # as 0003 counted
    finally:
        db.close()
    store = await SqliteStore.open(path)
    try:
        assert await votes(store, 1) == {"r0": 1, "r1": 2}
        assert [r[0] for r in await store._all("SELECT reactions FROM replies ORDER BY id", ())] == [1, 2, 0]
        await assert_tallies_right(store, 1)
        assert (await store.session_stats(1)).reactions == 3
    finally:
        await store.close()
