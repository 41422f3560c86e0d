"""`pixel bench train`: tokens/s of one SFT stage with this project's settings against TRL's plain
SFTTrainer defaults, on the same records and the same model, in one process.

- project: best-fit-decreasing packing, padding-free batches (position ids, no pad tokens computed),
  loss on assistant tokens only (the template's generation markers), the same LoRA as every stage;
- baseline: ``SFTConfig()`` defaults (padded batches, loss on the whole sequence), the same LoRA,
  batch size, learning rate, precision and gradient checkpointing, so only the batching differs.

Throughput counts real (non-padding) tokens over one epoch of the same records; the padding
fraction is pad positions / all positions the model computed, read from each trainer's own
dataloader. ``model_size="1b"`` builds a randomly initialised ~1B-parameter Mistral (no download)
and reports MFU against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from pixel_assets.lib.training.models import build_tiny_model, build_tokenizer, device_plan, lora_config
from pixel_assets.lib.training.sft import SFTStageConfig, build_trainer

# ~1.1B parameters (TinyLlama-like shape, Mistral architecture), vocabulary padded to 32000.
ONE_B = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
             num_key_value_heads=4, head_dim=64, vocab_size=32000)
# ~13M parameters: wide enough that the linear layers, not attention, dominate as in real models.
SMALL = dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=8,
             num_key_value_heads=4, head_dim=64)
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}  # dense

_WORDS = ("feel", "anxious", "work", "sleep", "friend", "worry", "tired", "family", "talk", "today", "maybe",
          "breath", "notice", "support", "small", "step", "week", "again", "calm", "hard", "thank", "you", "and",
          "the", "a", "to", "it", "that", "when", "what", "how", "I", "my", "me", "we", "can", "would", "help")


def bench_records(n: int, seed: int = 0, max_turns: int = 12) -> list[dict]:
    """Seeded conversations whose lengths vary the way therapy sessions do (1 to ``max_turns`` exchanges)."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 24))).capitalize() + "."

    rows = []
    for _ in range(n):
        msgs = [{"role": "system", "content": "You are a supportive counselor."}]
        for _ in range(min(max_turns, 1 + int(rng.expovariate(1 / 3)))):
            msgs.append({"role": "user", "content": " ".join(sentence() for _ in range(rng.randint(1, 3)))})
            msgs.append({"role": "assistant", "content": " ".join(sentence() for _ in range(rng.randint(1, 4)))})
        rows.append({"messages": msgs})
    return rows


def one_b_config_params() -> int:
    """Parameter count of the 1B shape, built on the meta device (nothing allocated)."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    with torch.device("meta"):
        model = MistralForCausalLM(MistralConfig(**ONE_B, max_position_embeddings=4096, sliding_window=None))
    return sum(p.numel() for p in model.parameters())


def flops_per_token(params: int, trainable: int, layers: int, hidden: int, seq_len: float) -> float:
    """Training FLOPs per real token with LoRA: forward 2N, backward through the frozen weights 2N,
    weight gradients only for the adapter 2N_trainable, plus attention (scores and values)
    12 * layers * hidden * sequence length for forward and backward (the PaLM appendix-B count)."""
    return 4 * params + 2 * trainable + 12 * layers * hidden * seq_len


def _padding_stats(trainer) -> tuple[int, int]:
    """(pad positions, all positions) over one pass of the trainer's own training dataloader."""
    pad_id = trainer.processing_class.pad_token_id
    pads = total = 0
    for batch in trainer.get_train_dataloader():
        ids = batch["input_ids"]
        total += ids.numel()
        if "attention_mask" in batch:
            pads += int((batch["attention_mask"] == 0).sum())
        elif "position_ids" not in batch:
            pads += int((ids == pad_id).sum())
    return pads, total


class _Clock:
    """TrainerCallback: time and non-padding tokens after the first (warm-up) step and at the end."""

    def __new__(cls):
        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            marks: list[tuple[float, int]] = []

            def on_step_end(self, args, state, control, **kwargs):
                _sync()
                self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

        clock = Clock()
        clock.marks = []
        return clock


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _run(trainer) -> dict[str, Any]:
    """Train one epoch; throughput from the end of step 1 to the end (the first step warms up)."""
    pads, total = _padding_stats(trainer)
    clock = _Clock()
    trainer.add_callback(clock)
    started = time.perf_counter()
    trainer.train()
    _sync()
    seconds = time.perf_counter() - started
    real = total - pads
    if len(clock.marks) >= 2:
        (t0, n0), (t1, n1) = clock.marks[0], clock.marks[-1]
        timed_tokens, timed_seconds = n1 - n0, t1 - t0
    else:
        timed_tokens, timed_seconds = real, seconds
    return {"seconds": round(seconds, 3), "real_tokens": real, "computed_tokens": total, "pad_tokens": pads,
            "padding_fraction": round(pads / total, 4) if total else 0.0, "steps": trainer.state.global_step,
            "timed_steps": max(len(clock.marks) - 1, 1), "tokens_per_s": round(timed_tokens / timed_seconds, 1)}


