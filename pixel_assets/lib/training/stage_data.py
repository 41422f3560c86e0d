"""A stage's train and val sets from the published train and val splits (Dagster-free).

`build_stage_data(stage, train_records, val_records, tokenizer)`:
1. keeps only records of the split it was handed for (train / val) and of the stage's families;
   a record whose metadata says `split: test` is counted and never used (`test_records_excluded`);
2. SFT stages: measures each conversation with the real tokenizer + chat template; one longer than
   the stage's context is counted and dropped (default) or split at turn boundaries
   (`long_conversations: split`; each window keeps the system prompt and carries
   `metadata.window = {"index": i, "of": n}`); nothing is truncated;
3. mixes the families to their weights (mixing.py), seeded; the val set is every eligible val
   record of the same families (capped by `max_val_records`, stratified by the weights). A stage
   whose families have fewer than MIN_VAL_RECORDS val records (a small family, a small scale; for
   SFT, counted after the length rules: over-long val records do not count) gets a seeded slice of its own train records as validation instead (taken out of train, marked
   `metadata.val_from: train`, counted as `val_from_train`), or, with too few train records for
   that, no validation at all (`val_source: none`: the stage trains unevaluated, said in the stats);
4. phase A (`kind: pretrain`): the mixed records as plain text cut into context-size blocks at
   paragraph boundaries (text_blocks.py);
5. stage 5 (`packing: true`): the mixed sessions packed best-fit decreasing (packing.py); the file
   keeps one session per line (the trainer packs the same way), the stats show the packing.

Files: `training/stages/<stage>/{train,val}.jsonl` (+ `stats.json`) under a DataRoot, written by
`write_stage_data`, which refuses any line whose metadata says `split: test`, and any line that
carries a test record's content whatever its labels say (`content_guard`).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pixel_assets.lib.storage import DataRoot
from pixel_assets.lib.training.content_guard import TestSplitLeak, refuse_test_content
from pixel_assets.lib.training.curriculum import StageConfig
from pixel_assets.lib.training.mixing import cap_stratified, mix
from pixel_assets.lib.training.packing import pack_sessions, packing_stats, split_conversation, template_ids, text_ids
from pixel_assets.lib.training.text_blocks import build_blocks, record_text

STAGES_PREFIX = "training/stages"
MIN_VAL_RECORDS = 2  # a stage with fewer eligible val records takes its validation out of its train records
VAL_FROM_TRAIN_SHARE = 0.1  # ... this share of them (at least enough to reach MIN_VAL_RECORDS)


@dataclass
class StageData:
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    stats: dict[str, Any] = field(default_factory=dict)


def stage_keys(stage_name: str) -> dict[str, str]:
    base = f"{STAGES_PREFIX}/{stage_name}"
    return {"train": f"{base}/train.jsonl", "val": f"{base}/val.jsonl", "stats": f"{base}/stats.json"}


def _meta(record: Mapping[str, Any]) -> Mapping[str, Any]:
    m = record.get("metadata")
    return m if isinstance(m, Mapping) else {}


def _canonical(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input order must not matter: records sorted by content hash (then their JSON)."""
    return sorted(records, key=lambda r: (str(_meta(r).get("content_hash")), json.dumps(r, sort_keys=True)))


def _eligible(stage: StageConfig, records: Iterable[dict[str, Any]], split: str, counts: Counter) -> list[dict]:
    out = []
    for r in records:
        meta = _meta(r)
        if meta.get("source_family") not in stage.families:
            continue
        if meta.get("split") == "test":
            counts["test_records_excluded"] += 1
        elif meta.get("split") != split:
            counts[f"{split}_other_split_excluded"] += 1
        else:
            out.append(r)
    return _canonical(out)


def stage_input_hashes(stage: StageConfig, train_records: Iterable[dict], val_records: Iterable[dict]) -> list[str]:
    """`<split>:<content_hash>` of every record the stage reads (its families, train/val split)."""
    out = []
    for split, records in (("train", train_records), ("val", val_records)):
        for r in records:
            m = _meta(r)
            if m.get("source_family") in stage.families and m.get("split") == split:
                out.append(f"{split}:{m.get('content_hash')}")
    return sorted(out)


