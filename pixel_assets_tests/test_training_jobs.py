"""The training graph's wiring: the chain as the curriculum says, `train_model` (training assets
only, GPU tag), the nightly schedule and the source sensor never selecting training, and the gate
guard refusing the real first training asset when a gate failed."""

import dagster as dg

from pixel_assets.definitions import defs
from pixel_assets.defs.gates.checks import verification_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.definitions import build_training_defs
from pixel_assets.lib.training.curriculum import load_curriculum
from pixel_assets_tests.test_training_guard import StandInCompileConfig, compiled_dataset_stand_in


def training_keys(d: dg.Definitions) -> set[dg.AssetKey]:
    graph = d.resolve_asset_graph()
    return {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == s.GROUP}


def test_the_chain_is_drawn_as_the_curriculum_says():
    d = defs()
    graph = d.resolve_asset_graph()
    chain = s.chain(load_curriculum())
    for previous, stage in zip(chain, chain[1:]):
        parents = graph.get(s.checkpoint_key(stage.name)).parent_keys
        assert s.checkpoint_key(previous.name) in parents, stage.name
        assert s.stage_data_key(stage.name) in parents
    assert chain[0].name == "pretrained" and s.checkpoint_key("final_model") == s.checkpoint_key(chain[-1].name)
    first = graph.get(s.checkpoint_key("pretrained")).parent_keys
    assert not any(k.path[0] == "checkpoints" for k in first)  # a fresh adapter on the base model
    assert {k.to_user_string() for k in graph.get(s.FINAL_EVALUATION_KEY).parent_keys} >= {
        s.checkpoint_key("preference").to_user_string(), s.checkpoint_key("stage7_roleplay").to_user_string(), "base_model"}
    checks = {k for k in graph.asset_check_keys if k.name == s.FORGETTING_CHECK}
    assert {c.asset_key for c in checks} == {s.checkpoint_key(st.name) for st in chain}


def test_stage0_joins_the_chain_when_enabled(tmp_path):
    import dataclasses

    cur = load_curriculum()
    stages = tuple(dataclasses.replace(st, enabled=True) if st.name == "stage0_generic_reasoning" else
                   dataclasses.replace(st, from_stage="stage0_generic_reasoning") if st.name == "pretrained" else st
                   for st in cur.all_stages)
    training = build_training_defs(dataclasses.replace(cur, all_stages=stages))
    graph = dg.Definitions(assets=training.assets, resources={**training.resources, "data_root": DataRootResource(
        local_path=str(tmp_path))}).resolve_asset_graph()
    assert s.checkpoint_key("stage0_generic_reasoning") in graph.get(s.checkpoint_key("pretrained")).parent_keys


def test_train_model_selects_training_only_with_the_gpu_tag_and_automation_never_does():
    d = defs()
    training = training_keys(d)
    assert {s.BASE_MODEL_KEY, s.checkpoint_key("stage7_roleplay"), s.FINAL_EVALUATION_KEY} <= training
    job = d.resolve_job_def("train_model")
    assert job.tags.get("pixel/gpu") == "h100"
    assert set(job.asset_layer.selected_asset_keys) == training
    compile_job = d.resolve_job_def("compile_dataset")
    compiled = set(compile_job.asset_layer.selected_asset_keys)
    assert not compiled & training
    assert s.training_inputs_key("stage3_edge_stress_test") in compiled  # versions refreshed nightly
    assert d.resolve_schedule_def("nightly_compile").job_name == "compile_dataset"
    assert d.resolve_sensor_def("source_change_sensor").job_name == "compile_dataset"
    stale = d.resolve_sensor_def("train_stale_stages")
    assert stale.job_name == "train_model" and stale.default_status == dg.DefaultSensorStatus.STOPPED


def test_guard_refuses_the_real_first_training_asset_when_a_gate_failed(tmp_path):
    """base_model (the first training asset) and stage_data/pretrained refuse to build after a
    compile whose split gate failed, naming the gate; nothing is written."""
    (tmp_path / "home").mkdir()
    cur = load_curriculum(profile="demo")
    training = build_training_defs(cur)
    base_model = next(a for a in training.assets if s.BASE_MODEL_KEY in a.keys)
    stage_data = next(a for a in training.assets if s.stage_data_key("pretrained") in a.keys)
    inputs = next(a for a in training.assets if a.op.name == "training_inputs")
    resources = {**training.resources, "data_root": DataRootResource(local_path=str(tmp_path / "data"))}
    assets = [compiled_dataset_stand_in, verification_gates, inputs, base_model, stage_data]
    with dg.DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        compile_run = dg.materialize(
            assets, instance=instance, resources=resources, raise_on_error=False,
            selection=[compiled_dataset_stand_in, verification_gates],
            run_config=dg.RunConfig({"compiled_dataset": StandInCompileConfig(plant_holdout_in_train=True)}))
        assert not compile_run.success  # the split gate failed
        for asset in (base_model, stage_data):
            later = dg.materialize(assets, instance=instance, resources=resources, raise_on_error=False,
                                   selection=[asset])
            assert not later.success
            failure = next(e for e in later.all_events if e.is_step_failure)
            message = failure.event_specific_data.error.message
            assert "refusing to train" in message and "split" in message, message
    root = resources["data_root"].root()
    assert not root.exists(f"{s.BASE_DIR}/config.json") and not root.list_keys("training/")


def test_checkpoint_store_from_environment_or_curriculum(tmp_path, s3_client, s3_server):
    from dagster_aws.s3 import S3Resource

    from pixel_assets.lib.storage import LocalDataRoot

    local = LocalDataRoot(tmp_path)
    default = s.checkpoint_store_from_env({})
    assert default.bucket is None and default.store(local).uri("pretrained") == local.uri("checkpoints/pretrained")
    env = s.checkpoint_store_from_env({"PIXEL_CHECKPOINT_BUCKET": "ckpts", "PIXEL_CHECKPOINT_PREFIX": "/runs/a/"})
    assert (env.bucket, env.prefix) == ("ckpts", "runs/a")
    production = s.checkpoint_store_from_env({}, load_curriculum(profile="production"))
    assert (production.bucket, production.prefix) == ("pixelated-checkpoints", "foundation")
    # Through dagster-aws's S3Resource against a loopback S3: the library's store, same keys.
    s3_client.create_bucket(Bucket="ckpts")
    resource = s.CheckpointStoreResource(bucket="ckpts", prefix="foundation",
                                         s3=S3Resource(endpoint_url=s3_server, region_name="us-east-1"))
    store = resource.store(local)
    assert not store.is_local and store.uri("stage1_foundation") == "s3://ckpts/foundation/stage1_foundation/"
    store.root.write_text("stage1_foundation/checkpoint.json", "{}")
    assert s3_client.get_object(Bucket="ckpts", Key="foundation/stage1_foundation/checkpoint.json")["Body"].read() == b"{}"
