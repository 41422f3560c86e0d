"""Stage C data: preference pairs (TRL's conversational format) and KTO's unpaired rows.

Sources (SPEC §7): `dpo_preference` records as they are (prompt = the turns before the chosen
reply, chosen = the last assistant turn, rejected = metadata.rejected_response); `roleplay`
(roleplay_simulator) and `edge_case` (the stage-3 edge families) records, whose chosen response is
the reference (the record's last assistant turn) and whose rejected response is sampled from the
stage-7 checkpoint (`rejected_source: none` turns those off). The mix meets the source weights by
down-sampling; pairs whose rejected text is empty or equals the chosen one are dropped and counted.
Only records of the split asked for are used (train for train.jsonl, val for val.jsonl).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pixel_assets.lib.training.content_guard import refuse_test_content
from pixel_assets.lib.training.preference_config import SAMPLED_SOURCES, SOURCE_FAMILIES, PreferenceConfig
from pixel_assets.lib.training.sampling import Messages, Sampler

STAGE = "preference"
DATA_PREFIX = f"training/stages/{STAGE}"
FILES = {"train": "train.jsonl", "val": "val.jsonl", "kto_train": "kto_train.jsonl", "kto_val": "kto_val.jsonl"}


@dataclass
class PreferenceData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    kto_train: list[dict[str, Any]]
    kto_val: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


def _norm(text: str) -> str:
    return " ".join(text.split())


def split_reference(messages: Sequence[dict[str, Any]]) -> tuple[Messages, dict[str, str]] | None:
    """(prompt, chosen turn): the last assistant turn with a user turn before it, else None."""
    for i in range(len(messages) - 1, 0, -1):
        m = messages[i]
        if m.get("role") == "assistant" and isinstance(m.get("content"), str):
            prompt = [{"role": p["role"], "content": p["content"]} for p in messages[:i]]
            if any(p["role"] == "user" for p in prompt):
                return prompt, {"role": "assistant", "content": m["content"]}
            return None
    return None


def _pair(prompt: Messages, chosen: dict, rejected: str, meta: dict[str, Any]) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": [chosen], "rejected": [{"role": "assistant", "content": rejected}],
            "metadata": meta}


def _drop_reason(chosen: str, rejected: str | None) -> str | None:
    if not isinstance(rejected, str) or not rejected.strip():
        return "rejected_empty"
    if _norm(rejected) == _norm(chosen):
        return "rejected_equals_chosen"
    return None


class _Build:
    """One split's pairs. Candidates are visited in a seeded order; sampled sources stop sampling
    once their share of the mix is filled, so the stage-7 model answers only what is used."""

    def __init__(self, config: PreferenceConfig, split: str, records: Iterable[dict], sampler: Sampler | None,
                 cap: int | None, tokenizer=None):
        self.config, self.split, self.sampler, self.cap, self.tokenizer = config, split, sampler, cap, tokenizer
        self.dropped: dict[str, Counter[str]] = {s: Counter() for s in SOURCE_FAMILIES}
        self.candidates: dict[str, list[tuple[Messages, dict, dict]]] = {s: [] for s in SOURCE_FAMILIES}
        self.other_split = self.other_family = 0
        family_source = {fam: src for src, fams in config.source_families.items() for fam in fams}
        for r in records:
            meta = r.get("metadata") or {}
            if meta.get("split") != split:
                self.other_split += 1  # never a test record, never the other split
                continue
            source = family_source.get(meta.get("source_family"))
            if source is None:
                self.other_family += 1
                continue
            ref = split_reference(r.get("messages") or [])
            if ref is None:
                self.dropped[source]["no_prompt_before_reply"] += 1
                continue
            self.candidates[source].append((ref[0], ref[1], meta))
        rng = random.Random(f"{config.seed}|{split}")
        for source, items in self.candidates.items():
            items.sort(key=lambda c: c[2].get("content_hash", ""))  # input order does not matter
            rng.shuffle(items)

    def active_weights(self) -> dict[str, float]:
        w = {s: float(self.config.source_weights.get(s, 0.0)) for s in SOURCE_FAMILIES}
        if self.config.rejected_source == "none":
            for s in SAMPLED_SOURCES:
                w[s] = 0.0
        return w

    def run(self) -> tuple[list[dict], dict[str, Any]]:
        weights = self.active_weights()
        avail = {s: len(self.candidates[s]) for s in SOURCE_FAMILIES if weights[s] > 0}
        quota = _quotas(weights, avail, self.cap)
        kept: dict[str, list[dict]] = {s: [] for s in SOURCE_FAMILIES}
        sampled_prompts = 0
        for source in SOURCE_FAMILIES:
            if weights[source] <= 0 or quota.get(source, 0) == 0:
                continue
            if source in SAMPLED_SOURCES:
                sampled_prompts += self._sample(source, quota[source], kept[source])
            else:
                for prompt, chosen, meta in self.candidates[source]:
                    reason = _drop_reason(chosen["content"], meta.get("rejected_response")) or \
                        self._over_length(prompt, chosen, meta.get("rejected_response"))
                    if reason:
                        self.dropped[source][reason] += 1
                        continue
                    kept[source].append(_pair(prompt, chosen, meta["rejected_response"],
                                              self._meta(source, meta, "dataset", 0)))
                    if len(kept[source]) >= quota[source]:
                        break
        # Drops can leave a source short of its share: down-sample the others to the weights again.
        final_quota = _quotas(weights, {s: len(v) for s, v in kept.items() if weights[s] > 0 and v}, self.cap)
        pairs = [p for s in SOURCE_FAMILIES for p in kept[s][: final_quota.get(s, 0)]]
        random.Random(f"{self.config.seed}|{self.split}|order").shuffle(pairs)
        counts = Counter(p["metadata"]["source"] for p in pairs)
        total = sum(counts.values())
        stats = {
            "pairs": total,
            "pairs_per_source": {s: counts.get(s, 0) for s in SOURCE_FAMILIES},
            "target_weights": {s: round(weights[s], 4) for s in SOURCE_FAMILIES},
            "achieved_weights": {s: round(counts.get(s, 0) / total, 4) if total else 0.0 for s in SOURCE_FAMILIES},
            "candidates_per_source": {s: len(self.candidates[s]) for s in SOURCE_FAMILIES},
            "dropped": {s: dict(c) for s, c in self.dropped.items() if c},
            "dropped_total": sum(sum(c.values()) for c in self.dropped.values()),
            "records_other_split": self.other_split,
            "records_other_family": self.other_family,
            "prompts_sampled": sampled_prompts,
        }
        return pairs, stats

    def _sample(self, source: str, quota: int, out: list[dict]) -> int:
        if self.sampler is None:
            raise ValueError(f"preference data: source {source!r} needs rejected responses sampled from "
                             f"{self.config.rejected_source!r} but no sampler was given (or set rejected_source: none)")
        items, asked = self.candidates[source], 0
        while len(out) < quota and asked < len(items):
            chunk = items[asked : asked + min(16, quota - len(out))]  # prompts still needed, if none is dropped
            asked += len(chunk)
            answers = self.sampler([c[0] for c in chunk])
            if len(answers) != len(chunk):
                raise ValueError(f"sampler returned {len(answers)} answer lists for {len(chunk)} prompts")
            for (prompt, chosen, meta), samples in zip(chunk, answers):
                for k, text in enumerate(samples):  # the first usable sample is the rejected response
                    reason = _drop_reason(chosen["content"], text) or self._over_length(prompt, chosen, text)
                    if reason is None:
                        out.append(_pair(prompt, chosen, text, self._meta(source, meta, self.config.rejected_source, k)))
                        break
                    self.dropped[source][reason] += 1
                else:
                    self.dropped[source]["prompt_without_usable_sample"] += 1
        return asked

    def _over_length(self, prompt: Messages, chosen: dict, rejected: str) -> str | None:
        """"over_length" when prompt + chosen or prompt + rejected exceeds max_length tokens (with the
        chat template): TRL would cut it silently, so it is left out and counted instead."""
        if self.tokenizer is None:
            return None
        for reply in (chosen["content"], rejected):
            msgs = [*prompt, {"role": "assistant", "content": reply}]
            if len(self.tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=True)["input_ids"]) \
                    > self.config.max_length:
                return "over_length"
        return None

    def _meta(self, source: str, meta: dict, rejected_from: str, sample: int) -> dict[str, Any]:
        return {"source": source, "source_family": meta.get("source_family"), "content_hash": meta.get("content_hash"),
                "split": self.split, "rejected_from": rejected_from, "sample_index": sample}


def _quotas(weights: dict[str, float], avail: dict[str, int], cap: int | None) -> dict[str, int]:
    """Pairs per source meeting the weights by down-sampling: the scarcest source sets the total."""
    active = {s: n for s, n in avail.items() if weights.get(s, 0) > 0 and n > 0}
    if not active:
        return {}
    wsum = sum(weights[s] for s in active)
    total = min(n / (weights[s] / wsum) for s, n in active.items())
    if cap is not None:
        total = min(total, cap)
    return {s: min(n, int(round(total * weights[s] / wsum))) for s, n in active.items()}


def kto_rows(pairs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """KTO's unpaired format from the same pairs: chosen -> label True, rejected -> False (deduplicated)."""
    rows, seen = [], set()
    for p in pairs:
        for key, label in (("chosen", True), ("rejected", False)):
            ident = json.dumps([p["prompt"], p[key], label], sort_keys=True, ensure_ascii=False)
            if ident in seen:
                continue
            seen.add(ident)
            rows.append({"prompt": p["prompt"], "completion": p[key], "label": label, "metadata": p["metadata"]})
    return rows


