"""One SFT stage with TRL's SFTTrainer: phase A (plain causal LM on ``{"text"}`` lines) and the SFT
stages (conversational ``messages``, loss on assistant tokens only through the template's
``{% generation %}`` markers).

One LoRA adapter is continued through the whole chain: ``pretrained`` starts a fresh adapter on the
base model, every later stage loads the parent stage's adapter with
``PeftModel.from_pretrained(base, dir, is_trainable=True)`` and trains it further, so each
checkpoint is self-contained (base + its own adapter directory).

Per stage: evaluation every ``eval_steps`` (validation loss and perplexity), early stopping after
``early_stopping_patience`` evaluations without improvement with the best checkpoint kept
(``load_best_model_at_end``), HF Trainer checkpoints every ``save_steps`` under
``<out_dir>/_progress/checkpoint-<step>/``, and a resume from the last complete one when the stage
runs again with the same inputs. Nothing here truncates: a sequence longer than ``max_length`` is
an error naming the file and line (the stage-data pipeline drops or splits such records first).
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pixel_assets.lib.training import ranks
from pixel_assets.lib.training.models import (
    DevicePlan, added_chat_marker_ids, device_plan, load_base_model, lora_config,
)
from pixel_assets.lib.training.progress import (  # noqa: F401  (PROGRESS_DIR etc. stay importable from here)
    CHECKPOINT_PREFIX, PROGRESS_DIR, RUN_MARKER, ProgressLog, complete_checkpoints, digest, prepare_progress,
    record_trained, trained_result,
)

KINDS = ("pretrain", "sft")


@dataclass
class SFTStageConfig:
    """The trainer's own settings for one stage (TRL style: the config dataclass beside the trainer).

    Build it from the curriculum's StageConfig with ``SFTStageConfig.from_stage(stage)``, or directly.
    """

    stage: str
    kind: str = "sft"  # "pretrain": plain causal LM on {"text"}; "sft": conversational, assistant-only loss
    epochs: float = 1.0
    learning_rate: float = 2e-4
    max_length: int = 4096
    per_device_batch_size: int = 1
    gradient_accumulation_steps: int = 1
    max_steps: int | None = None  # None: run the epochs
    eval_steps: int = 50
    save_steps: int | None = None  # None: = eval_steps (must be a multiple of eval_steps to keep the best)
    early_stopping_patience: int = 3
    packing: bool = False  # best-fit-decreasing packing, padding-free (stage 5)
    # Unpacked stages: one flattened sequence per batch, no pad tokens computed. None = only with a
    # flash-attention kernel (varlen); sdpa/eager attend over the whole flattened batch, so padded
    # batches are cheaper there.
    padding_free: bool | None = None
    seed: int = 0
    logging_steps: int = 10
    warmup_ratio: float = 0.0
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    save_total_limit: int = 2  # the best and the latest are always kept
    keep_progress: bool = False  # no effect on the trainer: _progress stays until CheckpointStore.publish
    gradient_checkpointing: bool | None = None  # None: on for a GPU, off on CPU
    report_to: tuple[str, ...] = ()  # ("wandb",) with a run initialised first (tracking.wandb_run)
    run_name: str | None = None
    config_hash: str | None = None  # the curriculum's StageConfig.config_hash(), for metadata
    device: DevicePlan | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"stage {self.stage!r}: {name} {why}")

        if self.kind not in KINDS:
            raise bad("kind", f"must be one of {KINDS}, got {self.kind!r}")
        for name in ("max_length", "per_device_batch_size", "gradient_accumulation_steps", "eval_steps",
                     "early_stopping_patience", "logging_steps", "save_total_limit"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, f"must be a positive integer, got {getattr(self, name)!r}")
        for name in ("epochs", "learning_rate"):
            if not getattr(self, name) > 0:
                raise bad(name, f"must be positive, got {getattr(self, name)!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise bad("max_steps", f"must be None or a positive integer, got {self.max_steps!r}")
        if self.save_steps is None:
            self.save_steps = self.eval_steps
        if self.save_steps < 1 or self.save_steps % self.eval_steps:
            raise bad("save_steps", f"({self.save_steps}) must be a positive multiple of eval_steps "
                      f"({self.eval_steps}) so the best evaluated checkpoint is on disk")
        self.report_to = tuple(self.report_to)

    @classmethod
    def from_stage(cls, stage: Any, device: DevicePlan | None = None, **overrides) -> SFTStageConfig:
        """From the curriculum's StageConfig (duck-typed: the fields both share are taken over)."""
        kind = getattr(stage, "kind", "sft")
        if kind not in KINDS:
            raise ValueError(f"stage {getattr(stage, 'name', '?')!r}: kind {kind!r} is not an SFT stage")
        values: dict[str, Any] = {"stage": stage.name, "kind": kind, "device": device}
        own = {f.name for f in fields(cls)}
        for name in own - {"stage", "kind", "device", "config_hash"}:
            if getattr(stage, name, None) is not None:
                values[name] = getattr(stage, name)
        if callable(getattr(stage, "config_hash", None)):
            values["config_hash"] = stage.config_hash()
        values.update(overrides)
        return cls(**values)

    def plan(self) -> DevicePlan:
        return self.device or device_plan()

    def fingerprint(self) -> str:
        """Hash of everything that changes what the stage's checkpoints contain."""
        skip = {"device", "report_to", "run_name", "keep_progress", "logging_steps", "config_hash"}
        data = {k: v for k, v in asdict(self).items() if k not in skip}
        data["dtype"] = self.plan().dtype_name
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class StageResult:
    stage: str
    steps: int
    train_loss: float | None
    eval_loss: float | None
    perplexity: float | None
    tokens_seen: int  # non-padding input tokens over the whole stage (resumed runs included)
    duration_s: float  # wall clock of this call (model load, training, evaluation, save)
    tokens_per_s: float  # tokens trained in this call / training time of this call
    best_step: int | None
    resumed_from_step: int  # 0 = started from scratch
    early_stopped: bool
    wandb: str | None = None  # run URL, or the offline run directory
    out_dir: str | None = None
    parent_eval_loss: float | None = None  # the parent on the same val records, before this stage trained

    def as_metadata(self) -> dict[str, Any]:
        return asdict(self)


