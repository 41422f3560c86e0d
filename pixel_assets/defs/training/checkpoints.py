"""The checkpoint chain `checkpoints/<stage>` (phase A, the SFT stages, then `final_model`), each
with the `no_catastrophic_forgetting` check and the probe answers a reviewer reads before
approving the next stage.

Each checkpoint depends on its stage data, the base model and the previous checkpoint, so the UI
draws the chain. Its data version is a hash of the parent checkpoint's version, its stage data's
version, the base's version and its training config: retraining on the same inputs gives the same
version, so what follows stays fresh.
"""


import json
import time
from typing import Any

import dagster as dg

from pixel_assets.defs.gates.guard import require_passed_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import adapters
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.stage_data import base_location, work_dir
from pixel_assets.lib.report import markdown_table
from pixel_assets.lib.storage import DataRoot, LocalDataRoot
from pixel_assets.lib.training.curriculum import Curriculum, StageConfig


def _cell(text: Any, limit: int = 160) -> str:
    text = " ".join(str(text or "").split()).replace("|", "/")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def probe_table(answers: list[dict], previous: list[dict] | None) -> str:
    before = {a["id"]: a["answer"] for a in previous or []}
    rows = [{"prompt": _cell(a["prompt"], 80), "this stage": _cell(a["answer"]),
             "previous stage": _cell(before.get(a["id"], "—"))} for a in answers]
    return markdown_table(rows, ["prompt", "this stage", "previous stage"])


def read_json(root: DataRoot, key: str) -> Any:
    return json.loads(root.read_text(key)) if root.exists(key) else None


def _val_records(root: DataRoot, stage: str) -> list[dict]:
    key = f"{s.stage_dir(stage)}/val.jsonl"
    return [json.loads(line) for line in root.read_text(key).splitlines() if line.strip()] if root.exists(key) else []


def forgetting_check(context: dg.AssetExecutionContext, earlier: list[StageConfig], root: DataRoot, model, tokenizer,
                     key: dg.AssetKey, training: s.TrainingSettings) -> dg.AssetCheckResult:
    """This checkpoint on the validation sets of every earlier stage, against each stage's own
    validation loss (recorded when that stage was trained)."""
    evals, own = {}, {}
    for stage in earlier:
        records = _val_records(root, stage.name)
        meta = s.latest_metadata(context.instance, s.checkpoint_key(stage.name))
        if not records or meta.get("eval_loss") is None:
            continue
        evals[stage.name] = adapters.eval_loss(model, tokenizer, records, stage.max_length)
        own[stage.name] = float(meta["eval_loss"])
    regressions = adapters.forgetting(evals, own, training.forgetting_max_rise)
    rows = [{"earlier stage": n, "own val loss": round(own[n], 4), "val loss now": round(evals[n], 4),
             "rise": f"{(evals[n] - own[n]) / own[n]:+.1%}" if own[n] else "n/a"} for n in evals]
    names = [r["stage"] for r in regressions]
    return dg.AssetCheckResult(
        asset_key=key, check_name=s.FORGETTING_CHECK, passed=not regressions, severity=training.severity(),
        description=(f"validation loss rose by more than {training.forgetting_max_rise:.0%} on: "
                     + "; ".join(f"{r['stage']} ({r['own']:.4f} -> {r['now']:.4f}, {r['rise']:+.1%})" for r in regressions)
                     if regressions else
                     f"no earlier stage's validation loss rose by more than {training.forgetting_max_rise:.0%}"
                     if evals else "no earlier stage to compare with"),
        metadata={"max_rise": training.forgetting_max_rise, "regressed_stages": ", ".join(names),
                  "earlier_stages": dg.MetadataValue.md(markdown_table(rows)) if rows else "none",
                  **{f"val_loss_now/{n}": v for n, v in evals.items()}},
    )


