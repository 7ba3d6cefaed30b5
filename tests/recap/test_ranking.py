"""The ranking: reactions, then substance, then time and id — and its early stop never changes it."""

from __future__ import annotations

import random

from sessions.model import ChannelRef
from sessions.recap.ranking import rank_prompt, substance, substance_bound
from storage.sqlite import SqliteStore
from tests.recap.conftest import new_day

WORDS = ("learn", "team", "pairing", "café", "Zürich", "日本語の学習", "yes", "the", "and", "mentor", "a", "review")


def test_substance_counts_distinct_meaningful_words() -> None:
    assert substance("mentor mentor mentor mentor") == 1
    assert substance("The and of to") == 0  # stopwords only
    assert substance("Pairing with a mentor every week") == 3  # pairing, mentor, week ("every" is a stopword)
    assert substance("Learn LEARN learn") == 1  # case-folded
    assert substance("ab cd ef") == 0  # too short to carry meaning


def test_substance_bound_holds() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))
        text = text.replace(" ", rng.choice([" ", "", ",", "  "]), rng.randint(0, 3))
        assert substance(text) <= substance_bound(len(text.encode())), text


async def test_matches_a_full_sort(store: SqliteStore) -> None:
    for seed in range(25):
        rng = random.Random(seed)
        day = await new_day(store, prompts=("Rank?",), channel=ChannelRef(platform="slack", channel_id=f"C{seed}"))
        n = rng.randint(0, 40)
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 9)))
            await day.reply(1, text, author=f"U{i}", minutes=rng.choice([1, 2, 3]), reactions=rng.choice([0, 0, 1, 2]))
        rows = [r async for r in store.iter_replies(day.session.id)]
        expected = sorted(rows, key=lambda r: (-r.reactions, -substance(r.text), r.created_at, r.id))
        for limit in (1, 3, 10, 50):
            ranking = await rank_prompt(store, day.session.id, day.prompts[0].id, limit)
            assert [r.id for r in ranking.replies] == [r.id for r in expected[:limit]], (seed, limit)
            assert [r.substance for r in ranking.replies] == [substance(r.text) for r in expected[:limit]]


async def test_stops_early_when_nothing_later_can_win(store: SqliteStore) -> None:
    day = await new_day(store, prompts=("Many?",))
    for i in range(30):
        await day.reply(1, f"ok {i}", author=f"U{i}", minutes=i)  # short, no reactions: cannot compete
    for i in range(3):
        await day.reply(1, f"Pairing and mentoring grow a learning culture {i}", author=f"V{i}", reactions=1)
    ranking = await rank_prompt(store, day.session.id, day.prompts[0].id, 3)
    assert all(r.author_name.startswith("Name of V") for r in ranking.replies)
    assert ranking.examined == 3  # the rows with fewer reactions were never read into Python
