"""Splits: stable, cluster-aware train/val/test assignment and the report that proves no leakage."""

import dagster as dg
import polars as pl

from pixel_assets.defs.ingest.assets import REGISTRY
from pixel_assets.lib.report import markdown_table


@dg.asset(ins={"deduplicated": dg.AssetIn("deduplicated")}, group_name="splits", kinds={"polars"})
def split_assignment(context: dg.AssetExecutionContext, deduplicated: pl.DataFrame) -> pl.DataFrame:
    """90/5/5 by a hash of the group key (near-dup cluster + first user turn); holdouts per registry."""
    from pixel_assets.lib.splits import assign_splits

    assigned = assign_splits(deduplicated, REGISTRY)
    shares = assigned.group_by("source_family", "split").len().pivot(
        on="split", index="source_family", values="len"
    ).fill_null(0).sort("source_family")
    context.add_output_metadata(
        {
            "dagster/row_count": len(assigned),
            "by_family": dg.MetadataValue.md(markdown_table(shares.to_dicts())),
        }
    )
    return assigned


@dg.asset(ins={"split_assignment": dg.AssetIn("split_assignment")}, group_name="splits", kinds={"json"})
def leakage_report(context: dg.AssetExecutionContext, split_assignment: pl.DataFrame) -> dict:
    """Exact, near-dup cluster and first-user-turn overlaps across splits, and holdout violations."""
    from pixel_assets.lib.splits import leakage_report as compute_leakage_report

    report = compute_leakage_report(split_assignment, REGISTRY)
    context.add_output_metadata({"report": dg.MetadataValue.json(report)})
    return report
