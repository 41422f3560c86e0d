"""The GPU rehearsal (scripts/gpu-rehearsal.sh): production settings at production vocabulary on a
~1B Mistral-shaped model built locally (no download), one run of every heavy path the 12B chain takes:

1. train a packed stage (stage 5's settings: BFD packing, 8,192 tokens, bf16, gradient checkpointing,
   flash attention or SDPA) through train_sft_stage;
2. score 8,192-token blocks through evaluate_records (fused LM head);
3. sample 64 rejected responses through generate_replies (batched);

and print tokens/s, MFU, and the measured peak GPU memory next to memory.plan_memory's estimate.
``--tiny`` runs the same code on a tiny shape on the CPU (a smoke test); ``--dry-run`` prints the
plan without building a model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

PRODUCTION_VOCAB = 131_072
# ~1.3B parameters, Mistral-Nemo's head layout and vocabulary on a narrower, shallower body.
ONE_B = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16, num_attention_heads=16,
             num_key_value_heads=8, head_dim=128, vocab_size=PRODUCTION_VOCAB)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, vocab_size=4096)


def settings(tiny: bool) -> dict:
    return dict(shape=TINY if tiny else ONE_B, context=512 if tiny else 8192, batch=1 if tiny else 2,
                steps=2 if tiny else 30, records=48 if tiny else 2048, samples=4 if tiny else 64,
                new_tokens=8 if tiny else 128, score_blocks=2 if tiny else 8)


def _base(out: Path, shape: dict, context: int, texts: list[str]) -> Path:
    from pixel_assets.lib.training.models import build_tiny_model, build_tokenizer

    tokenizer = build_tokenizer(texts, vocab_size=min(2000, shape["vocab_size"]))
    model = build_tiny_model(tokenizer, max_position_embeddings=context, **shape)  # vocab rows > tokenizer: unused
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def run(tiny: bool, dry_run: bool, out: Path | None = None) -> dict:
    import torch
    from transformers import MistralConfig

    from pixel_assets.lib.training.bench import PEAK_BF16_TFLOPS, bench_records, flops_per_token
    from pixel_assets.lib.training.memory import model_shape, plan_memory

    cfg = settings(tiny)
    work = out or Path(tempfile.mkdtemp(prefix="pixel-rehearsal-"))
    work.mkdir(parents=True, exist_ok=True)
    MistralConfig(**cfg["shape"], max_position_embeddings=cfg["context"]).save_pretrained(work / "shape")
    shape = model_shape(work / "shape" / "config.json")
    estimate = plan_memory(shape, batch=cfg["batch"], context=cfg["context"])
    report: dict = {"parameters": shape.parameters, "context": cfg["context"], "batch": cfg["batch"],
                    "plan_peak_gib": round(estimate.peak / 2**30, 2), "plan": estimate.as_dict()}
    if dry_run:
        return report

    from pixel_assets.lib.training.evaluation import evaluate_records
    from pixel_assets.lib.training.models import device_plan, load_base_model, load_tokenizer
    from pixel_assets.lib.training.sampling import SamplingConfig, generate_replies
    from pixel_assets.lib.training.sft import SFTStageConfig, sequence_length, train_sft_stage

    records = bench_records(cfg["records"], max_turns=12)
    base = _base(work / "base", cfg["shape"], cfg["context"], [m["content"] for r in records for m in r["messages"]])
    tokenizer = load_tokenizer(base)
    fitting = [r for r in records if sequence_length(r, tokenizer) <= cfg["context"]]  # as the stage data does
    data = work / "data"
    data.mkdir(exist_ok=True)
    split = len(fitting) - max(4, len(fitting) // 50)
    for name, rows in (("train", fitting[:split]), ("val", fitting[split:])):
        (data / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    plan = device_plan()
    gpu = plan.device == "cuda"
    if gpu:
        torch.cuda.reset_peak_memory_stats()
    config = SFTStageConfig(stage="stage5_long_running", packing=True, max_length=cfg["context"],
                            per_device_batch_size=cfg["batch"], gradient_accumulation_steps=1, max_steps=cfg["steps"],
                            eval_steps=cfg["steps"], learning_rate=1e-4, device=plan)
    result = train_sft_stage(base=base, parent_adapter=None, tokenizer=tokenizer, train_path=data / "train.jsonl",
                             val_path=data / "val.jsonl", out_dir=work / "stage", config=config,
                             log=lambda m: print(m, file=sys.stderr))
    report["train_tokens_per_s"] = result.tokens_per_s
    report["train_steps"] = result.steps
    trainable = shape.lora_parameters
    per_token = flops_per_token(shape.parameters, trainable, shape.num_layers, shape.hidden_size, cfg["context"] / 2)
    name = torch.cuda.get_device_name() if gpu else "cpu"
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    report["device"] = name
    report["mfu"] = round(result.tokens_per_s * per_token / (peak * 1e12), 4) if peak else None

    from peft import PeftModel

    model = PeftModel.from_pretrained(load_base_model(base, plan), str(work / "stage"))
    long_text = " ".join(m["content"] for r in records for m in r["messages"])
    blocks = [{"text": long_text[i * 50_000:(i + 1) * 50_000]} for i in range(cfg["score_blocks"])]
    started = time.perf_counter()
    scored = evaluate_records(model, tokenizer, blocks, max_length=cfg["context"])
    report["scoring"] = {"blocks": scored["records"], "tokens": scored["tokens"],
                         "tokens_per_s": round(scored["tokens"] / (time.perf_counter() - started), 1)}
    prompts = [r["messages"][1:2] for r in records[: cfg["samples"]]]
    started = time.perf_counter()
    replies = generate_replies(model, tokenizer, prompts,
                               SamplingConfig(temperature=0.8, max_new_tokens=cfg["new_tokens"], batch_size=32))
    report["sampling"] = {"responses": sum(len(r) for r in replies), "seconds": round(time.perf_counter() - started, 2)}
    if gpu:
        report["measured_peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny shape on whatever device (smoke test)")
    parser.add_argument("--dry-run", action="store_true", help="print the shape and memory plan only")
    parser.add_argument("--out", type=Path, default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args(argv)
    report = run(args.tiny, args.dry_run, args.out)
    print(json.dumps(report))
    print(f"rehearsal: {report['parameters'] / 1e9:.2f}B parameters, context {report['context']}, batch {report['batch']}; "
          f"plan peak {report['plan_peak_gib']} GiB" +
          (f"; measured peak {report['measured_peak_gib']} GiB" if "measured_peak_gib" in report else "") +
          (f"; train {report['train_tokens_per_s']} tokens/s, MFU {report['mfu']}" if "train_tokens_per_s" in report else "") +
          (f"; scored {report['scoring']['tokens']} tokens, sampled {report['sampling']['responses']} responses"
           if "scoring" in report else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
