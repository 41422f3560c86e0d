"""`pixel bench sample`: rejected-response sampling one prompt at a time against length-sorted,
left-padded batches, on the same tiny model and prompts, in one process (greedy, so both paths
decode the same tokens; the texts are compared)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pixel_assets.lib.training.bench import bench_records
from pixel_assets.lib.training.models import build_tiny_base, load_base_model, load_tokenizer
from pixel_assets.lib.training.sampling import SamplingConfig, generate_replies


def bench_sample(prompts: int = 64, batch_size: int = 16, max_new_tokens: int = 64, seed: int = 0) -> dict[str, Any]:
    """{one_at_a_time_s, batched_s, ratio, same_text, ...} for ``prompts`` prompts."""
    import torch

    records = bench_records(prompts, seed=seed, max_turns=4)
    asks = [r["messages"][:-1] for r in records]
    with tempfile.TemporaryDirectory() as tmp:
        base = build_tiny_base([m["content"] for r in records for m in r["messages"]], Path(tmp) / "base")
        model, tokenizer = load_base_model(base), load_tokenizer(base)
    timings, texts = {}, {}
    for name, size in (("one_at_a_time", 1), ("batched", batch_size)):
        config = SamplingConfig(temperature=0, max_new_tokens=max_new_tokens, batch_size=size, seed=seed)
        started = time.perf_counter()
        texts[name] = generate_replies(model, tokenizer, asks, config)
        timings[name] = time.perf_counter() - started
    return {"prompts": prompts, "batch_size": batch_size, "max_new_tokens": max_new_tokens,
            "threads": torch.get_num_threads(), "one_at_a_time_s": round(timings["one_at_a_time"], 3),
            "batched_s": round(timings["batched"], 3), "ratio": round(timings["one_at_a_time"] / timings["batched"], 2),
            "same_text": texts["one_at_a_time"] == texts["batched"]}
