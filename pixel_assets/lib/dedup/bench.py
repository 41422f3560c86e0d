"""Benchmarks: the project's near-dup path against a plain datasketch baseline, and dedup at scale.

The corpus is generated (seeded): ~1 KB documents drawn from a large synthetic vocabulary, so
unrelated documents share almost no 5-word shingle, plus planted near-duplicates of some of them
with 1-5 words changed (Jaccard ~0.95 down to ~0.74, i.e. on both sides of the 0.8 threshold).
Ground truth is exact shingle Jaccard computed independently with Python sets.
"""

from __future__ import annotations

import re
import time
from typing import Any

import numpy as np
import polars as pl

from .lsh import choose_banding, find_near_duplicates

WORDS_PER_DOC = 170  # ~1 KB with the generated vocabulary
VOCABULARY = 60_000
_WORD_RE = re.compile(r"\w+")


def _vocabulary(rng: np.random.Generator, size: int) -> pl.Series:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 9, size=size)
    chars = letters[rng.integers(0, 26, size=int(lengths.sum()))]
    words, pos = [], 0
    for n in lengths.tolist():
        words.append("".join(chars[pos : pos + n]))
        pos += n
    return pl.Series(words, dtype=pl.String)


def generate_corpus(
    docs: int, *, near_dup_fraction: float = 0.1, seed: int = 0, words_per_doc: int = WORDS_PER_DOC
) -> tuple[pl.Series, list[tuple[int, int]]]:
    """(texts, planted pairs (source, variant)). ``docs`` includes the planted variants."""
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng, VOCABULARY)
    variants = int(docs * near_dup_fraction)
    originals = docs - variants
    # Zipf-like word frequencies: realistic repetition, still diverse 5-grams.
    weights = 1.0 / np.arange(1, VOCABULARY + 1) ** 0.8
    weights /= weights.sum()
    words = rng.choice(VOCABULARY, size=(docs, words_per_doc), p=weights).astype(np.int64)
    sources = rng.integers(0, originals, size=variants)
    planted = []
    for k, src in enumerate(sources.tolist()):
        row = originals + k
        words[row] = words[src]
        changes = int(rng.integers(1, 6))
        cols = rng.choice(words_per_doc, size=changes, replace=False)
        words[row, cols] = rng.integers(0, VOCABULARY, size=changes)
        planted.append((src, row))
    texts = (
        vocab.gather(words.reshape(-1))
        .reshape((docs, words_per_doc))
        .arr.join(" ")
        .str.to_titlecase()  # case differences must not matter
    )
    return texts.alias("text"), planted


def _shingle_set(text: str, k: int) -> set[str]:
    words = _WORD_RE.findall(text.lower())
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def _exact_jaccard(texts: list[str], a: int, b: int, k: int, cache: dict[int, set[str]]) -> float:
    sa = cache.setdefault(a, _shingle_set(texts[a], k))
    sb = cache.setdefault(b, _shingle_set(texts[b], k))
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


