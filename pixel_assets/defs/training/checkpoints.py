"""The checkpoint chain `checkpoints/<stage>` (phase A, the SFT stages, then `final_model`), each
with the `no_catastrophic_forgetting` check and the probe answers a reviewer reads before
approving the next stage.

Each checkpoint depends on its stage data, the base model and the previous checkpoint, so the UI
draws the chain. Its data version is a hash of the parent checkpoint's version, its stage data's
version, the base's version and its training config: retraining on the same inputs gives the same
version, so what follows stays fresh.
"""


import json

import dagster as dg

from pixel_assets.defs.guard import require_passed_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import adapters, pipes
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.stage_data import base_location, work_dir
from pixel_assets.lib.storage import DataRoot
from pixel_assets.lib.training.curriculum import Curriculum, StageConfig
from pixel_assets.lib.training.distributed import TrainJob, store_spec
from pixel_assets.lib.training.probes import probe_table


def _val_records(root: DataRoot, stage: str) -> list[dict]:
    key = f"{s.stage_dir(stage)}/val.jsonl"
    return [json.loads(line) for line in root.read_text(key).splitlines() if line.strip()] if root.exists(key) else []


FIGURES = ("steps", "train_loss", "eval_loss", "perplexity", "tokens_seen", "duration_s", "tokens_per_s")
OWN_VAL_LOSS = "own_val_loss"  # a checkpoint on its own stage's val set, measured as the forgetting check measures


def forgetting_check(context: dg.AssetExecutionContext, earlier: list[StageConfig], root: DataRoot, model, tokenizer,
                     key: dg.AssetKey, training: s.TrainingSettings) -> dg.AssetCheckResult:
    """This checkpoint on the validation sets of every earlier stage, against each stage's own
    validation loss (measured the same way when that stage was trained)."""
    from pixel_assets.lib.training import forgetting as lib

    evals, own = {}, {}
    for stage in earlier:
        records = _val_records(root, stage.name)
        meta = s.latest_metadata(context.instance, s.checkpoint_key(stage.name))
        if not records or meta.get(OWN_VAL_LOSS) is None:
            continue
        evals[stage.name] = adapters.eval_loss(model, tokenizer, records, stage.max_length)
        own[stage.name] = float(meta[OWN_VAL_LOSS])
    passed, markdown, metadata = lib.forgetting_check(key.path[-1], evals, own, training.forgetting_max_rise)
    return dg.AssetCheckResult(
        asset_key=key, check_name=s.FORGETTING_CHECK, passed=passed, severity=training.severity(),
        description=markdown.split("\n", 1)[0].replace("**", "") if evals else "no earlier stage to compare with",
        metadata={**metadata, "earlier_stages": dg.MetadataValue.md(markdown)},
    )


