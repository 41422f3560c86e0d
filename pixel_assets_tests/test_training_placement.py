"""Curriculum placement settings (issue 16): gpus_per_stage and strategy per stage, validated, with
the global batch kept whatever the world size. One planted defect per test on a copy of the
packaged file."""

from __future__ import annotations

import copy
from importlib import resources

import pytest
import yaml

from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.training.curriculum import CurriculumError, parse_curriculum

REGISTRY = load_registry()
STAGE = "stage3_edge_stress_test"


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(resources.files("pixel_assets.config").joinpath("curriculum.yaml").read_text("utf-8"))


def with_stage(raw: dict, **settings) -> dict:
    data = copy.deepcopy(raw)
    next(s for s in data["stages"] if s["name"] == STAGE).update(settings)
    return data


def refused(data: dict, *fragments: str) -> str:
    with pytest.raises(CurriculumError) as err:
        parse_curriculum(data, REGISTRY)
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)
    return str(err.value)


def test_defaults_are_one_gpu_data_parallel(raw):
    cur = parse_curriculum(raw, REGISTRY)
    assert {(s.gpus_per_stage, s.strategy) for s in cur.all_stages} == {(1, "ddp")}


def test_placement_keeps_the_global_batch_and_the_config_hash(raw):
    one = parse_curriculum(raw, REGISTRY).stage(STAGE)
    two = parse_curriculum(with_stage(raw, gpus_per_stage=2, strategy="fsdp",
                                      gradient_accumulation_steps=one.gradient_accumulation_steps), REGISTRY).stage(STAGE)
    assert (two.gpus_per_stage, two.strategy) == (2, "fsdp")
    # per-device batch x accumulation per GPU x GPUs is the stated global batch
    assert two.per_device_batch_size * two.accumulation_per_gpu() * 2 == one.effective_batch_size
    assert one.accumulation_per_gpu() == one.gradient_accumulation_steps
    # where a stage trains is not what it trains: same hash, so its checkpoint does not go stale
    assert two.config_hash() == one.config_hash()


@pytest.mark.parametrize("gpus", [0, -2, 1.5, "2", True])
def test_gpus_per_stage_must_be_a_positive_integer(raw, gpus):
    refused(with_stage(raw, gpus_per_stage=gpus), f"'{STAGE}'", "'gpus_per_stage'", "positive integer")


def test_accumulation_not_divisible_by_the_gpus(raw):
    refused(with_stage(raw, gpus_per_stage=4, gradient_accumulation_steps=6), f"'{STAGE}'",
            "'gradient_accumulation_steps'", "6 is not a multiple of gpus_per_stage (4)")


def test_unknown_strategy(raw):
    refused(with_stage(raw, gpus_per_stage=2, strategy="deepspeed"), f"'{STAGE}'", "'strategy'", "ddp, fsdp")


def test_fsdp_on_one_gpu(raw):
    refused(with_stage(raw, strategy="fsdp"), f"'{STAGE}'", "'strategy'", "gpus_per_stage to 2 or more")


def test_accumulation_per_gpu_refuses_another_world_size(raw):
    stage = parse_curriculum(with_stage(raw, gpus_per_stage=2, gradient_accumulation_steps=2), REGISTRY).stage(STAGE)
    assert stage.accumulation_per_gpu() == 1
    with pytest.raises(CurriculumError, match="not a multiple of the 4 GPU"):
        stage.accumulation_per_gpu(4)


def test_fsdp_for_the_preference_stage(raw):
    data = copy.deepcopy(raw)
    pref = next(s for s in data["stages"] if s["name"] == "preference")
    pref.update(gpus_per_stage=2, strategy="fsdp", gradient_accumulation_steps=2)
    refused(data, "'preference'", "'strategy'", "trains with ddp")


def test_pixel_train_stage_builds_the_torchrun_command_and_refuses_a_bad_batch(tmp_path, capsys):
    from pixel_assets.cli import main
    from pixel_assets.lib.training.distributed import MODULE, TrainJob
    from pixel_assets_tests.dist_fixtures import tiny_stage

    job = TrainJob.for_stage(tiny_stage(gpus=2), base="b", data_dir="d", out_dir="o").write(tmp_path / "job.json")
    assert main(["train-stage", str(job), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "-m torch.distributed.run --standalone --nproc_per_node=2 -m " + MODULE in out
    assert main(["train-stage", str(job), "--gpus", "4", "--dry-run"]) == 2  # accumulation 2 over 4 GPUs
    assert "not a multiple of the 4 GPU" in capsys.readouterr().err
    assert main(["train-stage", str(tmp_path / "missing.json"), "--dry-run"]) == 2
    assert "not a readable TrainJob" in capsys.readouterr().err
