"""PII: scrub every family's normalized records; uncertain detections wait in a review queue."""

import json

import dagster as dg
import polars as pl
from pydantic import Field

from pixel_assets.defs.keys import GROUP_DATA, REGISTRY, family_tags, normalized_key, review_key, scrubbed_key
from pixel_assets.defs.pii.resources import PiiResource
from pixel_assets.defs.storage.outs import frame_out
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.contract import empty_records_frame, frame_to_records
from pixel_assets.lib.pii.real import placeholder_density
from pixel_assets.lib.registry import Family
from pixel_assets.lib.report import markdown_table


class PiiScrubConfig(dg.Config):
    """Run config of a `pii_<family>` step (launchpad: ops -> pii_<family> -> config)."""

    metadata_preview: bool = Field(
        default=False,
        description=(
            "Opt in to a `preview` metadata entry on scrubbed/<family>: the scrubbed first user turn of a"
            " few records, truncated. Off by default: metadata lives in Dagster run storage, readable by"
            " anyone with UI access, and even scrubbed therapy text can hold a name the detector missed."
        ),
    )
    preview_rows: int = Field(default=3, ge=1, le=10, description="Records in the opt-in preview.")
    preview_chars: int = Field(default=160, ge=20, le=500, description="Characters per previewed turn.")


def _counts_md(counts: dict[str, int], label: str) -> dg.MetadataValue:
    rows = [{label: k, "count": n} for k, n in counts.items()]
    return dg.MetadataValue.md(markdown_table(rows))


def build_pii_asset(family: Family) -> dg.AssetsDefinition:
    tags = family_tags(family)

    @dg.multi_asset(
        name=f"pii_{family.name}",
        ins={"normalized": dg.AssetIn(normalized_key(family.name))},
        outs={
            "scrubbed": frame_out(
                scrubbed_key(family.name),
                group_name=GROUP_DATA,
                description=(
                    f"`{family.name}` records with PII replaced by typed placeholders. Metadata: counts"
                    " only (replacements by entity type, records by pii_status); a text preview is"
                    " opt-in (`metadata_preview` run config)."
                ),
                tags=tags,
                kinds={"presidio", "polars"},
            ),
            "review": frame_out(
                review_key(family.name),
                group_name=GROUP_DATA,
                description=(
                    f"`{family.name}` records with uncertain detections (never compiled). Metadata:"
                    " uncertain detections by entity type (counts only)."
                ),
                tags=tags,
            ),
        },
    )
    def _pii(
        context: dg.AssetExecutionContext,
        config: PiiScrubConfig,
        normalized: pl.DataFrame,
        pii: PiiResource,
        data_root: DataRootResource,
    ):
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
        density = placeholder_density(frame_to_records(clean))
        metadata = {
            "dagster/row_count": len(clean),
            "input_records": len(normalized),
            "requires_review": len(review),
            # over-redaction at a glance: compare with the labeled truth in docs/pii.md (real writing)
            "placeholders_per_1000_words": density["placeholders_per_1000_words"],
            "replaced_by_entity_type": _counts_md(stats.get("entities_replaced", {}), "entity type"),
            "records_by_pii_status": _counts_md(stats.get("status", {}), "pii_status"),
            "stats": dg.MetadataValue.json(stats),  # counts, cache figures, detector fingerprint
        }
        if config.metadata_preview:
            metadata["preview"] = dg.MetadataValue.md(
                _scrubbed_preview(clean, rows=config.preview_rows, chars=config.preview_chars)
            )
        yield dg.Output(clean, output_name="scrubbed", metadata=metadata)
        yield dg.Output(
            review,
            output_name="review",
            metadata={
                "dagster/row_count": len(review),
                "uncertain_by_entity_type": _counts_md(stats.get("entities_for_review", {}), "entity type"),
            },
        )

    return _pii


PREVIEW_STATUSES = ("none_detected", "scrubbed")


def _scrubbed_preview(clean: pl.DataFrame, rows: int = 3, chars: int = 160) -> str:
    """The first user turn (scrubbed, truncated to `chars`) of the first `rows` records in
    PREVIEW_STATUSES, in frame order: no preference for records where PII was found."""
    picked = []
    for raw in clean.get_column("record").head(500):
        record = json.loads(raw)
        status = record["metadata"].get("pii_status")
        if status not in PREVIEW_STATUSES:
            continue
        text = next((m["content"] for m in record["messages"] if m["role"] == "user"), None)
        if not text:
            continue
        text = " ".join(text.split())
        picked.append({
            "content_hash": record["metadata"]["content_hash"][:19],
            "pii_status": status,
            "first user turn": text if len(text) <= chars else text[: chars - 1] + "…",
        })
        if len(picked) == rows:
            break
    return markdown_table(picked, ["content_hash", "pii_status", "first user turn"])


