"""Spherical k-means over sparse unit vectors, with k chosen by the silhouette, deterministically.

Pure Python: a day's replies are a few thousand short vectors at most (the article's sample), so
no numerical library is needed, and none is installed for it. Costs, for ``n`` vectors of ``f``
features and ``k`` centroids: an iteration is ``n * f * k`` dictionary probes; the silhouette reads
at most :data:`SILHOUETTE_SAMPLE` vectors; k-means itself runs on at most :data:`FIT_SAMPLE`
vectors and the rest are only assigned to the nearest centroid.

Determinism: seeds come from a ``random.Random`` with a fixed seed, over vectors in the order
given (the callers give replies in id order); ties go to the lower index.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from sessions.recap.narrative.features import dot

FIT_SAMPLE = 1_200  # vectors k-means runs on; the rest are assigned to the nearest centroid
CHOOSE_SAMPLE = 400  # vectors k is chosen on
SILHOUETTE_SAMPLE = 200
ITERATIONS = 20
RESTARTS = 2
# A larger k must beat a smaller one by this much silhouette: finer themes must earn their place.
K_PENALTY = 0.01

Vector = dict[str, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class Clustering:
    labels: tuple[int, ...]  # cluster of each vector
    centroids: tuple[Vector, ...]  # unit length
    silhouette: float


def _normalised(v: Vector) -> Vector:
    norm = math.sqrt(sum(w * w for w in v.values()))
    return {f: w / norm for f, w in v.items()} if norm else {}


def _mean(members: Sequence[Vector]) -> Vector:
    total: Vector = {}
    for v in members:
        for f, w in v.items():
            total[f] = total.get(f, 0.0) + w
    return _normalised(total)


def nearest(v: Vector, centroids: Sequence[Vector]) -> tuple[int, float]:
    best, score = 0, -1.0
    for i, c in enumerate(centroids):
        s = dot(v, c)
        if s > score:
            best, score = i, s
    return best, score


def _seeds(vectors: Sequence[Vector], k: int, rng: random.Random) -> list[Vector]:
    """k-means++ seeding with cosine distance."""
    seeds = [vectors[rng.randrange(len(vectors))]]
    closest = [1.0 - dot(v, seeds[0]) for v in vectors]
    while len(seeds) < k:
        total = sum(d * d for d in closest)
        if total <= 0:
            break
        pick = rng.random() * total
        chosen = len(vectors) - 1
        for i, d in enumerate(closest):
            pick -= d * d
            if pick <= 0:
                chosen = i
                break
        seeds.append(vectors[chosen])
        closest = [min(c, 1.0 - dot(v, vectors[chosen])) for c, v in zip(closest, vectors, strict=True)]
    return [dict(s) for s in seeds]


def kmeans(vectors: Sequence[Vector], k: int, seed: int = 0) -> tuple[list[int], list[Vector], float]:
    """Best of :data:`RESTARTS` runs: (labels, centroids, total similarity to own centroid)."""
    rng = random.Random(seed)
    best: tuple[list[int], list[Vector], float] | None = None
    for _ in range(RESTARTS):
        centroids = _seeds(vectors, k, rng)
        labels = [-1] * len(vectors)
        for _ in range(ITERATIONS):
            moved = False
            for i, v in enumerate(vectors):
                label = nearest(v, centroids)[0]
                if label != labels[i]:
                    labels[i] = label
                    moved = True
            if not moved:
                break
            groups: list[list[Vector]] = [[] for _ in centroids]
            for label, v in zip(labels, vectors, strict=True):
                groups[label].append(v)
            centroids = [_mean(g) if g else c for g, c in zip(groups, centroids, strict=True)]
        score = sum(dot(v, centroids[label]) for v, label in zip(vectors, labels, strict=True))
        if best is None or score > best[2] + 1e-9:
            best = (labels, centroids, score)
    assert best is not None
    return best


def silhouette(vectors: Sequence[Vector], labels: Sequence[int]) -> float:
    """Mean silhouette (cosine distance) over an even sample of at most :data:`SILHOUETTE_SAMPLE`."""
    n = len(vectors)
    step = max(1, math.ceil(n / SILHOUETTE_SAMPLE))
    picked = list(range(0, n, step))
    clusters = sorted(set(labels[i] for i in picked))
    if len(clusters) < 2:
        return 0.0
    total = 0.0
    for i in picked:
        sums: dict[int, float] = {}
        counts: dict[int, int] = {}
        for j in picked:
            if i == j:
                continue
            d = 1.0 - dot(vectors[i], vectors[j])
            sums[labels[j]] = sums.get(labels[j], 0.0) + d
            counts[labels[j]] = counts.get(labels[j], 0) + 1
        own = labels[i]
        if not counts.get(own):
            continue  # a singleton's silhouette is 0
        a = sums[own] / counts[own]
        others = [sums[c] / counts[c] for c in counts if c != own]
        if not others:
            continue
        b = min(others)
        total += (b - a) / max(a, b) if max(a, b) > 0 else 0.0
    return total / len(picked)


def cluster(vectors: Sequence[Vector], *, k_max: int) -> Clustering:
    """Cluster ``vectors`` (unit length, none empty) into the k in 2..``k_max`` with the best
    silhouette (less :data:`K_PENALTY` per extra cluster); everything in one cluster when fewer
    than four vectors or ``k_max`` < 2."""
    n = len(vectors)
    if n < 4 or k_max < 2:
        return Clustering(labels=tuple([0] * n), centroids=(_mean(vectors),) if n else (), silhouette=0.0)
    choose = list(vectors[:: max(1, math.ceil(n / CHOOSE_SAMPLE))])
    best: tuple[float, int, list[Vector], float] | None = None
    for k in range(2, min(k_max, len(choose) - 1) + 1):
        labels, centroids, _ = kmeans(choose, k, seed=k)
        score = silhouette(choose, labels)
        adjusted = score - K_PENALTY * (k - 2)
        if best is None or adjusted > best[0] + 1e-9:
            best = (adjusted, k, centroids, score)
    assert best is not None
    _, k, centroids, score = best
    fit = list(vectors[:: max(1, math.ceil(n / FIT_SAMPLE))])
    if len(fit) > len(choose):
        _, centroids, _ = kmeans(fit, k, seed=k)
    final_labels = tuple(nearest(v, centroids)[0] for v in vectors)
    # Centroids of the whole set, now that every vector has its cluster.
    groups: list[list[Vector]] = [[] for _ in centroids]
    for label, v in zip(final_labels, vectors, strict=True):
        groups[label].append(v)
    final = tuple(_mean(g) if g else c for g, c in zip(groups, centroids, strict=True))
    return Clustering(labels=final_labels, centroids=final, silhouette=score)
