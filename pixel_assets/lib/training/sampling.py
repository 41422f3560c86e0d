"""Seeded decoding from a checkpoint: rejected responses for preference pairs, probe answers.

Prompts are decoded in length-sorted, left-padded batches of ``batch_size`` (one prompt at a time
keeps a 12B GPU at batch size 1 for hours). Each batch is seeded from the configured seed and its
prompts' text, so a run is reproducible; greedy decoding (temperature 0) gives the same text
whatever the batch size, sampled decoding the same text for the same prompts and batch size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

Messages = list[dict[str, str]]
# A sampler answers each prompt (a list of chat messages) with `num_samples` texts.
Sampler = Callable[[Sequence[Messages]], list[list[str]]]


class SamplingConfigError(ValueError):
    """Unusable sampling settings; the message names the field."""


@dataclass
class SamplingConfig:
    temperature: float = 0.8  # 0 = greedy
    top_p: float = 0.95
    top_k: int = 0  # 0 = off
    max_new_tokens: int = 256
    num_samples: int = 1  # answers per prompt
    seed: int = 0
    batch_size: int = 16  # prompts decoded together (length-sorted, left-padded)

    def validate(self, where: str = "sampling") -> None:
        checks = [
            ("temperature", isinstance(self.temperature, (int, float)) and self.temperature >= 0, "a number >= 0"),
            ("top_p", isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("top_k", _is_int(self.top_k) and self.top_k >= 0, "an integer >= 0"),
            ("max_new_tokens", _is_int(self.max_new_tokens) and self.max_new_tokens > 0, "an integer > 0"),
            ("num_samples", _is_int(self.num_samples) and self.num_samples > 0, "an integer > 0"),
            ("seed", _is_int(self.seed), "an integer"),
            ("batch_size", _is_int(self.batch_size) and self.batch_size > 0, "an integer > 0"),
        ]
        for name, ok, wanted in checks:
            if not ok:
                raise SamplingConfigError(f"{where}.{name} must be {wanted}, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None, where: str = "sampling") -> "SamplingConfig":
        raw = dict(raw or {})
        unknown = sorted(set(raw) - set(cls.__dataclass_fields__))
        if unknown:
            raise SamplingConfigError(f"{where}: unknown setting(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}")
        config = cls(**raw)
        config.validate(where)
        return config

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def prompt_seed(seed: int, prompt: Any) -> int:
    digest = hashlib.sha256(json.dumps([seed, prompt], sort_keys=True, ensure_ascii=False).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def stop_token_ids(tokenizer) -> list[int]:
    """EOS plus the chat template's end-of-turn token, when the tokenizer has one."""
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>"):
        tid = tokenizer.convert_tokens_to_ids(token)
        if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid not in ids:
            ids.append(tid)
    return ids


def prompt_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Prompt indices in batches of ``batch_size``, sorted by length (little padding per batch)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def generate_replies(model, tokenizer, prompts: Sequence[Messages], sampling: SamplingConfig) -> list[list[str]]:
    """`sampling.num_samples` decoded assistant replies per prompt, in the prompts' order (seeded,
    `sampling.batch_size` prompts per left-padded batch)."""
    import torch

    sampling.validate()
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stops = stop_token_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stops[0] if stops else 0)
    greedy = sampling.temperature == 0
    kwargs: dict[str, Any] = dict(max_new_tokens=sampling.max_new_tokens, do_sample=not greedy,
                                  num_return_sequences=sampling.num_samples, eos_token_id=stops or None,
                                  pad_token_id=pad)
    if not greedy:
        kwargs.update(temperature=float(sampling.temperature), top_p=float(sampling.top_p), top_k=int(sampling.top_k))
    encoded = [list(tokenizer.apply_chat_template(list(p), add_generation_prompt=True, tokenize=True,
                                                  return_dict=True)["input_ids"]) for p in prompts]
    out: list[list[str]] = [[] for _ in prompts]
    devices = [device] if device.type == "cuda" else []
    try:
        for batch in prompt_batches([len(e) for e in encoded], sampling.batch_size):
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.tensor([[pad] * (width - len(encoded[i])) + encoded[i] for i in batch], device=device)
            attention = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in batch],
                                     device=device)
            with torch.random.fork_rng(devices=devices), torch.no_grad():
                torch.manual_seed(prompt_seed(sampling.seed, [list(prompts[i]) for i in batch]))
                seqs = model.generate(input_ids=input_ids, attention_mask=attention, **kwargs)
            texts = [tokenizer.decode(s[width:], skip_special_tokens=True).strip() for s in seqs]
            for row, i in enumerate(batch):
                out[i] = texts[row * sampling.num_samples:(row + 1) * sampling.num_samples]
    finally:
        model.train(was_training)
    return out


def checkpoint_sampler(model, tokenizer, sampling: SamplingConfig) -> Sampler:
    """A Sampler over a loaded checkpoint (e.g. the stage-7 adapter on its base)."""
    return lambda prompts: generate_replies(model, tokenizer, prompts, sampling)
