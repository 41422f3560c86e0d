"""Dedup: exact (content hash) and near-duplicate (MinHash LSH) removal across all families."""

import dagster as dg
import polars as pl

from pixel_assets.defs.ingest.assets import REGISTRY
from pixel_assets.defs.pii.assets import scrubbed_key
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
            group_name="dedup",
            description="Scrubbed records of all families minus exact and near duplicates, with cluster ids.",
        ),
        "dedup_removed": frame_out(
            "dedup_removed",
            group_name="dedup",
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
    removed_by = (
        result.removed.group_by("source_family", "reason").len().sort("source_family", "reason").to_dicts()
    )
    yield dg.Output(
        result.kept,
        output_name="deduplicated",
        metadata={
            "dagster/row_count": len(result.kept),
            "input_records": len(combined),
            "strategy": config.strategy,
            "near_dup_threshold": config.near_dup_threshold,
            "stats": dg.MetadataValue.json(result.stats),
        },
    )
    yield dg.Output(
        result.removed,
        output_name="dedup_removed",
        metadata={
            "dagster/row_count": len(result.removed),
            "by_family_and_reason": dg.MetadataValue.md(markdown_table(removed_by)),
        },
    )
