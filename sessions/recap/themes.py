"""The themes of the day: keyphrases per prompt and the ones that ran through the day.

Keyphrases are found here, in the manner of RAKE, in pure Python: a candidate is one word or two
neighbouring words of a reply, never across a stopword, a punctuation mark (so never across a
sentence end), an emoji or a line end; links, mentions, e-mail addresses and :emoji: codes are not
words. A candidate scores by the number of replies that carry it, the strongest signal in chat (a
theme is what several people said), lightly weighted by RAKE's degree (a word that stands with
others in phrases is more likely a topic than a passing verb). A pair said in one reply only is two
words side by side, not a phrase; a word counts only the replies its most said pair leaves it, as
C-value does for nested terms, so "code review" stands for "review"; and a word most replies carry
(the prompt's echo: "learn") is held back. It costs about 1 µs per word on this class of machine
(~6 ms for :data:`THEME_WORD_BUDGET`), and reads a bounded sample all the same: each prompt's
best-liked replies (in ranking order, itself deterministic) up to a share of the budget. Small and
ordinary sessions fit whole; when they do not, :class:`ThemeSample` says how much was read and the
article says so.

Day themes come from every prompt's candidates: a phrase ranks higher the more prompts' replies
carry it, then by its best rank among a prompt's candidates, then the more replies carry it; said
once is not a theme of the day. Each theme links to the replies that carry it (whole words,
case-insensitive), among the replies the article shows.

Determinism: a score is computed from integer counts per phrase, so the order in which sets and
dicts of strings yield them (string hashing is salted per process) cannot change it; scores are
still rounded to 9 significant digits, and ties broken by the phrase itself. The order of the texts
does not matter either: the replies are a bag, each counting once per phrase. Likes count through
the sample, which holds the best-liked replies.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from sessions.recap.ranking import RankedReply
from sessions.recap.stopwords import STOPWORDS

_log = logging.getLogger(__name__)

THEME_WORD_BUDGET = 6_000  # words read for keyphrases per recap, shared among the prompts
MIN_WORDS_PER_PROMPT = 500
PROMPT_THEMES = 6
DAY_THEMES = 8
_CANDIDATES_PER_THEME = 3
_RAKE_WEIGHT = 0.25  # how much RAKE's degree / frequency (1 + a word's usual neighbours) counts
_SMALL = 20  # replies under which no word counts as very common
# Praise, vague adjectives and vague nouns: words that count as a reply's substance (they are not
# stopwords) but never say what the replies are about, so they end a phrase as a stopword does
# ("great mentor" is "mentor", "new people" is "people"). Chat's fillers ("yeah", "lol",
# "honestly") are stopwords already.
_FILLER = frozenset(
    "pretty super good great nice cool awesome best better huge new old different stuff thing things bit".split()
)
# What a phrase cannot be part of: Slack's and Discord's markup (<@U1>, <#C1|general>,
# <https://…|label>, <:emoji:1>), bare links, @mentions and e-mail addresses, :emoji: shortcodes,
# Slack's &amp; escapes. Matched on casefolded text.
_NOISE = re.compile(r"<[^<>\s|]+(?:\|[^<>\n]*)?>|(?:https?://|www\.)\S+|[\w.+-]*@[\w.-]+|:[\w+-]+:|&\w+;")


@dataclass(frozen=True, slots=True, kw_only=True)
class Theme:
    phrase: str
    score: float  # keyphrases()'s score: lower is more relevant
    reply_ids: tuple[int, ...]  # replies carrying it, best-liked first


@dataclass(frozen=True, slots=True, kw_only=True)
class DayTheme:
    phrase: str
    prompt_ids: tuple[int, ...]  # prompts whose replies carry it, in timetable order
    reply_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThemeSample:
    replies: int  # replies read for keyphrases
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
    """Up to ``3 * top`` keyphrases of ``texts`` (each one reply), best (lowest score) first.

    More than ``top``, because :func:`choose_themes` drops the ones too few replies carry and the
    ones nested in a better one. The order of ``texts`` does not matter: see the module docstring.
    """
    stop = _stop()
    split = _pieces()
    carried: dict[str, int] = {}  # phrase -> replies that carry it
    freq: dict[str, int] = {}  # word -> times it occurs
    degree: dict[str, int] = {}  # word -> itself and its neighbours in phrases, summed (RAKE's degree)
    replies = 0
    for text in texts:
        folded = text.casefold().replace("’", "'")
        if "<" in folded or "@" in folded or ":" in folded or "&" in folded or "www." in folded:
            folded = _NOISE.sub("\n", folded)
        seen: set[str] = set()
        run: list[str] = []
        for piece in split(folded):
            if len(piece) > 1 and piece not in stop and not piece.isdigit():
                if "'" not in piece:
                    run.append(piece)
                    continue
                # "the team's wiki" speaks of the team, but ends the phrase: carriers() could not
                # find "team wiki" in it. Other contractions ("should've") are never a theme.
                if piece.endswith("'s") and len(piece) > 3 and piece[:-2] not in stop:
                    run.append(piece[:-2])
            if run:
                _count_run(run, seen, freq, degree)
                run = []
        if run:
            _count_run(run, seen, freq, degree)
        if seen:
            replies += 1
            # Integer counts: the order a set yields them in (salted string hashes) cannot matter.
            for phrase in seen:
                carried[phrase] = carried.get(phrase, 0) + 1
    if not carried:
        return []

    def rake(word: str) -> float:
        return degree[word] / freq[word]

    # Said by one reply, a pair is two words side by side, not a phrase (unless one or two replies
    # are all there are: then one reply makes a theme, as in choose_themes).
    pair_needs = 2 if replies > 2 else 1
    scored: list[tuple[float, str]] = []
    in_pairs: dict[str, int] = {}  # word -> replies carrying its most carried pair
    for phrase, n in carried.items():
        if " " in phrase and n >= pair_needs and _meaningful(phrase):
            first, second = phrase.split(" ")
            # RAKE scores a phrase by the sum of its words' scores: a pair outweighs either word.
            scored.append((_score(n * (rake(first) + rake(second)) ** _RAKE_WEIGHT), phrase))
            in_pairs[first] = max(n, in_pairs.get(first, 0))
            in_pairs[second] = max(n, in_pairs.get(second, 0))
    # A word in most replies is the prompt's echo ("learn"), not a theme: it is held back, the
    # more the commoner, and left out when every reply carries it. Under _SMALL replies
    # everything is a handful of mentions, so nothing is that common.
    scale = max(replies, _SMALL)
    for phrase, n in carried.items():
        if " " not in phrase:
            # As C-value does for nested terms, a word counts the replies its best pair leaves it:
            # "review", said only in "code review", is no theme beside it; "learning" is one beside
            # "learning culture" when most replies say it on its own.
            goodness = (n - in_pairs.get(phrase, 0)) * (scale - n) / scale
            if goodness > 0:
                scored.append((_score(goodness * rake(phrase) ** _RAKE_WEIGHT), phrase))
    scored.sort()
    found: list[tuple[str, float]] = []
    for score, phrase in scored:
        if " " in phrase or _meaningful(phrase):
            found.append((phrase, score))
            if len(found) == top * _CANDIDATES_PER_THEME:
                break
    return found


def _score(goodness: float) -> float:
    """Lower is better; rounded (see the module docstring)."""
    return float(f"{1 / goodness:.9g}")


def _count_run(run: list[str], seen: set[str], freq: dict[str, int], degree: dict[str, int]) -> None:
    """Count a run of words between stopwords and punctuation: its words and its word pairs.

    A word's degree counts itself and its neighbours in the run: RAKE's co-occurrence degree,
    within the two-word phrases that are the candidates (a long run of untranslated words, which
    the English stopwords do not break, would otherwise swamp it).
    """
    last = len(run) - 1
    previous = ""
    for i, word in enumerate(run):
        freq[word] = freq.get(word, 0) + 1
        degree[word] = degree.get(word, 0) + 1 + (i > 0) + (i < last)
        seen.add(word)
        if previous:
            seen.add(f"{previous} {word}")
        previous = word


@cache
def _stop() -> frozenset[str]:
    return STOPWORDS | _FILLER


@cache
def _pieces() -> Callable[[str], list[str]]:
    """``findall`` of words and of what ends a run: a punctuation mark, a symbol, an emoji, a line end.

    A word is a letter or digit, then word characters and the combining marks that ``\\w``
    leaves out (Devanagari's vowel signs: "हिन्दी" is one word, not five), with inner apostrophes
    ("don't"). A hyphen joins words ("pair-debugging" is the pair "pair debugging", which
    :func:`carriers` finds in it). Emoji variation selectors and keycaps are marks too, but not
    part of a word. Built on first use: the marks take a few milliseconds to collect.
    """
    marks = "".join(
        re.escape(chr(c))
        for c in range(0x300, 0x10000)
        if unicodedata.category(chr(c)) in ("Mn", "Mc") and not chr(c).isalnum() and not 0xFE00 <= c <= 0xFE0F
    )
    word = rf"[^\W_][\w{marks}]*"
    # A hyphen joins only within a word: spaced, it is a dash ("pairing - best thing").
    return re.compile(rf"{word}(?:'{word})*|[^\w\s-]|\n|(?<!\w)-|-(?!\w)").findall


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
    """A prompt's themes among its keyphrases, each with the replies that carry it."""
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
    """The day's themes from every prompt's keyphrases: the ones carried under the most prompts
    first, then by their best rank among a prompt's keyphrases, then by the most replies.

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
