"""Spherical k-means over sparse unit vectors, with k chosen by the silhouette, deterministically.

Pure Python: a day's replies are a few thousand short vectors at most (the article's sample), so
no numerical library is needed, and none is installed for it. The vectors are sparse and the
centroids dense (:mod:`.sparse`), so each product is one C-level sum. Costs, for ``n`` vectors and
``k`` centroids: a pass of k-means is at most ``n * k`` products, and the bounds of :func:`_lloyd`
skip those that cannot change a vector's cluster (on a day with themes, most of them; on replies
with nothing in common, fewer); a vector that changes cluster costs its own features, not a new
mean. k is chosen on at most :data:`CHOOSE_SAMPLE` vectors (the seeding's products serve the first
pass), and the silhouette reads at most :data:`SILHOUETTE_SAMPLE` of them, whose distances are
computed once for every k; k-means itself runs on at most :data:`FIT_SAMPLE` vectors and the rest
are only assigned to the nearest centroid.

Determinism: seeds come from a ``random.Random`` with a fixed seed, over vectors in the order
given (the callers give replies in id order); ties go to the lower index; every sum adds its terms
in feature-id order, so no result depends on the process's string hashing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from math import acos
from operator import mul, sub

from sessions.recap.narrative.sparse import Dense, Sparse, inner, unit_mean, vector_sum

FIT_SAMPLE = 1_200  # vectors k-means runs on; the rest are assigned to the nearest centroid
CHOOSE_SAMPLE = 400  # vectors k is chosen on
SILHOUETTE_SAMPLE = 200
ITERATIONS = 20
RESTARTS = 2
# A larger k must beat a smaller one by this much silhouette: finer themes must earn their place.
K_PENALTY = 0.01
# Radians by which a bound must clear another before a product is skipped: far more than rounding
# could add to the bounds over ITERATIONS passes, far less than the angles between themes.
_SLACK = 1e-4


@dataclass(frozen=True, slots=True, kw_only=True)
class Clustering:
    labels: tuple[int, ...]  # cluster of each vector
    similarity: tuple[float, ...]  # each vector's similarity to its cluster's centroid
    silhouette: float


def _angle(similarity: float) -> float:
    """The angle between two unit vectors of this similarity: a distance on the sphere. (The
    weights are never negative, so neither is a similarity, but rounding may take one past 1.)"""
    return math.acos(similarity) if similarity < 1.0 else 0.0


def nearest(v: Sparse, centroids: Sequence[Dense]) -> tuple[int, float]:
    """The centroid most similar to ``v`` (the first of equals) and the similarity."""
    scores = [v.dot(c) for c in centroids]
    best = max(scores)
    return scores.index(best), best


def _seeds(vectors: Sequence[Sparse], width: int, k: int, rng: random.Random) -> tuple[list[Dense], list[list[float]]]:
    """k-means++ seeding with cosine distance: the seeds, and each one's similarity to every vector
    (the first pass of k-means needs no other)."""
    seeds = [vectors[rng.randrange(len(vectors))]]
    newest = seeds[0].dense(width)
    similarity = [[v.dot(newest) for v in vectors]]
    closest = [1.0 - s for s in similarity[0]]
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
        newest = vectors[chosen].dense(width)
        similarity.append([v.dot(newest) for v in vectors])
        closest = [min(c, 1.0 - s) for c, s in zip(closest, similarity[-1], strict=True)]
    return [s.dense(width) for s in seeds], similarity


class _Centroids:
    """k centroids as k-means moves them.

    Each is kept as the sum of its members and that sum's length, so a vector that changes cluster
    costs its own features rather than a new mean over the cluster. A seed, and a cluster that
    lost every member (it keeps its last centroid), is *stale*: its sum is not its members'. How
    far each centroid has moved in all (an angle) is its ``drift``; ``drift_most`` adds up, pass
    by pass, the farthest any centroid moved.
    """

    def __init__(self, vectors: Sequence[Sparse], width: int, seeds: list[Dense]) -> None:
        self.vectors, self.width = vectors, width
        self.sums = seeds
        self.norms = [math.sqrt(inner(c, c)) for c in seeds]
        self.counts = [0] * len(seeds)
        self.stale = [True] * len(seeds)
        self.drift = [0.0] * len(seeds)
        self.drift_most = 0.0

    def follow(self, labels: Sequence[int], moves: Sequence[tuple[int, int, int]]) -> None:
        """Move the centroids after a pass that made ``moves`` (vector, from, to)."""
        sums, counts, stale = self.sums, self.counts, self.stale
        for _, came_from, went_to in moves:
            if came_from >= 0:
                counts[came_from] -= 1
            counts[went_to] += 1
        touched = {c for _, came_from, went_to in moves for c in (came_from, went_to) if c >= 0}
        before = {c: (sums[c][:], self.norms[c]) for c in touched}
        afresh = {c for c in touched if stale[c] and counts[c]}
        for i, came_from, went_to in moves:
            v = self.vectors[i]
            if came_from >= 0 and counts[came_from] and came_from not in afresh:
                total = sums[came_from]
                for f, w in zip(v.ids, v.weights, strict=True):
                    total[f] -= w
            if went_to not in afresh:
                total = sums[went_to]
                for f, w in zip(v.ids, v.weights, strict=True):
                    total[f] += w
        for c in afresh:
            sums[c] = vector_sum((v for v, label in zip(self.vectors, labels, strict=True) if label == c), self.width)
            stale[c] = False
        most = 0.0
        for c in touched:
            if not counts[c]:
                stale[c] = True  # it keeps its last centroid
                continue
            self.norms[c] = math.sqrt(inner(sums[c], sums[c]))
            old, old_norm = before[c]
            shift = _angle(inner(old, sums[c]) / (old_norm * self.norms[c]))
            self.drift[c] += shift
            most = max(most, shift)
        self.drift_most += most

    def score(self) -> float:
        """The members' total similarity to their centroids: a cluster's is the length of its sum."""
        return sum(norm for norm, count in zip(self.norms, self.counts, strict=True) if count)

    def units(self) -> list[Dense]:
        return [[w / norm for w in c] if norm else c for c, norm in zip(self.sums, self.norms, strict=True)]


def _lloyd(
    vectors: Sequence[Sparse], width: int, seeds: list[Dense], seed_similarity: list[list[float]]
) -> tuple[list[int], list[Dense], float]:
    """Lloyd's passes from ``seeds`` until no vector changes cluster (at most :data:`ITERATIONS`):
    the labels, the unit centroids and the members' total similarity to them.

    Elkan's and Hamerly's bounds, in angles (a metric on the sphere), skip most products. For
    vector ``i``: ``upper`` is at least its angle to its own centroid, ``lower[c]`` at most its
    angle to centroid ``c`` (infinite for its own), ``floor`` at most its angle to any other.
    When centroids move, the triangle inequality moves the bounds by as much (each bound is stored
    against the drift at the time, so moving them costs nothing); a centroid whose lower bound
    clears the upper one cannot be nearer, and its product is skipped. So the labels are exactly
    those of full passes: the bounds only decide what need not be computed.
    """
    n = len(vectors)
    weights = [v.weights for v in vectors]
    takes = [v.take for v in vectors]
    labels: list[int] = []
    upper: list[float] = []  # + drift[own]
    lower: list[list[float]] = []  # - drift[c]
    floor: list[float] = []  # - drift_most
    for scores in zip(*seed_similarity, strict=True):
        best = max(scores)
        label = scores.index(best)
        bounds = [_angle(s) for s in scores]
        upper.append(bounds[label])
        bounds[label] = math.inf
        lower.append(bounds)
        floor.append(min(bounds))
        labels.append(label)
    centroids = _Centroids(vectors, width, seeds)
    sums, norms, drift = centroids.sums, centroids.norms, centroids.drift
    moves = [(i, -1, label) for i, label in enumerate(labels)]  # (vector, from, to)
    for _ in range(ITERATIONS - 1):
        centroids.follow(labels, moves)
        drift_most = centroids.drift_most
        moves = []
        for i in range(n):
            own = labels[i]
            near = upper[i] + drift[own] + _SLACK
            if near < floor[i] - drift_most:
                continue
            bounds = lower[i]
            now = list(map(sub, bounds, drift))  # the lower bounds as they stand
            least = min(now)
            floor[i] = least + drift_most
            if near < least:
                continue
            # Products written out (not Sparse.dot): this is the innermost loop of the story.
            ws, take = weights[i], takes[i]
            best = sum(map(mul, ws, take(sums[own]))) / norms[own]
            angle = acos(best) if best < 1.0 else 0.0
            upper[i] = angle - drift[own]
            reach = angle + _SLACK
            if reach < least:
                continue
            label = own
            for c, bound in enumerate(now):
                if bound > reach:
                    continue  # cannot be nearer than its own centroid (nor can its own: infinite)
                score = sum(map(mul, ws, take(sums[c]))) / norms[c]
                now[c] = acos(score) if score < 1.0 else 0.0
                bounds[c] = now[c] + drift[c]
                if score > best or (score == best and c < label):  # the first of the most similar
                    label, best = c, score
            if label != own:
                now[own], now[label] = angle, math.inf
                bounds[own], bounds[label] = angle + drift[own], math.inf
                upper[i] = (acos(best) if best < 1.0 else 0.0) - drift[label]
                labels[i] = label
                moves.append((i, own, label))
            floor[i] = min(now) + drift_most
        if not moves:
            break
    else:
        centroids.follow(labels, moves)
    return labels, centroids.units(), centroids.score()


def kmeans(vectors: Sequence[Sparse], width: int, k: int, seed: int = 0) -> tuple[list[int], list[Dense], float]:
    """Best of :data:`RESTARTS` runs: (labels, centroids, total similarity to own centroid)."""
    rng = random.Random(seed)
    best: tuple[list[int], list[Dense], float] | None = None
    for _ in range(RESTARTS):
        labels, centroids, score = _lloyd(vectors, width, *_seeds(vectors, width, k, rng))
        if best is None or score > best[2] + 1e-9:
            best = (labels, centroids, score)
    assert best is not None
    return best


class _Silhouette:
    """Mean silhouette (cosine distance) of labellings of the same vectors, over an even sample of
    at most :data:`SILHOUETTE_SAMPLE`: the sample's distances are computed once, for every k."""

    def __init__(self, vectors: Sequence[Sparse], width: int) -> None:
        self.picked = range(0, len(vectors), max(1, math.ceil(len(vectors) / SILHOUETTE_SAMPLE)))
        m = len(self.picked)
        self.distances = [[0.0] * m for _ in range(m)]
        for a in range(m):
            dense = vectors[self.picked[a]].dense(width)
            row = self.distances[a]
            for b in range(a + 1, m):
                row[b] = self.distances[b][a] = 1.0 - vectors[self.picked[b]].dot(dense)

    def of(self, labels: Sequence[int]) -> float:
        sampled = [labels[i] for i in self.picked]
        members: dict[int, list[int]] = {}
        for a, label in enumerate(sampled):
            members.setdefault(label, []).append(a)
        if len(members) < 2:
            return 0.0
        total = 0.0
        for a, own in enumerate(sampled):
            if len(members[own]) < 2:
                continue  # a singleton's silhouette is 0
            take = self.distances[a].__getitem__
            # The own sum includes the distance to itself, which is 0.
            inside = sum(map(take, members[own])) / (len(members[own]) - 1)
            outside = min(sum(map(take, group)) / len(group) for label, group in members.items() if label != own)
            largest = max(inside, outside)
            total += (outside - inside) / largest if largest > 0 else 0.0
        return total / len(sampled)


