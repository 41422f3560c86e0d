"""Splits: stable, cluster-aware train/val/test assignment and the report that proves no leakage."""

import dagster as dg
import polars as pl

from pixel_assets.defs.keys import GROUP_DATA, REGISTRY
from pixel_assets.defs.storage.outs import frame_out
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.report import markdown_table


@dg.multi_asset(
    ins={"deduplicated": dg.AssetIn("deduplicated"), "dedup_removed": dg.AssetIn("dedup_removed")},
    outs={
        "split_assignment": frame_out("split_assignment", group_name=GROUP_DATA, description=(
            "Every kept record with its group key, split and holdout marker (set in its JSON too).")),
        "held_out_of_test": frame_out("held_out_of_test", group_name=GROUP_DATA, description=(
            "New holdout records whose group an earlier compile put in train or val: kept out of test "
            "and out of the dataset (content_hash, source_family, group_key; no content).")),
    },
)
def split_assignment(context: dg.AssetExecutionContext, data_root: DataRootResource,
                     deduplicated: pl.DataFrame, dedup_removed: pl.DataFrame):
    """90/5/5 by a hash of the group key (near-dup cluster + first user turn); holdouts per registry.
    Groups assigned by an earlier compile keep their split (the split ledger, docs/dedup.md); the
    ledger is only read here: compiled_dataset stages the updated one, published_dataset commits it."""
    from pixel_assets.lib.splits import LEDGER_KEY, assign_splits, read_ledger

    root = data_root.root()
    previous = read_ledger(root)
    stats: dict = {}
    assigned = assign_splits(deduplicated, REGISTRY, ledger=previous, removed=dedup_removed, stats=stats)
    held_out: pl.DataFrame = stats.pop("held_out_of_test")
    context.log.info(
        f"splits: {stats['groups']} groups, {stats['groups_from_ledger']} kept their earlier split, "
        f"{stats['groups_new']} new; {stats['ledger_moves']} earlier assignments moved by bridged groups; "
        f"{held_out.height} new holdout records kept out (their group trained before); ledger read from "
        f"{root.uri(LEDGER_KEY)} ({previous.height if previous is not None else 0} content hashes)"
    )
    shares = assigned.group_by("source_family", "split").len().pivot(
        on="split", index="source_family", values="len"
    ).fill_null(0).sort("source_family")
    shares = shares.select("source_family", *[s for s in ("train", "val", "test") if s in shares.columns])
    yield dg.Output(assigned, output_name="split_assignment", metadata={
        "dagster/row_count": len(assigned),
        "by_family": dg.MetadataValue.md(markdown_table(shares.to_dicts())),
        "groups": stats["groups"],
        "groups_from_ledger": stats["groups_from_ledger"],
        "groups_new": stats["groups_new"],
        "ledger_moves": stats["ledger_moves"],
        "holdout_groups_pinned": stats["holdout_groups_pinned"],
        "held_out_of_test": held_out.height,
        "ledger_entries_read": previous.height if previous is not None else 0,
        "ledger_uri": dg.MetadataValue.url(root.uri(LEDGER_KEY)),
    })
    by_family = dict(held_out.group_by("source_family").len().iter_rows()) if held_out.height else {}
    yield dg.Output(held_out, output_name="held_out_of_test", metadata={
        "dagster/row_count": held_out.height,
        "by_family": dg.MetadataValue.md(markdown_table([{"family": f, "records": n} for f, n in sorted(by_family.items())])),
    })


@dg.asset(ins={"split_assignment": dg.AssetIn("split_assignment")}, group_name=GROUP_DATA, kinds={"json"})
def leakage_report(context: dg.AssetExecutionContext, split_assignment: pl.DataFrame) -> dict:
    """Exact, near-dup cluster and first-user-turn overlaps across splits, and holdout violations."""
    from pixel_assets.lib.leakage import leakage_report as compute_leakage_report

    report = compute_leakage_report(split_assignment, REGISTRY)
    slices = [{"family": fam, **figures} for fam, figures in report["holdout_slices"].items()]
    violations = [{"family": fam, "records_outside_test": n} for fam, n in report["holdout_violations"].items()]
    context.add_output_metadata({
        "ok": report["ok"],
        "exact_overlap": report["exact_overlap"],
        "near_dup_cluster_overlap": report["near_dup_cluster_overlap"],
        "first_user_turn_overlap": report["first_user_turn_overlap"],
        "holdout_violations": sum(report["holdout_violations"].values()),
        "records_without_split": report["records_without_split"],
        "holdout_slices": dg.MetadataValue.md(markdown_table(slices)),
        "holdout_families": dg.MetadataValue.md(markdown_table(violations)),
        "report": dg.MetadataValue.json(report),
    })
    return report
