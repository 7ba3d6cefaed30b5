"""The brute-force checker of the recap's tallies and of every reply's votes, and the sessions it
checks: shared by the contract suite (both stores) and the SQLite-only migration tests.

A tally (SQLite's migration 0003, PostgreSQL's 0001) must always say what a count of the replies
in Python says; a reply's votes (SQLite's 0004, PostgreSQL's 0004) are the members with a reaction
present on it, its author left out.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sessions.model import ChannelRef, MessageRef
from sessions.records import NewPrompt, NewReply, NewSession, Participation, PeopleWhoWrote, SessionRecord, TimeBin
from tests.store_contract.conftest import AnyStore, Backend

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
    async def create(cls, store: AnyStore, **extra: Any) -> Place:
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


async def assert_tallies_right(backend: Backend, store: AnyStore, session_id: int) -> None:
    rows = await backend.rows(store, STANDING, (session_id,))

    minutes: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for prompt, _, _, created, reactions in rows:
        minutes[(prompt, math.floor(created / 60))][0] += 1
        minutes[(prompt, math.floor(created / 60))][1] += reactions
    per_author = Counter((platform, author) for _, platform, author, _, _ in rows)
    per_prompt = Counter(prompt for prompt, _, _ in {(r[0], r[1], r[2]) for r in rows})

    # The tables themselves: exactly the counts, and no row for anything that counts nothing.
    got_minutes = await backend.rows(
        store, "SELECT prompt_id, minute, replies, reactions FROM tally_by_minute WHERE session_id = ?", (session_id,)
    )
    assert {(r[0], r[1]): [r[2], r[3]] for r in got_minutes} == dict(minutes)
    got_authors = await backend.rows(
        store, "SELECT platform, author_id, replies FROM tally_by_author WHERE session_id = ?", (session_id,)
    )
    assert {(r[0], r[1]): r[2] for r in got_authors} == dict(per_author)
    got_prompts = await backend.rows(
        store, "SELECT prompt_id, people FROM tally_by_prompt WHERE session_id = ?", (session_id,)
    )
    assert {r[0]: r[1] for r in got_prompts} == dict(per_prompt)

    # And what the recap and `/popup status` ask.
    distribution = tuple(PeopleWhoWrote(replies=n, people=k) for n, k in sorted(Counter(per_author.values()).items()))
    assert await store.recap_participants(session_id) == Participation(
        people_per_prompt=dict(per_prompt), distribution=distribution
    )
    # Each reply's votes: the members with a reaction present on it, its author left out.
    voters: dict[tuple[str, str], set[str]] = defaultdict(set)
    for channel, message, user in await backend.rows(store, VOTES, (session_id,)):
        voters[(channel, message)].add(user)
    got_votes = await backend.rows(
        store, "SELECT channel_id, message_id, author_id, reactions FROM replies WHERE session_id = ?", (session_id,)
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


async def votes(store: AnyStore, session_id: int) -> dict[str, int]:
    """Each standing reply's votes, by message id."""
    return {reply.message_id: reply.reactions async for reply in store.iter_replies(session_id)}
