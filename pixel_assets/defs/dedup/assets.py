"""Dedup: exact (content hash) and near-duplicate (MinHash LSH) removal across all families."""

import dagster as dg
import polars as pl

from pixel_assets.defs.keys import GROUP_DATA, REGISTRY, scrubbed_key
from pixel_assets.defs.storage.outs import frame_out
from pixel_assets.lib.report import markdown_table


class DedupConfig(dg.Config):
    strategy: str = "keep_first"  # keep_first | keep_longest | keep_best_quality
    near_dup_threshold: float = 0.8  # Jaccard of word shingles; see docs/dedup.md


@dg.multi_asset(
    ins={f.name: dg.AssetIn(scrubbed_key(f.name)) for f in REGISTRY.families},
    outs={
        "deduplicated": frame_out(
            "deduplicated",
            group_name=GROUP_DATA,
            description="Scrubbed records of all families minus exact and near duplicates, with cluster ids.",
        ),
        "dedup_removed": frame_out(
            "dedup_removed",
            group_name=GROUP_DATA,
            description="Every removed duplicate with the content hash of the record it duplicates.",
        ),
    },
)
def deduplicate(context: dg.AssetExecutionContext, config: DedupConfig, **frames: pl.DataFrame):
    from pixel_assets.lib.dedup import dedup_records, holdout_families

    combined = pl.concat([frames[name] for name in REGISTRY.names], how="diagonal_relaxed")
    result = dedup_records(
        combined,
        strategy=config.strategy,
        threshold=config.near_dup_threshold,
        family_order=REGISTRY.names,
        protected_families=holdout_families(REGISTRY),
        log=context.log.info,
    )
    stats = result.stats
    per_family = [{"family": fam, **figures} for fam, figures in stats["per_family"].items()]
    near = stats["near_duplicates"]
    yield dg.Output(
        result.kept,
        output_name="deduplicated",
        metadata={
            "dagster/row_count": len(result.kept),
            "input_records": len(combined),
            "exact_duplicates_removed": stats["removed"]["duplicate_removed"],
            "near_duplicates_removed": stats["removed"]["near_duplicate_removed"],
            "removed_cross_family": stats["removed_cross_family"],
            # settings as text: the UI plots numbers as a series, and a constant is not a trend
            "strategy": config.strategy,
            "near_dup_threshold": str(config.near_dup_threshold),
            "lsh_banding": (f"{near['bands']} bands x {near['rows']} rows "
                            f"(recall at threshold {near['recall_at_threshold']})") if near.get("bands")
                           else ("off" if not near.get("enabled") else "not run (no records)"),
            "per_family": dg.MetadataValue.md(markdown_table(per_family)),
            "stats": dg.MetadataValue.json(stats),
        },
    )
    removed_by = (
        result.removed.group_by("source_family", "reason").len(name="records").sort("source_family", "reason").to_dicts()
    )
    yield dg.Output(
        result.removed,
        output_name="dedup_removed",
        metadata={
            "dagster/row_count": len(result.removed),
            "by_family_and_reason": dg.MetadataValue.md(markdown_table(removed_by)),
        },
    )
