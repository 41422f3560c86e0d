"""The training graph end to end with the tiny model on CPU (one module-scoped run of the whole
chain, reused): checkpoint files and metadata, the forgetting check and probe tables, the final
evaluation, then staleness through the instance's stale status (an unchanged re-compile leaves every
stage fresh; a change in stage 3's families marks stage 3 and after stale, nothing before) and the
selection `train_stale_stages` would launch."""

import dataclasses
import json

import dagster as dg
import pytest

from pixel_assets.defs.gates.checks import verification_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.definitions import build_training_defs
from pixel_assets.defs.training.jobs import stale_status, stale_training_selection
from pixel_assets.lib import contract
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.training.curriculum import load_curriculum
from pixel_assets_tests import test_gates_helpers as h

STAGE3_FAMILY = "edge_case_generator"


class StandInCompileConfig(dg.Config):
    change_stage3: bool = False  # edit every edge_case_generator conversation (a stage-3 family)


@dg.asset(name="compiled_dataset")
def compiled_dataset_stand_in(config: StandInCompileConfig, data_root: DataRootResource) -> None:
    registry = load_registry()
    records = h.clean_records(registry)
    if config.change_stage3:
        for record in records:
            if record["metadata"]["source_family"] == STAGE3_FAMILY:
                record["messages"][-1]["content"] += " (revised)"
                record["metadata"]["content_hash"] = contract.content_hash(record["messages"])
    h.build_clean_dataset(data_root.root(), registry, records=records)


def small_curriculum():
    """The demo profile, smaller still: two steps per stage, a few records."""
    cur = load_curriculum(profile="demo")
    stages = tuple(dataclasses.replace(st, max_steps=2, eval_steps=2, save_steps=2, max_train_records=8,
                                       max_val_records=4) for st in cur.all_stages)
    return dataclasses.replace(cur, all_stages=stages, base_pretrain={**cur.base_pretrain, "max_steps": 3, "batch_size": 4})


def key(asset_key: dg.AssetKey) -> str:
    return asset_key.to_user_string()


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    (tmp / "home").mkdir()
    cur = small_curriculum()
    training = build_training_defs(cur)
    assets = [compiled_dataset_stand_in, verification_gates, *training.assets]
    resources = {**training.resources, "data_root": DataRootResource(local_path=str(tmp / "data")),
                 "training": s.TrainingSettings(eval_records_per_family=2, probe_max_new_tokens=8)}
    defs = dg.Definitions(assets=assets, resources=resources, jobs=training.jobs, sensors=training.sensors)
    instance = dg.DagsterInstance.local_temp(str(tmp / "home"))
    result = dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False)
    yield {"cur": cur, "defs": defs, "assets": assets, "resources": resources, "instance": instance,
           "result": result, "root": resources["data_root"].root()}
    instance.dispose()