def build_checkpoint_asset(cur: Curriculum, stage: StageConfig, parent: StageConfig | None,
                           earlier: list[StageConfig]) -> dg.AssetsDefinition:
    key = s.checkpoint_key(stage.name)
    # training_inputs/<stage>: its version changes when a family of this stage or an earlier one changes,
    # so this checkpoint shows stale right after such a re-compile (Dagster looks at direct deps only).
    deps = [s.stage_data_key(stage.name), s.BASE_MODEL_KEY, s.training_inputs_key(stage.name)] + \
        ([s.checkpoint_key(parent.name)] if parent else [])
    preference = stage.kind == "preference"
    multi_gpu = stage.gpus_per_stage > 1  # trains through Dagster Pipes (torchrun), see pipes.py

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
                    wandb: dg.ResourceParam[dict], training_pipes: dg.ResourceParam[dg.PipesClient]):
        root = data_root.root()
        require_passed_gates(context, root)
        cache = work_dir(data_root, training)
        base = base_location(root, cur, cache)
        store = checkpoint_store.store(root)
        name = s.checkpoint_dir_name(stage.name)
        work = store.prepare_work_dir(name, cache / "scratch")  # S3: pulls saved progress, for resume
        parent_name = s.checkpoint_dir_name(parent.name) if parent else None
        parent_dir = store.pull(parent_name, cache / "parents" / parent_name) if parent else None
        parent_meta = store.metadata(parent_name) if parent else {}
        data_dir = s.local_dir(root, s.stage_dir(stage.name), cache)
        stage_version = s.latest_data_version(context.instance, s.stage_data_key(stage.name))
        parent_version = s.latest_data_version(context.instance, s.checkpoint_key(parent.name)) if parent else None
        base_version = s.latest_data_version(context.instance, s.BASE_MODEL_KEY)
        version = s.version_hash("checkpoint", parent_version, stage_version, base_version, stage.config_hash())
        published = {  # checkpoint.json, beside the training figures
            "stage": stage.name, "config_hash": stage.config_hash(),
            "parent_uri": parent_meta.get("uri"), "parent_hash": parent_meta.get("adapter_sha256"),
            "parent_data_version": parent_version, "dataset_fingerprint": stage_version, "data_version": version,
            "base_model": cur.base_model or f"embedded tiny ({s.BASE_DIR})"}
        if multi_gpu:  # torchrun through Pipes; its rank 0 publishes the checkpoint and reports the figures
            job = TrainJob.for_stage(
                stage, base=str(base), data_dir=str(data_dir), out_dir=str(work), force_cpu=training.force_cpu,
                parent_adapter=str(parent_dir) if parent_dir else None,
                publish={"store": store_spec(store), "name": name, "metadata": published},
                wandb={"dagster_run_id": context.run_id, "dir": str(cache / "wandb")})
            figures = pipes.run_stage(context, training_pipes, job, stage.gpus_per_stage, cache / "jobs")
            context.log.info(f"{stage.name}: reported {pipes.reported_metadata(figures)}")
            # torchrun's ranks are gone: load the published adapter once for evaluation and probes
            model, tokenizer = adapters.load_trained(base, work, force_cpu=training.force_cpu)
        else:
            callbacks = [] if store.is_local else [store.progress_callback(name, work)]
            with adapters.wandb_run(wandb, stage, context.run_id, cache) as run:
                result, model, tokenizer = adapters.train_and_keep(
                    stage=stage, base=base, parent_adapter=parent_dir, data_dir=data_dir, out_dir=work,
                    force_cpu=training.force_cpu, log=context.log.info, callbacks=callbacks, wandb_run=run)
                if not store.is_local:  # the trained adapter survives a failure below, on any machine
                    store.push_progress(name, work)
                figures = adapters.result_dict(result)
                figures["wandb"] = figures.get("wandb") or adapters.run_reference(run)
        check = forgetting_check(context, earlier, root, model, tokenizer, key, training)
        own_val_loss = adapters.eval_loss(model, tokenizer, _val_records(root, stage.name), stage.max_length) \
            if not preference else None
        answers = adapters.probe_answers(model, tokenizer, seed=stage.seed, max_new_tokens=training.probe_max_new_tokens)
        previous = json.loads((parent_dir / "probes.json").read_text()) if parent_dir and (parent_dir / "probes.json").is_file() else None
        probes_json = json.dumps(answers, indent=1, ensure_ascii=False)
        (work / "probes.json").write_text(probes_json)
        del model
        adapters.release_memory()
        figures.pop("out_dir", None)
        if multi_gpu:  # already published by rank 0: the probe answers join it
            info = {"uri": figures.pop("uri"), "adapter_sha256": figures.pop("adapter_sha256")}
            if not store.is_local:
                store.root.write_text(f"{name}/probes.json", probes_json)
        else:
            info = store.publish(name, work, {**figures, **published})
        uri = info["uri"]
        context.log.info(f"{stage.name}: {figures.get('steps')} steps, train loss {figures.get('train_loss')}, "
                         f"eval loss {figures.get('eval_loss')} -> {uri}")
        numbers = {k: v for k, v in figures.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        numbers.update({k: dg.MetadataValue.null() for k in FIGURES if figures.get(k) is None})  # e.g. tokens in DPO
        numbers.update({f"preference/{k}": v for k, v in (figures.get("preference") or {}).items()})
        return dg.MaterializeResult(
            data_version=dg.DataVersion(version),
            metadata={
                "uri": dg.MetadataValue.url(uri) if uri.startswith("s3://") else dg.MetadataValue.path(uri),
                **numbers, **({OWN_VAL_LOSS: own_val_loss} if own_val_loss is not None else {}),
                "early_stopped": bool(figures.get("early_stopped")),
                "gpus_per_stage": stage.gpus_per_stage, "strategy": stage.strategy,
                "config_hash": stage.config_hash(), "parent_uri": str(parent_meta.get("uri") or ""),
                "parent_hash": str(parent_meta.get("adapter_sha256") or ""), "adapter_sha256": info["adapter_sha256"],
                "dataset_fingerprint": stage_version or "", "data_version": version,
                "wandb_run": str(figures.get("wandb") or ""),
                "probes": dg.MetadataValue.md(probe_table(answers, previous, stage=stage.name, previous_stage=parent.name if parent else "base")),
            },
            check_results=[check],
        )

    return _checkpoint


def checkpoint_assets(cur: Curriculum) -> list[dg.AssetsDefinition]:
    """checkpoints/<stage> for the SFT chain, then checkpoints/final_model (preference); the training
    stack's versions are checked first, so an untested one fails when the definitions load."""
    from pixel_assets.lib.training.versions import require_tested_versions

    require_tested_versions()
    assets, earlier, parent = [], [], None
    for stage in s.chain(cur):
        assets.append(build_checkpoint_asset(cur, stage, parent, list(earlier)))
        if stage.kind != "preference":
            earlier.append(stage)
        parent = stage
    return assets

