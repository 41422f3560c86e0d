"""`final_evaluation`: loss and perplexity per family on the test split, for the base model, every
checkpoint and the final model; the hard-holdout families (test-only families and the test-only
slices) apart from the ordinary test records. One table (rows: families, columns: checkpoints),
numeric metadata the UI plots across runs, and training/evaluation/final_evaluation.json.
"""


from pathlib import Path
from typing import Any

import dagster as dg

from pixel_assets.defs.guard import require_passed_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import adapters
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.inputs import EVALUATION_INPUTS, read_split
from pixel_assets.defs.training.stage_data import base_location, work_dir
from pixel_assets.lib.training import learning_report as learning
from pixel_assets.lib.training.base_pretrain import UNTRAINED_DIR
from pixel_assets.lib.training.curriculum import Curriculum

def capped_sections(records: list[dict], cap: int | None) -> dict[str, dict[str, list[dict]]]:
    """The library's holdout/test sections of the test split, each family capped (first N, in the
    published order, so every checkpoint sees the same records)."""
    from pixel_assets.lib.training.evaluation import split_test_records

    return {section: {f: recs[:cap] for f, recs in fams.items()}
            for section, fams in split_test_records(records).items()}


def build_final_evaluation(cur: Curriculum) -> dg.AssetsDefinition:
    stages = s.chain(cur)

    @dg.asset(
        key=s.FINAL_EVALUATION_KEY, group_name=s.GROUP, kinds={"json"},
        deps=[s.training_inputs_key(EVALUATION_INPUTS), s.BASE_MODEL_KEY, *(s.checkpoint_key(st.name) for st in stages)],
        description="Loss and perplexity per family on the test split (hard-holdout section apart) for the base, "
                    "every checkpoint and the final model; also written to training/evaluation/final_evaluation.json",
    )
    def final_evaluation(context: dg.AssetExecutionContext, data_root: DataRootResource,
                         checkpoint_store: s.CheckpointStoreResource, training: s.TrainingSettings):
        from pixel_assets.lib.training import evaluation as lib
        from pixel_assets.lib.training.models import load_tokenizer

        root = data_root.root()
        require_passed_gates(context, root)
        cache = work_dir(data_root, training)
        base = base_location(root, cur, cache)
        store = checkpoint_store.store(root)
        columns: dict[str, Any] = {"base": None}
        for st in stages:
            name = s.checkpoint_dir_name(st.name)
            columns[name] = store.pull(name, cache / "parents" / name)
        # No stage trained on sequences longer than its context: evaluate within the longest one
        # (the library counts what it had to cut, per family, in the table).
        max_length = max(st.max_length for st in stages)
        sections = capped_sections(read_split(root, "test"), training.eval_records_per_family)
        tokenizer = load_tokenizer(base)
        results = {}
        untrained = Path(base) / UNTRAINED_DIR
        if not cur.base_model and untrained.is_dir():  # the tiny base before its pre-training: the "before" column
            results.update(lib.evaluate_adapters(str(untrained), {learning.UNTRAINED: None}, tokenizer, sections,
                                                 plan=adapters.plan(training.force_cpu), max_length=max_length))
        results.update(lib.evaluate_adapters(base, columns, tokenizer, sections,
                                             plan=adapters.plan(training.force_cpu), max_length=max_length))
        table = lib.evaluation_table(results)
        targets = {"final_vs_untrained": learning.final_vs_untrained(table),
                   "stages_on_own_validation": stage_improvements(context.instance, stages)}
        key = lib.write_evaluation(root, table, base_model=cur.base_model or f"embedded tiny ({s.BASE_DIR})",
                                   records_per_family=training.eval_records_per_family or "all", targets=targets)
        context.log.info(f"final_evaluation: {len(columns)} models on {sum(map(len, sections.values()))} rows -> {root.uri(key)}")
        return dg.MaterializeResult(metadata={
            "uri": dg.MetadataValue.url(root.uri(key)),
            "loss": dg.MetadataValue.md("Test-split loss on assistant tokens (perplexity = exp(loss)); section "
                                        "`holdout` = the hard holdout, `test` = ordinary test records.\n\n"
                                        + lib.table_markdown(table)),
            "perplexity": dg.MetadataValue.md(lib.table_markdown(table, "perplexity")),
            "holdout_families": len(table["sections"].get("holdout", {})),
            "learning": dg.MetadataValue.json(targets),
            **lib.table_metadata(table),
        })

    return final_evaluation


def stage_improvements(instance: dg.DagsterInstance, stages) -> dict[str, Any]:
    """Per SFT stage, from its checkpoint's metadata: the parent's loss on the stage's validation
    records before it trained, and its own after (the same records, the same measurement). The
    target is about SFT stages: continued pretraining (kind pretrain) on text the demo's base was
    already pre-trained on, and preference training (another objective), are shown, not judged."""
    rows = []
    for st in stages:
        if st.kind != "sft":
            continue
        meta = s.latest_metadata(instance, s.checkpoint_key(st.name))
        rows.append((st.name, _number(meta.get("parent_eval_loss")), _number(meta.get("eval_loss"))))
    return learning.stage_improvements(rows)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value else None


def evaluation_summary(report: dict[str, Any]) -> str:
    """Mean test loss per section for the untrained model (when there is one), the base, the last
    SFT checkpoint and the final model (CLI)."""
    cols = report["checkpoints"]
    shown = [c for c in (learning.UNTRAINED, "base", *cols[-2:]) if c in cols]
    lines = []
    for section, fams in report["sections"].items():
        means = {}
        for c in dict.fromkeys(shown):
            vals = [cells[c]["loss"] for cells in fams.values() if cells.get(c, {}).get("loss") is not None]
            means[c] = sum(vals) / len(vals) if vals else None
        lines.append(f"  {section:8s} ({len(fams)} families) mean loss: "
                     + ", ".join(f"{c} {v:.3f}" if v is not None else f"{c} n/a" for c, v in means.items()))
    return "\n".join(lines)