def stage_data_version(stage: StageConfig, input_hashes: Iterable[str], config: Mapping[str, Any] | None = None) -> str:
    """The stage dataset's data version: sha256 of the stage config hash, the sorted input hashes
    (`stage_input_hashes`) and `config` (anything else the data depends on, e.g. the tokenizer's
    identity, which decides lengths). Unchanged inputs and settings give the same version."""
    h = hashlib.sha256()
    h.update(stage.config_hash().encode())
    h.update(json.dumps(dict(config or {}), sort_keys=True, default=str).encode())
    for item in sorted(input_hashes):
        h.update(b"\n" + item.encode())
    return "sha256:" + h.hexdigest()


def val_fallback(stage: StageConfig, train: list[dict], val: list[dict], min_val_records: int = MIN_VAL_RECORDS,
                 usable_val: int | None = None) -> tuple[list[dict], list[dict], dict]:
    """(train, val, stats): the stage's own val records when there are enough; else a seeded slice of
    its train records moved to validation (never a test record: `train` holds train-split records
    only); else, with fewer than two train records, no validation (the stage trains unevaluated).
    ``usable_val``: how many of ``val`` survive the stage's length rules (default: all of them)."""
    usable = len(val) if usable_val is None else usable_val
    if usable >= min_val_records:
        return train, val, {"val_source": "val_split", "val_from_train": 0}
    if len(train) < 2:
        return train, val, {"val_source": "val_split" if usable else "none", "val_from_train": 0}
    wanted = max(min_val_records - usable, math.ceil(VAL_FROM_TRAIN_SHARE * len(train)))
    n = min(wanted, len(train) - 1)  # at least one record stays to train on
    picked = set(random.Random(f"{stage.seed}:{stage.name}:val_from_train").sample(range(len(train)), n))
    moved = [{**r, "metadata": {**_meta(r), "split": "val", "val_from": "train"}}
             for i, r in enumerate(train) if i in picked]
    rest = [r for i, r in enumerate(train) if i not in picked]
    return rest, _canonical(val + moved), {"val_source": "val_split+train" if usable else "train", "val_from_train": n}


# --- SFT ------------------------------------------------------------------------------------


def _length_aware(stage: StageConfig, records: list[dict], tokenizer, counts: Counter,
                  per_family: dict[str, Counter]) -> tuple[list[dict], list[list[int]]]:
    """Records (or windows) that fit the stage's context, with their template token ids."""
    ids = template_ids(tokenizer, [r["messages"] for r in records])
    units: list[dict] = []
    unit_ids: list[list[int]] = []
    for record, tok in zip(records, ids, strict=True):
        fam = per_family[_meta(record)["source_family"]]
        if len(tok) <= stage.max_length:
            units.append(record)
            unit_ids.append(tok)
            continue
        fam["overlength"] += 1
        counts["overlength"] += 1
        if stage.long_conversations == "drop":
            fam["overlength_dropped"] += 1
            continue
        windows, left_out = split_conversation(record["messages"], tokenizer, stage.max_length)
        fam["windows"] += len(windows)
        fam["turns_left_out"] += left_out
        fam["overlength_split" if windows else "overlength_dropped"] += 1
        for i, window in enumerate(windows):
            meta = {**_meta(record), "window": {"index": i, "of": len(windows)}}
            units.append({**record, "messages": window, "metadata": meta})
        unit_ids.extend(template_ids(tokenizer, windows))
    return units, unit_ids


LENGTH_COUNTS = ("overlength", "overlength_dropped", "overlength_split", "windows", "turns_left_out")


