"""Stage C trainer: ORPO (default), SimPO, DPO or KTO on the stage-7 adapter -> final_model.

The stage-7 adapter is loaded as `default` with `PeftModel.from_pretrained(base, dir,
is_trainable=True)` and trained further. For DPO and KTO, TRL copies that adapter into a frozen
`ref` adapter, so the reference policy is the stage-7 checkpoint (not the raw base).
ORPO and SimPO need no reference model. Intermediate checkpoints go to `out_dir/_progress/`
(HF Trainer folders, progress.prepare_progress); a rerun with the same inputs resumes from the last
complete one, and a rerun after a failure past training (evaluation, probes, publishing) reuses the
trained adapter without a new step (progress.trained_result). The final adapter (the `default` adapter only) and the tokenizer go to `out_dir`;
CheckpointStore.publish adds checkpoint.json (store.checkpoint_metadata(result)).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixel_assets.lib.training import ranks
from pixel_assets.lib.training.preference import FILES, read_jsonl
from pixel_assets.lib.training.preference_config import PreferenceConfig
from pixel_assets.lib.training.progress import (
    PROGRESS_DIR, ProgressLog, digest, prepare_progress, record_trained, trained_result,
)
from pixel_assets.lib.training.sft import StageResult, release_trainer, run_reference, save_adapter_only

STAGE = "preference"
# Figures the preference trainers log (train and eval_ prefixed); kept in the result.
_FIGURE_PREFIXES = ("rewards/", "logps/", "log_odds", "nll_loss", "kl")


@dataclass
class PreferenceResult(StageResult):
    """The SFT stages' result plus the algorithm and the preference figures TRL reports
    (rewards/margins, rewards/accuracies, ... and their eval_ values; KTO has no accuracy).
    `perplexity` is that of the chosen responses of the val pairs (assistant tokens)."""

    algorithm: str = "orpo"
    preference: dict[str, float] = field(default_factory=dict)


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


def trl_trainer(config: PreferenceConfig, *, output_dir: Path, plan, has_eval: bool,
                trainer_args: dict[str, Any] | None = None):
    """(TrainerClass, TRL config) for the configured algorithm."""
    from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer

    from pixel_assets.lib.training import experimental

    settings = config.algorithm_settings()
    early = has_eval and bool(config.early_stopping_patience)
    common: dict[str, Any] = dict(
        output_dir=str(output_dir), learning_rate=config.learning_rate, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps, max_length=config.max_length,
        beta=config.beta, seed=config.seed, data_seed=config.seed,
        logging_steps=min(config.logging_steps, config.eval_steps), save_strategy="steps",
        save_steps=config.save_steps, save_total_limit=2 if early else None,
        eval_strategy="steps" if has_eval else "no", eval_steps=config.eval_steps if has_eval else None,
        load_best_model_at_end=early, metric_for_best_model="eval_loss" if early else None, greater_is_better=False,
        report_to=list(config.report_to) or "none", run_name=STAGE, disable_tqdm=True, dataloader_num_workers=0,
        include_num_input_tokens_seen="non_padding", **plan.trainer_kwargs(),
    )
    common.update(trainer_args or {})
    if config.algorithm == "orpo":
        cfg_cls, trainer_cls = experimental.orpo()
        extra: dict[str, Any] = {}
    elif config.algorithm == "simpo":
        cfg_cls, trainer_cls = experimental.cpo()
        extra = dict(loss_type="simpo", simpo_gamma=settings["gamma_beta_ratio"] * config.beta,
                     cpo_alpha=settings["cpo_alpha"])
    elif config.algorithm == "dpo":
        cfg_cls, trainer_cls = DPOConfig, DPOTrainer
        extra = dict(loss_type=[settings["loss_type"]], label_smoothing=settings["label_smoothing"])
    else:
        cfg_cls, trainer_cls = KTOConfig, KTOTrainer
        extra = dict(settings)
    if config.algorithm in ("orpo", "simpo"):
        # Their batches have no `input_ids` (chosen_/rejected_ columns): count tokens ourselves.
        common["include_num_input_tokens_seen"] = "no"
        trainer_cls = _counting_tokens(trainer_cls)
    return trainer_cls, cfg_cls(**common, **extra)


def _counting_tokens(trainer_cls):
    class CountingTokens(trainer_cls):
        """Adds the non-padding chosen + rejected tokens of each micro-batch to num_input_tokens_seen."""

        def training_step(self, model, inputs, *args, **kwargs):
            self.state.num_input_tokens_seen += sum(
                int(inputs[k].sum()) for k in ("chosen_attention_mask", "rejected_attention_mask") if k in inputs)
            return super().training_step(model, inputs, *args, **kwargs)

    CountingTokens.__name__ = trainer_cls.__name__
    return CountingTokens


def load_policy(base: str | Path, adapter: str | Path, plan=None, *, trainable: bool):
    """The base model with an adapter loaded as `default` (trainable for training)."""
    from peft import PeftModel

    from pixel_assets.lib.training.models import load_base_model

    return PeftModel.from_pretrained(load_base_model(base, plan), str(adapter), is_trainable=trainable)


def build_trainer(*, base, stage7_adapter: Path, tokenizer, data_dir: Path, out_dir: Path,
                  config: PreferenceConfig, plan=None, callbacks: Sequence = (), trainer_args: dict | None = None):
    """The TRL trainer for stage C, ready to train (exposed for tests: its reference model)."""
    from transformers import EarlyStoppingCallback, PrinterCallback

    from pixel_assets.lib.training.models import device_plan
    from pixel_assets.lib.training.versions import require_tested_versions

    require_tested_versions()
    config.validate()
    plan = plan or device_plan()
    train_ds, eval_ds = load_datasets(Path(data_dir), config.algorithm)
    model = load_policy(base, stage7_adapter, plan, trainable=True)
    trainer_cls, args = trl_trainer(config, output_dir=Path(out_dir) / PROGRESS_DIR, plan=plan,
                                    has_eval=eval_ds is not None, trainer_args=trainer_args)
    cbs = list(callbacks)  # the caller's callbacks run first (they see each evaluation before early stopping)
    if eval_ds is not None and config.early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience))
    if config.algorithm in ("dpo", "kto") and tokenizer.padding_side != "left":
        tokenizer = copy.deepcopy(tokenizer)  # the caller's tokenizer is left as it is
        tokenizer.padding_side = "left"  # TRL's DPO/KTO collators expect left padding
    trainer = trainer_cls(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          processing_class=tokenizer, callbacks=cbs or None)
    trainer.remove_callback(PrinterCallback)
    save_adapter_only(trainer.model)
    return trainer


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
                     log: Callable[[str], Any] = print, wandb_run: Any = None,
                     trainer_args: dict[str, Any] | None = None) -> PreferenceResult:
    """Train stage C from the stage-7 adapter into `out_dir` (final `default` adapter + tokenizer).

    `data_path`: the folder write_preference_data wrote ({train,val,kto_train,kto_val}.jsonl).
    `wandb_run`: an initialised W&B run (tracking.wandb_run) the trainer reports to.
    checkpoint.json is not written here: CheckpointStore.publish writes it last.
    """
    from pixel_assets.lib.training.evaluation import evaluate_records

    started = time.monotonic()
    out, data_dir = Path(out_dir), Path(data_path)
    config.validate()
    if wandb_run is not None and "wandb" not in config.report_to:
        config.report_to = (*config.report_to, "wandb")
    train_file = data_dir / (FILES["kto_train"] if config.algorithm == "kto" else FILES["train"])
    marker = {"stage": STAGE, "config": config.fingerprint(), "base": str(base), "parent": digest(stage7_adapter),
              "train": digest(train_file), "val": digest(data_dir / FILES["val"])}
    resume = ranks.from_main(lambda: prepare_progress(out, marker, log))  # one resume step for all ranks
    done = trained_result(out, marker)
    if done is not None:  # trained before, then evaluation, probes or publishing failed: no new step
        log(f"[{STAGE}] already trained on these inputs (kept in {PROGRESS_DIR} until published): no new optimizer step")
        return PreferenceResult(**{**done, "resumed_from_step": done["steps"], "duration_s": 0.0})
    progress = ProgressLog(log, STAGE)
    trainer = build_trainer(base=base, stage7_adapter=Path(stage7_adapter), tokenizer=tokenizer, data_dir=data_dir,
                            out_dir=out, config=config, plan=plan, callbacks=[progress, *callbacks],
                            trainer_args=trainer_args)
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state, model = trainer.state, trainer.model
    ranks.barrier()  # every rank is done training before rank 0 writes the adapter
    if ranks.is_main():
        model.save_pretrained(str(out), selected_adapters=["default"])  # not TRL's frozen `ref` copy
        tokenizer.save_pretrained(str(out))

    evals = [e["eval_loss"] for e in state.log_history if "eval_loss" in e]
    eval_loss = trainer.evaluate().get("eval_loss") if trainer.eval_dataset is not None else None
    val_file = data_dir / FILES["val"]
    val_pairs = read_jsonl(val_file) if val_file.is_file() else []
    chosen = evaluate_records(model, tokenizer, [{"messages": p["prompt"] + p["chosen"]} for p in val_pairs],
                              max_length=config.max_length) if val_pairs else None
    train_time = output.metrics.get("train_runtime") or (time.monotonic() - started)
    session_tokens = state.num_input_tokens_seen - progress.start_tokens
    result = PreferenceResult(
        stage=STAGE, steps=state.global_step, train_loss=output.training_loss,
        eval_loss=eval_loss if eval_loss is not None else (evals[-1] if evals else None),
        perplexity=chosen["perplexity"] if chosen else None, tokens_seen=int(state.num_input_tokens_seen),
        duration_s=round(time.monotonic() - started, 3),
        tokens_per_s=round(session_tokens / train_time, 2) if train_time else 0.0,
        best_step=state.best_global_step, resumed_from_step=progress.start_step,
        early_stopped=state.max_steps > 0 and state.global_step < state.max_steps,
        wandb=run_reference(wandb_run) if wandb_run is not None else None, out_dir=str(out),
        algorithm=config.algorithm, preference=_figures(state.log_history),
    )
    del model
    release_trainer(trainer)
    if ranks.is_main():
        record_trained(out, marker, result.as_metadata())  # _progress stays until CheckpointStore.publish
    log(f"[{STAGE}] done ({config.algorithm}): {result.steps} steps, train loss {result.train_loss:.4f}, "
        f"eval loss {result.eval_loss}, margins {result.preference.get('eval_rewards/margins')}")
    return result
