"""Ingest: one raw-source spec and one normalize step per registry family, quarantine, coverage."""

import dagster as dg
import polars as pl

from pixel_assets.defs.keys import GROUP_DATA, GROUP_REPORTS, GROUP_SOURCES
from pixel_assets.defs.keys import REGISTRY, family_tags, normalized_key, quarantine_key, raw_key  # noqa: F401 (re-exported)
from pixel_assets.defs.storage.outs import frame_out
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.contract import QUARANTINE_FRAME_SCHEMA
from pixel_assets.lib.coverage import CoverageThresholds, compute_coverage, unmatched_sources
from pixel_assets.lib.ingest import ingest_family
from pixel_assets.lib.ingest.sentences import family_repairs
from pixel_assets.lib.registry import Family
from pixel_assets.lib.report import markdown_table

def _sources_md(family: Family) -> str:
    return markdown_table(
        [{"path": s.path, "format": s.format, "options": s.options or ""} for s in family.sources]
    )


def build_raw_source_spec(family: Family) -> dg.AssetSpec:
    """The family's source files: external to Dagster (written by upstream tools or the demo)."""
    return dg.AssetSpec(
        raw_key(family.name),
        group_name=GROUP_SOURCES,
        description=f"Raw source files of `{family.name}` (globs under the data root or s3://).",
        metadata={"sources": dg.MetadataValue.md(_sources_md(family)), "enabled": family.enabled},
        kinds={"s3"} if any(s.path.startswith("s3://") for s in family.sources) else {"file"},
        tags=family_tags(family),
    )


def build_ingest_asset(family: Family) -> dg.AssetsDefinition:
    """Read every source of one family, normalize into the record contract, quarantine the rest."""
    tags = family_tags(family)

    @dg.multi_asset(
        name=f"ingest_{family.name}",
        deps=[raw_key(family.name)],
        outs={
            "normalized": frame_out(
                normalized_key(family.name),
                group_name=GROUP_DATA,
                description=f"`{family.name}` records normalized into the record contract (SPEC §3).",
                tags=tags,
            ),
            "quarantine": frame_out(
                quarantine_key(family.name),
                group_name=GROUP_DATA,
                description=f"`{family.name}` inputs rejected by normalization, with reasons (no content).",
                tags=tags,
            ),
        },
    )
    def _ingest(context: dg.AssetExecutionContext, data_root: DataRootResource):
        result = ingest_family(
            family, data_root.root(), s3_client=data_root.s3_client(), log=context.log.info
        )
        if result.read != result.valid + len(result.quarantine):
            raise dg.Failure(
                f"{family.name}: accounting broken: read {result.read} != valid {result.valid}"
                f" + quarantined {len(result.quarantine)}"
            )
        counts = {
            "read": result.read,
            "valid": result.valid,
            "quarantined": len(result.quarantine),
            "source_files": len(result.files),
            "merged_turns": result.merged_turns,
            "sentence_breaks_repaired": family_repairs(result.records),  # lib/ingest/sentences.py
        }
        context.log.info(f"{family.name}: {counts}")
        yield dg.Output(
            result.records,
            output_name="normalized",
            metadata={**counts, "dagster/row_count": result.valid, "enabled": family.enabled},
        )
        yield dg.Output(
            result.quarantine,
            output_name="quarantine",
            metadata={
                "dagster/row_count": len(result.quarantine),
                "by_reason": dg.MetadataValue.md(
                    markdown_table([{"reason": r, "count": n} for r, n in sorted(result.per_reason.items())])
                ),
            },
        )

    return _ingest


raw_source_specs = [build_raw_source_spec(f) for f in REGISTRY.families]
ingest_assets = [build_ingest_asset(f) for f in REGISTRY.families]


@dg.asset(
    ins={f.name: dg.AssetIn(quarantine_key(f.name)) for f in REGISTRY.families},
    group_name=GROUP_DATA,
    kinds={"polars"},
)
def quarantine(context: dg.AssetExecutionContext, **frames: pl.DataFrame) -> pl.DataFrame:
    """Every rejected input of every family, with its reason and location (never its content)."""
    combined = pl.concat([f for f in frames.values()], how="vertical").cast(QUARANTINE_FRAME_SCHEMA)
    # One row per family, one column per reason: 19 rows instead of one per (family, reason).
    by = (combined.group_by("source_family", "reason").len(name="records")
          .pivot(on="reason", index="source_family", values="records", sort_columns=True)
          .fill_null(0).sort("source_family")) if len(combined) else pl.DataFrame()
    context.add_output_metadata(
        {
            "dagster/row_count": len(combined),
            "by_family_and_reason": dg.MetadataValue.md(markdown_table(by.to_dicts())),
        }
    )
    return combined


class CoverageConfig(dg.Config):
    min_present: int = CoverageThresholds.min_present
    min_partial: int = CoverageThresholds.min_partial


@dg.asset(
    ins={f.name: dg.AssetIn(normalized_key(f.name)) for f in REGISTRY.families},
    group_name=GROUP_REPORTS,
    kinds={"json"},
)
def coverage_report(
    context: dg.AssetExecutionContext, config: CoverageConfig, data_root: DataRootResource, **frames: pl.DataFrame
) -> dict:
    """Present / partial / missing per required family, from *normalized* record counts (the
    coverage gate applies the same thresholds to the *compiled* conversations, after dedup and PII)."""
    report = compute_coverage(
        {name: len(frame) for name, frame in frames.items()},
        REGISTRY,
        CoverageThresholds(config.min_present, config.min_partial),
        unmatched_sources(REGISTRY, data_root.root(), data_root.s3_client()),
    )
    rows = [{"family": n, "normalized_records": v["conversations"],
             **{k: x for k, x in v.items() if k != "conversations"}} for n, v in report["families"].items()]
    context.add_output_metadata(
        {
            "ok": report["ok"],
            "required_missing": ", ".join(report["required_missing"]) or "none",
            "required_partial": ", ".join(report["required_partial"]) or "none",
            # ERROR: a required family's source glob matches no file; WARNING: a non-required one's.
            "required_sources_without_files": ", ".join(report["required_sources_without_files"]) or "none",
            "optional_sources_without_files": ", ".join(report["optional_sources_without_files"]) or "none",
            "families": dg.MetadataValue.md(markdown_table(rows)),
        }
    )
    if report["required_missing"]:
        context.log.warning(f"required families missing: {report['required_missing']}")
    if report["required_sources_without_files"]:
        context.log.error(f"ERROR required families whose source globs match no file: "
                          f"{report['required_sources_without_files']}")
    if report["optional_sources_without_files"]:
        context.log.warning(f"non-required families whose source globs match no file: "
                            f"{report['optional_sources_without_files']}")
    return report
