"""A stage configured for 2 GPUs materializes through the Pipes path: the checkpoint asset runs
`torchrun --nproc_per_node 2` (gloo on CPU) through dg.PipesSubprocessClient; rank 0 publishes the
checkpoint and reports the figures and the URI, which become the materialization's metadata. The
Pipes pod for a cluster asks for N GPUs (the body dagster-k8s's PipesK8sClient would send)."""

import dataclasses
import json

import dagster as dg
import pytest

from pixel_assets.defs.gates.checks import verification_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.defs.training import pipes
from pixel_assets.defs.training import settings as s
from pixel_assets.defs.training.definitions import build_training_defs
from pixel_assets.launchers.routing import GPU_COUNT_TAG
from pixel_assets_tests.test_training_chain import compiled_dataset_stand_in, small_curriculum

STAGE = "pretrained"


def two_gpu_curriculum():
    cur = small_curriculum()
    stages = tuple(dataclasses.replace(st, gpus_per_stage=2, gradient_accumulation_steps=2) if st.name == STAGE else st
                   for st in cur.all_stages)
    return dataclasses.replace(cur, all_stages=stages)


def test_a_two_gpu_stage_materializes_through_pipes_with_two_processes(tmp_path):
    cur = two_gpu_curriculum()
    training = build_training_defs(cur)
    [job] = training.jobs
    assert job.tags[GPU_COUNT_TAG] == "2"  # the routing launcher's cue
    assets = [compiled_dataset_stand_in, verification_gates, *training.assets]
    resources = {**training.resources, "data_root": DataRootResource(local_path=str(tmp_path / "data")),
                 "training": s.TrainingSettings(probe_max_new_tokens=8)}
    assert isinstance(resources[pipes.PIPES_RESOURCE], dg.PipesSubprocessClient)
    key = s.checkpoint_key(STAGE)
    selection = (dg.AssetSelection.assets(dg.AssetKey("compiled_dataset"), s.training_inputs_key(STAGE),
                                          s.BASE_MODEL_KEY, s.stage_data_key(STAGE), key)
                 .required_multi_asset_neighbors())
    with dg.instance_for_test() as instance:
        result = dg.materialize(assets, instance=instance, resources=resources, selection=selection,
                                raise_on_error=False)
        assert result.success, [e.message for e in result.all_events if e.is_failure]
        [mat] = [m for m in result.asset_materializations_for_node(key.to_python_identifier())
                 if m.asset_key == key] or result.get_asset_materialization_events()[-1:]
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        logs = [e.message for e in instance.all_logs(result.run_id) if e.user_message]
    assert meta["world_size"] == 2 and meta["gpus_per_stage"] == 2 and meta["strategy"] == "ddp"
    assert meta["steps"] == 2 and meta["train_loss"] > 0 and meta["eval_loss"] > 0
    checkpoint = tmp_path / "data" / "checkpoints" / STAGE
    assert meta["uri"] == checkpoint.as_uri()
    published = json.loads((checkpoint / "checkpoint.json").read_text())
    assert published["world_size"] == 2 and published["adapter_sha256"] == meta["adapter_sha256"]
    assert published["data_version"] == meta["data_version"]  # the Dagster side's metadata, published by rank 0
    assert (checkpoint / "probes.json").is_file() and "probes" in meta
    assert any("training on 2 GPU(s)" in m for m in logs)
    assert any(f"[{STAGE}] step 2/2" in m and "loss" in m for m in logs), "no step reported back through Pipes"
    assert any(f"published {meta['uri']}" in m for m in logs)


@pytest.mark.parametrize("gpus", [2, 8])
def test_the_pipes_pod_asks_for_n_gpus(gpus):
    from dagster_k8s.pipes import build_pod_body

    command = pipes.torchrun_command(gpus, f"env:{pipes.JOB_ENV}", python="python")
    pod = build_pod_body("pixel-train", "registry.example/pixel-trainer:test", command, {pipes.JOB_ENV: "{}"},
                         None, pipes.k8s_pod_spec(gpus, volume_claim="pixel-work", mount_path="/work"))
    [container] = pod.spec.containers
    assert container.resources.limits == {"nvidia.com/gpu": str(gpus)}
    assert container.resources.requests == {"nvidia.com/gpu": str(gpus)}
    assert container.command == command and f"--nproc_per_node={gpus}" in command
    assert {m.mount_path for m in container.volume_mounts} == {"/dev/shm", "/work"}
    assert {e.name for e in container.env} >= {pipes.JOB_ENV}
