"""Small synthetic compiled records and a tiny tokenizer for the training tests (no files, no downloads)."""

from __future__ import annotations

import random
from functools import lru_cache

from pixel_assets.lib.contract import content_hash

WORDS = ("calm breathe notice feeling today anxious sleep work family friend talk plan small step "
         "help listen safe hope tired worry okay maybe together week morning night").split()
SYSTEM = "You are a supportive counselor. Keep the client safe."


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def record(family: str, split: str = "train", *, turns: int = 2, words: int = 8, seed: int = 0,
           system: bool = True, text: str | None = None) -> dict:
    """A compiled record: `turns` user/assistant exchanges of `words` words each (or one assistant
    message holding `text`, a transcript)."""
    rng = random.Random(f"{family}:{split}:{seed}:{turns}:{words}")
    if text is not None:
        messages = [{"role": "assistant", "content": text}]
    else:
        messages = [{"role": "system", "content": SYSTEM}] if system else []
        for t in range(turns):
            messages.append({"role": "user", "content": f"[{seed}.{t}] " + sentence(rng, words)})
            messages.append({"role": "assistant", "content": sentence(rng, words)})
    return {"messages": messages, "metadata": {
        "source_family": family, "split": split, "content_hash": content_hash(messages),
        "source_key": f"file:///demo/{family}.jsonl", "pii_status": "none_detected", "license_tag": "test",
        "phase": "test", "conversation_length": len(messages), "total_tokens": words * turns * 2}}


def records(family: str, n: int, split: str = "train", **kw) -> list[dict]:
    return [record(family, split, seed=i, **kw) for i in range(n)]


@lru_cache(maxsize=1)
def tiny_tokenizer():
    from pixel_assets.lib.training.models import build_tokenizer

    rng = random.Random(0)
    texts = [SYSTEM] + [" ".join(sentence(rng, 12) for _ in range(5)) for _ in range(200)]
    return build_tokenizer(texts, vocab_size=320)
