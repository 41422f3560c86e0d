"""The leakage gate's own near-duplicate finder: exact Jaccard on word shingles, every pair found.

The dedup stage finds near-duplicates with MinHash LSH, which misses a pair above its threshold
with a small probability fixed by its seed (the S-curve): a gate that re-ran it would miss the
same pairs again. This finder shares no code with ``lib/dedup`` and has no recall loss: candidate
pairs come from prefix filtering (the AllPairs similarity join: with shingles ordered rarest
first, two sets with Jaccard >= t share a shingle among the first ``|x| - ceil(t|x|) + 1`` of
each), and every candidate is confirmed by the exact Jaccard of its two shingle sets.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

_WORDS = re.compile(r"\w+")


_MULT = np.uint64(0x100000001B3)  # folds the word hashes of a shingle into one 64-bit value


def shingle_set(texts: Sequence[str], size: int) -> frozenset[int]:
    """Hashed word shingles (lower-cased ``\\w+`` words, ``size`` at a time) of a record's texts,
    joined as one text; a text shorter than ``size`` words is one shingle."""
    words = _WORDS.findall(" ".join(texts).lower())
    if len(words) < size:
        return frozenset([hash(tuple(words))]) if words else frozenset()
    word_hashes = np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)
    n = len(words) - size + 1
    folded = word_hashes[:n].copy()
    for k in range(1, size):  # polynomial fold, wrapping at 2**64
        folded = folded * _MULT + word_hashes[k:k + n]
    return frozenset(folded.view(np.int64).tolist())


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def _prefix_length(size: int, threshold: float) -> int:
    return size - math.ceil(threshold * size - 1e-9) + 1


def _ranked(sets: Sequence[frozenset[int]]) -> list[np.ndarray]:
    """Each set as the sorted global ranks of its shingles, rarest first (ties by hash value)."""
    sizes = np.fromiter((len(s) for s in sets), dtype=np.int64, count=len(sets))
    flat = np.fromiter((h for s in sets for h in s), dtype=np.int64, count=int(sizes.sum()))
    values, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.lexsort((values, counts))] = np.arange(len(values))
    ranks = rank[inverse]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [np.sort(ranks[bounds[i]:bounds[i + 1]]) for i in range(len(sets))]


def near_duplicate_pairs(sets: Sequence[frozenset[int]], threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i, j, jaccard), i < j, whose shingle sets have exact Jaccard >= threshold."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if not sets:
        return []
    ordered = _ranked(sets)
    index: dict[int, list[int]] = defaultdict(list)  # shingle rank -> documents with it in their prefix
    pairs = []
    # Smallest sets first: a probe only meets sets no larger than itself, so the size filter
    # |y| >= t|x| is one comparison.
    for x in sorted(range(len(sets)), key=lambda i: len(sets[i])):
        size = len(sets[x])
        if not size:
            continue
        prefix = ordered[x][:_prefix_length(size, threshold)].tolist()
        candidates = {y for t in prefix for y in index.get(t, ()) if len(sets[y]) >= threshold * size}
        for y in candidates:
            score = jaccard(sets[x], sets[y])
            if score >= threshold:
                pairs.append((min(x, y), max(x, y), score))
        for t in prefix:
            index[t].append(x)
    return sorted(pairs)


def clusters_of(n: int, pairs: Sequence[tuple[int, int, float]]) -> list[list[int]]:
    """Connected components (index lists, size >= 2) of the pair graph, smallest index first."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b, _ in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        groups[root(i)].append(i)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])