def _sft(stage: StageConfig, train: list[dict], val: list[dict], tokenizer, counts: Counter) -> StageData:
    per_family: dict[str, Counter] = {f: Counter(dict.fromkeys(LENGTH_COUNTS, 0)) for f in stage.families}
    units, ids = _length_aware(stage, train, tokenizer, counts, per_family)
    fams = [_meta(u)["source_family"] for u in units]
    sizes = [len(t) for t in ids] if stage.mix_unit == "tokens" else [1] * len(units)
    m = mix(fams, sizes, stage.families, seed=stage.seed, oversample=stage.oversample,
            max_records=stage.max_train_records, label=stage.name)
    val_counts: dict[str, Counter] = {f: Counter() for f in stage.families}
    val_units, val_ids = _length_aware(stage, val, tokenizer, Counter(), val_counts)
    val_pick = cap_stratified([_meta(u)["source_family"] for u in val_units], stage.families,
                              stage.max_val_records, seed=stage.seed, label=f"{stage.name}:val")
    tokens = Counter()
    for i in m.selected:
        tokens[fams[i]] += len(ids[i])
    families = {}
    for f in stage.families:
        families[f] = {**m.families[f], "tokens": tokens[f], **{k: v for k, v in per_family[f].items()},
                       "val_records": sum(1 for i in val_pick if _meta(val_units[i])["source_family"] == f),
                       "val_overlength": val_counts[f]["overlength"]}
    stats: dict[str, Any] = {"families": families, "train_records": len(m.selected), "val_records": len(val_pick),
                             "val_fitting": len(val_units),  # after the length rules, before max_val_records
                             "train_tokens": sum(tokens.values()),
                             "val_tokens": sum(len(val_ids[i]) for i in val_pick), "examples": len(m.selected)}
    if stage.packing:
        selected_ids = [ids[i] for i in m.selected]
        bins = pack_sessions(selected_ids, stage.max_length)
        stats["packing"] = packing_stats(selected_ids, stage.max_length, bins)
        stats["examples"] = len(bins)
    return StageData(train=[units[i] for i in m.selected], val=[val_units[i] for i in val_pick], stats=stats)


# --- phase A --------------------------------------------------------------------------------


def _block_lines(blocks, split: str) -> list[dict]:
    return [{"text": b.text, "metadata": {"source_family": b.family, "content_hashes": b.content_hashes,
                                          "split": split, "tokens": b.tokens}} for b in blocks]


def _pretrain(stage: StageConfig, train: list[dict], val: list[dict], tokenizer, counts: Counter) -> StageData:
    texts = [record_text(r) for r in train]
    sizes = [len(t) for t in text_ids(tokenizer, texts)] if stage.mix_unit == "tokens" else [1] * len(train)
    fams = [_meta(r)["source_family"] for r in train]
    m = mix(fams, sizes, stage.families, seed=stage.seed, oversample=stage.oversample,
            max_records=stage.max_train_records, label=stage.name)
    blocks, block_stats = build_blocks([train[i] for i in m.selected], tokenizer, stage.max_length)
    val_pick = cap_stratified([_meta(r)["source_family"] for r in val], stage.families, stage.max_val_records,
                              seed=stage.seed, label=f"{stage.name}:val")
    val_blocks, _ = build_blocks([val[i] for i in val_pick], tokenizer, stage.max_length)
    tokens = Counter()
    for b in blocks:
        tokens[b.family] += b.tokens
    total = sum(tokens.values()) or 1
    families = {f: {**m.families[f], "tokens": tokens[f], "blocks": sum(1 for b in blocks if b.family == f),
                    "achieved_token_weight": round(tokens[f] / total, 6),
                    "val_records": sum(1 for i in val_pick if fams_of(val[i]) == f)} for f in stage.families}
    stats = {"families": families, "train_records": len(m.selected), "train_blocks": len(blocks),
             "val_records": len(val_pick), "val_blocks": len(val_blocks), "train_tokens": sum(tokens.values()),
             "val_tokens": sum(b.tokens for b in val_blocks), "examples": len(blocks), **block_stats}
    return StageData(train=_block_lines(blocks, "train"), val=_block_lines(val_blocks, "val"), stats=stats)


