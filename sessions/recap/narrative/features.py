"""What a reply is about, as a sparse vector: the concepts it touches and the word stems it uses.

Any language: words are Unicode letters and digits (``[^\\W_]+``), casefolded, with the accents of
Latin letters folded away ("réunion" is "reunion"); scripts written without spaces (Chinese,
Japanese, Thai) are read as overlapping character pairs, so two replies that share a term share
features. The function words of English, Dutch, German, French, Spanish, Portuguese and Italian
are dropped; in any other language every word counts, and a word most replies carry (the
prompt's echo) is held back by its document frequency. Concepts come from :mod:`.lexicon`, which
knows English, Dutch, German, French and Spanish.

A stem is a word cut to :data:`STEM` characters (a light stemmer that works alike in the European
languages: "meetings" and "meeting" meet, so do "documentation" and "documented").
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from sessions.recap.narrative.lexicon import ConceptIndex, concept_index
from sessions.recap.narrative.sparse import Sparse
from sessions.recap.stopwords import STOPWORDS

STEM = 5
CONCEPT_WEIGHT = 1.0  # a concept block against a word block of the same norm
WORD_WEIGHT = 0.75
MAX_DF_SHARE = 0.4  # a stem in more of the replies than this is the prompt's echo, not a theme

_WORD = re.compile(r"[^\W_]+")
# Scripts written without spaces between words.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

_MORE_STOPWORDS = """
de het een en van ik je jij u hij zij wij we ze dat die dit deze is zijn was waren niet geen ook
maar om op in aan met voor naar bij uit als dan of nog al wel heel veel meer er hier daar hoe wat
wie waar wanneer omdat zo te tot door over onder na mijn jouw ons onze hun kan kunnen moet moeten
wil willen zou zouden heb hebben heeft had wordt worden gaat gaan doen doet echt gewoon even
der die das ein eine einen einem einer und oder aber nicht kein keine ich du er sie es wir ihr
ist sind war waren hat haben hatte wird werden mit von zu zum zur im am auf aus bei nach vor
fur uber unter durch wie was wer wo wann weil dass so auch noch schon sehr mehr viel nur mal
man sich mein dein unser euch kann konnen muss mussen soll sollen will wollen wenn dann denn
le la les un une des du et ou mais ne pas plus je tu il elle nous vous ils elles on est sont
etait ai as avons avez ont ce cette ces qui que quoi dont ou dans sur sous avec pour par sans
chez en au aux se sa son ses leur leurs mon ma mes ton ta tes notre nos votre vos tres aussi
bien peu tout tous toute toutes fait faire peut peuvent comme quand si alors donc ca cela
el la los las un una unos unas y o pero no ni yo tu el ella nosotros vosotros ellos ellas es
son era fue ha han he hay que quien como cuando donde por para con sin sobre entre del al lo
le les se su sus mi mis nuestro nuestra muy mas tambien ya todo todos toda todas ser estar
esta estan este esto eso hacer puede pueden porque si
o os as um uma uns umas e ou mas nao eu ele ela nos eles elas sao foi tem com sem para pelo
pela do da dos das no na nos nas em ao se seu sua muito mais tambem isso isto
il lo gli uno una e ma non io tu lui lei noi voi loro sono era ha hanno che chi come quando
dove perche con senza per tra fra del della dei delle nel nella sul sulla anche molto piu
"""


@cache
def stopwords() -> frozenset[str]:
    return frozenset(fold(w) for w in STOPWORDS) | frozenset(_MORE_STOPWORDS.split())


def fold(word: str) -> str:
    """Casefolded, and a Latin letter's accents dropped (other scripts keep their marks)."""
    word = word.casefold()
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word)
    if all(ord(c) < 0x250 or unicodedata.combining(c) for c in decomposed):
        return "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", word)


def tokens(text: str) -> list[str]:
    """The reply's meaningful tokens, folded (stopwords and lone digits dropped)."""
    stop = stopwords()
    return [token for raw in _WORD.findall(_unquoted(text)) for token in _word_tokens(raw, stop)]


def _unquoted(text: str) -> str:
    return text.replace("’", "'").replace("'", "")


def _word_tokens(raw: str, stop: frozenset[str]) -> list[str]:
    """The tokens of one word as ``_WORD`` finds it: none, itself folded, or its character pairs."""
    if _UNSPACED.search(raw):
        word = raw.casefold()
        return [word[i : i + 2] for i in range(max(1, len(word) - 1))]
    word = fold(raw)
    if len(word) < 2 or word.isdigit() or word in stop:
        return []
    return [word]


