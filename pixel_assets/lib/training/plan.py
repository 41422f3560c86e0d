"""The training plan `pixel curriculum` prints: per stage its families and target weights, the train
conversations and tokens available, epochs, learning rate, context, the steps it will take and an
H100-hours estimate at the curriculum's stated tokens/s (with that figure's source).

With a tokenizer (the base model's), the figures come from the real stage data
(`build_stage_data`: the mix, over-length handling, blocks or packing) and tokens are counted with
the chat template. Without one, they are estimates: record counts from the mix and tokens from the
records' `metadata.total_tokens`; the plan says which it used.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any

from pixel_assets.lib.training.curriculum import Curriculum, StageConfig
from pixel_assets.lib.training.mixing import mix
# Re-exported: `pixel curriculum` and the training defs read the published splits through the plan.
from pixel_assets.lib.training.published import PUBLISHED_PREFIX, read_published_records, read_published_split  # noqa: F401


def _meta(r: dict) -> dict:
    return r.get("metadata") or {}


def _available(stage: StageConfig, train: list[dict], tokenizer) -> dict[str, dict[str, int]]:
    from pixel_assets.lib.training.packing import template_ids

    out = {f: {"conversations": 0, "tokens": 0} for f in stage.families}
    mine = [r for r in train if _meta(r).get("source_family") in out and _meta(r).get("split") == "train"]
    if tokenizer is not None:
        lengths = [len(ids) for ids in template_ids(tokenizer, [r["messages"] for r in mine])]
    else:
        lengths = [int(_meta(r).get("total_tokens") or 0) for r in mine]
    for r, n in zip(mine, lengths, strict=True):
        fam = out[_meta(r)["source_family"]]
        fam["conversations"] += 1
        fam["tokens"] += n
    return out


def _estimate(stage: StageConfig, train: list[dict], tokenizer=None) -> dict[str, Any]:
    """The record mix alone (no stage data built): the preference stage, or any stage without a
    tokenizer (tokens then from metadata.total_tokens)."""
    from pixel_assets.lib.training.packing import template_ids

    mine = [r for r in train if _meta(r).get("source_family") in stage.families and _meta(r).get("split") == "train"]
    fams = [_meta(r)["source_family"] for r in mine]
    if tokenizer is not None:
        tokens = [len(ids) for ids in template_ids(tokenizer, [r["messages"] for r in mine])]
    else:
        tokens = [int(_meta(r).get("total_tokens") or 0) for r in mine]
    sizes = tokens if stage.mix_unit == "tokens" else [1] * len(mine)
    m = mix(fams, sizes, stage.families, seed=stage.seed, oversample=stage.oversample,
            max_records=stage.max_train_records, label=stage.name)
    train_tokens = sum(tokens[i] for i in m.selected)
    if stage.kind == "pretrain" or stage.packing:
        examples = math.ceil(train_tokens / stage.max_length)
    else:
        examples = len(m.selected)
    by_family = Counter(fams[i] for i in m.selected)
    return {"train_records": len(m.selected), "train_tokens": train_tokens, "examples": examples,
            "achieved_weights": {f: m.families[f]["achieved_weight"] for f in stage.families},
            "selected": dict(by_family)}


def stage_plan(stage: StageConfig, curriculum: Curriculum, train: list[dict] | None, val: list[dict] | None,
               tokenizer) -> dict[str, Any]:
    row: dict[str, Any] = {
        "stage": stage.name, "kind": stage.kind, "enabled": stage.enabled, "from": stage.from_stage,
        "families": dict(stage.families), "epochs": stage.epochs, "learning_rate": stage.learning_rate,
        "max_length": stage.max_length, "effective_batch_size": stage.effective_batch_size,
        "max_steps": stage.max_steps, "packing": stage.packing, "long_conversations": stage.long_conversations,
        "config_hash": stage.config_hash(),
    }
    if stage.kind == "preference":
        row.update(algorithm=stage.algorithm, beta=stage.beta, source_weights=dict(stage.source_weights))
    if train is None:
        return row
    row["available"] = _available(stage, train, tokenizer)
    if tokenizer is not None and stage.kind != "preference":
        from pixel_assets.lib.training.stage_data import build_stage_data

        stats = build_stage_data(stage, train, val or [], tokenizer).stats
        mixed = {"train_records": stats["train_records"], "train_tokens": stats["train_tokens"],
                 "examples": stats["examples"], "overlength": stats["overlength"],
                 "achieved_weights": {f: v["achieved_weight"] for f, v in stats["families"].items()}}
    else:
        mixed = _estimate(stage, train, tokenizer)
    steps = stage.steps_for(mixed["examples"])
    uncapped = dataclasses.replace(stage, max_steps=None).steps_for(mixed["examples"])
    trained_tokens = mixed["train_tokens"] * stage.epochs * (steps / uncapped) if uncapped else 0
    row.update(mixed)
    row["steps"] = steps
    row["tokens_trained"] = int(trained_tokens)
    row["h100_hours"] = round(trained_tokens / curriculum.tokens_per_second_h100 / 3600, 4)
    return row


def curriculum_plan(curriculum: Curriculum, records: dict[str, list[dict]] | None, tokenizer=None,
                    *, dataset: str | None = None, tokenizer_name: str | None = None) -> dict[str, Any]:
    train = records.get("train") if records else None
    val = records.get("val") if records else None
    stages = [stage_plan(s, curriculum, train if s.enabled else None, val, tokenizer) for s in curriculum.all_stages]
    enabled = [r for r in stages if r["enabled"] and "h100_hours" in r]
    return {
        "curriculum": curriculum.path, "profile": curriculum.profile,
        "base_model": curriculum.base_model, "model_max_length": curriculum.model_max_length,
        "checkpoint_store": curriculum.checkpoint_store,
        "tokens_per_second_h100": curriculum.tokens_per_second_h100,
        "tokens_per_second_source": curriculum.throughput_source,
        "dataset": dataset,
        "token_count": ("tokenizer + chat template: " + tokenizer_name) if tokenizer is not None and records else
        ("metadata.total_tokens (approximate; no tokenizer)" if records else None),
        "stages": stages,
        "total_steps": sum(r["steps"] for r in enabled) if records else None,
        "total_h100_hours": round(sum(r["h100_hours"] for r in enabled), 4) if records else None,
    }