def fams_of(record: Mapping[str, Any]) -> str:
    return str(_meta(record).get("source_family"))


# --- entry point and writers ------------------------------------------------------------------


def build_stage_data(stage: StageConfig, train_records: Sequence[dict], val_records: Sequence[dict], tokenizer, *,
                     min_val_records: int = MIN_VAL_RECORDS) -> StageData:
    """The stage's train and val sets (module docstring); ``min_val_records=0`` never moves train
    records to validation."""
    if stage.kind not in ("pretrain", "sft"):
        raise ValueError(f"stage {stage.name!r}: build_stage_data builds pretrain and SFT stages, not {stage.kind!r}")
    counts: Counter = Counter()
    train = _eligible(stage, train_records, "train", counts)
    val = _eligible(stage, val_records, "val", counts)
    builder = _pretrain if stage.kind == "pretrain" else _sft
    eligible_counts = counts.copy()
    stage_train, stage_val, val_info = val_fallback(stage, train, val, min_val_records)
    data = builder(stage, stage_train, stage_val, tokenizer, counts)
    fitting = data.stats.get("val_fitting")  # SFT: val records (or windows) that fit the context
    if fitting is not None and fitting < min_val_records and not val_info["val_from_train"] and val:
        # The stage's own val records did not survive its length rules (over-long at a small
        # context): take validation from train after all; the dropped val records stay counted.
        counts = eligible_counts
        stage_train, stage_val, val_info = val_fallback(stage, train, val, min_val_records, usable_val=fitting)
        data = builder(stage, stage_train, stage_val, tokenizer, counts)
    data.stats = {"stage": stage.name, "kind": stage.kind, "config_hash": stage.config_hash(),
                  "max_length": stage.max_length, "seed": stage.seed, "mix_unit": stage.mix_unit,
                  "long_conversations": stage.long_conversations, "oversample": stage.oversample,
                  "test_records_excluded": counts["test_records_excluded"],
                  "other_split_excluded": counts["train_other_split_excluded"] + counts["val_other_split_excluded"],
                  "overlength": counts["overlength"], **val_info, **data.stats,
                  "steps": stage.steps_for(data.stats["examples"])}
    for split, lines in (("train", data.train), ("val", data.val)):
        assert_no_test_records(lines, stage.name, split)
    return data


def assert_no_test_records(lines: Iterable[Mapping[str, Any]], stage_name: str, split: str) -> None:
    """TestSplitLeak when any line's metadata says it belongs to the test split (names the line and
    its content hash, never its text)."""
    for n, line in enumerate(lines, start=1):
        if _meta(line).get("split") == "test":
            raise TestSplitLeak(f"stage {stage_name!r} {split} line {n}: a test-split record "
                                f"({_meta(line).get('content_hash') or _meta(line).get('content_hashes')}) "
                                "must never enter a stage file")


def jsonl_bytes(lines: Iterable[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n" for line in lines).encode("utf-8")


def write_stage_data(root: DataRoot, stage_name: str, data: StageData) -> dict[str, str]:
    """Write train.jsonl, val.jsonl and stats.json under training/stages/<stage>/; returns key -> URI."""
    keys = stage_keys(stage_name)
    for split in ("train", "val"):
        assert_no_test_records(getattr(data, split), stage_name, split)
    refuse_test_content(root, {"train.jsonl": data.train, "val.jsonl": data.val}, f"stage {stage_name!r}")
    for split in ("train", "val"):
        root.write_bytes(keys[split], jsonl_bytes(getattr(data, split)))
    root.write_text(keys["stats"], json.dumps(data.stats, sort_keys=True, indent=1))
    return {k: root.uri(v) for k, v in keys.items()}


def read_stage_lines(root: DataRoot, stage_name: str, split: str) -> list[dict[str, Any]]:
    data = root.read_text(stage_keys(stage_name)[split])
    return [json.loads(line) for line in data.splitlines() if line.strip()]