def build_preference_data(config: PreferenceConfig | Any, train_records: Iterable[dict], sampler: Sampler | None = None,
                          val_records: Iterable[dict] = (), tokenizer=None) -> PreferenceData:
    """Pairs for train (from train-split records only) and val (val-split records only), KTO rows, stats.

    With `tokenizer`, pairs longer than `config.max_length` (template applied) are dropped and counted
    ("over_length") instead of being cut by the trainer."""
    if not isinstance(config, PreferenceConfig):
        config = PreferenceConfig.from_stage(config)
    config.validate()
    train, train_stats = _Build(config, "train", train_records, sampler, config.max_train_pairs, tokenizer).run()
    val, val_stats = _Build(config, "val", val_records, sampler, config.max_val_pairs, tokenizer).run()
    stats = {"train": train_stats, "val": val_stats, "rejected_source": config.rejected_source,
             "sampling": config.sampling.as_dict(), "source_weights": dict(config.source_weights)}
    return PreferenceData(train=train, val=val, kto_train=kto_rows(train), kto_val=kto_rows(val), stats=stats)


def _jsonl(rows: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows)


def write_preference_data(root, data: PreferenceData, prefix: str = DATA_PREFIX) -> dict[str, str]:
    """Write {train,val,kto_train,kto_val}.jsonl under `prefix` on a DataRoot; returns name -> key."""
    refuse_test_content(root, {f: getattr(data, name) for name, f in FILES.items()}, f"preference data {prefix!r}")
    keys = {}
    for name, filename in FILES.items():
        key = f"{prefix}/{filename}"
        root.write_text(key, _jsonl(getattr(data, name)))
        keys[name] = key
    return keys


def read_jsonl(path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
