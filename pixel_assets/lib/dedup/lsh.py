"""Near-duplicate detection: MinHash signatures (rensa), explicit LSH banding, confirmation, clusters.

Pipeline for n texts:
1. word shingles -> 64-bit hashes (:mod:`.text`), in chunks;
2. rensa computes the MinHash signature matrix from the flat hash buffer (no per-document objects);
3. banding: every band of ``rows`` signature values is folded to one 64-bit key; texts sharing a
   key in any band are candidate pairs (numpy sort, no Python dict per text);
4. candidates are confirmed by exact Jaccard of their shingle sets (default) or by the estimated
   Jaccard of their signatures;
5. confirmed pairs are the edges of a graph whose connected components are the clusters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from .text import shingle_hashes

DEFAULT_THRESHOLD = 0.8
DEFAULT_NUM_PERM = 128
DEFAULT_SHINGLE_SIZE = 5
TARGET_RECALL = 0.95
# Signatures are computed this many texts at a time (bounds the shingle temporaries).
SIGNATURE_CHUNK = 20_000
# In a bucket larger than this, each member is paired with its next MAX_BUCKET_WINDOW neighbours
# only (enough to connect a large cluster, without quadratic pair counts).
MAX_BUCKET_WINDOW = 64


def recall_at(jaccard: float, bands: int, rows: int) -> float:
    """Probability that a pair with this Jaccard becomes a candidate: the S-curve 1-(1-t^r)^b."""
    return 1.0 - (1.0 - jaccard**rows) ** bands


def choose_banding(
    threshold: float, num_perm: int, target_recall: float = TARGET_RECALL
) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm and recall at the threshold >= target_recall.

    Among the settings that reach the target, the one with the most rows per band wins: it is
    the steepest S-curve, i.e. the fewest candidates below the threshold.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if recall_at(threshold, bands, rows) >= target_recall:
            return bands, rows
    raise ValueError(
        f"no banding of num_perm={num_perm} reaches recall {target_recall} at {threshold}"
    )


def _banding(threshold: float, num_perm: int, bands: int | None, rows: int | None) -> tuple[int, int]:
    if bands is None and rows is None:
        return choose_banding(threshold, num_perm)
    if bands is None:
        bands = num_perm // rows
    if rows is None:
        rows = num_perm // bands
    if bands < 1 or rows < 1 or bands * rows > num_perm:
        raise ValueError(f"bands*rows must be <= num_perm ({bands}*{rows} > {num_perm})")
    return bands, rows


def signature_matrix(
    texts: pl.Series, *, num_perm: int, shingle_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(signatures uint32 [n, num_perm], has_shingles bool [n]) computed with rensa in chunks."""
    from rensa import RMinHash

    n = len(texts)
    sig = np.empty((n, num_perm), dtype=np.uint32)
    nonempty = np.zeros(n, dtype=bool)

    for lo in range(0, n, SIGNATURE_CHUNK):
        chunk = texts.slice(lo, SIGNATURE_CHUNK)
        hashes, offsets = shingle_hashes(chunk, shingle_size, seed)
        matrix = RMinHash.digest_matrix_from_flat_token_hashes(
            hashes, offsets.astype(np.uint64), num_perm, seed
        )
        del hashes
        # rensa exposes the matrix only as Python lists; one chunk at a time bounds that cost.
        sig[lo : lo + len(chunk)] = np.array(matrix.to_rows(), dtype=np.uint32)
        nonempty[lo : lo + len(chunk)] = np.diff(offsets) > 0
    return sig, nonempty


