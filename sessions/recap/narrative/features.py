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
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from sessions.recap.narrative.lexicon import concept_index
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
    out: list[str] = []
    for raw in _WORD.findall(text.replace("’", "'").replace("'", "")):
        if _UNSPACED.search(raw):
            word = raw.casefold()
            out.extend(word[i : i + 2] for i in range(max(1, len(word) - 1)))
            continue
        word = fold(raw)
        if len(word) < 2 or word.isdigit() or word in stop:
            continue
        out.append(word)
    return out


def stem(token: str) -> str:
    if len(token) > STEM:
        return token[:STEM]
    if len(token) > 3 and token.endswith("s"):
        return token[:-1]
    return token


@dataclass(frozen=True, slots=True)
class Vectors:
    """Unit-length sparse vectors, one per reply, and what each feature means."""

    rows: tuple[dict[str, float], ...]  # feature -> weight; "c:" concepts, "w:" stems
    surface: dict[str, str]  # "w:" feature -> the word it was most often

    def featured(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row]


def vectorise(texts: Sequence[str]) -> Vectors:
    """Vectors of ``texts``: concepts (binary) and stems (binary, weighted by idf), each block scaled
    to unit length, joined by :data:`CONCEPT_WEIGHT` and :data:`WORD_WEIGHT`, then made unit length.

    A stem only one reply uses cannot bring two replies together: it is left out, so it does not
    dilute the others. The order of ``texts`` does not change any vector.
    """
    index = concept_index()
    per_reply: list[tuple[set[str], set[str]]] = []
    df: dict[str, int] = {}
    words: dict[str, dict[str, int]] = {}
    for text in texts:
        concepts: set[str] = set()
        stems: set[str] = set()
        for token in tokens(text):
            concepts.update(index.of(token))
            s = stem(token)
            stems.add(s)
            seen = words.setdefault(s, {})
            seen[token] = seen.get(token, 0) + 1
        for s in stems:
            df[s] = df.get(s, 0) + 1
        per_reply.append((concepts, stems))
    n = len(texts)
    ceiling = max(2, int(MAX_DF_SHARE * n)) if n >= 10 else n
    idf = {s: math.log(1 + n / d) for s, d in df.items() if 2 <= d <= ceiling}
    rows: list[dict[str, float]] = []
    for concepts, stems in per_reply:
        row: dict[str, float] = {}
        if concepts:
            weight = CONCEPT_WEIGHT / math.sqrt(len(concepts))
            for key in concepts:
                row["c:" + key] = weight
        kept = [(s, idf[s]) for s in stems if s in idf]
        if kept:
            norm = math.sqrt(sum(w * w for _, w in kept))
            for s, w in kept:
                row["w:" + s] = WORD_WEIGHT * w / norm
        total = math.sqrt(sum(w * w for w in row.values()))
        rows.append({f: w / total for f, w in row.items()} if total else {})
    surface = {"w:" + s: max(seen, key=lambda t: (seen[t], -len(t), t)) for s, seen in words.items() if s in idf}
    return Vectors(rows=tuple(rows), surface=surface)


def dot(a: dict[str, float], b: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    get = b.get
    return sum(w * get(f, 0.0) for f, w in a.items())