def read_jsonl(path: str | Path, kind: str, allow_empty: bool = False) -> list[dict]:
    """The trainer's columns of a stage file: ``text`` (pretrain) or ``messages`` (role, content)."""
    rows: list[dict] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise ValueError(f"{path}: line {lineno} is not valid JSON") from None
            if kind == "pretrain":
                if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                    raise ValueError(f"{path}: line {lineno} has no string field 'text' (phase A lines)")
                rows.append({"text": record["text"]})
            else:
                msgs = record.get("messages") if isinstance(record, dict) else None
                if not isinstance(msgs, list) or not msgs or not all(
                        isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in msgs):
                    raise ValueError(f"{path}: line {lineno} has no list of messages with role and content")
                if not any(m["role"] == "assistant" for m in msgs):
                    raise ValueError(f"{path}: line {lineno} has no assistant turn (nothing to train on)")
                rows.append({"messages": [{"role": m["role"], "content": m["content"]} for m in msgs]})
    if not rows and not allow_empty:
        raise ValueError(f"{path}: no records")
    return rows


def sequence_length(row: dict, tokenizer) -> int:
    """Tokens the trainer will see for one row (template applied; EOS appended to text)."""
    if "text" in row:
        return len(tokenizer(row["text"], add_special_tokens=False)["input_ids"]) + 1
    text = tokenizer.apply_chat_template(row["messages"], tokenize=False)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def check_lengths(rows: Iterable[dict], tokenizer, max_length: int, path: str | Path) -> int:
    """Total tokens; raises on the first row longer than ``max_length`` (TRL would cut it silently)."""
    total = 0
    for i, row in enumerate(rows, 1):
        n = sequence_length(row, tokenizer)
        if n > max_length:
            raise ValueError(f"{path}: record {i} is {n} tokens, longer than the stage's max_length "
                             f"{max_length}; the stage data must leave it out or split it (the trainer never truncates)")
        total += n
    return total


