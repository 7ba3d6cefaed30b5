"""The ideas that ran through the day: replies grouped by meaning across prompts, each group named.

Each reply becomes a vector of the concepts it touches and the word stems it shares with others
(:mod:`.features`); spherical k-means groups them, with k chosen by the silhouette
(:mod:`.clustering`). A reply with nothing to go on ("+1", an emoji, "same") belongs to no theme;
so does a group too small to be a theme of the day. A theme is named after the concept most of
its replies touch (:mod:`.lexicon`), or else after the words its replies share most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sessions.recap.narrative.clustering import cluster
from sessions.recap.narrative.features import dot, vectorise
from sessions.recap.narrative.lexicon import label_of

MAX_THEMES = 7
MIN_SHARE = 0.03  # of the featured replies, for a group to be a theme (and at least 2 replies)
_LABEL_SHARE = 0.45  # a concept names a theme when at least this share of its replies touch it


@dataclass(frozen=True, slots=True, kw_only=True)
class Found:
    """A theme as found: its label and its members, most central first."""

    label: str
    members: tuple[int, ...]  # indexes into the texts given, most central first
    centrality: tuple[float, ...]  # each member's similarity to the theme's centre


def find_themes(texts: Sequence[str]) -> tuple[Found, ...]:
    """Themes of ``texts`` (give them in a stable order, e.g. by reply id), largest first."""
    vectors = vectorise(texts)
    featured = vectors.featured()
    if len(featured) < 2:
        return ()
    rows = [vectors.rows[i] for i in featured]
    k_max = min(MAX_THEMES + 1, max(2, len(featured) // 3))
    found = cluster(rows, k_max=k_max)
    minimum = max(2, math.ceil(MIN_SHARE * len(featured)))
    groups: dict[int, list[tuple[float, int]]] = {}
    for position, label in enumerate(found.labels):
        similarity = dot(rows[position], found.centroids[label])
        groups.setdefault(label, []).append((similarity, featured[position]))
    ordered = sorted(
        (g for g in groups.values() if len(g) >= minimum),
        key=lambda g: (-len(g), min(i for _, i in g)),
    )[:MAX_THEMES]
    themes: list[Found] = []
    used: set[str] = set()
    for group in ordered:
        group.sort(key=lambda item: (-item[0], item[1]))
        members = tuple(i for _, i in group)
        name = _label([vectors.rows[i] for i in members], vectors.surface, used)
        used.add(name)
        themes.append(Found(label=name, members=members, centrality=tuple(round(s, 6) for s, _ in group)))
    return tuple(themes)


def _label(rows: Sequence[dict[str, float]], surface: dict[str, str], used: set[str]) -> str:
    concept_counts: dict[str, int] = {}
    word_counts: dict[str, int] = {}
    for row in rows:
        for feature in row:
            counts = concept_counts if feature.startswith("c:") else word_counts
            counts[feature] = counts.get(feature, 0) + 1
    concepts = sorted(concept_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    words = sorted(word_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    # No digits in a label: a heading's numbers must all be computed ones (see grounding.py).
    top_words = [surface[f] for f, n in words if n >= 2 and f in surface and not any(c.isdigit() for c in surface[f])]
    top_words = top_words[:2]
    if concepts and concepts[0][1] >= _LABEL_SHARE * len(rows):
        label = label_of(concepts[0][0][2:])
        if label not in used:
            return label
        if len(concepts) > 1 and concepts[1][1] >= _LABEL_SHARE * len(rows):
            second = f"{label}: {label_of(concepts[1][0][2:]).lower()}"
            if second not in used:
                return second
        if top_words:
            return f"{label}: {top_words[0]}"
    if top_words:
        return " and ".join(top_words).capitalize()
    for fallback in ("Voices of the day", "More voices", "Other voices", "Still other voices"):
        if fallback not in used:
            return fallback
    return "Further voices"
