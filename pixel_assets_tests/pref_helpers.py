"""Tiny offline models and records for the preference / evaluation tests."""

from __future__ import annotations

import random
from pathlib import Path

from pixel_assets.lib import contract

WORDS = ("i feel anxious about work and sleep badly . that sounds hard , tell me more about when it started . "
         "my friend ignores me and i am angry . what would help you feel safe right now ? "
         "we talked last week about your mother . i want to play a scene where you are my boss . "
         "oh great , another monday , just what i needed . it makes sense to feel that way .").split()


def sentence(rng: random.Random, n: int = 8) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def record(family: str, split: str, rng: random.Random, *, holdout: str = "none", turns: int = 1,
           rejected: str | None = None, system: bool = False) -> dict:
    messages = [{"role": "system", "content": "you are a careful counsellor ."}] if system else []
    for _ in range(turns):
        messages += [{"role": "user", "content": sentence(rng)}, {"role": "assistant", "content": sentence(rng, 10)}]
    meta = {"source_family": family, "split": split, "holdout": holdout,
            "content_hash": contract.content_hash(messages)}
    if rejected is not None:
        meta["rejected_response"] = rejected
    return {"messages": messages, "metadata": meta}


def records(family: str, split: str, n: int, seed: int = 0, **kw) -> list[dict]:
    rng = random.Random(f"{family}|{split}|{seed}")
    out = []
    for _ in range(n):
        rej = sentence(rng, 9) if family == "dpo_preference" else None
        out.append(record(family, split, rng, rejected=rej, **kw))
    return out


def build_base(out_dir: Path, initializer_range: float = 0.02) -> Path:
    """The tiny base (models.py) on this vocabulary. A larger ``initializer_range`` gives the random
    model sharp (confidently wrong) logits, so an adapter can move its loss a lot either way."""
    from pixel_assets.lib.training.models import build_tiny_model, build_tokenizer

    rng = random.Random(0)
    tokenizer = build_tokenizer([sentence(rng, 30) for _ in range(200)], vocab_size=300)
    model = build_tiny_model(tokenizer, max_position_embeddings=512, initializer_range=initializer_range)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return Path(out_dir)


def build_adapter(base_dir: Path, out_dir: Path, *, seed: int = 1, scale: float = 0.5) -> Path:
    """A stage-7 stand-in: a LoRA adapter with random (non-zero) B matrices, so it changes the model."""
    import torch
    from peft import get_peft_model

    from pixel_assets.lib.training.models import load_base_model, load_tokenizer, lora_config

    model = get_peft_model(load_base_model(base_dir), lora_config())
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * scale)
    model.save_pretrained(str(out_dir))
    load_tokenizer(base_dir).save_pretrained(str(out_dir))
    return out_dir


def train_adapter(base_dir: Path, adapter_in: Path, out_dir: Path, recs: list[dict], *, steps: int = 30,
                  lr: float = 5e-2) -> Path:
    """A few plain AdamW steps (batch 1, every token) on an adapter over ``recs``."""
    import torch
    from peft import PeftModel

    from pixel_assets.lib.training.models import load_base_model, load_tokenizer

    tok = load_tokenizer(base_dir)
    model = PeftModel.from_pretrained(load_base_model(base_dir), str(adapter_in), is_trainable=True)
    seqs = [torch.tensor(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
            for r in recs]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for step in range(steps):
        ids = seqs[step % len(seqs)][None]
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(str(out_dir))
    return out_dir


def degenerate_records(n: int, word: str = "ok") -> list[dict]:
    """Conversations that repeat one word: training on them makes a model forget everything else."""
    msgs = [{"role": "user", "content": " ".join([word] * 12)}, {"role": "assistant", "content": " ".join([word] * 12)}]
    return [{"messages": msgs, "metadata": {"source_family": "noise", "split": "train"}} for _ in range(n)]
