"""PII: scrub every family's normalized records; uncertain detections wait in a review queue."""

import dagster as dg
import polars as pl

from pixel_assets.defs.ingest.assets import REGISTRY, normalized_key
from pixel_assets.defs.pii.resources import PiiResource
from pixel_assets.defs.storage.outs import frame_out
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.contract import empty_records_frame
from pixel_assets.lib.registry import Family
from pixel_assets.lib.report import markdown_table


def scrubbed_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["scrubbed", family])


def review_key(family: str) -> dg.AssetKey:
    return dg.AssetKey(["pii_review", family])


def build_pii_asset(family: Family) -> dg.AssetsDefinition:
    tags = {"family": family.name}

    @dg.multi_asset(
        name=f"pii_{family.name}",
        ins={"normalized": dg.AssetIn(normalized_key(family.name))},
        outs={
            "scrubbed": frame_out(
                scrubbed_key(family.name),
                group_name="pii",
                description=f"`{family.name}` records with PII replaced by typed placeholders.",
                tags=tags,
                kinds={"presidio", "polars"},
            ),
            "review": frame_out(
                review_key(family.name),
                group_name="pii",
                description=f"`{family.name}` records with uncertain detections (never compiled).",
                tags=tags,
            ),
        },
    )
    def _pii(context: dg.AssetExecutionContext, normalized: pl.DataFrame, pii: PiiResource, data_root: DataRootResource):
        from pixel_assets.lib.pii import scrub_frame

        if len(normalized) == 0:
            clean, review, stats = empty_records_frame(), empty_records_frame(), {}
        else:
            cache = pii.cache(data_root)
            try:
                result = scrub_frame(
                    normalized,
                    family=family.name,
                    scrubber=pii.scrubber(),
                    cache=cache,
                    log=context.log.info,
                )
            finally:
                if cache is not None:
                    cache.close()
            clean, review, stats = result.clean, result.review, result.stats
        preview = _scrubbed_preview(clean)
        yield dg.Output(
            clean,
            output_name="scrubbed",
            metadata={
                "dagster/row_count": len(clean),
                "input_records": len(normalized),
                "requires_review": len(review),
                "stats": dg.MetadataValue.json(stats),
                # A preview from scrubbed text only: placeholders, never raw values.
                "preview": dg.MetadataValue.md(preview),
            },
        )
        yield dg.Output(
            review,
            output_name="review",
            metadata={"dagster/row_count": len(review)},
        )

    return _pii


def _scrubbed_preview(clean: pl.DataFrame, rows: int = 3, chars: int = 160) -> str:
    """First user turns of a few scrubbed records that had PII replaced (shows placeholders)."""
    import json

    picked = []
    for raw in clean.get_column("record").head(500):
        record = json.loads(raw)
        if record["metadata"].get("pii_status") != "scrubbed":
            continue
        text = " / ".join(m["content"] for m in record["messages"] if m["role"] != "system")
        picked.append({"content_hash": record["metadata"]["content_hash"][:19], "text": text[:chars]})
        if len(picked) == rows:
            break
    return markdown_table(picked, ["content_hash", "text"])


pii_assets = [build_pii_asset(f) for f in REGISTRY.families]


@dg.asset(
    ins={f.name: dg.AssetIn(review_key(f.name)) for f in REGISTRY.families},
    group_name="pii",
    kinds={"polars"},
)
def pii_review_queue(context: dg.AssetExecutionContext, **frames: pl.DataFrame) -> pl.DataFrame:
    """All requires_review records, waiting for a human: counted, never compiled, never dropped."""
    combined = pl.concat(list(frames.values()), how="diagonal_relaxed") if frames else empty_records_frame()
    by_family = combined.group_by("source_family").len().sort("source_family")
    context.add_output_metadata(
        {"dagster/row_count": len(combined), "by_family": dg.MetadataValue.md(markdown_table(by_family.to_dicts()))}
    )
    return combined


class PiiEvaluationConfig(dg.Config):
    labeled_samples: int = 2000  # generated, eval templates (never tuned on)
    clean_conversations: int = 300  # PII-free therapy conversations for over-redaction
    seed: int = 13


@dg.asset(group_name="pii", kinds={"presidio"})
def pii_detector_evaluation(
    context: dg.AssetExecutionContext, config: PiiEvaluationConfig, pii: PiiResource
) -> dict:
    """Precision / recall / F2 of the pipeline's detector on a generated labeled therapy set."""
    from pixel_assets.lib.pii.evaluate import evaluate_detector
    from pixel_assets.lib.pii.labeled import clean_conversations, labeled_set

    samples = labeled_set(config.labeled_samples, seed=config.seed, split="eval")
    clean = clean_conversations(config.clean_conversations)
    context.log.info(f"evaluating the detector on {len(samples)} labeled samples, {len(clean)} clean conversations")
    result = evaluate_detector(pii.scrubber(), samples, clean=clean)
    rows = [{"type": t, **f} for t, f in result["per_type"].items()] + [{"type": "OVERALL", **result["overall"]}]
    context.add_output_metadata(
        {
            "overall_precision": result["overall"]["precision"],
            "overall_recall": result["overall"]["recall"],
            "overall_f2": result["overall"]["f2"],
            "false_detections_per_clean_conversation": result["over_redaction"]["per_conversation"],
            "per_type": dg.MetadataValue.md(
                markdown_table(rows, ["type", "precision", "recall", "f2", "support", "detections"])
            ),
        }
    )
    return result


@dg.asset_check(asset=pii_detector_evaluation, description="recall/precision/over-redaction targets")
def pii_detector_meets_targets(pii_detector_evaluation: dict) -> dg.AssetCheckResult:
    """A miss warns rather than blocks: the compiled dataset has its own blocking PII gate."""
    from pixel_assets.lib.pii.evaluate import target_misses

    misses = target_misses(pii_detector_evaluation)
    return dg.AssetCheckResult(
        passed=not misses,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"misses": dg.MetadataValue.md("\n".join(f"- {m}" for m in misses) or "none")},
    )
