"""One model in memory per stage: a stage loads the base once for training, evaluation and probes,
the base loads straight onto the device in the planned dtype, gradient checkpointing is non-reentrant."""

from __future__ import annotations

import pytest

from pixel_assets_tests.sft_fixtures import stage_files, tiny_base


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tiny_base(tmp_path_factory.mktemp("one_model") / "base")


def _config(**kw):
    from pixel_assets.lib.training.models import device_plan
    from pixel_assets.lib.training.sft import SFTStageConfig

    kw.setdefault("device", device_plan(force_cpu=True))
    return SFTStageConfig(stage="stage1_foundation", max_length=256, per_device_batch_size=4, max_steps=2,
                          eval_steps=2, **kw)


def test_the_base_loads_straight_onto_the_device_in_the_planned_dtype(base, monkeypatch):
    import torch

    from pixel_assets.lib.training.models import DevicePlan, load_base_model

    calls = []
    real_to = torch.nn.Module.to
    monkeypatch.setattr(torch.nn.Module, "to", lambda self, *a, **k: calls.append((a, k)) or real_to(self, *a, **k))
    plan = DevicePlan("cpu", "bfloat16", True, "sdpa", use_cpu=True)
    model = load_base_model(base, plan)
    assert next(model.parameters()).dtype == torch.bfloat16
    assert not calls, f"the model was moved after loading: {calls}"


def test_gradient_checkpointing_is_non_reentrant(base, tmp_path):
    from pixel_assets.lib.training.models import DevicePlan, load_base_model, load_tokenizer
    from pixel_assets.lib.training.sft import build_trainer

    plan = DevicePlan("cpu", "float32", False, "sdpa", use_cpu=True)
    config = _config(gradient_checkpointing=True, device=plan)
    trainer = build_trainer(base=base, parent_adapter=None, tokenizer=load_tokenizer(base),
                            train_rows=[{"messages": [{"role": "user", "content": "hi"},
                                                      {"role": "assistant", "content": "hello"}]}] * 2,
                            val_rows=None, out_dir=tmp_path, config=config, evaluate=False,
                            model=load_base_model(base, plan))
    assert trainer.args.gradient_checkpointing
    assert trainer.args.gradient_checkpointing_kwargs == {"use_reentrant": False}


def test_a_stage_loads_the_base_once_for_training_evaluation_and_probes(base, tmp_path, monkeypatch):
    """adapters.train_and_keep (what checkpoints/<stage> calls): the trained model itself comes back for
    evaluation and probes; a rerun after a failure past training loads the checkpoint once."""
    from pixel_assets.defs.training import adapters
    from pixel_assets.lib.training import models, sft
    from pixel_assets.lib.training.curriculum import load_curriculum

    loads = []
    real = models.load_base_model

    def counting(*a, **k):
        loads.append(a[0])
        return real(*a, **k)

    monkeypatch.setattr(models, "load_base_model", counting)
    monkeypatch.setattr(sft, "load_base_model", counting)
    import dataclasses

    stage = next(st for st in load_curriculum(profile="demo").all_stages if st.name == "stage1_foundation")
    stage = dataclasses.replace(stage, max_steps=2, eval_steps=2, save_steps=2, max_length=256)
    data = tmp_path / "data"
    stage_files(data, "sft", n_train=8, n_val=4)
    for attempt in (1, 2):
        loads.clear()
        result, model, tokenizer = adapters.train_and_keep(stage=stage, base=str(base), parent_adapter=None,
                                                           data_dir=data, out_dir=tmp_path / "work", force_cpu=True,
                                                           log=lambda m: None)
        assert adapters.eval_loss(model, tokenizer, [{"text": "a short check"}]) > 0
        assert len(loads) == 1, f"attempt {attempt}: the base was loaded {len(loads)} times"
        del model