def _band_keys(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    cols = sig[:, band * rows : (band + 1) * rows].astype(np.uint64)
    key = np.full(len(sig), ((band + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
    for c in range(rows):
        key = (key ^ cols[:, c]) * np.uint64(0x100000001B3)
        key ^= key >> np.uint64(29)
    return key


def candidate_pairs(
    sig: np.ndarray, members: np.ndarray, bands: int, rows: int
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Unique candidate pairs (a < b, indices into sig) of texts sharing a band key."""
    codes: list[np.ndarray] = []
    n = np.uint64(len(sig))
    oversized = 0
    for band in range(bands):
        keys = _band_keys(sig, band, rows)[members]
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        same = sorted_keys[1:] == sorted_keys[:-1]
        grouped = np.zeros(len(keys), dtype=bool)
        grouped[:-1] |= same
        grouped[1:] |= same
        idx = members[order[grouped]]
        gkeys = sorted_keys[grouped]
        if len(idx) == 0:
            continue
        # Buckets are contiguous runs of equal keys; pair every member with the next ones.
        for d in range(1, MAX_BUCKET_WINDOW + 1):
            hit = gkeys[d:] == gkeys[:-d]
            if not hit.any():
                break
            a, b = idx[:-d][hit].astype(np.uint64), idx[d:][hit].astype(np.uint64)
            codes.append(np.minimum(a, b) * n + np.maximum(a, b))
        else:
            _, sizes = np.unique(gkeys, return_counts=True)
            oversized += int((sizes > MAX_BUCKET_WINDOW + 1).sum())
    if codes:
        unique = _sorted_unique(np.concatenate(codes))
    else:
        unique = np.zeros(0, dtype=np.uint64)
    return (unique // n).astype(np.int64), (unique % n).astype(np.int64), {"oversized_buckets": oversized}


def estimated_jaccard(sig: np.ndarray, a: np.ndarray, b: np.ndarray, used: int) -> np.ndarray:
    out = np.empty(len(a), dtype=np.float64)
    step = 50_000
    for lo in range(0, len(a), step):
        sa, sb = sig[a[lo : lo + step], :used], sig[b[lo : lo + step], :used]
        out[lo : lo + step] = (sa == sb).mean(axis=1)
    return out


# numpy 2's hash-based np.unique is far slower than sorting on these uint64 arrays.
def _sorted_unique(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return values[keep]


# Pairs confirmed at a time: every block shingles only its own texts, bounding memory.
JACCARD_BLOCK = 10_000
_SHINGLE_BITS = 40  # shingle hash bits kept next to the text rank in one uint64 key


def exact_jaccard(
    texts: pl.Series, a: np.ndarray, b: np.ndarray, *, shingle_size: int, seed: int
) -> np.ndarray:
    """Exact Jaccard of the (hashed) shingle sets of each pair (texts[a[i]], texts[b[i]]).

    Vectorized per block of pairs: every (text, shingle) becomes one sorted uint64 key (text rank
    in the top 24 bits, 40 bits of shingle hash below: a spurious match inside one pair has
    probability ~1e-7); the shingles of a are looked up under b's rank with searchsorted.
    """
    out = np.empty(len(a), dtype=np.float64)
    low = np.uint64((1 << _SHINGLE_BITS) - 1)
    for lo in range(0, len(a), JACCARD_BLOCK):
        pa_docs, pb_docs = a[lo : lo + JACCARD_BLOCK], b[lo : lo + JACCARD_BLOCK]
        docs = _sorted_unique(np.concatenate([pa_docs, pb_docs]))
        hashes, offsets = shingle_hashes(texts.gather(docs), shingle_size, seed)
        doc_rank = np.repeat(np.arange(len(docs), dtype=np.uint64), np.diff(offsets))
        keys = _sorted_unique((doc_rank << np.uint64(_SHINGLE_BITS)) | (hashes >> np.uint64(64 - _SHINGLE_BITS)))
        del hashes, doc_rank
        set_start = np.searchsorted(keys >> np.uint64(_SHINGLE_BITS), np.arange(len(docs) + 1, dtype=np.uint64))
        set_size = np.diff(set_start)
        pa, pb = np.searchsorted(docs, pa_docs), np.searchsorted(docs, pb_docs)
        counts = set_size[pa]
        pair = np.repeat(np.arange(len(pa)), counts)
        within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        mine = keys[set_start[pa][pair] + within] & low
        query = (pb[pair].astype(np.uint64) << np.uint64(_SHINGLE_BITS)) | mine
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        inter = np.bincount(pair, weights=(keys[pos] == query), minlength=len(pa))
        union = set_size[pa] + set_size[pb] - inter
        out[lo : lo + JACCARD_BLOCK] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return out


def connected_components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cluster label per node: the smallest node index of its connected component."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = components(graph, directed=False)
    smallest = np.full(labels.max() + 1 if n else 0, n, dtype=np.int64)
    np.minimum.at(smallest, labels, np.arange(n, dtype=np.int64))
    return smallest[labels]


@dataclass
class NearDuplicates:
    """Result of :func:`find_near_duplicates`: labels, confirmed pairs and counts (no text)."""

    labels: np.ndarray  # cluster id per text: smallest text index in its cluster
    pair_a: np.ndarray  # confirmed pairs (a < b)
    pair_b: np.ndarray
    pair_jaccard: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


def find_near_duplicates(
    texts: Sequence[str] | pl.Series,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    bands: int | None = None,
    rows: int | None = None,
    shingle_size: int = DEFAULT_SHINGLE_SIZE,
    seed: int = 1,
    confirm: str = "exact",
    log: Callable[[str], None] | None = None,
) -> NearDuplicates:
    """Near-duplicate clusters with their confirmed pairs and stats (see module doc)."""
    import time

    if confirm not in ("exact", "estimated"):
        raise ValueError(f"confirm must be 'exact' or 'estimated', got {confirm!r}")
    bands, rows = _banding(threshold, num_perm, bands, rows)
    series = texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.String)
    series = series.cast(pl.String)
    n = len(series)
    t0 = time.perf_counter()
    # Only the bands*rows permutations the banding reads are computed (e.g. 126 of 128).
    sig, nonempty = signature_matrix(
        series, num_perm=bands * rows, shingle_size=shingle_size, seed=seed
    )
    t1 = time.perf_counter()
    members = np.flatnonzero(nonempty)
    a, b, cand_stats = candidate_pairs(sig, members, bands, rows)
    t2 = time.perf_counter()
    if confirm == "exact":
        jac = exact_jaccard(series, a, b, shingle_size=shingle_size, seed=seed)
    else:
        jac = estimated_jaccard(sig, a, b, bands * rows)
    keep = jac >= threshold
    del sig
    labels = connected_components(n, a[keep], b[keep])
    t3 = time.perf_counter()
    cluster_sizes = np.bincount(labels, minlength=n) if n else np.zeros(0, dtype=np.int64)
    stats = {
        "texts": n,
        "texts_without_shingles": int(n - len(members)),
        "threshold": threshold,
        "num_perm": num_perm,
        "perms_used": bands * rows,
        "bands": bands,
        "rows": rows,
        "shingle_size": shingle_size,
        "confirm": confirm,
        "recall_at_threshold": round(recall_at(threshold, bands, rows), 4),
        "candidate_pairs": int(len(a)),
        "confirmed_pairs": int(keep.sum()),
        "clusters_multi": int((cluster_sizes > 1).sum()),
        "texts_in_multi_clusters": int(cluster_sizes[cluster_sizes > 1].sum()),
        "oversized_buckets": cand_stats["oversized_buckets"],
        "seconds": {
            "signatures": round(t1 - t0, 3),
            "candidates": round(t2 - t1, 3),
            "confirm_and_cluster": round(t3 - t2, 3),
        },
    }
    if log:
        log(
            f"near-dup: {n} texts, bands={bands} rows={rows} (recall@{threshold}="
            f"{stats['recall_at_threshold']}), {len(a)} candidates, {stats['confirmed_pairs']} "
            f"confirmed, {stats['clusters_multi']} multi-text clusters"
        )
    return NearDuplicates(labels, a[keep], b[keep], jac[keep], stats)


def near_duplicate_clusters(
    texts: Sequence[str] | pl.Series,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    num_perm: int = DEFAULT_NUM_PERM,
    bands: int | None = None,
    rows: int | None = None,
    shingle_size: int = DEFAULT_SHINGLE_SIZE,
    seed: int = 1,
) -> np.ndarray:
    """Cluster id per text (int64; the smallest index of its cluster, so singletons get their own).

    Texts are compared by word-shingle Jaccard (normalize them first, e.g. with ``dedup_text``);
    pairs at or above ``threshold`` are linked and clusters are connected components.
    """
    return find_near_duplicates(
        texts, threshold=threshold, num_perm=num_perm, bands=bands, rows=rows,
        shingle_size=shingle_size, seed=seed,
    ).labels
