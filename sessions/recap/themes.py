"""The themes of the day: keyphrases per prompt (yake) and the ones that ran through the day.

yake is statistical and self-contained: no network, no model to download. It costs 20-40 µs
per word on this class of machine, so it reads a bounded sample: each prompt's best-liked replies
(in ranking order, itself deterministic) up to a share of :data:`THEME_WORD_BUDGET`. Small and
ordinary sessions fit whole; when they do not, :class:`ThemeSample` says how much was read and the
article says so.

Day themes come from every prompt's yake candidates: a phrase ranks higher the more prompts'
replies carry it, then by its best yake rank, then the more replies carry it; said once is not a
theme of the day. Each theme links to the replies that carry it (whole words, case-insensitive),
among the replies the article shows.

Determinism: yake's own ordering is by float score, and float sums over sets can differ in the last
bit between processes (string hashing is salted), so scores are rounded to 9 significant digits and
ties broken by the phrase itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import yake

from sessions.recap.ranking import RankedReply, stopwords

_log = logging.getLogger(__name__)

THEME_WORD_BUDGET = 6_000  # words read by yake per recap, shared among the prompts
MIN_WORDS_PER_PROMPT = 500
PROMPT_THEMES = 6
DAY_THEMES = 8
_MAX_NGRAM = 2  # two-word phrases ("code review"); three cost a fifth more time
_SENTENCE_END = ".!?…"
@dataclass(frozen=True, slots=True, kw_only=True)
class Theme:
    phrase: str
    score: float  # yake's score, lower is more relevant
    reply_ids: tuple[int, ...]  # replies carrying it, best-liked first


@dataclass(frozen=True, slots=True, kw_only=True)
class DayTheme:
    phrase: str
    prompt_ids: tuple[int, ...]  # prompts whose replies carry it, in timetable order
    reply_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThemeSample:
    replies: int  # replies read by yake
    of: int  # standing replies there were

    @property
    def complete(self) -> bool:
        return self.replies >= self.of


def word_budget(prompts_with_replies: int) -> int:
    """Each prompt's share of the budget."""
    if prompts_with_replies <= 0:
        return 0
    return max(MIN_WORDS_PER_PROMPT, THEME_WORD_BUDGET // prompts_with_replies)


def sample_texts(replies: Sequence[RankedReply], budget: int) -> list[str]:
    """The best-liked replies' texts until ``budget`` words, the last one cut to fit."""
    texts: list[str] = []
    left = budget
    for reply in replies:
        if left <= 0:
            break
        words = reply.text.split()
        if not words:
            continue
        if len(words) > left:
            words = words[:left]
        left -= len(words)
        texts.append(" ".join(words))
    return texts


def keyphrases(texts: Sequence[str], top: int) -> list[tuple[str, float]]:
    """yake's keyphrases for ``texts`` (each one its own sentence), best first."""
    document = "\n".join(t if t.rstrip().endswith(tuple(_SENTENCE_END)) else f"{t.rstrip()}." for t in texts)
    if not document.strip():
        return []
    # A fresh extractor per call: yake caches similarities on the instance, which would grow
    # without bound in a long-running bot.
    extractor = yake.KeywordExtractor(lan="en", n=_MAX_NGRAM, top=top * 3, dedup_lim=0.8, stopwords=stopwords())
    found = extractor.extract_keywords(document)
    cleaned: dict[str, float] = {}
    for phrase, score in found:
        key = " ".join(str(phrase).casefold().split())
        if _meaningful(key) and key not in cleaned:
            cleaned[key] = float(f"{float(score):.9g}")
    return sorted(cleaned.items(), key=lambda item: (item[1], item[0]))


def _meaningful(phrase: str) -> bool:
    words = phrase.split()
    return (
        bool(words)
        and len(set(words)) == len(words)  # "learning learning" is an echo, not a theme
        and any(len(w) >= 3 and not w.isdigit() for w in words)
    )


def _pattern(phrase: str) -> re.Pattern[str]:
    body = r"\W+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


_TOKEN = re.compile(r"\w+")
# _TOKEN.findall(text.casefold()) for ASCII text, in C: there \w is [A-Za-z0-9_] and casefold()
# is lower(), so a bytes.translate that lowers the letters and blanks everything else, then
# split(), gives the same words.
_ASCII_TOKENS = bytes(
    c + 32 if 65 <= c <= 90 else c if 97 <= c <= 122 or 48 <= c <= 57 or c == 95 else 32 for c in range(256)
)


@dataclass(frozen=True, slots=True)
class Corpus:
    """Replies prepared once for phrase matching, best-liked first: ``(id, text, casefolded
    text)`` and an index from each word to the positions of the replies holding it. A phrase's
    candidates come from the index; a regex only confirms that a multi-word phrase's words stand
    together."""

    items: tuple[tuple[int, str, str], ...]
    index: dict[str, list[int]]

    @classmethod
    def of(cls, replies: Iterable[RankedReply], words: Collection[str]) -> Corpus:
        """Index only ``words`` (the candidates' words): a set intersection per reply, in C."""
        wanted = frozenset(words)
        # ASCII texts (most) are split in C: see _ASCII_TOKENS.
        ascii_wanted = {w.encode(): w for w in wanted if w.isascii()}
        ascii_keys = frozenset(ascii_wanted)
        items = []
        index: dict[str, list[int]] = {w: [] for w in wanted}
        for position, r in enumerate(replies):
            text = r.text
            folded = text.casefold()
            items.append((r.id, text, folded))
            if text.isascii():
                for key in ascii_keys.intersection(text.encode().translate(_ASCII_TOKENS).split()):
                    index[ascii_wanted[key]].append(position)
            else:
                for word in wanted.intersection(_TOKEN.findall(folded)):
                    index[word].append(position)
        return cls(tuple(items), index)


def carriers(phrase: str, corpus: Corpus) -> list[int]:
    """Ids of the replies that carry ``phrase`` as whole words, best-liked first."""
    words = phrase.split()
    items = corpus.items
    if all(_TOKEN.fullmatch(w) and w in corpus.index for w in words):
        postings = sorted((corpus.index.get(w, []) for w in set(words)), key=len)
        if len(words) == 1:
            return [items[i][0] for i in postings[0]]
        rest = [set(p) for p in postings[1:]]
        pattern = _pattern(phrase)
        return [
            items[i][0]
            for i in postings[0]
            if all(i in other for other in rest) and pattern.search(items[i][1])
        ]
    # Words with inner punctuation ("don't", "e-mail"): a substring test, then the regex.
    pattern = _pattern(phrase)
    first = words[0]
    return [rid for rid, text, folded in items if first in folded and pattern.search(text)]


def choose_themes(found: Sequence[tuple[str, float]], corpus: Corpus) -> tuple[Theme, ...]:
    """A prompt's themes among yake's keyphrases for it, each with the replies that carry it."""
    themes: list[Theme] = []
    for phrase, score in found:
        ids = carriers(phrase, corpus)
        # A theme is something people shared: past a couple of replies, one mention is not one.
        if len(ids) < min(2, len(corpus.items) - 1) or not ids:
            continue
        # "culture" adds nothing next to "learning culture" when the same replies carry both.
        if any(_nested(phrase, t.phrase) and set(ids) == set(t.reply_ids) for t in themes):
            continue
        themes.append(Theme(phrase=phrase, score=score, reply_ids=tuple(ids)))
        if len(themes) == PROMPT_THEMES:
            break
    return tuple(themes)


def day_themes(candidates: Sequence[Sequence[str]], shown: Sequence[tuple[int, Corpus]]) -> tuple[DayTheme, ...]:
    """The day's themes from every prompt's yake candidates: the ones carried under the most
    prompts first, then by yake's best rank for them, then by the most replies.

    ``candidates`` (best first, per prompt) and ``shown`` (``(prompt id, corpus)``) are in
    timetable order.
    """
    best_rank: dict[str, int] = {}
    for phrases in candidates:
        for rank, phrase in enumerate(phrases):
            best_rank[phrase] = min(rank, best_rank.get(phrase, rank))
    total = sum(len(corpus.items) for _, corpus in shown)
    ranked: list[tuple[int, int, int, str, DayTheme]] = []
    for phrase, rank in best_rank.items():
        prompt_ids: list[int] = []
        reply_ids: list[int] = []
        for prompt_id, corpus in shown:
            ids = carriers(phrase, corpus)
            if ids:
                prompt_ids.append(prompt_id)
                reply_ids.extend(ids)
        if len(reply_ids) < 2 and total > 2:
            continue  # said once is not a theme of the day
        day = DayTheme(phrase=phrase, prompt_ids=tuple(prompt_ids), reply_ids=tuple(reply_ids))
        ranked.append((-len(prompt_ids), rank, -len(reply_ids), phrase, day))
    ranked.sort(key=lambda c: c[:4])
    chosen: list[DayTheme] = []
    for *_, day in ranked:
        if any(_overlaps(day, other) for other in chosen):
            continue
        chosen.append(day)
        if len(chosen) == DAY_THEMES:
            break
    return tuple(chosen)


def _nested(a: str, b: str) -> bool:
    words_a, words_b = set(a.split()), set(b.split())
    return words_a <= words_b or words_b <= words_a


def _overlaps(a: DayTheme, b: DayTheme) -> bool:
    return _nested(a.phrase, b.phrase) and set(a.reply_ids) == set(b.reply_ids)