def datasketch_baseline(
    texts: list[str], *, threshold: float, num_perm: int, bands: int, rows: int, shingle_size: int
) -> set[tuple[int, int]]:
    """Plain datasketch: a MinHash per document (update_batch), MinHashLSH with the same banding,
    query every document, confirm candidates by estimated Jaccard."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(num_perm=num_perm, params=(bands, rows))
    minhashes = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in _shingle_set(text, shingle_size)])
        lsh.insert(i, m)
        minhashes.append(m)
    pairs = set()
    for i, m in enumerate(minhashes):
        for j in lsh.query(m):
            if j != i and m.jaccard(minhashes[j]) >= threshold:
                pairs.add((min(i, j), max(i, j)))
    return pairs


def _score(pred: set[tuple[int, int]], truth: set[tuple[int, int]]) -> dict[str, float]:
    hit = len(pred & truth)
    return {
        "pairs_found": len(pred),
        "recall": round(hit / len(truth), 4) if truth else 1.0,
        "precision": round(hit / len(pred), 4) if pred else 1.0,
    }


def bench_near_dup(
    docs: int = 20_000, *, threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Throughput and recall/precision of both paths on the same generated corpus."""
    texts, planted = generate_corpus(docs, seed=seed)
    text_list = texts.to_list()
    bands, rows = choose_banding(threshold, num_perm)
    import datasketch, rensa, scipy.sparse.csgraph  # noqa: F401,E401  (imports not timed)

    t0 = time.perf_counter()
    ours = find_near_duplicates(
        texts, threshold=threshold, num_perm=num_perm, shingle_size=shingle_size
    )
    ours_s = time.perf_counter() - t0
    ours_pairs = set(zip(ours.pair_a.tolist(), ours.pair_b.tolist()))

    t0 = time.perf_counter()
    base_pairs = datasketch_baseline(
        text_list, threshold=threshold, num_perm=num_perm, bands=bands, rows=rows,
        shingle_size=shingle_size,
    )
    base_s = time.perf_counter() - t0

    # Ground truth: planted pairs (and pairs within a planted group) plus anything either path
    # reported, kept where the exact shingle Jaccard reaches the threshold.
    groups: dict[int, list[int]] = {}
    for src, var in planted:
        groups.setdefault(src, [src]).append(var)
    candidates = {
        (min(x, y), max(x, y)) for members in groups.values() for x in members for y in members if x != y
    } | ours_pairs | base_pairs
    cache: dict[int, set[str]] = {}
    truth = {p for p in candidates if _exact_jaccard(text_list, *p, shingle_size, cache) >= threshold}
    planted_j = [_exact_jaccard(text_list, s, v, shingle_size, cache) for s, v in planted]

    return {
        "docs": docs,
        "mean_doc_chars": round(float(texts.str.len_chars().mean()), 1),
        "planted_pairs": len(planted),
        "planted_jaccard_min_max": [round(min(planted_j), 3), round(max(planted_j), 3)] if planted else None,
        "true_pairs_at_threshold": len(truth),
        "threshold": threshold,
        "num_perm": num_perm,
        "bands": bands,
        "rows": rows,
        "shingle_size": shingle_size,
        "project": {
            "seconds": round(ours_s, 3),
            "docs_per_s": round(docs / ours_s, 1),
            **_score(ours_pairs, truth),
            "candidate_pairs": ours.stats["candidate_pairs"],
        },
        "datasketch_baseline": {
            "seconds": round(base_s, 3),
            "docs_per_s": round(docs / base_s, 1),
            **_score(base_pairs, truth),
        },
        "speedup": round(base_s / ours_s, 2),
        "goal": {"speedup": 5.0, "recall": 0.95, "precision": 0.99},
    }


