"""Dedup of a records frame: exact (content hash) and near duplicates, with per-record accounting.

Groups: every record whose content hash is the same, and every content hash whose dedup text is
in the same near-duplicate cluster, forms one group. In each group exactly one record is kept,
chosen by the strategy; every other record is removed with a reason ("duplicate_removed" when
its content hash equals the kept one's, else "near_duplicate_removed") and the kept record's
content hash and family.

Test-only families (registry holdout ``test_only``, e.g. edge_case_crisis) come first whatever the
strategy: when such a conversation duplicates one of another family, the test-only copy is kept.
Removing it would keep the other copy, which the split stage may put in train, so a hard-holdout
conversation would be trained on. (Test-slice families need no such rule: their slice is chosen
among the groups that are kept, so a removed copy is in no split at all.)

Strategies (each falls back to the keep_first order on ties, so the choice is deterministic and
does not depend on input row order):
  keep_first        registry family order, then metadata.source_key, then metadata.source_location
                    (kind, then number: "line 2" < "line 10"), then the record JSON itself
  keep_longest      the longest dedup text (non-system message characters)
  keep_best_quality the highest metadata.quality_score (missing = lowest)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from .lsh import DEFAULT_THRESHOLD, find_near_duplicates
from .text import dedup_columns

STRATEGIES = ("keep_first", "keep_longest", "keep_best_quality")
DEDUP_STEP = "dedup"
MARK_CHUNK = 100_000  # records rewritten at a time
REQUIRED_COLUMNS = ("content_hash", "source_family", "record")
REMOVED_SCHEMA = {
    "content_hash": pl.String,
    "source_family": pl.String,
    "reason": pl.String,
    "duplicate_of": pl.String,
    "duplicate_of_family": pl.String,
    "record": pl.String,
}

# Fast path for the provenance update: records serialized by contract.dumps_record carry exactly
# one of each of these (quotes inside strings are escaped, so message text cannot match them).
_STATUS_RE = r'"dedup_status":"[a-z_]*"'
_STEPS_RE = r'"processing_steps":\[((?:"[A-Za-z0-9_.:-]+",)*"[A-Za-z0-9_.:-]+")\]'
_STEPS_EMPTY = '"processing_steps":[]'


@dataclass
class DedupResult:
    kept: pl.DataFrame  # input columns (extras preserved) + cluster_id, records updated
    removed: pl.DataFrame  # REMOVED_SCHEMA
    stats: dict[str, Any] = field(default_factory=dict)


def _registry_or_none():
    try:
        from pixel_assets.lib.registry import load_registry

        return load_registry()
    except Exception:  # no readable registry: the orders below stay deterministic without it
        return None


def holdout_families(registry) -> list[str]:
    """Families whose copy dedup keeps over any other: the test_only holdouts, in registry order."""
    if registry is None:
        return []
    return [f.name for f in registry.families if f.holdout.mode == "test_only"]


def _protected_ranks(families: pl.Series, protected: Sequence[str]) -> pl.Series:
    rank = {name: i for i, name in enumerate(protected)}
    return families.replace_strict(rank, default=len(rank), return_dtype=pl.Int64)


def _family_ranks(families: pl.Series, family_order: Sequence[str] | None) -> pl.Series:
    if family_order is None:
        registry = _registry_or_none()
        family_order = registry.names if registry is not None else []
    rank = {name: i for i, name in enumerate(family_order)}
    unknown = sorted(set(families.unique().drop_nulls().to_list()) - set(rank))
    rank.update({name: len(family_order) + i for i, name in enumerate(unknown)})
    return families.replace_strict(rank, default=len(rank), return_dtype=pl.Int64)


def _order_columns(
    frame: pl.DataFrame, columns: pl.DataFrame, family_order: Sequence[str] | None, protected: Sequence[str]
) -> pl.DataFrame:
    """Columns the strategies sort by (from :func:`dedup_columns`)."""
    location = pl.col("source_location").fill_null("")
    return columns.select(
        pl.col("source_key").fill_null("").alias("_source_key"),
        location.str.extract(r"^\s*([A-Za-z_]*)", 1).fill_null("").alias("_loc_kind"),
        location.str.extract(r"(\d+)", 1).cast(pl.Int64, strict=False).fill_null(-1).alias("_loc_num"),
        pl.col("quality_score").alias("_quality"),
    ).with_columns(
        _protected=_protected_ranks(frame.get_column("source_family"), protected),
        _family_rank=_family_ranks(frame.get_column("source_family"), family_order),
        _source_family=frame.get_column("source_family"),
        _record=frame.get_column("record"),
    )


def _priority(keys: pl.DataFrame, texts: pl.Series, strategy: str) -> np.ndarray:
    """Rank of every row (0 = the row to keep first) under the strategy (holdout copies first)."""
    first = ["_family_rank", "_source_family", "_source_key", "_loc_kind", "_loc_num", "_record"]
    if strategy == "keep_first":
        by, descending = first, [False] * len(first)
    elif strategy == "keep_longest":
        keys = keys.with_columns(_length=texts.str.len_chars())
        by, descending = ["_length", *first], [True] + [False] * len(first)
    elif strategy == "keep_best_quality":
        keys = keys.with_columns(_quality=pl.col("_quality").fill_null(-1.0).fill_nan(-1.0))
        by, descending = ["_quality", *first], [True] + [False] * len(first)
    else:
        raise ValueError(f"unknown dedup strategy {strategy!r}; choose one of {STRATEGIES}")
    by, descending = ["_protected", *by], [False, *descending]
    order = keys.with_row_index("_row").sort(by, descending=descending, maintain_order=True)
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order.get_column("_row").to_numpy()] = np.arange(len(keys))
    return rank


def mark_dedup_status(records: pl.Series, status: str) -> pl.Series:
    """Set provenance.dedup_status and append "dedup" to processing_steps in every record JSON.

    Column-wise string edit for the usual compact serialization (in chunks, to bound the
    temporaries); records that do not match it exactly once are updated through json (same
    result, slower).
    """
    parts = [
        _mark_chunk(records.slice(lo, MARK_CHUNK), status)
        for lo in range(0, max(len(records), 1), MARK_CHUNK)
    ]
    return pl.concat(parts, rechunk=False).alias(records.name)


def _mark_chunk(records: pl.Series, status: str) -> pl.Series:
    frame = pl.DataFrame({"r": records})
    fast = frame.select(
        (
            (pl.col("r").str.count_matches(_STATUS_RE) == 1)
            & (
                pl.col("r").str.count_matches(_STEPS_RE)
                + pl.col("r").str.count_matches(_STEPS_EMPTY, literal=True)
                == 1
            )
        ).alias("fast")
    ).to_series()
    updated = frame.select(
        pl.col("r")
        .str.replace(_STATUS_RE, f'"dedup_status":"{status}"')
        .str.replace(_STEPS_RE, f'"processing_steps":[$1,"{DEDUP_STEP}"]')
        .str.replace(_STEPS_EMPTY, f'"processing_steps":["{DEDUP_STEP}"]', literal=True)
    ).to_series()
    if fast.all():
        return updated
    slow_rows = np.flatnonzero(~fast.to_numpy())
    slow_values = [_mark_one(records[int(i)], status) for i in slow_rows]
    return updated.scatter(slow_rows, slow_values)


def _mark_one(raw: str, status: str) -> str:
    from pixel_assets.lib.contract import dumps_record

    record = json.loads(raw)
    metadata = record.setdefault("metadata", {})
    provenance = metadata.get("provenance")
    if not isinstance(provenance, dict):
        provenance = metadata["provenance"] = {}
    provenance["dedup_status"] = status
    steps = provenance.get("processing_steps")
    provenance["processing_steps"] = [*(steps if isinstance(steps, list) else []), DEDUP_STEP]
    return dumps_record(record)


def _validate(frame: pl.DataFrame, strategy: str, threshold: float | None) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"records frame lacks column(s) {missing}; has {frame.columns}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown dedup strategy {strategy!r}; choose one of {STRATEGIES}")
    if threshold is not None and not 0 < threshold < 1:
        raise ValueError(f"near-duplicate threshold must be in (0, 1) or None, got {threshold}")
    nulls = {c: frame.get_column(c).null_count() for c in REQUIRED_COLUMNS}
    if any(nulls.values()):
        raise ValueError(f"records frame has null values: {nulls}")
    taken = [c for c in ("cluster_id",) if c in frame.columns]
    if taken:
        raise ValueError(f"records frame already has column(s) {taken} that dedup sets")


def dedup_records(
    frame: pl.DataFrame,
    *,
    strategy: str = "keep_first",
    threshold: float | None = DEFAULT_THRESHOLD,
    family_order: Sequence[str] | None = None,
    protected_families: Sequence[str] | None = None,
    log: Callable[[str], None] | None = None,
    **lsh_params: Any,
) -> DedupResult:
    """Exact + near-duplicate dedup of a records frame (see module doc).

    ``threshold=None`` turns near-duplicate detection off (exact dedup only). ``lsh_params`` go
    to :func:`find_near_duplicates` (num_perm, bands, rows, shingle_size, seed, confirm).
    ``family_order`` defaults to the registry order, ``protected_families`` (kept over any other
    family, in this order) to the registry's test-only families.
    """
    _validate(frame, strategy, threshold)
    say = log or (lambda _msg: None)
    n = frame.height
    columns = dedup_columns(frame)
    texts = columns.get_column("dedup_text")
    if protected_families is None:
        protected_families = holdout_families(_registry_or_none())
    keys = _order_columns(frame, columns, family_order, protected_families)
    del columns
    rank = _priority(keys, texts, strategy)
    del keys

    # One representative (best-ranked row) per content hash: near-dup detection runs on those.
    rows = pl.DataFrame(
        {"_row": np.arange(n, dtype=np.int64), "_rank": rank, "content_hash": frame.get_column("content_hash")}
    )
    reps = rows.sort("_rank").unique("content_hash", keep="first", maintain_order=True)
    say(f"dedup: {n} records, {reps.height} distinct content hashes, strategy={strategy}")

    near_stats: dict[str, Any] = {"enabled": threshold is not None}
    if threshold is not None and reps.height:
        rep_texts = texts.gather(reps.get_column("_row").to_numpy())
        near = find_near_duplicates(rep_texts, threshold=threshold, log=log, **lsh_params)
        rep_cluster = near.labels
        near_stats.update(near.stats)
        del rep_texts, near  # the texts' buffers are freed before the records are rewritten
    else:
        rep_cluster = np.arange(reps.height, dtype=np.int64)
    del texts

    # Group of every representative; in each group the best-ranked representative is kept, and
    # the cluster id is the smallest content hash in the group.
    reps = reps.with_columns(_group=pl.Series(rep_cluster, dtype=pl.Int64))
    groups = reps.group_by("_group").agg(
        pl.col("content_hash").sort_by("_rank").first().alias("_kept_hash"),
        pl.col("_row").sort_by("_rank").first().alias("_kept_row"),
        pl.col("content_hash").min().alias("cluster_id"),
    )
    assign = (
        rows.join(reps.select("content_hash", "_group"), on="content_hash")
        .join(groups, on="_group")
        .sort("_row")
    )
    kept_mask = (assign.get_column("_row") == assign.get_column("_kept_row")).to_numpy()
    same_hash = (assign.get_column("content_hash") == assign.get_column("_kept_hash")).to_numpy()
    families = frame.get_column("source_family")

    kept = frame.filter(pl.Series(kept_mask)).with_columns(
        cluster_id=assign.get_column("cluster_id").filter(pl.Series(kept_mask))
    )
    kept = kept.with_columns(mark_dedup_status(kept.get_column("record"), "unique"))

    removed_mask = ~kept_mask
    removed_assign = assign.filter(pl.Series(removed_mask))
    reasons = np.where(same_hash[removed_mask], "duplicate_removed", "near_duplicate_removed")
    removed = frame.filter(pl.Series(removed_mask)).select("content_hash", "source_family", "record")
    removed = removed.with_columns(
        reason=pl.Series(reasons, dtype=pl.String),
        duplicate_of=removed_assign.get_column("_kept_hash"),
        duplicate_of_family=families.gather(removed_assign.get_column("_kept_row").to_numpy()),
    )
    removed = removed.with_row_index("_order")
    parts = []
    for reason in ("duplicate_removed", "near_duplicate_removed"):
        part = removed.filter(pl.col("reason") == reason)
        parts.append(part.with_columns(mark_dedup_status(part.get_column("record"), reason)))
    removed = pl.concat(parts).sort("_order")
    removed = removed.select(list(REMOVED_SCHEMA)).cast(REMOVED_SCHEMA)

    stats = _stats(frame, kept, removed, reps.height, strategy, near_stats)
    say(
        f"dedup: kept {kept.height}, removed {stats['removed']['duplicate_removed']} exact and "
        f"{stats['removed']['near_duplicate_removed']} near duplicates"
    )
    return DedupResult(kept=kept, removed=removed, stats=stats)


def _stats(
    frame: pl.DataFrame,
    kept: pl.DataFrame,
    removed: pl.DataFrame,
    distinct_hashes: int,
    strategy: str,
    near_stats: dict[str, Any],
) -> dict[str, Any]:
    per_family: dict[str, dict[str, int]] = {}
    for fam, count in frame.group_by("source_family").len().iter_rows():
        per_family[fam] = {"input": count, "kept": 0, "duplicate_removed": 0, "near_duplicate_removed": 0}
    for fam, count in kept.group_by("source_family").len().iter_rows():
        per_family[fam]["kept"] = count
    for fam, reason, count in removed.group_by("source_family", "reason").len().iter_rows():
        per_family[fam][reason] = count
    by_reason = dict(removed.group_by("reason").len().iter_rows())
    cross = removed.filter(pl.col("source_family") != pl.col("duplicate_of_family")).height
    return {
        "input": frame.height,
        "kept": kept.height,
        "removed": {
            "duplicate_removed": int(by_reason.get("duplicate_removed", 0)),
            "near_duplicate_removed": int(by_reason.get("near_duplicate_removed", 0)),
        },
        "removed_cross_family": cross,
        "distinct_content_hashes": distinct_hashes,
        "clusters": kept.height,
        "strategy": strategy,
        "per_family": dict(sorted(per_family.items())),
        "near_duplicates": near_stats,
    }
