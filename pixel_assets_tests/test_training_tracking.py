"""W&B: one offline run per stage, named after the Dagster run and the stage, that the trainer reports to."""

from __future__ import annotations

from pathlib import Path

import pytest
import wandb  # a hard dependency: a broken install fails here instead of skipping

from pixel_assets_tests.sft_fixtures import stage_files, tiny_base


def test_stage_reports_to_an_offline_run_named_after_the_dagster_run(tmp_path, monkeypatch):
    from pixel_assets.lib.training.models import device_plan, load_tokenizer
    from pixel_assets.lib.training.sft import SFTStageConfig, train_sft_stage
    from pixel_assets.lib.training.tracking import wandb_run

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default, not an accident of the env
    monkeypatch.setenv("WANDB_API_KEY", "")
    base = tiny_base(tmp_path / "base")
    train, val = stage_files(tmp_path / "data", "sft")
    config = SFTStageConfig(stage="stage2_therapeutic_expertise", max_length=256, per_device_batch_size=4,
                            max_steps=4, eval_steps=2, device=device_plan(force_cpu=True))
    dagster_run_id = "0123abcd-4567-89ef-0123-456789abcdef"
    with wandb_run(config.stage, dagster_run_id, {"learning_rate": config.learning_rate}, sdk=wandb,
                   wandb_dir=tmp_path / "wandb") as run:
        assert run.offline
        assert (run.name, run.group) == ("0123abcd-stage2_therapeutic_expertise", dagster_run_id)
        result = train_sft_stage(base=base, parent_adapter=None, tokenizer=load_tokenizer(base), train_path=train,
                                 val_path=val, out_dir=tmp_path / "ck", config=config, wandb_run=run,
                                 log=lambda m: None)
        assert "eval/loss" in run.summary.keys() and run.summary.get("train/global_step") == 4  # the trainer reported here
    offline_dir = Path(result.wandb)
    assert offline_dir.is_dir() and offline_dir.is_relative_to(tmp_path / "wandb")
    assert offline_dir.name.startswith("offline-run-") and list(offline_dir.glob("run-*.wandb"))
