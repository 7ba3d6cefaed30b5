"""Which replies the community liked most: reactions first, then substance, deterministically.

"Substance" is the number of distinct meaningful words in a reply (three letters or more, not a
stopword, case-folded). Unlike raw length it does not reward repetition or padding: "mentor mentor
mentor" has no more substance than "mentor". Ties after that go to the earlier reply, then the
lower id, so the ranking never depends on the order rows happen to arrive in.

The store streams a prompt's replies most-reacted first and, within equal reactions, largest first
(by size in bytes). A reply of ``n`` bytes has at most ``n`` characters and so at most
``(n + 1) // 4`` such words (each takes three characters and a separator). Once the heap is full
the scan stops at the first row that cannot beat the weakest kept reply: on real sessions, where
most replies share a reaction count, that is long before the end of the prompt.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from sessions.recap.stopwords import STOPWORDS
from sessions.records import RankedRow
from sessions.store import RecapQueries

_WORD = re.compile(r"[^\W_]{3,}")
_MIN_WORD = 3


def substance(text: str) -> int:
    """Distinct meaningful words in ``text``."""
    return _substance(text, STOPWORDS, _WORD.findall)


# The ASCII fast path. There, [^\W_] is [A-Za-z0-9] and casefold() is lower(): one
# bytes.translate folds the letters and blanks everything else, and split() gives the same
# words as _WORD.findall, in C. Words under three characters are dropped by set difference, so
# they join the stopwords: all 1,332 of them ([a-z0-9]{1,2}).
_ASCII_WORDS = bytes(c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 or 48 <= c <= 57 else 32 for c in range(256))
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@cache
def _ascii_ignored() -> frozenset[bytes]:
    short = [a for a in _ALNUM] + [a + b for a in _ALNUM for b in _ALNUM]
    return frozenset(w.encode() for w in (*STOPWORDS, *short) if w.isascii())


def _substance(text: str, stop: frozenset[str], findall: Callable[[str], list[str]]) -> int:
    if text.isascii():
        return len(set(text.encode().translate(_ASCII_WORDS).split()).difference(_ascii_ignored()))
    return len({w.casefold() for w in findall(text)}.difference(stop))


def substance_bound(length: int) -> int:
    """The most substance a text of ``length`` characters can have (see the module docstring)."""
    return (length + 1) // (_MIN_WORD + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class RankedReply:
    id: int
    prompt_id: int
    reactions: int
    substance: int
    created_at: datetime
    edited: bool
    author_name: str
    text: str
    platform: str
    channel_id: str  # the reply's own channel (on Discord, its thread)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranking:
    """A prompt's best replies, best first, and how many rows the scan had to look at."""

    replies: tuple[RankedReply, ...]
    examined: int


# Heap entries: (reactions, substance, -created_at, -id, row). Larger is better, so the weakest
# kept reply sits at heap[0]; ids are unique, so comparison never reaches the row itself.
_Entry = tuple[int, int, float, int, RankedRow]


async def rank_prompt(queries: RecapQueries, session_id: int, prompt_id: int, limit: int) -> Ranking:
    """The ``limit`` best replies under a prompt, streaming and with bounded memory."""
    if limit <= 0:
        return Ranking(replies=(), examined=0)
    heap: list[_Entry] = []
    examined = 0
    stop = STOPWORDS
    findall = _WORD.findall
    done = False
    async with aclosing(queries.recap_ranked_rows(session_id, prompt_id, best=limit)) as batches:
        async for batch in batches:
            for row in batch:
                reactions = row.reactions
                if len(heap) >= limit:
                    weakest = heap[0]
                    # Rows come by reactions, then size, descending: nothing after this can win.
                    if reactions < weakest[0] or (reactions == weakest[0] and substance_bound(row.size) < weakest[1]):
                        done = True
                        break
                examined += 1
                entry = (reactions, _substance(row.text, stop, findall), -row.created_at, -row.id, row)
                if len(heap) < limit:
                    heapq.heappush(heap, entry)
                elif entry > heap[0]:
                    heapq.heapreplace(heap, entry)
            if done:
                break
    ranked = sorted(heap, reverse=True)
    return Ranking(
        replies=tuple(
            RankedReply(
                id=row.id,
                prompt_id=prompt_id,
                reactions=row.reactions,
                substance=score,
                created_at=datetime.fromtimestamp(row.created_at, UTC),
                edited=bool(row.edited),
                author_name=row.author_name,
                text=row.text,
                platform=row.platform,
                channel_id=row.channel_id,
            )
            for _, score, _, _, row in ranked
        ),
        examined=examined,
    )
