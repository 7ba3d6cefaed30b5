"""The recap's fast paths give exactly what the plain computations they replace give."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sessions.model import ChannelRef
from sessions.recap.article import _Clock, md_escape
from sessions.recap.ranking import RankedReply, substance
from sessions.recap.stopwords import STOPWORDS
from sessions.recap.story import Counts, gather_story
from sessions.recap.themes import Corpus
from storage.sqlite import SqliteStore
from tests.recap.conftest import new_day, sample_day

WORDS = (
    "the THE a1 ab Ab abc ABC x_yz __init__ 123 12 don't e-mail learning Learning code-review Code_Review "
    "ünï café STRASSE straße İstanbul ﬁle 1. - + = # * _ [x](y) <b> 日本語"
).split()
GLUE = (" ", "  ", "", ",", ".", "\t", "\n", "_", "-", "'")


def _texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(WORDS) + rng.choice(GLUE) for _ in range(rng.randint(0, 10))) for _ in range(count)]


def test_substance_matches_the_regex_definition() -> None:
    word = re.compile(r"[^\W_]{3,}")
    stop = STOPWORDS
    for text in _texts(1, 5000):
        assert substance(text) == len({w.casefold() for w in word.findall(text)} - stop), text


def test_corpus_index_matches_the_regex_definition() -> None:
    token = re.compile(r"\w+")
    texts = _texts(2, 3000)
    wanted = {"the", "abc", "x_yz", "__init__", "123", "12", "learning", "code", "review", "code_review", "ünï", "a1"}
    wanted |= {"strasse", "file", "istanbul", "日本語", "ab", "don"}
    replies = [
        RankedReply(
            id=i,
            prompt_id=1,
            reactions=0,
            substance=0,
            created_at=datetime.now(UTC),
            edited=False,
            author_name="",
            text=text,
            platform="console",
            channel_id="C1",
        )
        for i, text in enumerate(texts)
    ]
    expected: dict[str, list[int]] = {w: [] for w in wanted}
    for position, text in enumerate(texts):
        for w in wanted.intersection(token.findall(text.casefold())):
            expected[w].append(position)
    assert Corpus.of(replies, wanted).index == expected


def test_md_escape_fast_path_only_skips_what_needs_nothing() -> None:
    full = re.compile(r"[\\`*_\[\]<>&|~#\n\r\u2028\u2029\x85\x0b\x0c]|^[ \t]*(?:[+\-=]|\d+[.)])")
    for text in _texts(3, 3000):
        if not full.search(text):
            assert md_escape(text) == text


def test_clock_matches_astimezone() -> None:
    rng = random.Random(4)
    zones = ("Europe/Amsterdam", "Australia/Lord_Howe", "Asia/Kathmandu", "America/St_Johns", "Pacific/Chatham", "UTC")
    starts = (
        datetime(2026, 3, 29, 0, 0, tzinfo=UTC),  # Amsterdam's clocks go forward at 01:00 UTC
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        datetime(2026, 4, 4, 14, 0, tzinfo=UTC),  # Lord Howe: back half an hour at 15:00 UTC
        datetime(2026, 6, 1, 7, 0, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 0, tzinfo=UTC),  # local mean time: offsets in odd seconds
    )
    for name in zones:
        zone = ZoneInfo(name)
        for seconds in (False, True):
            clock = _Clock(zone, seconds=seconds)
            pattern = "%H:%M:%S" if seconds else "%H:%M"
            for start in starts:
                for _ in range(300):
                    moment = start + timedelta(seconds=rng.uniform(0, 4 * 3600))
                    assert clock(moment) == moment.astimezone(zone).strftime(pattern), (name, moment)


async def test_ranked_rows_with_best_leave_out_only_rows_that_cannot_make_it(store: SqliteStore) -> None:
    rng = random.Random(5)
    day = await new_day(store, prompts=("Rank?",), channel=ChannelRef(platform="slack", channel_id="CB"))
    for i in range(40):
        await day.reply(1, f"reply {i}", author=f"U{i}", minutes=i, reactions=rng.choice([0, 0, 1, 2, 3]))
    first = day.prompts[0].id
    everything = [row for batch in [b async for b in store.recap_ranked_rows(day.session.id, first)] for row in batch]
    for best in (1, 5, 12, 39, 40, 41, 100):
        rows = [
            row
            for batch in [b async for b in store.recap_ranked_rows(day.session.id, first, best=best)]
            for row in batch
        ]
        floor = sorted((r.reactions for r in everything), reverse=True)[best - 1] if best <= len(everything) else -1
        assert rows == [r for r in everything if r.reactions >= floor], best


async def test_counts_are_handed_on_before_the_story_is_done(store: SqliteStore) -> None:
    day = await sample_day(store)
    seen: list[Counts] = []
    story = await gather_story(store, await day.fresh(), on_counts=seen.append)
    assert len(seen) == 1
    counts = seen[0]
    assert counts.timeline == story.timeline
    assert [counts.replies(p.prompt.id) for p in story.prompts] == [p.replies for p in story.prompts]
