"""Tiny offline stage data and base model for the trainer tests (seconds on a CPU)."""

from __future__ import annotations

import json
import random
from pathlib import Path

SYSTEM = "You are a supportive counselor."
USER_LINES = ["I feel anxious before work.", "I cannot sleep at night.", "My friend stopped calling me.",
              "I keep worrying about exams.", "I am tired all the time.", "I argued with my sister."]
ASSISTANT_LINES = ["That sounds hard. What helps you feel calmer?", "Thank you for sharing. When did it start?",
                   "It makes sense to feel that way. Tell me more.", "Let us try a slow breath together.",
                   "You are not alone in this. What would support look like?"]


def conversations(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        msgs = [{"role": "system", "content": SYSTEM}]
        for _ in range(rng.randint(1, 3)):
            msgs.append({"role": "user", "content": rng.choice(USER_LINES)})
            msgs.append({"role": "assistant", "content": rng.choice(ASSISTANT_LINES)})
        out.append({"messages": msgs, "metadata": {"content_hash": f"{i:064x}", "source_family": "demo"}})
    return out


def texts(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [{"text": " ".join(rng.choice(USER_LINES + ASSISTANT_LINES) for _ in range(rng.randint(2, 6))),
             "metadata": {"source_family": "demo", "content_hashes": [f"{i:064x}"]}} for i in range(n)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_base(out_dir: Path) -> Path:
    from pixel_assets.lib.training.models import build_tiny_base

    corpus = [SYSTEM, *USER_LINES, *ASSISTANT_LINES] * 4
    return build_tiny_base(corpus, out_dir, vocab_size=320, max_position_embeddings=512)


def stage_files(root: Path, kind: str = "sft", n_train: int = 24, n_val: int = 6) -> tuple[Path, Path]:
    make = conversations if kind == "sft" else texts
    return (write_jsonl(root / "train.jsonl", make(n_train, seed=1)),
            write_jsonl(root / "val.jsonl", make(n_val, seed=2)))


def resume_config(stage: str = "stage1_foundation"):
    from pixel_assets.lib.training.models import device_plan
    from pixel_assets.lib.training.sft import SFTStageConfig

    return SFTStageConfig(stage=stage, max_length=256, per_device_batch_size=4, max_steps=10, eval_steps=2,
                          learning_rate=1e-3, early_stopping_patience=100, device=device_plan(force_cpu=True))


def slow_callback(seconds: float):
    """Sleeps after every step, so a test can kill the run between saved steps."""
    import time

    from transformers import TrainerCallback

    class Slow(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            time.sleep(seconds)

    return Slow()


def main(argv: list[str]) -> None:
    """`python -m pixel_assets_tests.sft_fixtures BASE TRAIN VAL OUT SLEEP_S`: one resumable stage run."""
    from pixel_assets.lib.training.models import load_tokenizer
    from pixel_assets.lib.training.sft import train_sft_stage

    base, train, val, out, sleep_s = argv
    result = train_sft_stage(base=base, parent_adapter=None, tokenizer=load_tokenizer(base), train_path=train,
                             val_path=val, out_dir=out, config=resume_config(),
                             callbacks=[slow_callback(float(sleep_s))], log=lambda m: print(m, flush=True))
    print(json.dumps(result.as_metadata()), flush=True)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
