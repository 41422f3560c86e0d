"""The compiled dataset (shards, export, manifest.json) and its per-family accounting."""

import dagster as dg
import polars as pl

from pixel_assets.defs.ingest.assets import REGISTRY, normalized_key
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.report import markdown_table



class CompileConfig(dg.Config):
    shard_max_bytes: int = 50_000_000


@dg.asset(
    ins={"split_assignment": dg.AssetIn("split_assignment")},
    deps=["leakage_report"],
    group_name="compiled",
    kinds={"json", "s3"},
)
def compiled_dataset(
    context: dg.AssetExecutionContext,
    config: CompileConfig,
    split_assignment: pl.DataFrame,
    data_root: DataRootResource,
) -> dict:
    """Split shards with sha256, the single-file export, and manifest.json (published last)."""
    from pixel_assets.lib.compiled import DEFAULT_PREFIX, build_compiled_dataset, publish_compiled_dataset

    compiled = build_compiled_dataset(split_assignment, REGISTRY, shard_max_bytes=config.shard_max_bytes)
    root = data_root.root()
    manifest_key = publish_compiled_dataset(compiled, root, prefix=DEFAULT_PREFIX, log=context.log)
    manifest = compiled.manifest
    shards = [
        {"split": split, "path": s["path"], "conversations": s["conversation_count"], "bytes": s["size_bytes"]}
        for split in ("train", "val", "test")
        for s in manifest["splits"][split]["shards"]
    ]
    context.add_output_metadata(
        {
            "manifest_key": manifest_key,
            "manifest_uri": root.uri(manifest_key),
            "total_conversations": manifest["total_conversations"],
            "total_tokens_approx": manifest["total_tokens_approx"],
            **{f"{split}_conversations": manifest["splits"][split]["conversations"] for split in ("train", "val", "test")},
            "shards": dg.MetadataValue.md(markdown_table(shards)),
        }
    )
    return manifest


@dg.asset(
    ins={
        "compiled_dataset": dg.AssetIn("compiled_dataset"),
        "quarantine": dg.AssetIn("quarantine"),
        "dedup_removed": dg.AssetIn("dedup_removed"),
        "pii_review_queue": dg.AssetIn("pii_review_queue"),
        **{f"normalized_{f.name}": dg.AssetIn(normalized_key(f.name)) for f in REGISTRY.families},
    },
    group_name="reports",
    kinds={"json"},
)
def dataset_accounting(
    context: dg.AssetExecutionContext,
    compiled_dataset: dict,
    quarantine: pl.DataFrame,
    dedup_removed: pl.DataFrame,
    pii_review_queue: pl.DataFrame,
    **normalized: pl.DataFrame,
) -> dict:
    """Per family: read = quarantined + exact dups + near dups + requires_review + compiled."""

    def per_family(frame: pl.DataFrame, **filters: str) -> dict[str, int]:
        for column, value in filters.items():
            frame = frame.filter(pl.col(column) == value)
        return dict(frame.group_by("source_family").len().iter_rows())

    quarantined = per_family(quarantine)
    exact = per_family(dedup_removed, reason="duplicate_removed")
    near = per_family(dedup_removed, reason="near_duplicate_removed")
    review = per_family(pii_review_queue) if len(pii_review_queue) else {}
    rows, broken = [], []
    for family in REGISTRY.names:
        valid = len(normalized[f"normalized_{family}"])
        compiled = compiled_dataset["source_families"].get(family, {}).get("conversations", 0)
        row = {
            "family": family,
            "read": valid + quarantined.get(family, 0),
            "quarantined": quarantined.get(family, 0),
            "valid": valid,
            "exact_dups": exact.get(family, 0),
            "near_dups": near.get(family, 0),
            "requires_review": review.get(family, 0),
            "compiled": compiled,
        }
        if valid != row["exact_dups"] + row["near_dups"] + row["requires_review"] + compiled:
            broken.append(family)
        rows.append(row)
    totals = {k: sum(r[k] for r in rows) for k in rows[0] if k != "family"}
    context.add_output_metadata(
        {
            "balanced": not broken,
            **{f"total_{k}": v for k, v in totals.items()},
            "accounting": dg.MetadataValue.md(markdown_table(rows)),
        }
    )
    if broken:
        raise dg.Failure(f"records unaccounted for in families: {', '.join(broken)}")
    return {"families": rows, "totals": totals}
