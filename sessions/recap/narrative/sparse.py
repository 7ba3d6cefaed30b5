"""Sparse vectors over numbered features, and the products the clustering needs.

A reply touches a dozen or two features out of hundreds or thousands, and a centroid touches many:
so replies are sparse (:class:`Sparse`: feature ids and weights) and centroids are dense lists
indexed by feature id. Their product is then one ``itemgetter`` call and one ``sum(map(...))``:
the loop runs in C, several times faster than probing a dictionary per feature in Python.

Ids are kept ascending, so every sum adds its terms in the same order in every process (a
dictionary built from a set would follow the string hashing, which changes per process).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter, mul

Dense = list[float]


def _taker(ids: tuple[int, ...]) -> Callable[[Sequence[float]], tuple[float, ...]]:
    if len(ids) >= 2:
        return itemgetter(*ids)
    if ids:
        only = ids[0]
        return lambda dense: (dense[only],)
    return lambda dense: ()


@dataclass(frozen=True, slots=True)
class Sparse:
    """A vector as its non-zero entries: feature ids (ascending) and their weights."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]
    # The entries of a dense vector at ``ids``, in one C call (``operator.itemgetter``).
    take: Callable[[Sequence[float]], tuple[float, ...]] = field(compare=False, repr=False)

    @classmethod
    def of(cls, entries: Iterable[tuple[int, float]]) -> Sparse:
        ordered = sorted(entries)
        return cls.ascending(tuple(i for i, _ in ordered), tuple(w for _, w in ordered))

    @classmethod
    def ascending(cls, ids: tuple[int, ...], weights: tuple[float, ...]) -> Sparse:
        """From ids already ascending, and their weights."""
        return cls(ids, weights, _taker(ids))

    def __bool__(self) -> bool:
        return bool(self.ids)

    def dot(self, dense: Sequence[float]) -> float:
        product: float = sum(map(mul, self.weights, self.take(dense)))
        return product

    def dense(self, width: int) -> Dense:
        out = [0.0] * width
        for i, w in zip(self.ids, self.weights, strict=True):
            out[i] = w
        return out


def inner(a: Sequence[float], b: Sequence[float]) -> float:
    """The product of two dense vectors."""
    product: float = sum(map(mul, a, b))
    return product


def vector_sum(members: Iterable[Sparse], width: int) -> Dense:
    total = [0.0] * width
    for v in members:
        for i, w in zip(v.ids, v.weights, strict=True):
            total[i] += w
    return total


def unit_mean(members: Iterable[Sparse], width: int) -> Dense:
    """The direction of the members' sum, unit length (all zeros when they sum to nothing)."""
    total = vector_sum(members, width)
    norm = math.sqrt(inner(total, total))
    return [w / norm for w in total] if norm else total
