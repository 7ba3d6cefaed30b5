"""The themes of the day: keyphrases per prompt (yake) and the ones that ran through the day.

yake is statistical and self-contained: no network, no model to download. It costs about 20 µs
per word on this class of machine, so it reads a bounded sample: each prompt's best-liked replies
(in ranking order, itself deterministic) up to a share of :data:`THEME_WORD_BUDGET`. Small and
ordinary sessions fit whole; when they do not, :class:`ThemeSample` says how much was read and the
article says so.

Day themes are the prompt themes merged: a phrase ranks higher the more prompts' replies carry it,
then the more replies carry it, then by its best yake rank. Each theme links to the replies that
carry it (whole-word, case-insensitive), among the replies the article shows.

Determinism: yake's own ordering is by float score, and float sums over sets can differ in the last
bit between processes (string hashing is salted), so scores are rounded to 9 significant digits and
ties broken by the phrase itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import yake

from sessions.recap.ranking import RankedReply, stopwords

_log = logging.getLogger(__name__)

THEME_WORD_BUDGET = 8_000  # words read by yake per recap, shared among the prompts
MIN_WORDS_PER_PROMPT = 600
PROMPT_THEMES = 6
DAY_THEMES = 8
_MAX_NGRAM = 3
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
    return bool(words) and any(len(w) >= 3 and not w.isdigit() for w in words) and len(phrase) >= 3


def _pattern(phrase: str) -> re.Pattern[str]:
    body = r"\W+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


_TOKEN = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class Corpus:
    """Replies prepared once for phrase matching, best-liked first: ``(id, text, casefolded
    text, its words)``. Most phrases are settled by a set lookup; a regex runs only to confirm
    that a multi-word phrase's words stand together."""

    items: tuple[tuple[int, str, str, frozenset[str]], ...]

    @classmethod
    def of(cls, replies: Iterable[RankedReply]) -> Corpus:
        items = []
        for r in replies:
            folded = r.text.casefold()
            items.append((r.id, r.text, folded, frozenset(_TOKEN.findall(folded))))
        return cls(tuple(items))


def carriers(phrase: str, corpus: Corpus) -> list[int]:
    """Ids of the replies that carry ``phrase`` as whole words, best-liked first."""
    words = phrase.split()
    if all(_TOKEN.fullmatch(w) for w in words):
        needed = frozenset(words)
        if len(words) == 1:
            return [rid for rid, _, _, tokens in corpus.items if needed <= tokens]
        pattern = _pattern(phrase)
        return [rid for rid, text, _, tokens in corpus.items if needed <= tokens and pattern.search(text)]
    # Words with inner punctuation ("don't", "e-mail"): a substring test, then the regex.
    pattern = _pattern(phrase)
    first = words[0]
    return [rid for rid, text, folded, _ in corpus.items if first in folded and pattern.search(text)]


def prompt_themes(
    replies: Sequence[RankedReply], corpus: Corpus, budget: int
) -> tuple[tuple[Theme, ...], int]:
    """Themes of one prompt from its best-liked replies (best first), and how many were read."""
    texts = sample_texts(replies, budget)
    if not texts:
        return (), 0
    themes: list[Theme] = []
    for phrase, score in keyphrases(texts, PROMPT_THEMES):
        ids = carriers(phrase, corpus)
        # A theme is something people shared: with enough replies, one mention is not a theme.
        if not ids or (len(replies) >= 5 and len(ids) < 2):
            continue
        # "culture" adds nothing next to "learning culture" when the same replies carry both.
        if any(_nested(phrase, t.phrase) and set(ids) == set(t.reply_ids) for t in themes):
            continue
        themes.append(Theme(phrase=phrase, score=score, reply_ids=tuple(ids)))
        if len(themes) == PROMPT_THEMES:
            break
    return tuple(themes), len(texts)


def day_themes(
    per_prompt: Sequence[tuple[int, Sequence[Theme]]],
    shown: Sequence[tuple[int, Corpus]],
) -> tuple[DayTheme, ...]:
    """Merge the prompts' themes into the day's: the ones carried under the most prompts first.

    ``per_prompt`` and ``shown`` are ``(prompt id, …)`` in timetable order.
    """
    best_rank: dict[str, int] = {}
    for _, themes in per_prompt:
        for rank, theme in enumerate(themes):
            best_rank[theme.phrase] = min(rank, best_rank.get(theme.phrase, rank))
    candidates: list[tuple[int, int, int, str, DayTheme]] = []
    for phrase, rank in best_rank.items():
        prompt_ids: list[int] = []
        reply_ids: list[int] = []
        for prompt_id, corpus in shown:
            ids = carriers(phrase, corpus)
            if ids:
                prompt_ids.append(prompt_id)
                reply_ids.extend(ids)
        day = DayTheme(phrase=phrase, prompt_ids=tuple(prompt_ids), reply_ids=tuple(reply_ids))
        candidates.append((-len(prompt_ids), -len(reply_ids), rank, phrase, day))
    candidates.sort(key=lambda c: c[:4])
    chosen: list[DayTheme] = []
    for *_, day in candidates:
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
