"""Pre-training of the embedded tiny base: every parameter, on plain text from the published train
split, before the LoRA chain starts.

Why: a production base (a Hugging Face id) has already learned language; a freshly initialised tiny
model has not, and LoRA adapters on its attention projections alone cannot teach it (every loss stays
at ln(vocab), the loss of a uniform guess). A bounded, seeded full-parameter pass over the data makes
the demo's base behave like a pretrained one, so the chain can show what each stage adds.

TRL style: `BasePretrainConfig` beside `pretrain_base`, which runs TRL's SFTTrainer without a PEFT
config (all parameters train) on `{"text"}` rows packed into fixed windows (`wrapped`: classic causal-LM
pre-training; conversations are rendered with the chat template, so the base also learns the markup).
A production base is never pre-trained here.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

UNTRAINED_DIR = "untrained"  # beside the pretrained weights: the seeded initialisation, for the "before" column


@dataclass(frozen=True)
class BasePretrainConfig:
    """How long and how the tiny base is pre-trained (curriculum key `base_pretrain`).

    ``max_steps: 0`` keeps the random initialisation (the base is then only a tokenizer and a shape)."""

    max_steps: int = 0
    learning_rate: float = 3e-3
    batch_size: int = 16
    max_length: int = 256  # window length of the packed text
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_records: int | None = None  # a seeded sample of the train split (None = all)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "max_steps" else 1):
                raise ValueError(f"base_pretrain: {name} must be a {'non-negative' if name == 'max_steps' else 'positive'} "
                                 f"integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"base_pretrain: learning_rate must be positive, got {self.learning_rate!r}")
        if self.max_records is not None and self.max_records < 1:
            raise ValueError(f"base_pretrain: max_records must be None or positive, got {self.max_records!r}")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> BasePretrainConfig:
        """From the curriculum's `base_pretrain` mapping; unknown keys are an error naming them."""
        raw = dict(raw or {})
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"base_pretrain: unknown keys {sorted(unknown)}")
        return cls(**raw)

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class PretrainResult:
    steps: int
    records: int
    tokens_seen: int
    first_loss: float | None  # mean training loss of the first logged steps (about ln(vocab) untrained)
    train_loss: float | None  # mean over the run
    last_loss: float | None  # mean training loss of the last logged steps
    duration_s: float

    def as_metadata(self) -> dict[str, Any]:
        return {f"pretrain_{k}": v for k, v in asdict(self).items() if v is not None}


def pretrain_texts(records: Iterable[dict], tokenizer) -> list[str]:
    """One plain-text row per record: phase-A text as it is, a conversation rendered with the chat
    template (so the base sees the markup the SFT stages train on)."""
    out = []
    for record in records:
        if record.get("messages"):
            out.append(tokenizer.apply_chat_template(record["messages"], tokenize=False))
        elif record.get("text"):
            out.append(record["text"])
    return out


def sample_records(records: list[dict], config: BasePretrainConfig) -> list[dict]:
    """A seeded sample (stable order of the published split, so the same data gives the same base)."""
    if config.max_records is None or len(records) <= config.max_records:
        return list(records)
    picked = sorted(random.Random(config.seed).sample(range(len(records)), config.max_records))
    return [records[i] for i in picked]


def pretrain_base(base_dir: str | Path, texts: list[str], config: BasePretrainConfig, *, plan=None,
                  log: Callable[[str], Any] = print) -> PretrainResult:
    """Train every parameter of the model in ``base_dir`` on ``texts`` for ``config.max_steps`` steps and
    save it back in place; the initial weights go to ``base_dir/untrained`` first (the "untrained"
    column of the final evaluation)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from pixel_assets.lib.training.models import device_plan, load_base_model, load_tokenizer

    base_dir = Path(base_dir)
    started = time.monotonic()
    plan = plan or device_plan()
    tokenizer = load_tokenizer(base_dir)
    model = load_base_model(base_dir, plan)
    untrained = base_dir / UNTRAINED_DIR
    shutil.rmtree(untrained, ignore_errors=True)
    model.save_pretrained(untrained)
    tokenizer.save_pretrained(untrained)  # loadable as a base on its own (the untrained column)
    if config.max_steps == 0 or not texts:
        return PretrainResult(0, len(texts), 0, None, None, None, round(time.monotonic() - started, 3))
    work = base_dir.parent / f"{base_dir.name}_pretrain_work"
    args = SFTConfig(
        output_dir=str(work), max_steps=config.max_steps, learning_rate=config.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=config.warmup_ratio, weight_decay=config.weight_decay,
        per_device_train_batch_size=config.batch_size, gradient_accumulation_steps=1,
        max_length=config.max_length, packing=True, packing_strategy="wrapped", completion_only_loss=False, seed=config.seed, data_seed=config.seed,
        logging_steps=max(1, config.max_steps // 10), save_strategy="no", eval_strategy="no", report_to="none",
        include_num_input_tokens_seen="non_padding", disable_tqdm=True, dataloader_num_workers=0,
        **plan.trainer_kwargs(),
    )
    # Tokenized here in one batch (the fast tokenizer, in Rust), EOS closing each record: TRL then
    # only packs, instead of tokenizing record by record.
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    rows = {"input_ids": [row + [tokenizer.eos_token_id] for row in ids]}
    trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_dict(rows))
    trainer.remove_callback(PrinterCallback)
    log(f"[base_model] pre-training all {sum(p.numel() for p in model.parameters()):,} parameters for "
        f"{config.max_steps} steps on {len(texts)} records ({len(trainer.train_dataset)} windows of {config.max_length})")
    output = trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    trainer.save_model(str(base_dir))  # the pretrained weights replace the initial ones
    shutil.rmtree(work, ignore_errors=True)
    result = PretrainResult(
        steps=trainer.state.global_step, records=len(texts), tokens_seen=int(trainer.state.num_input_tokens_seen),
        first_loss=_round(losses[0]) if losses else None, train_loss=_round(output.training_loss),
        last_loss=_round(losses[-1]) if losses else None, duration_s=round(time.monotonic() - started, 3))
    log(f"[base_model] pre-trained: loss {result.first_loss} -> {result.last_loss} in {result.steps} steps, "
        f"{result.duration_s:.0f} s")
    return result


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)