def cluster(vectors: Sequence[Sparse], *, width: int, k_max: int) -> Clustering:
    """Cluster ``vectors`` (unit length, none empty, over ``width`` features) into the k in
    2..``k_max`` with the best silhouette (less :data:`K_PENALTY` per extra cluster); everything
    in one cluster when fewer than four vectors or ``k_max`` < 2."""
    n = len(vectors)
    if n < 4 or k_max < 2:
        centre = unit_mean(vectors, width)
        return Clustering(labels=(0,) * n, similarity=tuple(v.dot(centre) for v in vectors), silhouette=0.0)
    choose = list(vectors[:: max(1, math.ceil(n / CHOOSE_SAMPLE))])
    silhouette = _Silhouette(choose, width)
    best: tuple[float, int, list[Dense], float] | None = None
    for k in range(2, min(k_max, len(choose) - 1) + 1):
        labels, centroids, _ = kmeans(choose, width, k, seed=k)
        score = silhouette.of(labels)
        adjusted = score - K_PENALTY * (k - 2)
        if best is None or adjusted > best[0] + 1e-9:
            best = (adjusted, k, centroids, score)
    assert best is not None
    _, k, centroids, score = best
    fit = list(vectors[:: max(1, math.ceil(n / FIT_SAMPLE))])
    if len(fit) > len(choose):
        _, centroids, _ = kmeans(fit, width, k, seed=k)
    final_labels = tuple(nearest(v, centroids)[0] for v in vectors)
    # Centroids of the whole set, now that every vector has its cluster.
    groups: list[list[Sparse]] = [[] for _ in centroids]
    for label, v in zip(final_labels, vectors, strict=True):
        groups[label].append(v)
    final = [unit_mean(g, width) if g else c for g, c in zip(groups, centroids, strict=True)]
    similarity = tuple(v.dot(final[label]) for v, label in zip(vectors, final_labels, strict=True))
    return Clustering(labels=final_labels, similarity=similarity, silhouette=score)