def build_trainer(*, base: str | Path, parent_adapter: Path | None, tokenizer, train_rows: list[dict],
                  val_rows: list[dict] | None, out_dir: Path, config: SFTStageConfig, callbacks=(), model=None,
                  evaluate: bool = True, **overrides):
    """The configured SFTTrainer (also used by the benchmark and the tests).

    ``evaluate=False`` (the benchmark): no evaluation, saving or early stopping. ``overrides``: more
    SFTConfig fields."""
    from datasets import Dataset
    from transformers import EarlyStoppingCallback, PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from pixel_assets.lib.training.versions import require_tested_versions

    require_tested_versions()
    plan = config.plan()
    # rows of chat markers the base's tokenizer lacked (a given in-memory model brings its own tokenizer)
    markers = added_chat_marker_ids(base) if model is None else []
    if model is None:
        model = load_base_model(base, plan)
    peft_config = None
    if parent_adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(parent_adapter), is_trainable=True)
    else:
        peft_config = lora_config(config.lora_r, config.lora_alpha, config.lora_dropout,
                                  trainable_token_indices=markers)
    flash = plan.attn_implementation.startswith("flash")
    padding_free = config.packing or (flash if config.padding_free is None else config.padding_free)
    batch, accumulation = config.per_device_batch_size, config.gradient_accumulation_steps
    if config.packing and not flash:
        # Without a varlen kernel a flattened batch of B packed rows costs (B * max_length)^2 attention;
        # one packed row per forward (same effective batch through accumulation) costs max_length^2.
        batch, accumulation = 1, batch * accumulation
    gradient_checkpointing = (plan.device != "cpu") if config.gradient_checkpointing is None \
        else config.gradient_checkpointing
    schedule = dict(
        eval_strategy="steps", eval_steps=config.eval_steps, save_strategy="steps", save_steps=config.save_steps,
        save_total_limit=config.save_total_limit, load_best_model_at_end=True, metric_for_best_model="eval_loss",
        greater_is_better=False,
    ) if evaluate else dict(eval_strategy="no", save_strategy="no")
    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir / PROGRESS_DIR),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup_ratio,  # a float < 1 is a fraction of the steps (transformers 5)
        per_device_train_batch_size=batch,
        per_device_eval_batch_size=batch,
        gradient_accumulation_steps=accumulation,
        logging_steps=min(config.logging_steps, config.eval_steps),
        report_to=list(config.report_to) or "none",
        run_name=config.run_name or config.stage,
        seed=config.seed,
        data_seed=config.seed,
        # Unpacked padding-free batches do not enforce max_length (TRL requires None); check_lengths does.
        max_length=config.max_length if (config.packing or not padding_free) else None,
        packing=config.packing,
        packing_strategy="bfd",
        padding_free=padding_free,
        assistant_only_loss=config.kind == "sft",
        include_num_input_tokens_seen="non_padding",
        restore_callback_states_from_checkpoint=True,  # early stopping's patience counter survives a resume
        gradient_checkpointing=gradient_checkpointing,
        # non-reentrant checkpointing: works with frozen base weights (LoRA) and PEFT's input hooks
        gradient_checkpointing_kwargs={"use_reentrant": False},
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    kwargs.update(schedule)
    kwargs.update(plan.trainer_kwargs())
    kwargs.update(overrides)
    args = SFTConfig(**kwargs)
    stopping = [EarlyStoppingCallback(early_stopping_patience=config.early_stopping_patience)] if evaluate else []
    trainer = SFTTrainer(
        model=model, args=args, processing_class=tokenizer, peft_config=peft_config,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if evaluate else None,
        # the caller's callbacks run first: they see (and may act on) each evaluation before early stopping
        callbacks=[*callbacks, *stopping],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes through `log` (ProgressLog) instead
    save_adapter_only(trainer.model)
    return trainer


def train_sft_stage(*, base: str | Path, parent_adapter: Path | None, tokenizer, train_path: str | Path,
                    val_path: str | Path, out_dir: str | Path, config: SFTStageConfig, callbacks=(),
                    log: Callable[[str], Any] = print, wandb_run: Any = None,
                    trainer_args: dict[str, Any] | None = None) -> StageResult:
    """Train one stage into ``out_dir`` (final adapter + tokenizer; intermediate state in _progress).

    ``wandb_run``: an initialised W&B run (tracking.wandb_run) that the trainer reports to; its URL or
    offline directory goes into the result. ``trainer_args``: more SFTConfig fields (the distributed
    entry's FSDP settings). Under torchrun every rank calls this; rank 0 alone clears progress and
    writes the tokenizer (HF Trainer saves the adapter from rank 0 itself).
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    if config.kind == "sft" and parent_adapter is None:
        log(f"[{config.stage}] no parent adapter: starting a fresh LoRA adapter")
    train_rows = read_jsonl(train_path, config.kind)
    # An empty val file: the stage data found no validation records for it (said in its stats); the
    # stage then trains unevaluated rather than failing.
    val_rows = read_jsonl(val_path, config.kind, allow_empty=True)
    evaluate = bool(val_rows)
    if not evaluate:
        log(f"[{config.stage}] WARNING: no validation records: training unevaluated (no eval loss, no early stopping)")
    check_lengths(train_rows, tokenizer, config.max_length, train_path)
    check_lengths(val_rows, tokenizer, config.max_length, val_path)
    marker = {"stage": config.stage, "config": config.fingerprint(), "base": str(base),
              "parent": digest(parent_adapter), "train": digest(train_path), "val": digest(val_path)}
    resume = ranks.from_main(lambda: prepare_progress(out_dir, marker, log))  # one resume step for all ranks
    done = trained_result(out_dir, marker)
    if done is not None:  # trained before, then evaluation, probes or publishing failed: no new step
        log(f"[{config.stage}] already trained on these inputs (adapter kept in {PROGRESS_DIR} until published): "
            "no new optimizer step")
        return StageResult(**{**done, "resumed_from_step": done["steps"], "duration_s": 0.0})
    if wandb_run is not None and "wandb" not in config.report_to:
        config = replace(config, report_to=(*config.report_to, "wandb"))
    progress = ProgressLog(log, config.stage)
    trainer = build_trainer(base=base, parent_adapter=parent_adapter, tokenizer=tokenizer, train_rows=train_rows,
                            val_rows=val_rows, out_dir=out_dir, config=config, callbacks=[progress, *callbacks],
                            evaluate=evaluate, **(trainer_args or {}))
    # The parent (or, for the first stage, the base) on the same validation records, measured the same
    # way before this stage trains: what the stage changed on its own families. Single process only:
    # an evaluation before train() under torchrun changed the trained adapter (2 ranks vs 1 differed by
    # 5e-3 instead of 0), so a multi-GPU stage reports no parent loss.
    parent_eval_loss = trainer.evaluate().get("eval_loss") if evaluate and ranks.world_size() == 1 else None
    output = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    state = trainer.state
    metrics = trainer.evaluate() if evaluate else {}  # the kept (best) model
    eval_loss = metrics.get("eval_loss")
    trainer.save_model(str(out_dir))  # adapter_config.json + adapter_model.safetensors
    ranks.barrier()  # every rank has saved before rank 0 writes beside it
    if ranks.is_main():
        tokenizer.save_pretrained(str(out_dir))
    release_trainer(trainer)
    del trainer
    train_time = output.metrics.get("train_runtime") or (time.monotonic() - started)
    session_tokens = state.num_input_tokens_seen - progress.start_tokens
    result = StageResult(
        stage=config.stage,
        steps=state.global_step,
        train_loss=output.training_loss,
        eval_loss=eval_loss,
        perplexity=math.exp(min(eval_loss, 700)) if eval_loss is not None else None,
        tokens_seen=int(state.num_input_tokens_seen),
        duration_s=round(time.monotonic() - started, 3),
        tokens_per_s=round(session_tokens / train_time, 2) if train_time else 0.0,
        best_step=state.best_global_step,
        resumed_from_step=progress.start_step,
        early_stopped=state.max_steps > 0 and state.global_step < state.max_steps,
        wandb=run_reference(wandb_run) if wandb_run is not None else None,
        out_dir=str(out_dir),
        parent_eval_loss=parent_eval_loss,
    )
    # _progress stays until CheckpointStore.publish clears it; this record lets a rerun skip training.
    if ranks.is_main():
        record_trained(out_dir, marker, result.as_metadata())
    log(f"[{config.stage}] done: {result.steps} steps, train loss {result.train_loss:.4f}, "
        f"eval loss {_loss(parent_eval_loss)} (parent) -> {_loss(eval_loss)}, {result.tokens_per_s:.0f} tokens/s")
    return result


def _loss(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def save_adapter_only(model) -> None:
    """Every save of this PEFT model (trainer checkpoints, the final adapter) writes the adapter alone.

    peft writes the whole embedding matrix and LM head (2.7 GB at 131,072 x 5,120 in bf16) whenever
    the vocabulary was resized; the rows added for chat markers are set deterministically from the
    base at each load (models.fit_embeddings_to_markers) and the trained ones are in the adapter."""
    import functools

    if hasattr(model, "peft_config") and not isinstance(model.save_pretrained, functools.partial):
        model.save_pretrained = functools.partial(model.save_pretrained, save_embedding_layers=False)


def release_trainer(trainer) -> None:
    """Drop the trainer's model, optimizer and accelerator state now (not at the next garbage
    collection), so the stage's evaluation loads its model into freed memory: one model at a time."""
    import torch

    trainer.accelerator.free_memory()
    trainer.model = trainer.model_wrapped = trainer.optimizer = trainer.lr_scheduler = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_reference(run: Any) -> str | None:
    from pixel_assets.lib.training.tracking import run_reference as ref

    return ref(run)
