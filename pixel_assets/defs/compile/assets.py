"""The compiled dataset (shards, export, manifest.json: staged, not yet published) and its
per-family accounting, with the blocking check that every record is accounted for."""

import io

import dagster as dg
import polars as pl

from pixel_assets.defs.keys import (DATASET_ACCOUNTING_KEY, DATASET_VERSION_KEY, GROUP_REPORTS, GROUP_VERIFICATION,
                                   REGISTRY, normalized_key)
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.accounting import family_accounting
from pixel_assets.lib.report import markdown_table



class CompileConfig(dg.Config):
    shard_max_bytes: int = 50_000_000


@dg.asset(
    ins={"split_assignment": dg.AssetIn("split_assignment"), "dedup_removed": dg.AssetIn("dedup_removed")},
    deps=["leakage_report"],
    group_name=GROUP_VERIFICATION,
    kinds={"json"},
)
def compiled_dataset(
    context: dg.AssetExecutionContext,
    config: CompileConfig,
    split_assignment: pl.DataFrame,
    dedup_removed: pl.DataFrame,
    data_root: DataRootResource,
) -> dict:
    """Split shards with sha256, the single-file export and manifest.json (last), STAGED under
    staging/<version>/ with the split ledger this compile would commit. Nothing is published
    here: the gates run on the staged bytes, then published_dataset promotes them."""
    from pixel_assets.lib.compiled import build_compiled_dataset
    from pixel_assets.lib.compiled.promote import stage_compiled_dataset, versioned
    from pixel_assets.lib.splits import read_ledger, split_ledger

    compiled = versioned(build_compiled_dataset(split_assignment, REGISTRY, shard_max_bytes=config.shard_max_bytes))
    root = data_root.root()
    ledger = split_ledger(split_assignment, dedup_removed, read_ledger(root))
    buffer = io.BytesIO()
    ledger.write_parquet(buffer)
    staged = stage_compiled_dataset(compiled, root, ledger_parquet=buffer.getvalue(), log=context.log)
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
            DATASET_VERSION_KEY: staged.version,
            "staging_prefix": staged.prefix,
            "manifest_key": staged.manifest_key,
            "manifest_uri": dg.MetadataValue.url(root.uri(staged.manifest_key)),
            "ledger_entries": ledger.height,
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
        "held_out_of_test": dg.AssetIn("held_out_of_test"),
        **{f"normalized_{f.name}": dg.AssetIn(normalized_key(f.name)) for f in REGISTRY.families},
    },
    group_name=GROUP_REPORTS,
    kinds={"json"},
)
def dataset_accounting(
    context: dg.AssetExecutionContext,
    compiled_dataset: dict,
    quarantine: pl.DataFrame,
    dedup_removed: pl.DataFrame,
    pii_review_queue: pl.DataFrame,
    held_out_of_test: pl.DataFrame,
    data_root: DataRootResource,
    **normalized: pl.DataFrame,
) -> dict:
    """Per family: valid = exact dups + near dups + requires_review + held out of test + compiled,
    and every required family's source globs match a file (a non-required one: a warning)."""
    from pixel_assets.lib.coverage import unmatched_sources

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
        held_out_of_test=per_family(held_out_of_test) if len(held_out_of_test) else {},
        compiled={f: v["conversations"] for f, v in compiled_dataset["source_families"].items()},
    )
    unmatched = unmatched_sources(REGISTRY, data_root.root(), data_root.s3_client())
    report["required_sources_without_files"] = sorted(f for f in unmatched if REGISTRY[f].required)
    report["optional_sources_without_files"] = sorted(f for f in unmatched if not REGISTRY[f].required)
    for family in report["optional_sources_without_files"]:
        context.log.warning(f"{family} (not required): source globs matching no file: {len(unmatched[family])}")
    context.add_output_metadata(
        {
            "balanced": report["balanced"],
            "required_sources_without_files": ", ".join(report["required_sources_without_files"]) or "none",
            "optional_sources_without_files": ", ".join(report["optional_sources_without_files"]) or "none",
            **{f"total_{k}": v for k, v in report["totals"].items()},
            "accounting": dg.MetadataValue.md(markdown_table(report["families"])),
        }
    )
    # Not raised here: the blocking check `balanced` fails, which stops published_dataset.
    return report


@dg.asset_check(asset=DATASET_ACCOUNTING_KEY, name="balanced", blocking=True,
                description="Every record read is quarantined, removed as a duplicate, waiting for review, "
                            "held out of test, or compiled; a required family's source matches a file.")
def accounting_balanced(dataset_accounting: dict) -> dg.AssetCheckResult:
    unbalanced = dataset_accounting.get("unbalanced") or []
    missing = dataset_accounting.get("required_sources_without_files") or []
    problems = ([f"records unaccounted for in families: {', '.join(unbalanced)}"] if unbalanced else []) + (
        [f"required families whose sources match no file: {', '.join(missing)}"] if missing else [])
    return dg.AssetCheckResult(
        passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems) or "every record read is accounted for",
        metadata={"unbalanced_families": len(unbalanced), "required_sources_without_files": len(missing),
                  **{f"total_{k}": v for k, v in (dataset_accounting.get("totals") or {}).items()}},
    )
