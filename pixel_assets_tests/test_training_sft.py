"""The SFT stage trainer on a tiny offline model: assistant-only loss, the adapter chain, early
stopping that keeps the best checkpoint, the length guard, and resume after SIGKILL."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trl  # noqa: F401  a hard dependency: a broken install fails here instead of skipping

from pixel_assets_tests.sft_fixtures import resume_config, stage_files, tiny_base, write_jsonl


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tiny_base(tmp_path_factory.mktemp("base") / "models" / "base")


@pytest.fixture(scope="module")
def tokenizer(base):
    from pixel_assets.lib.training.models import load_tokenizer

    return load_tokenizer(base)


def _config(stage="stage1_foundation", **kw):
    from pixel_assets.lib.training.models import device_plan
    from pixel_assets.lib.training.sft import SFTStageConfig

    settings = dict(max_length=256, per_device_batch_size=4, max_steps=4, eval_steps=2, learning_rate=1e-3,
                    device=device_plan(force_cpu=True))
    settings.update(kw)
    return SFTStageConfig(stage=stage, **settings)


def _supervised_spans(batch, tokenizer) -> list[str]:
    """Decoded runs of consecutive tokens that carry a label (get loss)."""
    spans = []
    for ids, labels in zip(batch["input_ids"].tolist(), batch["labels"].tolist()):
        run: list[int] = []
        for tok, lab in [*zip(ids, labels), (None, -100)]:
            if lab != -100:
                run.append(tok)
            elif run:
                spans.append(tokenizer.decode(run, skip_special_tokens=False))
                run = []
    return sorted(spans)


@pytest.mark.parametrize("packing,padding_free", [(False, None), (False, True), (True, None)],
                         ids=["padded (CPU default)", "padding-free", "packed"])
def test_only_assistant_tokens_get_loss(base, tokenizer, tmp_path, packing, padding_free):
    from pixel_assets.lib.training.sft import build_trainer, read_jsonl

    train, val = stage_files(tmp_path, "sft", n_train=8, n_val=2)
    rows = read_jsonl(train, "sft")
    trainer = build_trainer(base=base, parent_adapter=None, tokenizer=tokenizer, train_rows=rows,
                            val_rows=read_jsonl(val, "sft"), out_dir=tmp_path / "out",
                            config=_config(packing=packing, padding_free=padding_free))
    # CPU (sdpa): packed rows go one per forward, the effective batch kept through accumulation.
    assert (trainer.args.per_device_train_batch_size, trainer.args.gradient_accumulation_steps) == \
        ((1, 4) if packing else (4, 1))
    assert trainer.args.padding_free == (packing or bool(padding_free))
    dataset = trainer.train_dataset
    batch = trainer.data_collator([dataset[i] for i in range(len(dataset))])
    expected = sorted(m["content"] + "<|im_end|>" for r in rows for m in r["messages"] if m["role"] == "assistant")
    assert _supervised_spans(batch, tokenizer) == expected
    user_and_system = {m["content"] for r in rows for m in r["messages"] if m["role"] != "assistant"}
    assert not any(text in span for span in _supervised_spans(batch, tokenizer) for text in user_and_system)

    # Planted defect: labels = the whole sequence (no assistant mask): the same check sees user and
    # system tokens trained.
    unmasked = dataset.map(lambda row: {"labels": row["input_ids"]})
    defect = trainer.data_collator([unmasked[i] for i in range(len(unmasked))])
    spans = _supervised_spans(defect, tokenizer)
    assert spans != expected
    assert any(text in span for span in spans for text in user_and_system)


def test_stage_chain_continues_the_parent_adapter(base, tokenizer, tmp_path):
    from safetensors.torch import load_file

    from pixel_assets.lib.training.sft import train_sft_stage

    logs: list[str] = []
    pre_train, pre_val = stage_files(tmp_path / "pre", "pretrain")
    pre = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=pre_train,
                          val_path=pre_val, out_dir=tmp_path / "ck" / "pretrained",
                          config=_config("pretrained", kind="pretrain"), log=logs.append)
    assert pre.steps == 4 and pre.resumed_from_step == 0 and not pre.early_stopped
    assert pre.tokens_seen > 0 and pre.tokens_per_s > 0
    assert math.isclose(pre.perplexity, math.exp(pre.eval_loss), rel_tol=1e-6)
    adapter_cfg = json.loads((tmp_path / "ck/pretrained/adapter_config.json").read_text())
    assert (adapter_cfg["r"], adapter_cfg["lora_alpha"], adapter_cfg["lora_dropout"]) == (16, 32, 0.1)
    assert sorted(adapter_cfg["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert (tmp_path / "ck/pretrained/_progress/trained.json").is_file()  # kept until the store publishes
    assert any("step 4/4" in line for line in logs)

    # Stage 1 continues the same adapter: with a negligible learning rate it ends where its parent ended.
    s1_train, s1_val = stage_files(tmp_path / "s1", "sft")
    train_sft_stage(base=base, parent_adapter=tmp_path / "ck/pretrained", tokenizer=tokenizer,
                    train_path=s1_train, val_path=s1_val, out_dir=tmp_path / "ck" / "s1",
                    config=_config(learning_rate=1e-9), log=logs.append)
    parent = load_file(tmp_path / "ck/pretrained/adapter_model.safetensors")
    child = load_file(tmp_path / "ck/s1/adapter_model.safetensors")
    assert parent.keys() == child.keys()
    lora_b = [k for k in parent if "lora_B" in k]
    assert lora_b and max(parent[k].abs().max().item() for k in lora_b) > 1e-4  # trained, not the zero init
    assert max((parent[k] - child[k]).abs().max().item() for k in parent) < 1e-5


def test_early_stopping_keeps_the_best_checkpoint(base, tokenizer, tmp_path):
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    from pixel_assets.lib.training.sft import train_sft_stage

    class ScriptedEvalLoss(TrainerCallback):
        """Validation loss best at the first evaluation, then worse every time."""

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            metrics["eval_loss"] = float(state.global_step)

    train, val = stage_files(tmp_path, "sft")
    result = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                             out_dir=tmp_path / "out", config=_config(max_steps=30, keep_progress=True),
                             callbacks=[ScriptedEvalLoss()], log=lambda m: None)
    assert result.early_stopped and result.best_step == 2
    assert result.steps == 8  # evaluations at 2 (best), 4, 6, 8: three without improvement (patience 3)
    best = load_file(tmp_path / "out/_progress/checkpoint-2/adapter_model.safetensors")
    kept = load_file(tmp_path / "out/adapter_model.safetensors")
    assert all(bool((best[k] == kept[k]).all()) for k in best)
    last = load_file(tmp_path / "out/_progress/checkpoint-8/adapter_model.safetensors")
    assert any(not bool((last[k] == kept[k]).all()) for k in last)  # the last step is not what was kept


def test_overlong_record_is_an_error_not_a_truncation(base, tokenizer, tmp_path):
    from pixel_assets.lib.training.sft import train_sft_stage

    train, val = stage_files(tmp_path, "sft")
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    rows[3]["messages"][1]["content"] = "word " * 400
    write_jsonl(train, rows)
    with pytest.raises(ValueError, match=r"train\.jsonl: record 4 is \d+ tokens, longer than .* max_length 256"):
        train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                        out_dir=tmp_path / "out", config=_config(), log=lambda m: None)


def test_config_errors_name_stage_and_field():
    from pixel_assets.lib.training.sft import SFTStageConfig

    with pytest.raises(ValueError, match="stage 's3': save_steps .* multiple of eval_steps"):
        SFTStageConfig(stage="s3", eval_steps=4, save_steps=6)
    with pytest.raises(ValueError, match="stage 's3': learning_rate must be positive"):
        SFTStageConfig(stage="s3", learning_rate=0)

    class StageConfig:  # the curriculum's dataclass, duck-typed
        name, kind, epochs, learning_rate, max_length, packing, eval_steps = "stage5_long_running", "sft", 1, 2e-4, 8192, True, 5

        def config_hash(self):
            return "abc"

    cfg = SFTStageConfig.from_stage(StageConfig())
    assert (cfg.stage, cfg.packing, cfg.max_length, cfg.save_steps, cfg.config_hash) == \
        ("stage5_long_running", True, 8192, 5, "abc")


def test_progress_from_other_inputs_is_not_resumed(tmp_path):
    from pixel_assets.lib.training.sft import prepare_progress

    ckpt = tmp_path / "_progress" / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_model.safetensors").write_bytes(b"x")
    (ckpt / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (tmp_path / "_progress" / "checkpoint-4").mkdir()  # cut short mid-save: no trainer state
    marker = {"stage": "s", "train": "a"}
    (tmp_path / "_progress" / "pixel_run.json").write_text(json.dumps(marker))
    assert prepare_progress(tmp_path, marker, print) == ckpt
    assert not (tmp_path / "_progress" / "checkpoint-4").exists()
    assert prepare_progress(tmp_path, {**marker, "train": "changed"}, print) is None
    assert not ckpt.exists()


def _run_stage_subprocess(base, train, val, out, sleep_s):
    return subprocess.Popen(
        [sys.executable, "-m", "pixel_assets_tests.sft_fixtures", str(base), str(train), str(val), str(out),
         str(sleep_s)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL),
                            signal.signal(signal.SIGTERM, signal.SIG_DFL), os.setsid()),
    )


def _adapter_weights(adapter_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


def test_resume_after_sigkill_continues_from_the_last_saved_step(base, tokenizer, tmp_path):
    from pixel_assets.lib.training.sft import complete_checkpoints, train_sft_stage

    train, val = stage_files(tmp_path / "data", "sft")
    out = tmp_path / "interrupted"
    proc = _run_stage_subprocess(base, train, val, out, sleep_s=1.0)
    try:
        deadline = time.monotonic() + 300
        while not complete_checkpoints(out / "_progress"):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no checkpoint saved in time"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    saved = complete_checkpoints(out / "_progress")
    assert saved and not (out / "adapter_model.safetensors").exists()  # killed before the end

    resumed = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                              out_dir=out, config=resume_config(), log=lambda m: None)
    whole = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=train, val_path=val,
                            out_dir=tmp_path / "uninterrupted", config=resume_config(), log=lambda m: None)
    assert whole.resumed_from_step == 0 and whole.steps == 10
    assert resumed.resumed_from_step >= int(saved[0].name.split("-")[1]) > 0
    assert resumed.steps == whole.steps
    assert resumed.tokens_seen == whole.tokens_seen  # the same batches, counted once
    assert resumed.best_step == whole.best_step
    # The adapter itself: the resumed run trained on the same batches from the restored optimizer
    # and RNG state, so its weights match the uninterrupted run's up to float noise. A resume that
    # restarted, replayed or skipped batches moves them by far more than the tolerance.
    resumed_w, whole_w = _adapter_weights(out), _adapter_weights(tmp_path / "uninterrupted")
    assert resumed_w.keys() == whole_w.keys() and resumed_w
    scale = max(w.abs().max().item() for w in whole_w.values())
    worst = max((resumed_w[k] - whole_w[k]).abs().max().item() for k in whole_w)
    assert worst <= 1e-4 * scale, f"adapter differs from the uninterrupted run's by {worst:.3g} (scale {scale:.3g})"


@pytest.mark.parametrize("profile", [None, "demo"])
def test_config_from_every_curriculum_stage(profile):
    from pixel_assets.lib.training.curriculum import load_curriculum
    from pixel_assets.lib.training.sft import SFTStageConfig

    chain = load_curriculum(profile=profile).sft_chain()
    assert [s.name for s in chain][:2] == ["pretrained", "stage1_foundation"]
    for stage in chain:
        cfg = SFTStageConfig.from_stage(stage)
        assert (cfg.stage, cfg.kind, cfg.learning_rate, cfg.max_length, cfg.epochs, cfg.packing, cfg.save_steps,
                cfg.max_steps, cfg.config_hash) == (stage.name, stage.kind, stage.learning_rate, stage.max_length,
                                                    stage.epochs, stage.packing, stage.save_steps, stage.max_steps,
                                                    stage.config_hash())