def generate_records_frame(
    records: int, *, seed: int = 0, families: list[str] | None = None,
    exact_dup_fraction: float = 0.05, near_dup_fraction: float = 0.1,
) -> pl.DataFrame:
    """A records frame of ~1 KB conversations (shared system prompt, user + assistant turn) with
    planted exact and near duplicates, serialized like contract.dumps_record (scale benchmark)."""
    import hashlib

    families = families or ["cptsd", "addiction", "sarcasm", "experimental"]
    rng = np.random.default_rng(seed + 1)
    exact = int(records * exact_dup_fraction)
    # Generated 100k texts at a time (planted near-dups pair up within a chunk) to bound memory.
    chunk, parts = 100_000, []
    for i, lo in enumerate(range(0, records - exact, 100_000)):
        size = min(chunk, records - exact - lo)
        parts.append(generate_corpus(size, near_dup_fraction=near_dup_fraction, seed=seed * 1000 + i)[0])
    texts = pl.concat(parts) if parts else pl.Series("text", [], dtype=pl.String)
    del parts
    words = texts.str.split(" ")
    frame = pl.DataFrame(
        {
            "user": words.list.slice(0, 25).list.join(" "),
            "assistant": words.list.slice(25).list.join(" "),
        }
    )
    frame = pl.concat([frame, frame[rng.integers(0, frame.height, size=exact)]])
    system = "You are a supportive, careful counsellor. Answer with empathy and safety first."
    hashes = [
        "sha256:" + hashlib.sha256(" ".join(sorted((system.lower(), u.lower(), a.lower()))).encode()).hexdigest()
        for u, a in zip(frame["user"], frame["assistant"])
    ]
    n = frame.height
    frame = frame.with_columns(
        content_hash=pl.Series(hashes),
        source_family=pl.Series(np.array(families)[rng.integers(0, len(families), size=n)]),
        _line=pl.Series(np.arange(1, n + 1)).cast(pl.String),
        _quality=pl.Series(np.round(rng.random(n), 3)).cast(pl.String),
    )
    key = pl.concat_str(pl.lit("file:///data/sources/"), pl.col("source_family"), pl.lit("/part.jsonl"))
    tokens = ((pl.col("user").str.len_chars() + pl.col("assistant").str.len_chars() + len(system)) // 4).cast(pl.String)
    record = pl.concat_str(
        pl.lit('{"messages":[{"role":"system","content":"' + system + '"},{"role":"user","content":"'),
        pl.col("user"),
        pl.lit('"},{"role":"assistant","content":"'),
        pl.col("assistant"),
        pl.lit('"}],"metadata":{"source_family":"'),
        pl.col("source_family"),
        pl.lit('","source_key":"'),
        key,
        pl.lit('","content_hash":"'),
        pl.col("content_hash"),
        pl.lit('","license_tag":"internal","phase":"stage6_specialized","original_format":"chatml",'
               '"source_location":"line '),
        pl.col("_line"),
        pl.lit('","record_type":"conversation","conversation_length":3,"total_tokens":'),
        tokens,
        pl.lit(',"quality_score":'),
        pl.col("_quality"),
        pl.lit(',"provenance":{"original_s3_key":"'),
        key,
        pl.lit('","processing_pipeline":"pixel_assets","processed_at":"2026-11-22T00:00:00+00:00",'
               '"dedup_status":"unique","processing_steps":["ingest","encoding_repair","normalize",'
               '"pii_scrub"]}}}'),
    )
    return frame.select("content_hash", "source_family", record.alias("record"))


def _write_records_frame(records: int, seed: int, path: str) -> None:
    generate_records_frame(records, seed=seed).write_parquet(path)


class _RssSampler:
    """Highest resident set size seen while the block runs (sampled every 20 ms)."""

    def __enter__(self) -> "_RssSampler":
        import threading

        import psutil

        self._process = psutil.Process()
        self.start_mb = self.peak_mb = self._process.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, self._process.memory_info().rss / 2**20)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_dedup_records(records: int, *, seed: int = 0) -> dict[str, Any]:
    """Wall time and memory of dedup_records on a generated records frame."""
    import gc

    from .records import dedup_records

    # Generated in a child process (its temporaries would inflate this process's RSS) and read
    # back from parquet, so the figures below are the frame plus what dedup itself needs.
    import multiprocessing
    import tempfile
    from pathlib import Path

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pixel-dedup-bench-") as tmp:
        path = str(Path(tmp) / "records.parquet")
        child = multiprocessing.get_context("spawn").Process(
            target=_write_records_frame, args=(records, seed, path)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"records-frame generator failed with exit code {child.exitcode}")
        frame = pl.read_parquet(path)
    gen_s = time.perf_counter() - t0
    gc.collect()
    with _RssSampler() as rss:
        t0 = time.perf_counter()
        result = dedup_records(frame)
        seconds = time.perf_counter() - t0
    return {
        "records": records,
        "frame_mb": round(frame.estimated_size("mb"), 1),
        "generate_seconds": round(gen_s, 2),
        "dedup_seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1),
        "rss_before_dedup_mb": round(rss.start_mb, 1),
        "peak_rss_during_dedup_mb": round(rss.peak_mb, 1),
        "kept": result.kept.height,
        "removed": result.stats["removed"],
        "near_dup_seconds": result.stats["near_duplicates"].get("seconds"),
        "candidate_pairs": result.stats["near_duplicates"].get("candidate_pairs"),
    }