def materializations(result) -> dict[str, dict]:
    return {e.asset_key.to_user_string(): {k: getattr(v, "value", v) for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def statuses(chain) -> dict[str, str]:
    graph = chain["defs"].resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if k.path[0] in ("base_model", "stage_data", "checkpoints")]
    return {k.to_user_string(): v for k, v in stale_status(chain["instance"], graph, keys).items()}


def recompile(chain, change_stage3: bool) -> None:
    """What the nightly compile does for training: compiled_dataset, its gates, training_inputs."""
    inputs = next(a for a in chain["assets"] if a.op.name == "training_inputs")
    result = dg.materialize(
        chain["assets"], instance=chain["instance"], resources=chain["resources"],
        selection=[compiled_dataset_stand_in, verification_gates, inputs],
        run_config=dg.RunConfig({"compiled_dataset": StandInCompileConfig(change_stage3=change_stage3)}))
    assert result.success


def test_the_chain_trains_every_stage_with_metadata_checks_and_evaluation(chain):
    result, root, cur = chain["result"], chain["root"], chain["cur"]
    failures = [(e.step_key, e.event_specific_data.error.message[:500]) for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    mats = materializations(result)
    names = [st.name for st in s.chain(cur)]
    assert names[0] == "pretrained" and names[-2] == "stage7_roleplay" and names[-1] == "preference"
    previous_uri = None
    for name in names:
        folder = s.checkpoint_dir_name(name)
        for f in ("adapter_config.json", "adapter_model.safetensors", "checkpoint.json", "probes.json"):
            assert root.exists(f"checkpoints/{folder}/{f}"), f"checkpoints/{folder}/{f}"
        meta = mats[s.checkpoint_key(name).to_user_string()]
        for k in ("uri", "steps", "train_loss", "eval_loss", "perplexity", "tokens_seen", "duration_s",
                  "tokens_per_s", "config_hash", "parent_uri", "parent_hash", "dataset_fingerprint", "wandb_run"):
            assert k in meta, f"{folder}: no {k} in metadata"
        assert meta["steps"] == 2
        assert meta["parent_uri"] == (previous_uri or "")  # the chain, as the curriculum says
        previous_name = names[names.index(name) - 1] if name != names[0] else "base"
        assert meta["probes"].startswith(f"| prompt | {name} | {previous_name} |")  # prompt | this | previous
        assert "offline-run" in meta["wandb_run"] and meta["wandb_run"].startswith(str(root.local_path("cache")))
        previous_uri = json.loads(root.read_text(f"checkpoints/{folder}/checkpoint.json"))["uri"]
    # Stage data: files, target vs achieved weights as numbers and a table.
    stage3 = mats[s.stage_data_key("stage3_edge_stress_test").to_user_string()]
    assert stage3["target_weight/edge_case_generator"] == 0.3 and "achieved_weight/edge_case_generator" in stage3
    assert "| family |" in stage3["mix"]
    for split in ("train", "val"):
        lines = [json.loads(x) for x in root.read_text(f"training/stages/stage3_edge_stress_test/{split}.jsonl").splitlines()]
        assert lines and all(x["metadata"]["split"] == split for x in lines)
    # The forgetting check ran on every checkpoint (WARN by default) and compares earlier stages.
    checks = {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data for e in result.all_events
              if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == s.FORGETTING_CHECK}
    assert set(checks) == {s.checkpoint_key(n).to_user_string() for n in names}
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks.values())
    assert "pretrained/val_loss" in checks[s.checkpoint_key("stage7_roleplay").to_user_string()].metadata
    # Final evaluation: a table per section, a column per model, the JSON file.
    report = json.loads(root.read_text("training/evaluation/final_evaluation.json"))
    assert report["checkpoints"] == ["untrained", "base", *[s.checkpoint_dir_name(n) for n in names]]
    assert "edge_case_crisis" in report["sections"]["holdout"]
    assert "holdout/edge_case_crisis/final_model/loss" in mats["final_evaluation"]


def test_staleness_unchanged_recompile_fresh_stage3_change_stale_from_3_on(chain):
    assert chain["result"].success
    assert set(statuses(chain).values()) == {"FRESH"}
    assert stale_training_selection(chain["instance"], chain["defs"].resolve_asset_graph(), chain["cur"]) == []

    recompile(chain, change_stage3=False)  # the nightly re-compile, nothing changed
    assert set(statuses(chain).values()) == {"FRESH"}

    recompile(chain, change_stage3=True)  # a stage-3 family changed
    status = statuses(chain)
    order = [st.name for st in s.chain(chain["cur"])]
    before = order[: order.index("stage3_edge_stress_test")]
    after = order[order.index("stage3_edge_stress_test"):]
    assert status["base_model"] == "FRESH"
    for name in before:
        assert status[key(s.stage_data_key(name))] == "FRESH" and status[key(s.checkpoint_key(name))] == "FRESH", name
    for name in after:  # data and checkpoint, right after the re-compile: no stage needs retraining first
        assert status[key(s.stage_data_key(name))] == "STALE", name
        assert status[key(s.checkpoint_key(name))] == "STALE", name
    # train_stale_stages: from stage 3's data on; the fresh checkpoints before it are reused.
    selection = stale_training_selection(chain["instance"], chain["defs"].resolve_asset_graph(), chain["cur"])
    assert selection[0] == s.stage_data_key("stage3_edge_stress_test")
    assert s.checkpoint_key("stage2_therapeutic_expertise") not in selection
    assert s.checkpoint_key("final_model") in selection and selection[-1] == s.FINAL_EVALUATION_KEY
    # The sensor requests exactly that selection as a train_model run with the GPU tag.
    sensor = chain["defs"].resolve_sensor_def("train_stale_stages")
    with dg.build_sensor_context(instance=chain["instance"], repository_def=chain["defs"].get_repository_def()) as ctx:
        request = sensor(ctx)
    assert isinstance(request, dg.RunRequest), request
    assert list(request.asset_selection) == selection and request.tags["pixel/gpu"] == "h100"


def forgetting_evaluations(result) -> dict[str, object]:
    return {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == s.FORGETTING_CHECK}


def test_a_really_regressed_checkpoint_fails_the_forgetting_check_at_the_configured_severity(chain):
    """Stage 2 materialized again on a base whose output layer was perturbed (x100): a checkpoint
    that is really worse on the earlier stages' validation sets, measured by the check that runs
    inside the materialization, which names them at ERROR by configuration. The same stage trained
    normally (the chain's run) stayed well inside that allowance. (A LoRA adapter alone cannot do
    this to the tiny base: its attention-only update passes the final norm and a small untrained
    output layer, which bound the loss to about ln(vocab) +- 20%.) Last in the module: it changes
    the shared chain's base."""
    from safetensors.torch import load_file, save_file

    stage2 = "stage2_therapeutic_expertise"
    key = s.checkpoint_key(stage2).to_user_string()
    normal = forgetting_evaluations(chain["result"])[key]
    rises = {k: v.value for k, v in normal.metadata.items() if k.endswith("/rise_share")}
    assert normal.passed and rises and max(rises.values()) < 1.0, rises

    weights_file = chain["root"].local_path(s.BASE_DIR) / "model.safetensors"
    weights = load_file(str(weights_file))
    weights["lm_head.weight"] = weights["lm_head.weight"] * 100
    save_file(weights, str(weights_file), metadata={"format": "pt"})
    asset = next(a for a in chain["defs"].assets if isinstance(a, dg.AssetsDefinition) and s.checkpoint_key(stage2) in a.keys)
    resources = {**chain["resources"], "training": s.TrainingSettings(
        eval_records_per_family=2, probe_max_new_tokens=8, forgetting_severity="ERROR", forgetting_max_rise=1.0)}
    result = dg.materialize([asset], instance=chain["instance"], resources=resources, raise_on_error=False)
    assert result.success, [e.event_specific_data.error.message[:500] for e in result.all_events if e.is_step_failure]
    regressed = forgetting_evaluations(result)[key]
    assert not regressed.passed and regressed.severity == dg.AssetCheckSeverity.ERROR
    assert "stage1_foundation" in regressed.description and "pretrained" in regressed.description
    assert regressed.metadata["stage1_foundation/rise_share"].value > 1.0