pii_assets = [build_pii_asset(f) for f in REGISTRY.families]


@dg.asset(
    ins={f.name: dg.AssetIn(review_key(f.name)) for f in REGISTRY.families},
    group_name=GROUP_DATA,
    kinds={"polars"},
)
def pii_review_queue(context: dg.AssetExecutionContext, **frames: pl.DataFrame) -> pl.DataFrame:
    """All requires_review records, waiting for a human: counted, never compiled, never dropped."""
    combined = pl.concat(list(frames.values()), how="diagonal_relaxed") if frames else empty_records_frame()
    by_family = combined.group_by("source_family").len(name="records").sort("source_family")
    context.add_output_metadata(
        {"dagster/row_count": len(combined), "by_family": dg.MetadataValue.md(markdown_table(by_family.to_dicts()))}
    )
    return combined


class PiiEvaluationConfig(dg.Config):
    labeled_samples: int = 2000  # generated, eval templates (never tuned on)
    informal_samples: int = 1000  # per lowercase share (informal.informal_set, eval templates); 0 = skip
    clean_conversations: int = 300  # PII-free therapy conversations for over-redaction
    seed: int = 13


def evaluation_cache_key(scrubber, config: PiiEvaluationConfig) -> str:
    """The detector fingerprint (settings, detector version, presidio/spaCy/model versions, name
    vocabulary), every other pii.yaml setting (allow-lists apply in the evaluation too) and the
    evaluation's own config: the same key means the same figures, so they are not recomputed."""
    import dataclasses
    import hashlib

    blob = json.dumps({"fingerprint": scrubber.fingerprint, "settings": dataclasses.asdict(scrubber.config),
                       "evaluation": config.model_dump()}, sort_keys=True, default=sorted)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dg.asset(group_name=GROUP_DATA, kinds={"presidio"})
def pii_detector_evaluation(
    context: dg.AssetExecutionContext, config: PiiEvaluationConfig, pii: PiiResource, data_root: DataRootResource
) -> dict:
    """Precision / recall / F2 of the pipeline's detector on a generated labeled therapy set; cached
    under the local cache directory by detector fingerprint and settings (a re-run with the same
    detector reads the figures it computed, about two minutes on two cores)."""
    from pixel_assets.lib.pii.evaluate import evaluate_detector, evaluate_informal
    from pixel_assets.lib.pii.labeled import clean_conversations, labeled_set

    key = evaluation_cache_key(pii.scrubber(), config)
    cached = data_root.local_cache_dir() / "pii_detector_evaluation" / f"{key}.json"
    from_cache = pii.use_cache and cached.is_file()
    if from_cache:
        result = json.loads(cached.read_text())
        context.log.info(f"detector evaluation cached for this detector and settings ({key}): not recomputed")
    else:
        samples = labeled_set(config.labeled_samples, seed=config.seed, split="eval")
        clean = clean_conversations(config.clean_conversations)
        context.log.info(f"evaluating the detector on {len(samples)} labeled samples, {len(clean)} clean conversations")
        result = evaluate_detector(pii.scrubber(), samples, clean=clean)
        if config.informal_samples:
            result["informal"] = evaluate_informal(pii.scrubber(), config.informal_samples)
        if pii.use_cache:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(result, sort_keys=True))
    context.add_output_metadata({"cache_key": key, "from_cache": from_cache})
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


@dg.asset_check(
    asset=pii_detector_evaluation,
    description=(
        "The detector meets its acceptance targets on the generated labeled set: recall per entity type"
        " (lib/pii/evaluate.py RECALL_TARGETS), overall precision (MIN_OVERALL_PRECISION) and false"
        " detections per PII-free conversation (MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION), PERSON"
        " recall/precision on informal text (INFORMAL_PERSON_RECALL). A miss"
        " warns rather than blocks: the compiled dataset has its own blocking PII gate."
    ),
)
def pii_detector_meets_targets(pii_detector_evaluation: dict) -> dg.AssetCheckResult:
    """A miss warns rather than blocks: the compiled dataset has its own blocking PII gate."""
    from pixel_assets.lib.pii.evaluate import target_misses, target_report

    misses = target_misses(pii_detector_evaluation)
    report = target_report(pii_detector_evaluation)
    # Targets are text inside tables: numeric metadata would be plotted as a (constant) time series.
    return dg.AssetCheckResult(
        passed=not misses,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "recall_by_entity_type": dg.MetadataValue.md(markdown_table(report["per_type"])),
            "precision_and_over_redaction": dg.MetadataValue.md(markdown_table(report["overall"])),
            "misses": dg.MetadataValue.md("\n".join(f"- {m}" for m in misses) or "none"),
        },
    )
