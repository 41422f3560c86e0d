"""Stage C trainer: ORPO (default), SimPO, DPO or KTO on the stage-7 adapter -> final_model.

The stage-7 adapter is loaded as `default` with `PeftModel.from_pretrained(base, dir,
is_trainable=True)` and trained further. For DPO and KTO, TRL copies that adapter into a frozen
`ref` adapter, so the reference policy is the stage-7 checkpoint (not the raw base).
ORPO and SimPO need no reference model. Intermediate checkpoints go to `out_dir/_progress/`
(HF Trainer folders); a rerun resumes from the last complete one. The final adapter (the `default`
adapter only), the tokenizer, then `checkpoint.json` are written to `out_dir`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pixel_assets.lib.training.preference import FILES, read_jsonl
from pixel_assets.lib.training.preference_config import PreferenceConfig

PROGRESS_DIR = "_progress"
# Figures the preference trainers log (train and eval_ prefixed); kept in the result.
_FIGURE_PREFIXES = ("rewards/", "logps/", "log_odds", "nll_loss", "kl")


@dataclass
class PreferenceResult:
    """The SFT stages' result shape plus the preference figures TRL reports."""

    steps: int
    train_loss: float | None
    eval_loss: float | None
    perplexity: float | None  # of the chosen responses on the val pairs (assistant tokens)
    tokens_seen: int | None
    duration_s: float
    tokens_per_s: float | None
    best_step: int | None
    resumed_from_step: int | None
    early_stopped: bool
    wandb: str | None = None
    algorithm: str = "orpo"
    preference: dict[str, float] = field(default_factory=dict)  # e.g. rewards/margins, eval_rewards/accuracies

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def last_complete_checkpoint(progress: Path) -> Path | None:
    """The highest checkpoint-N folder that has trainer_state.json (written last by HF Trainer)."""
    if not progress.is_dir():
        return None
    done = [p for p in progress.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
            and (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _rows(path: Path, keys: Sequence[str]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in keys} for r in read_jsonl(path)] if path.is_file() else []


def load_datasets(data_dir: Path, algorithm: str):
    """(train, eval or None) as `datasets.Dataset` in the algorithm's format (metadata dropped)."""
    from datasets import Dataset

    if algorithm == "kto":
        keys, train_f, val_f = ("prompt", "completion", "label"), FILES["kto_train"], FILES["kto_val"]
    else:
        keys, train_f, val_f = ("prompt", "chosen", "rejected"), FILES["train"], FILES["val"]
    train = _rows(data_dir / train_f, keys)
    if not train:
        raise ValueError(f"preference: no training rows in {data_dir / train_f}")
    val = _rows(data_dir / val_f, keys)
    return Dataset.from_list(train), (Dataset.from_list(val) if val else None)


def trl_trainer(config: PreferenceConfig, *, output_dir: Path, plan, has_eval: bool, report_to: Sequence[str] = ()):
    """(TrainerClass, TRL config) for the configured algorithm."""
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    from pixel_assets.lib.training import experimental

    settings = config.algorithm_settings()
    common: dict[str, Any] = dict(
        output_dir=str(output_dir), learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, max_length=config.max_length,
        beta=config.beta, seed=config.seed, logging_steps=1, save_strategy="steps", save_steps=config.save_steps,
        eval_strategy="steps" if has_eval else "no", eval_steps=config.eval_steps if has_eval else None,
        report_to=list(report_to) or "none", save_only_model=False, dataloader_num_workers=0,
        **plan.trainer_kwargs(),
    )
    if has_eval and config.early_stopping_patience:
        common.update(load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
    if config.algorithm == "orpo":
        cfg_cls, trainer_cls = experimental.orpo()
        extra: dict[str, Any] = {}
    elif config.algorithm == "simpo":
        cfg_cls, trainer_cls = experimental.cpo()
        extra = dict(loss_type="simpo", **settings)
    elif config.algorithm == "dpo":
        cfg_cls, trainer_cls = DPOConfig, DPOTrainer
        extra = dict(loss_type=[settings["loss_type"]], label_smoothing=settings["label_smoothing"])
    else:
        cfg_cls, trainer_cls = KTOConfig, KTOTrainer
        extra = dict(settings)
    return trainer_cls, cfg_cls(**common, **extra)


def load_policy(base: str | Path, adapter: str | Path, plan, *, trainable: bool):
    """The base model with an adapter loaded as `default` (trainable for training)."""
    from peft import PeftModel

    from pixel_assets.lib.training.models import load_base_model

    return PeftModel.from_pretrained(load_base_model(base, plan), str(adapter), is_trainable=trainable)


def build_trainer(*, base, stage7_adapter: Path, tokenizer, data_dir: Path, out_dir: Path,
                  config: PreferenceConfig, plan=None, callbacks: Sequence = (), report_to: Sequence[str] = ()):
    """The TRL trainer for stage C, ready to train (exposed for tests: its reference model)."""
    from transformers import EarlyStoppingCallback

    from pixel_assets.lib.training.models import device_plan

    config.validate()
    plan = plan or device_plan()
    train_ds, eval_ds = load_datasets(Path(data_dir), config.algorithm)
    model = load_policy(base, stage7_adapter, plan, trainable=True)
    trainer_cls, args = trl_trainer(config, output_dir=Path(out_dir) / PROGRESS_DIR, plan=plan,
                                    has_eval=eval_ds is not None, report_to=report_to)
    cbs = list(callbacks)
    if eval_ds is not None and config.early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    if tokenizer.padding_side != "left" and config.algorithm in ("dpo", "kto"):
        tokenizer.padding_side = "left"  # TRL's DPO/KTO collators expect left padding
    return trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                       processing_class=tokenizer, callbacks=cbs or None)


def _figures(log_history: list[dict[str, Any]]) -> dict[str, float]:
    """The last logged value of each preference figure (train and eval_)."""
    out: dict[str, float] = {}
    for entry in log_history:
        for key, value in entry.items():
            bare = key[5:] if key.startswith("eval_") else key
            if bare.startswith(_FIGURE_PREFIXES) and isinstance(value, (int, float)):
                out[key] = float(value)
    return out


def train_preference(*, base: str | Path, stage7_adapter: str | Path, tokenizer, data_path: str | Path,
                     out_dir: str | Path, config: PreferenceConfig, plan=None, callbacks: Sequence = (),
                     report_to: Sequence[str] = (), log: Callable[[str], None] = print) -> PreferenceResult:
    """Train stage C from the stage-7 adapter; `data_path` holds the files write_preference_data writes."""
    from pixel_assets.lib.training.evaluation import evaluate_records

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer = build_trainer(base=base, stage7_adapter=Path(stage7_adapter), tokenizer=tokenizer,
                            data_dir=Path(data_path), out_dir=out, config=config, plan=plan,
                            callbacks=callbacks, report_to=report_to)
    resume = last_complete_checkpoint(out / PROGRESS_DIR)
    resumed_from = int(resume.name.split("-")[-1]) if resume else None
    log(f"preference[{config.algorithm}]: " + (f"resuming from step {resumed_from}" if resume else "starting"))
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    model = trainer.model
    model.save_pretrained(str(out), selected_adapters=["default"])  # not TRL's frozen `ref` copy
    tokenizer.save_pretrained(str(out))

    evals = [e["eval_loss"] for e in state.log_history if "eval_loss" in e]
    val_pairs = read_jsonl(Path(data_path) / FILES["val"]) if (Path(data_path) / FILES["val"]).is_file() else []
    chosen_fig = evaluate_records(model, tokenizer, [{"messages": p["prompt"] + p["chosen"]} for p in val_pairs],
                                  max_length=config.max_length) if val_pairs else None
    duration = time.perf_counter() - started
    tokens = int(getattr(state, "num_input_tokens_seen", 0) or 0) or None
    best_step = None
    if state.best_model_checkpoint:
        best_step = int(Path(state.best_model_checkpoint).name.split("-")[-1])
    result = PreferenceResult(
        steps=int(state.global_step), train_loss=float(output.training_loss) if output.training_loss else None,
        eval_loss=float(evals[-1]) if evals else None,
        perplexity=chosen_fig["perplexity"] if chosen_fig else None, tokens_seen=tokens,
        duration_s=round(duration, 3), tokens_per_s=round(tokens / duration, 2) if tokens else None,
        best_step=best_step, resumed_from_step=resumed_from,
        early_stopped=bool(config.max_steps is None and state.global_step < state.max_steps),
        wandb=None, algorithm=config.algorithm, preference=_figures(state.log_history),
    )
    meta = {"stage": "preference", **result.as_dict(), "config": config.as_dict()}
    (out / "checkpoint.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    log(f"preference[{config.algorithm}]: {result.steps} steps, train loss {result.train_loss}, "
        f"eval loss {result.eval_loss}")
    return result


def perplexity(loss: float | None) -> float | None:
    return None if loss is None else float(math.exp(min(loss, 50.0)))