def stem(token: str) -> str:
    if len(token) > STEM:
        return token[:STEM]
    if len(token) > 3 and token.endswith("s"):
        return token[:-1]
    return token


_EMPTY = Sparse.of(())


@dataclass(frozen=True, slots=True)
class _Word:
    """A word as ``_WORD`` finds it: its tokens with their stems, and the concepts and stems it brings."""

    tokens: tuple[tuple[str, str], ...]
    concepts: frozenset[str]
    stems: frozenset[str]

    @classmethod
    def of(cls, raw: str, stop: frozenset[str], index: ConceptIndex) -> _Word:
        tokens = tuple((t, stem(t)) for t in _word_tokens(raw, stop))
        concepts = frozenset(key for t, _ in tokens for key in index.of(t))
        return cls(tokens, concepts, frozenset(s for _, s in tokens))


@dataclass(frozen=True, slots=True)
class Vectors:
    """Unit-length sparse vectors, one per reply, and what each feature means."""

    rows: tuple[Sparse, ...]
    features: tuple[str, ...]  # feature id -> "c:" concept key or "w:" stem; ids in sorted order
    surface: dict[str, str]  # "w:" feature -> the word it was most often

    @property
    def width(self) -> int:
        return len(self.features)

    def featured(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row]


def vectorise(texts: Sequence[str]) -> Vectors:
    """Vectors of ``texts``: concepts (binary) and stems (binary, weighted by idf), each block scaled
    to unit length, joined by :data:`CONCEPT_WEIGHT` and :data:`WORD_WEIGHT`, then made unit length.

    A stem only one reply uses cannot bring two replies together: it is left out, so it does not
    dilute the others. The order of ``texts`` does not change any vector.
    """
    index = concept_index()
    stop = stopwords()
    # A day's replies repeat their words: each distinct word is folded, stemmed and looked up once.
    known: dict[str, _Word] = {}
    everything: list[str] = []
    per_reply: list[tuple[set[str], set[str]]] = []
    df: Counter[str] = Counter()
    for text in texts:
        raws = _WORD.findall(_unquoted(text))
        everything += raws
        concepts: set[str] = set()
        stems: set[str] = set()
        for raw in set(raws):
            word = known.get(raw)
            if word is None:
                word = known[raw] = _Word.of(raw, stop, index)
            concepts |= word.concepts
            stems |= word.stems
        df.update(stems)
        per_reply.append((concepts, stems))
    words: dict[str, Counter[str]] = {}  # stem -> its tokens, counted
    for raw, count in Counter(everything).items():
        for token, s in known[raw].tokens:
            words.setdefault(s, Counter())[token] += count
    n = len(texts)
    ceiling = max(2, int(MAX_DF_SHARE * n)) if n >= 10 else n
    idf = {s: math.log(1 + n / d) for s, d in df.items() if 2 <= d <= ceiling}
    features = tuple(sorted({"c:" + key for concepts, _ in per_reply for key in concepts} | {"w:" + s for s in idf}))
    ids = {feature: i for i, feature in enumerate(features)}
    concept_ids = {f[2:]: i for f, i in ids.items() if f.startswith("c:")}
    stem_features = {s: (ids["w:" + s], weight) for s, weight in idf.items()}
    rows: list[Sparse] = []
    for concepts, stems in per_reply:
        kept = sorted([stem_features[s] for s in stems if s in stem_features])
        if kept:
            norm = math.sqrt(sum([w * w for _, w in kept]))
            kept = [(i, WORD_WEIGHT * w / norm) for i, w in kept]
        if concepts:
            weight = CONCEPT_WEIGHT / math.sqrt(len(concepts))
            kept += [(concept_ids[key], weight) for key in concepts]
        if not kept:
            rows.append(_EMPTY)
            continue
        kept.sort()
        present, weights = zip(*kept, strict=True)
        total = math.sqrt(sum([w * w for w in weights]))
        rows.append(Sparse.ascending(present, tuple([w / total for w in weights])))
    surface = {"w:" + s: max(seen, key=lambda t: (seen[t], -len(t), t)) for s, seen in words.items() if s in idf}
    return Vectors(rows=tuple(rows), features=features, surface=surface)
