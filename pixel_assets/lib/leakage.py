"""The leakage report of a split assignment (SPEC §4): overlaps across splits and holdout
violations, recomputed from the record JSON. Counts and family names only (no content)."""

from __future__ import annotations

from typing import Any

import polars as pl

from pixel_assets.lib.contract import SPLITS
from pixel_assets.lib.registry import Registry


def _near_dup_clusters_across_splits(frame: pl.DataFrame, splits: pl.Series, threshold: float = 0.8) -> int:
    """Near-duplicate clusters (MinHash LSH over the records as assigned) whose members sit in more
    than one split."""
    from pixel_assets.lib.dedup import dedup_texts, near_duplicate_clusters

    if frame.height < 2:
        return 0
    labels = near_duplicate_clusters(dedup_texts(frame), threshold=threshold)
    clusters = pl.DataFrame({"cluster": labels, "split": splits})
    return int(clusters.group_by("cluster").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1).height)


def leakage_report(frame: pl.DataFrame, registry: Registry) -> dict[str, Any]:
    """Overlaps across splits and holdout violations, recomputed from the record JSON."""
    from pixel_assets.lib.splits import decode_record_fields

    return leakage_from_fields(frame, decode_record_fields(frame), registry)


def leakage_from_fields(frame: pl.DataFrame, fields: pl.DataFrame, registry: Registry) -> dict[str, Any]:
    """leakage_report over fields already decoded by decode_record_fields (one parse, shared)."""
    work = fields.select(
        "content_hash", "split", "holdout", pl.when(pl.col("fut") != "").then(pl.col("fut")).alias("fut")
    ).with_columns(
        source_family=frame.get_column("source_family"),
        **({"cluster_id": frame.get_column("cluster_id")} if "cluster_id" in frame.columns else {}),
    )

    def overlap(col: str) -> int:
        return int(
            work.filter(pl.col(col).is_not_null())
            .group_by(col).agg(pl.col("split").n_unique().alias("n"))
            .filter(pl.col("n") > 1).height
        )

    violations: dict[str, int] = {}
    slices: dict[str, dict[str, Any]] = {}
    for fam in registry.families:
        rows = work.filter(pl.col("source_family") == fam.name)
        if fam.holdout.mode == "test_only":
            violations[fam.name] = int(rows.filter(pl.col("split") != "test").height)
        elif fam.holdout.mode == "test_slice":
            held = rows.filter(pl.col("holdout").is_in(["slice", "group"]))
            violations[fam.name] = int(held.filter(pl.col("split") != "test").height)
            slices[fam.name] = {
                "records": rows.height,
                "held_out_records": held.height,
                "held_out_fraction": round(held.height / rows.height, 4) if rows.height else 0.0,
                "target_fraction": fam.holdout.fraction,
            }
    unset = int(work.filter(~pl.col("split").is_in(list(SPLITS)) | pl.col("split").is_null()).height)
    report = {
        "records": frame.height,
        "records_without_split": unset,
        "splits": {s: int(work.filter(pl.col("split") == s).height) for s in SPLITS},
        "exact_overlap": overlap("content_hash"),
        "first_user_turn_overlap": overlap("fut"),
        # Measured, not read from the dedup stage's cluster ids (dedup keeps one record per cluster,
        # so those never span splits): near-duplicate clusters among the records as assigned.
        "near_dup_cluster_overlap": _near_dup_clusters_across_splits(frame, work.get_column("split")),
        "near_dup_cluster_checked": True,
        "holdout_violations": violations,
        "holdout_slices": slices,
    }
    report["ok"] = (
        unset == 0
        and report["exact_overlap"] == 0
        and report["first_user_turn_overlap"] == 0
        and report["near_dup_cluster_overlap"] == 0
        and not any(violations.values())
    )
    return report
