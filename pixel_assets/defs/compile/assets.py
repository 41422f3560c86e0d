"""The compiled dataset (shards, export, manifest.json) and its per-family accounting."""

import dagster as dg
import polars as pl

from pixel_assets.defs.keys import REGISTRY, normalized_key
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.accounting import family_accounting
from pixel_assets.lib.report import markdown_table



class CompileConfig(dg.Config):
    shard_max_bytes: int = 50_000_000


@dg.asset(
    ins={"split_assignment": dg.AssetIn("split_assignment")},
    deps=["leakage_report"],
    group_name="compiled",
    kinds={"json"},
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
    families = [{"family": fam, **figures["splits"], "total": figures["conversations"]}
                for fam, figures in sorted(manifest["source_families"].items())]
    context.add_output_metadata(
        {
            "manifest_key": manifest_key,
            "manifest_uri": dg.MetadataValue.url(root.uri(manifest_key)),
            "dagster/row_count": manifest["total_conversations"],
            "total_conversations": manifest["total_conversations"],
            "total_tokens_approx": manifest["total_tokens_approx"],
            **{f"{split}_conversations": manifest["splits"][split]["conversations"] for split in ("train", "val", "test")},
            "by_family": dg.MetadataValue.md(markdown_table(families, ["family", "train", "val", "test", "total"])),
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

    report = family_accounting(
        REGISTRY.names,
        valid={family: len(normalized[f"normalized_{family}"]) for family in REGISTRY.names},
        quarantined=per_family(quarantine),
        exact_dups=per_family(dedup_removed, reason="duplicate_removed"),
        near_dups=per_family(dedup_removed, reason="near_duplicate_removed"),
        requires_review=per_family(pii_review_queue) if len(pii_review_queue) else {},
        compiled={f: v["conversations"] for f, v in compiled_dataset["source_families"].items()},
    )
    context.add_output_metadata(
        {
            "balanced": report["balanced"],
            **{f"total_{k}": v for k, v in report["totals"].items()},
            "accounting": dg.MetadataValue.md(markdown_table(report["families"])),
        }
    )
    if not report["balanced"]:
        raise dg.Failure(f"records unaccounted for in families: {', '.join(report['unbalanced'])}")
    return report
