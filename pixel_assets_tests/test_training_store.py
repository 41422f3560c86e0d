"""The checkpoint store: local data root by default, S3 (moto's server on loopback) with a resume
from the progress pushed to S3 by an interrupted run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import trl  # noqa: F401  a hard dependency: a broken install fails here instead of skipping

from pixel_assets_tests.sft_fixtures import stage_files, tiny_base

STAGE = "stage1_foundation"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_base(tmp_path_factory.mktemp("base") / "base")


@pytest.fixture(scope="module")
def tokenizer(base):
    from pixel_assets.lib.training.models import load_tokenizer

    return load_tokenizer(base)


def _config(**kw):
    from pixel_assets.lib.training.models import device_plan
    from pixel_assets.lib.training.sft import SFTStageConfig

    return SFTStageConfig(stage=STAGE, max_length=256, per_device_batch_size=4, max_steps=8, eval_steps=2,
                          learning_rate=1e-3, early_stopping_patience=100, device=device_plan(force_cpu=True), **kw)


class RecordingClient:
    """A boto3 client proxy that remembers the keys written, in order."""

    def __init__(self, client):
        self._client, self.puts = client, []

    def put_object(self, **kw):
        self.puts.append(kw["Key"])
        return self._client.put_object(**kw)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_local_store_trains_in_place_and_marks_complete_last(base, tokenizer, tmp_path):
    from pixel_assets.lib.training.sft import train_sft_stage
    from pixel_assets.lib.training.store import CheckpointError, CheckpointStore, checkpoint_metadata

    store = CheckpointStore.local(tmp_path / "root")
    assert store.uri(STAGE) == (tmp_path / "root/checkpoints" / STAGE).resolve().as_uri()
    assert not store.exists(STAGE)
    with pytest.raises(CheckpointError, match=f"stage '{STAGE}': no complete checkpoint"):
        store.metadata(STAGE)
    work = store.prepare_work_dir(STAGE, tmp_path / "scratch")
    assert work == (tmp_path / "root/checkpoints" / STAGE).resolve()
    train, val = stage_files(tmp_path / "data", "sft")
    result = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                             out_dir=work, config=_config(), log=lambda m: None)
    meta = store.publish(STAGE, work, checkpoint_metadata(result, config_hash="cfg", dataset_fingerprint="fp",
                                                          parent={"uri": "file:///p", "adapter_sha256": "ph"}))
    on_disk = store.metadata(STAGE)
    assert on_disk == json.loads(json.dumps(meta))
    for key in ("uri", "train_loss", "eval_loss", "perplexity", "tokens_seen", "steps", "duration_s",
                "tokens_per_s", "config_hash", "parent_uri", "parent_adapter_sha256", "dataset_fingerprint", "wandb"):
        assert key in on_disk, key
    assert (on_disk["steps"], on_disk["parent_uri"], on_disk["uri"]) == (8, "file:///p", store.uri(STAGE))
    assert store.pull(STAGE, tmp_path / "elsewhere") == work
    # Re-training the stage first withdraws its completeness marker.
    store.prepare_work_dir(STAGE, tmp_path / "scratch")
    assert not store.exists(STAGE) and (work / "adapter_model.safetensors").is_file()


def test_s3_store_resumes_from_progress_pushed_by_an_interrupted_run(base, tokenizer, tmp_path, s3_client):
    from transformers import TrainerCallback

    from pixel_assets.lib.training.sft import train_sft_stage
    from pixel_assets.lib.training.store import DEFAULT_BUCKET, CheckpointStore, adapter_hash, checkpoint_metadata

    s3_client.create_bucket(Bucket=DEFAULT_BUCKET)
    client = RecordingClient(s3_client)
    store = CheckpointStore.s3(client)
    assert store.uri(STAGE) == f"s3://pixelated-checkpoints/foundation/{STAGE}/"
    train, val = stage_files(tmp_path / "data", "sft")

    class Interrupted(Exception):
        pass

    class StopAtStep5(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise Interrupted

    # Machine 1: interrupted after the step-4 checkpoint was pushed; its disk is then lost.
    work = store.prepare_work_dir(STAGE, tmp_path / "machine1")
    with pytest.raises(Interrupted):
        train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                        out_dir=work, config=_config(), log=lambda m: None,
                        callbacks=[store.progress_callback(STAGE, work), StopAtStep5()])
    shutil.rmtree(tmp_path / "machine1")
    remote = s3_client.list_objects_v2(Bucket=DEFAULT_BUCKET, Prefix=f"foundation/{STAGE}/_progress/")
    assert {k["Key"].split("/")[3] for k in remote["Contents"]} >= {"checkpoint-4", "pixel_run.json"}
    assert not store.exists(STAGE)

    # Machine 2: pulls the progress and continues from step 4.
    work = store.prepare_work_dir(STAGE, tmp_path / "machine2")
    assert (work / "_progress/checkpoint-4/trainer_state.json").is_file()
    result = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                             out_dir=work, config=_config(), log=lambda m: None,
                             callbacks=[store.progress_callback(STAGE, work)])
    assert result.resumed_from_step == 4 and result.steps == 8
    client.puts.clear()
    meta = store.publish(STAGE, work, checkpoint_metadata(result, config_hash="cfg"))
    assert client.puts[-1] == f"foundation/{STAGE}/checkpoint.json"  # written last
    assert f"foundation/{STAGE}/adapter_model.safetensors" in client.puts
    assert s3_client.list_objects_v2(Bucket=DEFAULT_BUCKET, Prefix=f"foundation/{STAGE}/_progress/")["KeyCount"] == 0

    pulled = store.pull(STAGE, tmp_path / "machine3" / STAGE)
    assert adapter_hash(pulled) == adapter_hash(work) == meta["adapter_sha256"]
    assert (pulled / "tokenizer.json").is_file() and not (pulled / "_progress").exists()
    assert store.metadata(STAGE)["uri"] == f"s3://pixelated-checkpoints/foundation/{STAGE}/"


def test_custom_bucket_and_prefix(s3_client):
    from pixel_assets.lib.training.store import CheckpointError, CheckpointStore

    s3_client.create_bucket(Bucket="other-bucket")
    store = CheckpointStore.s3(s3_client, bucket="other-bucket", prefix="runs/v2/")
    assert store.uri("pretrained") == "s3://other-bucket/runs/v2/pretrained/"
    assert store.pull_progress("pretrained", "/nonexistent") is None
    with pytest.raises(CheckpointError, match="s3://other-bucket/runs/v2/pretrained/"):
        store.pull("pretrained", "/nonexistent")


class _PlantedFailure(Exception):
    pass


def _step_counter():
    from transformers import TrainerCallback

    class Steps(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            Steps.steps += 1

    return Steps()


def _materialize(store, work_root, base, tokenizer, train, val, fail_after_training: bool):
    """What checkpoints/<stage> does: work dir, train, push (S3), then evaluate/probe/publish, where the
    planted failure strikes. Returns (optimizer steps taken, adapter sha256 in the work dir)."""
    from pixel_assets.lib.training.sft import train_sft_stage
    from pixel_assets.lib.training.store import adapter_hash, checkpoint_metadata

    work = store.prepare_work_dir(STAGE, work_root)
    counter = _step_counter()
    callbacks = [counter] + ([] if store.is_local else [store.progress_callback(STAGE, work)])
    result = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                             out_dir=work, config=_config(), log=lambda m: None, callbacks=callbacks)
    if not store.is_local:
        store.push_progress(STAGE, work)
    sha = adapter_hash(work)
    if fail_after_training:
        raise _PlantedFailure((counter.steps, sha))
    store.publish(STAGE, work, checkpoint_metadata(result))
    return counter.steps, sha, result


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_failure_after_training_reruns_from_the_trained_adapter_without_a_step(base, tokenizer, tmp_path, where,
                                                                                request):
    from pixel_assets.lib.training.store import DEFAULT_BUCKET, CheckpointStore

    if where == "s3":
        s3 = request.getfixturevalue("s3_client")
        s3.create_bucket(Bucket=DEFAULT_BUCKET)
        store = CheckpointStore.s3(s3)
    else:
        store = CheckpointStore.local(tmp_path / "root")
    train, val = stage_files(tmp_path / "data", "sft")
    with pytest.raises(_PlantedFailure) as failed:
        _materialize(store, tmp_path / "machine1", base, tokenizer, train, val, fail_after_training=True)
    first_steps, first_sha = failed.value.args[0]
    assert first_steps == 8
    if where == "s3":
        shutil.rmtree(tmp_path / "machine1")  # the rerun happens on another machine
    steps, sha, result = _materialize(store, tmp_path / "machine2", base, tokenizer, train, val,
                                      fail_after_training=False)
    assert steps == 0, "the rerun trained again"
    assert sha == first_sha and result.steps == 8
    assert store.metadata(STAGE)["adapter_sha256"] == first_sha
    # Published: the progress (and the trained record) are gone, so a later change of inputs trains afresh.
    if where == "s3":
        assert s3.list_objects_v2(Bucket=DEFAULT_BUCKET, Prefix=f"foundation/{STAGE}/_progress/")["KeyCount"] == 0
    else:
        assert not (tmp_path / "root/checkpoints" / STAGE / "_progress").exists()
