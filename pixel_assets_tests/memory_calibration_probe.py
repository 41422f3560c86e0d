"""Run in a subprocess by test_training_memory: train a CPU rehearsal model (Mistral architecture,
production vocabulary, a narrow body) for a few steps through the project's SFT trainer with
gradient checkpointing, fp32, and print the measured peak resident memory over the process's
baseline next to memory.plan_memory's training-step estimate for the same shape (no evaluation pass runs). One JSON line."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

SHAPE = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, head_dim=64, vocab_size=131_072)
BATCH, CONTEXT = 2, 512


def main() -> None:
    import torch
    from datasets import Dataset
    from transformers import MistralConfig, MistralForCausalLM
    from trl import SFTConfig, SFTTrainer

    from pixel_assets.lib.process_memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
    from pixel_assets.lib.training.memory import model_shape, plan_memory
    from pixel_assets.lib.training.models import build_tokenizer, lora_config

    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp())
    config = MistralConfig(**SHAPE, max_position_embeddings=CONTEXT, tie_word_embeddings=False)
    config.save_pretrained(tmp)
    shape = model_shape(tmp / "config.json")
    estimate = plan_memory(shape, batch=BATCH, context=CONTEXT, dtype_bytes=4, overhead=0)
    rows = [{"input_ids": torch.randint(5, SHAPE["vocab_size"], (CONTEXT,)).tolist()} for _ in range(BATCH * 3)]
    baseline = current_rss_bytes()  # not ru_maxrss: it carries the (large) parent's peak across fork+exec
    reset_peak_rss()
    model = MistralForCausalLM(config)
    args = SFTConfig(output_dir=str(tmp / "out"), per_device_train_batch_size=BATCH, max_steps=2, use_cpu=True,
                     bf16=False, gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False},
                     max_length=CONTEXT, report_to="none", save_strategy="no", disable_tqdm=True,
                     dataloader_num_workers=0, logging_steps=100)
    tokenizer = build_tokenizer(["a few words to train on"], vocab_size=300)
    trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(rows), peft_config=lora_config())
    trainer.train()
    peak = peak_rss_bytes() - baseline
    print(json.dumps({"measured_peak_gib": round(peak / 2**30, 3),
                      "estimate_gib": round(estimate.training_step / 2**30, 3),
                      "ratio": round(peak / estimate.training_step, 3),
                      "components_gib": {k: round(v / 2**30, 3) for k, v in estimate.__dict__.items()}}))


if __name__ == "__main__":
    sys.exit(main())