def build_checkpoint_asset(cur: Curriculum, stage: StageConfig, parent: StageConfig | None,
                           earlier: list[StageConfig]) -> dg.AssetsDefinition:
    key = s.checkpoint_key(stage.name)
    deps = [s.stage_data_key(stage.name), s.BASE_MODEL_KEY] + ([s.checkpoint_key(parent.name)] if parent else [])
    preference = stage.kind == "preference"

    @dg.asset(
        key=key, deps=deps, group_name=s.GROUP, kinds={"pytorch"}, code_version=s.code_version(stage),
        check_specs=[dg.AssetCheckSpec(
            s.FORGETTING_CHECK, asset=key,
            description="Evaluated on every earlier stage's validation set: fails when one rose by more than "
                        "the configured share over that stage's own loss (WARN, or ERROR by configuration).")],
        description=(f"{'Preference alignment (' + str(stage.algorithm).upper() + ')' if preference else stage.kind.upper()} "
                     f"on stage_data/{stage.name}, LoRA continued from "
                     f"{'checkpoints/' + parent.name if parent else 'a fresh adapter on the base model'}."),
    )
    def _checkpoint(context: dg.AssetExecutionContext, data_root: DataRootResource,
                    checkpoint_store: s.CheckpointStoreResource, training: s.TrainingSettings,
                    wandb: dg.ResourceParam[dict]):
        root = data_root.root()
        require_passed_gates(context, root)
        cache = work_dir(data_root, training)
        base = base_location(root, cur, cache)
        store_root, store_key = checkpoint_store.key(root, stage.name)
        out_dir = s.local_dir(store_root, store_key, cache / "store")  # S3: pulls saved progress, for resume
        parent_dir = None
        if parent:
            p_root, p_key = checkpoint_store.key(root, parent.name)
            parent_dir = s.local_dir(p_root, p_key, cache / "store")
        data_dir = s.local_dir(root, s.stage_dir(stage.name), cache)
        started = time.time()
        push = None if isinstance(store_root, LocalDataRoot) else (lambda: s.upload_dir(store_root, out_dir, store_key))
        with adapters.wandb_run(wandb, stage, context.run_id, cache) as run:
            result = adapters.train_stage(stage=stage, base=base, parent_adapter=parent_dir, data_dir=data_dir,
                                          out_dir=out_dir, force_cpu=training.force_cpu, log=context.log.info,
                                          push_progress=push, wandb_run=run)
        figures = adapters.result_dict(result)
        wandb_location = str(figures.get("wandb") or "")
        model, tokenizer = adapters.load_trained(base, out_dir, force_cpu=training.force_cpu)
        check = forgetting_check(context, earlier, root, model, tokenizer, key, training)
        answers = adapters.probe_answers(model, tokenizer, seed=stage.seed)
        previous = read_json(store_root, f"{checkpoint_store.key(root, parent.name)[1]}/probes.json") if parent else None

        stage_version = s.latest_data_version(context.instance, s.stage_data_key(stage.name))
        parent_version = s.latest_data_version(context.instance, s.checkpoint_key(parent.name)) if parent else None
        base_version = s.latest_data_version(context.instance, s.BASE_MODEL_KEY)
        version = s.version_hash("checkpoint", parent_version, stage_version, base_version, stage.config_hash())
        parent_meta = s.latest_metadata(context.instance, s.checkpoint_key(parent.name)) if parent else {}
        uri = checkpoint_store.uri(root, stage.name)
        info = {
            "stage": stage.name, "uri": uri, **figures, "config_hash": stage.config_hash(),
            "parent_uri": parent_meta.get("uri"), "parent_hash": parent_version,
            "dataset_fingerprint": stage_version, "data_version": version, "wandb": wandb_location,
            "base_model": cur.base_model or "embedded tiny (models/base)", "wall_s": round(time.time() - started, 2),
        }
        (out_dir / "probes.json").write_text(json.dumps(answers, indent=1, ensure_ascii=False))
        (out_dir / "checkpoint.json").write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
        s.upload_dir(store_root, out_dir, store_key)
        context.log.info(f"{stage.name}: {result.steps} steps, train loss {result.train_loss}, "
                         f"eval loss {result.eval_loss} -> {uri}")
        numbers = {k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version),
            metadata={
                "uri": dg.MetadataValue.url(uri) if uri.startswith("s3://") else dg.MetadataValue.path(uri),
                **numbers,
                "config_hash": stage.config_hash(), "parent_uri": str(parent_meta.get("uri") or ""),
                "parent_hash": parent_version or "", "dataset_fingerprint": stage_version or "",
                "wandb_run": wandb_location, "data_version": version,
                "probes": dg.MetadataValue.md(probe_table(answers, previous)),
            },
            check_results=[check],
        )

    return _checkpoint


def checkpoint_assets(cur: Curriculum) -> list[dg.AssetsDefinition]:
    """checkpoints/<stage> for the SFT chain, then checkpoints/final_model (preference)."""
    assets, earlier, parent = [], [], None
    for stage in s.chain(cur):
        assets.append(build_checkpoint_asset(cur, stage, parent, list(earlier)))
        if stage.kind != "preference":
            earlier.append(stage)
        parent = stage
    return assets

