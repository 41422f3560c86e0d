"""Normalized dedup text and word-shingle hashing.

The dedup text of a record is its non-system message contents joined with a space, lowercased,
whitespace-collapsed: a system prompt shared by many conversations must not make them look alike.
Shingles are hashed column-wise (polars for words, numpy for the k-word windows) so that a
million records never become a million Python objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

# Only the fields dedup reads; json_decode ignores everything else in the record.
_MESSAGES_DTYPE = pl.Struct(
    {"messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String}))}
)
# Words for shingling: runs of Unicode word characters (punctuation changes do not count).
WORD_PATTERN = r"\w+"
_SHINGLE_MULT = np.uint64(0x9E3779B97F4A7C15)


def dedup_text(record: dict[str, Any]) -> str:
    """Normalized text used for shingling: non-system message contents, lowercased, whitespace-collapsed."""
    parts = [
        m["content"]
        for m in record.get("messages") or []
        if isinstance(m, dict) and m.get("role") != "system" and isinstance(m.get("content"), str)
    ]
    return " ".join(" ".join(parts).lower().split())


def normalize_text_expr(expr: pl.Expr) -> pl.Expr:
    """Lowercase and collapse whitespace, column-wise (same result as ``" ".join(s.lower().split())``)."""
    return expr.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()


def dedup_text_expr(record_column: str = "record") -> pl.Expr:
    """Vectorized :func:`dedup_text` over a column of record JSON strings."""
    messages = pl.col(record_column).str.json_decode(_MESSAGES_DTYPE).struct.field("messages")
    joined = messages.list.eval(
        pl.element().filter(pl.element().struct.field("role") != "system").struct.field("content")
    ).list.join(" ", ignore_nulls=True)
    return normalize_text_expr(joined.fill_null(""))


def dedup_texts(frame: pl.DataFrame, record_column: str = "record") -> pl.Series:
    """Dedup text for every row of a records frame (raises ValueError naming bad rows)."""
    return dedup_columns(frame, record_column).get_column("dedup_text")


# What dedup reads from each record; metadata scalars are decoded as strings (numbers included).
_DEDUP_DTYPE = pl.Struct(
    {
        "messages": _MESSAGES_DTYPE.fields[0].dtype,
        "metadata": pl.Struct(
            {"source_key": pl.String, "source_location": pl.String, "quality_score": pl.String}
        ),
    }
)
DEDUP_COLUMNS = ("dedup_text", "source_key", "source_location", "quality_score")


# Records are decoded this many at a time: bounds the temporaries (decoded structs, text copies).
DECODE_CHUNK = 50_000


def dedup_columns(frame: pl.DataFrame, record_column: str = "record") -> pl.DataFrame:
    """dedup_text, source_key, source_location, quality_score (Float64) of every record.

    Column-wise JSON decode (in chunks); if some record has an unexpected shape there (e.g. an
    object where a string is expected) that chunk is read row by row, and rows that are not a
    JSON object with a messages list raise a ValueError naming their indices.
    """
    parts = [
        _dedup_columns_chunk(frame.get_column(record_column).slice(lo, DECODE_CHUNK), lo)
        for lo in range(0, max(frame.height, 1), DECODE_CHUNK)
    ]
    return pl.concat(parts, rechunk=False)


def _dedup_columns_chunk(column: pl.Series, offset: int) -> pl.DataFrame:
    try:
        decoded = pl.DataFrame({"r": column.str.json_decode(_DEDUP_DTYPE)})
    except pl.exceptions.PolarsError:
        return _dedup_columns_per_row(column, offset)
    messages = pl.col("r").struct.field("messages")
    metadata = pl.col("r").struct.field("metadata")
    text = messages.list.eval(
        pl.element().filter(pl.element().struct.field("role") != "system").struct.field("content")
    ).list.join(" ", ignore_nulls=True)
    return decoded.select(
        normalize_text_expr(text.fill_null("")).alias("dedup_text"),
        metadata.struct.field("source_key").alias("source_key"),
        metadata.struct.field("source_location").alias("source_location"),
        metadata.struct.field("quality_score").cast(pl.Float64, strict=False).alias("quality_score"),
    )


def _dedup_columns_per_row(column: pl.Series, offset: int = 0) -> pl.DataFrame:
    import json

    rows, bad = [], []
    for i, raw in enumerate(column):
        try:
            record = json.loads(raw) if raw is not None else None
        except (TypeError, ValueError):
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("messages", []), list):
            bad.append(offset + i)
            continue
        meta = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
        quality = meta.get("quality_score")
        rows.append(
            (
                dedup_text(record),
                meta.get("source_key") if isinstance(meta.get("source_key"), str) else None,
                meta.get("source_location") if isinstance(meta.get("source_location"), str) else None,
                float(quality) if isinstance(quality, (int, float)) and not isinstance(quality, bool) else None,
            )
        )
    if bad:
        raise ValueError(
            f"records frame has {len(bad)} row(s) whose record is not a JSON object with a "
            f"messages list (first row indices: {bad[:10]})"
        )
    return pl.DataFrame(
        rows,
        schema={"dedup_text": pl.String, "source_key": pl.String, "source_location": pl.String,
                "quality_score": pl.Float64},
        orient="row",
    )


def _mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads the rolling hash over all 64 bits."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def shingle_hashes(
    texts: Sequence[str] | pl.Series, shingle_size: int = 5, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of the word shingles of every text, flattened.

    Returns ``(hashes, offsets)``: the shingles of text i are ``hashes[offsets[i]:offsets[i+1]]``.
    A text with fewer words than ``shingle_size`` (but at least one) gets one shingle made of all
    its words, so short texts still compare (equal short texts match, different ones do not).
    A text without any word gets no shingle.
    """
    if shingle_size < 1:
        raise ValueError(f"shingle_size must be >= 1, got {shingle_size}")
    series = texts if isinstance(texts, pl.Series) else pl.Series(list(texts), dtype=pl.String)
    words = series.fill_null("").str.to_lowercase().str.extract_all(WORD_PATTERN)
    lengths = words.list.len().fill_null(0).to_numpy().astype(np.int64)
    word_hash = words.explode().drop_nulls().hash(seed=seed).to_numpy()
    word_starts = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=word_starts[1:])

    k = shingle_size
    per_doc = np.where(lengths >= k, lengths - k + 1, (lengths > 0).astype(np.int64))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(per_doc, out=offsets[1:])
    total = int(offsets[-1])
    if total == 0:
        return np.zeros(0, dtype=np.uint64), offsets
    # Full k-word windows: roll over the whole flat word array with contiguous slices, then keep
    # the windows that start and end inside one text. The last step XORs a uniformly random word
    # hash, so the result needs no extra mixing before MinHash.
    h = np.zeros(0, dtype=np.uint64)
    if len(word_hash) >= k:
        span = len(word_hash) - k + 1
        h = word_hash[:span].copy()
        for j in range(1, k):
            h *= _SHINGLE_MULT
            h ^= word_hash[j : j + span]
        # Windows that cross a text boundary: the last k-1 starts of every text (all starts of
        # a text shorter than k).
        ends = word_starts[1:]
        nonempty = np.flatnonzero(lengths > 0)
        first_bad = np.maximum(ends[nonempty] - (k - 1), word_starts[nonempty])
        bad_count = ends[nonempty] - first_bad
        bad = np.repeat(first_bad - np.cumsum(bad_count) + bad_count, bad_count) + np.arange(int(bad_count.sum()))
        keep = np.ones(span, dtype=bool)
        keep[bad[bad < span]] = False
        h = h[keep]
    short = np.flatnonzero((lengths > 0) & (lengths < k))
    if len(short):
        # Texts shorter than k words: one shingle of all their words.
        hs = np.zeros(len(short), dtype=np.uint64)
        for j in range(k - 1):
            take = j < lengths[short]
            nxt = word_hash[np.minimum(word_starts[short] + j, len(word_hash) - 1)]
            hs = np.where(take, (hs * _SHINGLE_MULT) ^ nxt, hs)
        hs = _mix64(hs ^ lengths[short].astype(np.uint64))  # never equal to a k-word window
        # Interleave with the full windows in text order.
        out = np.empty(total, dtype=np.uint64)
        is_short = np.zeros(total, dtype=bool)
        is_short[offsets[short]] = True
        out[is_short] = hs
        out[~is_short] = h
        h = out
    return h, offsets
