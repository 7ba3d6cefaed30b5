"""The labelled day (``data/learning_day.txt``) and the measures of how well themes recover its ideas.

The adjusted Rand index (Hubert and Arabie, 1985) is computed here from its definition, over the
replies that carry an idea; a reply a method leaves out of every theme counts as one more group of
its own ("no theme"), so leaving replies out costs what it should.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from math import comb
from pathlib import Path

from storage.sqlite import SqliteStore
from tests.recap.conftest import Day, new_day

DATA = Path(__file__).parent / "data" / "learning_day.txt"


@dataclass(frozen=True, slots=True)
class LabelledReply:
    prompt: int
    author: str
    name: str
    idea: str | None
    reactions: int
    text: str


@dataclass(frozen=True, slots=True)
class LabelledDay:
    prompts: tuple[str, ...]
    replies: tuple[LabelledReply, ...]


def read_day(path: Path = DATA) -> LabelledDay:
    prompts: list[str] = []
    replies: list[LabelledReply] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("@"):
            prompts.append(line.split(" ", 1)[1])
            continue
        prompt, author, name, idea, reactions, text = line.split("|", 5)
        replies.append(LabelledReply(int(prompt), author, name, None if idea == "-" else idea, int(reactions), text))
    return LabelledDay(tuple(prompts), tuple(replies))


async def store_day(store: SqliteStore, day: LabelledDay | None = None) -> tuple[Day, dict[int, str | None]]:
    """The day in the store; returns it and each reply id's idea."""
    day = day or read_day()
    built = await new_day(store, prompts=day.prompts, title="Who makes learning culture?")
    ideas: dict[int, str | None] = {}
    for i, reply in enumerate(day.replies):
        minutes = 1 + i % 50
        await built.reply(
            reply.prompt, reply.text, author=reply.author, name=reply.name, minutes=minutes, reactions=reply.reactions
        )
    async for record in store.iter_replies(built.session.id):
        ideas[record.id] = next(r.idea for r in day.replies if r.text == record.text and r.author == record.author_id)
    return built, ideas


def adjusted_rand_index(truth: Sequence[Hashable], found: Sequence[Hashable]) -> float:
    """ARI of two labellings of the same items: 1 for the same partition, about 0 for chance."""
    assert len(truth) == len(found)
    n = len(truth)
    if n < 2:
        return 1.0
    pairs = sum(comb(c, 2) for c in Counter(zip(truth, found, strict=True)).values())
    rows = sum(comb(c, 2) for c in Counter(truth).values())
    cols = sum(comb(c, 2) for c in Counter(found).values())
    expected = rows * cols / comb(n, 2)
    best = (rows + cols) / 2
    if best == expected:
        return 1.0
    return (pairs - expected) / (best - expected)


def purity(truth: Sequence[Hashable], found: Sequence[Hashable]) -> float:
    """Share of items whose group's most common true label is their own."""
    groups: dict[Hashable, Counter[Hashable]] = {}
    for t, f in zip(truth, found, strict=True):
        groups.setdefault(f, Counter())[t] += 1
    return sum(c.most_common(1)[0][1] for c in groups.values()) / max(1, len(truth))


def score(ideas: Mapping[int, str | None], theme_of: Mapping[int, Hashable]) -> tuple[float, float]:
    """(ARI, purity) over the replies that carry an idea; ``theme_of`` maps reply id to its theme."""
    labelled = sorted(rid for rid, idea in ideas.items() if idea is not None)
    truth = [ideas[rid] for rid in labelled]
    found = [theme_of.get(rid, "no theme") for rid in labelled]
    return adjusted_rand_index(truth, found), purity(truth, found)
