"""`final_evaluation`: loss and perplexity per family on the test split, for the base model, every
checkpoint and the final model; the hard-holdout families (test-only families and the test-only
slices) apart from the ordinary test records. One table (rows: families, columns: checkpoints),
numeric metadata the UI plots across runs, and training/evaluation/final_evaluation.json.
"""


import json
import math
from collections import defaultdict
from typing import Any

import dagster as dg

from pixel_assets.defs.gates.guard import COMPILED_DATASET_KEY, require_passed_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import adapters
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.inputs import read_split
from pixel_assets.defs.training.stage_data import base_location, work_dir
from pixel_assets.lib.report import markdown_table
from pixel_assets.lib.training.curriculum import Curriculum

EVALUATION_KEY = "training/evaluation/final_evaluation.json"
MAX_RECORDS_PER_ROW = 16  # test records evaluated per family row (bounded cost per checkpoint)


HARD_HOLDOUT = ("family", "slice")  # metadata.holdout: a test-only family, or a family's test-only slice


def rows_of(records: list[dict]) -> dict[str, list[dict]]:
    """Test records by table row: `<family> (holdout)` for the hard holdout, else `<family>`; the
    holdout rows first."""
    rows: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        meta = record["metadata"]
        row = meta["source_family"] + (" (holdout)" if meta.get("holdout") in HARD_HOLDOUT else "")
        if len(rows[row]) < MAX_RECORDS_PER_ROW:
            rows[row].append(record)
    return dict(sorted(rows.items(), key=lambda kv: (not kv[0].endswith("(holdout)"), kv[0])))


def build_final_evaluation(cur: Curriculum) -> dg.AssetsDefinition:
    stages = s.chain(cur)
    columns = ["base"] + [s.checkpoint_dir_name(st.name) for st in stages]

    @dg.asset(
        key=s.FINAL_EVALUATION_KEY, group_name=s.GROUP, kinds={"json"},
        deps=[COMPILED_DATASET_KEY, s.BASE_MODEL_KEY, *(s.checkpoint_key(st.name) for st in stages)],
        description="Loss and perplexity per family on the test split (hard-holdout rows apart) for the base, "
                    "every checkpoint and the final model; also written to " + EVALUATION_KEY,
    )
    def final_evaluation(context: dg.AssetExecutionContext, data_root: DataRootResource,
                         checkpoint_store: s.CheckpointStoreResource, training: s.TrainingSettings):
        root = data_root.root()
        require_passed_gates(context, root)
        cache = work_dir(data_root, training)
        base = base_location(root, cur, cache)
        rows = rows_of(read_split(root, "test"))
        results: dict[str, dict[str, dict[str, Any]]] = {}
        for column, stage in zip(columns, [None, *stages]):
            adapter = None
            if stage is not None:
                st_root, st_key = checkpoint_store.key(root, stage.name)
                adapter = s.local_dir(st_root, st_key, cache / "store")
            model, tokenizer = adapters.load_trained(base, adapter, training.force_cpu)
            for row, records in rows.items():
                loss = adapters.eval_loss(model, tokenizer, records, cur.model_max_length)
                results.setdefault(row, {})[column] = {
                    "loss": round(loss, 4), "perplexity": round(math.exp(min(loss, 50)), 3), "records": len(records)}
            context.log.info(f"final_evaluation: {column} evaluated on {len(rows)} rows")
        report = {"columns": columns, "rows": results, "holdout_rows": [r for r in rows if r.endswith("(holdout)")],
                  "base_model": cur.base_model or "embedded tiny (models/base)"}
        root.write_text(EVALUATION_KEY, json.dumps(report, indent=1, sort_keys=True))
        table = [{"family": row, "records": next(iter(vals.values()))["records"],
                  **{c: vals[c]["loss"] for c in columns}} for row, vals in results.items()]
        numbers = {f"loss/{c}/{row}": vals[c]["loss"] for row, vals in results.items() for c in columns}
        final = columns[-1]
        mean = lambda c: sum(v[c]["loss"] for v in results.values()) / max(len(results), 1)  # noqa: E731
        return dg.MaterializeResult(
            metadata={
                "uri": dg.MetadataValue.url(root.uri(EVALUATION_KEY)),
                "loss_by_family": dg.MetadataValue.md(
                    "test-split loss per family (perplexity = exp(loss)); rows marked (holdout) are the hard holdout\n\n"
                    + markdown_table(table, ["family", "records", *columns])),
                "mean_loss_base": round(mean("base"), 4), f"mean_loss_{final}": round(mean(final), 4),
                "holdout_rows": len(report["holdout_rows"]), **numbers,
            })

    return final_evaluation


def evaluation_summary(report: dict[str, Any]) -> str:
    """A short text summary of final_evaluation.json for the CLI."""
    columns = report["columns"]
    rows = [{"family": row, **{c: vals[c]["loss"] for c in (columns[0], columns[-2], columns[-1])}}
            for row, vals in report["rows"].items()]
    return markdown_table(rows, ["family", columns[0], columns[-2], columns[-1]])