def _model(tokenizer, model_size: str, plan, max_length: int):
    import torch

    with torch.device(plan.device):  # initialised where it trains (a 1B fp32 copy on the host is slow)
        if model_size == "1b":
            model = build_tiny_model(tokenizer, max_position_embeddings=max(4096, max_length),
                                     **{**ONE_B, "vocab_size": max(ONE_B["vocab_size"], len(tokenizer))})
        else:
            sizes = SMALL if model_size == "small" else {}
            model = build_tiny_model(tokenizer, max_position_embeddings=max(8192, max_length), **sizes)
    if plan.device != "cpu":
        model.set_attn_implementation(plan.attn_implementation)
    return model.to(dtype=plan.dtype, device=plan.device)


def bench_train(*, records: int | None = None, batch_size: int = 8, max_length: int = 2048, model_size: str = "tiny",
                seed: int = 0, max_turns: int = 12, force_cpu: bool = False, peak_tflops: float | None = None,
                log=lambda m: None) -> dict[str, Any]:
    """Both paths on the same records and the same freshly built model (same seed); a dict of figures."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    plan = device_plan(force_cpu=force_cpu)
    records = records or (4096 if model_size == "1b" else 256)
    if model_size == "1b" and plan.device == "cpu":
        raise ValueError("--model-size 1b needs a CUDA GPU (none found); run the tiny model on CPU")
    rows = bench_records(records, seed=seed, max_turns=max_turns)
    texts = [m["content"] for r in rows for m in r["messages"]]
    tokenizer = build_tokenizer(texts, vocab_size=2048)
    lengths = [len(tokenizer(tokenizer.apply_chat_template(r["messages"], tokenize=False),
                             add_special_tokens=False)["input_ids"]) for r in rows]
    if max(lengths) > max_length:
        raise ValueError(f"a benchmark record is {max(lengths)} tokens, over max_length {max_length}")
    config = SFTStageConfig(stage="bench", max_length=max_length, per_device_batch_size=batch_size,
                            learning_rate=2e-4, packing=True, device=plan, seed=seed)
    gradient_checkpointing = plan.device != "cpu"
    out: dict[str, Any] = {"device": plan.device, "dtype": plan.dtype_name, "model_size": model_size,
                           "records": records, "batch_size": batch_size, "max_length": max_length,
                           "mean_record_tokens": round(sum(lengths) / len(lengths), 1),
                           "gradient_checkpointing": gradient_checkpointing}
    if plan.device == "cuda":
        out["gpu"] = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory(prefix="pixel-bench-") as tmp:
        log("baseline: TRL SFTTrainer defaults (padded batches, loss on every token)")
        model = _model(tokenizer, model_size, plan, max_length)
        out["parameters"] = sum(p.numel() for p in model.parameters())
        baseline_args = SFTConfig(output_dir=str(Path(tmp) / "baseline"), per_device_train_batch_size=batch_size,
                                  num_train_epochs=1, learning_rate=2e-4, seed=seed, report_to="none",
                                  save_strategy="no", disable_tqdm=True, logging_steps=10_000,
                                  max_length=max_length, gradient_checkpointing=gradient_checkpointing,
                                  include_num_input_tokens_seen="non_padding",
                                  **plan.trainer_kwargs())
        baseline = SFTTrainer(model=model, args=baseline_args, processing_class=tokenizer,
                              peft_config=lora_config(), train_dataset=Dataset.from_list(rows))
        baseline.remove_callback(PrinterCallback)
        out["baseline"] = _run(baseline)
        del baseline, model
        log("project: packing (bfd), padding-free, assistant-only loss")
        model = _model(tokenizer, model_size, plan, max_length)
        project = build_trainer(base=None, parent_adapter=None, tokenizer=tokenizer, train_rows=rows, val_rows=None,
                                out_dir=Path(tmp) / "project", config=config, model=model, evaluate=False,
                                logging_steps=10_000, gradient_checkpointing=gradient_checkpointing)
        out["project"] = _run(project)
        trainable = sum(p.numel() for p in project.model.parameters() if p.requires_grad)
    out["ratio"] = round(out["project"]["tokens_per_s"] / out["baseline"]["tokens_per_s"], 3)
    if plan.device == "cuda":
        peak = peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in out["gpu"]), None)
        out["peak_tflops"] = peak
        out["flops_per_token"] = flops_per_token(out["parameters"], trainable, model.config.num_hidden_layers,
                                                 model.config.hidden_size, out["mean_record_tokens"])
        for path in ("baseline", "project"):
            achieved = out[path]["tokens_per_s"] * out["flops_per_token"]
            out[path]["tflops"] = round(achieved / 1e12, 2)
            out[path]["mfu"] = round(achieved / (peak * 1e12), 4) if peak else None
    return out
