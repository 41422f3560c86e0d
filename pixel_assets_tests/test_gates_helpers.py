"""Builders shared by the gate and training-guard tests: a clean compiled dataset made by the real
pipeline code (records frame -> dedup -> assign_splits -> build_compiled_dataset -> publish), and
helpers that plant defects in it. (Named test_* only so it sits with the tests it serves.)"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import polars as pl

from pixel_assets import PIPELINE_NAME
from pixel_assets.lib import contract
from pixel_assets.lib.compiled import build_compiled_dataset, publish_compiled_dataset
from pixel_assets.lib.contract import sha256_digest
from pixel_assets.lib.dedup import dedup_records
from pixel_assets.lib.registry import Registry, load_registry
from pixel_assets.lib.splits import assign_splits
from pixel_assets.lib.storage import DataRoot

PREFIX = "final_dataset"
PER_FAMILY = 70  # enough non-holdout groups that hash-assigned shares land near 90/5/5

# Plain lower-case English words (not made-up syllables, which NER reads as names): random
# sentences of them are neither duplicates nor near-duplicates of each other, and carry no name.
_WORDS = """
about activity afterwards again against alert allowed almost also another apart appetite
approach around assume awkward back because been before being body brain call carrying catches
chore comes conversation cope coping courage cried criticism curious days deadline doable does
down dread duration early efore especially esterday even evenings every everything evidence
exhausted exits failing falls feel feeling feels felt fighting four freeze from gets getting
give given glad goes going good great happened happens hard hardest have hearing help helped
helps henever here hope hours intense just keep know lately learned leave like list little lived
longer look loud love makes maybe mentioned mess might mind minutes modality moment more
mornings most mostly myself name need nervous next night notice okay once ould over overreacting
painful part people picture place protect protective reaction reacts reasons reflect replays
response right room said scale scan scared seems self sense session shift should shows skill
sleep slow small snapped solve something sound sounds start started stay step still stopped
suggested system takes talking telling that then these thing things think thinking thinks this
thought through time today together told tried trying twenty understand used very voice want
wearing week went what when where which whole whose willing with without wonder work worry would
write wrong your yourself
""".split()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(n))


def make_record(family: str, i: int, registry: Registry, user: str, assistant: str) -> dict[str, Any]:
    fam = registry[family]
    messages = [{"role": "system", "content": "You are a supportive counselor."},
                {"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    source_key = f"file:///data/sources/{family}/part.jsonl"
    return {
        "messages": messages,
        "metadata": {
            "source_family": family, "source_key": source_key, "content_hash": contract.content_hash(messages),
            "pii_status": "none_detected", "license_tag": fam.license_tag, "phase": fam.phase,
            "original_format": fam.sources[0].format, "source_location": f"line {i + 1}",
            "record_type": "conversation", "conversation_length": len(messages),
            "total_tokens": contract.approx_tokens(messages),
            "provenance": {"original_s3_key": source_key, "processing_pipeline": PIPELINE_NAME,
                           "processed_at": "2026-11-21T10:00:00+00:00", "dedup_status": "unique",
                           "processing_steps": ["ingest", "encoding_repair", "normalize", "pii_scrub"]},
        },
    }


def clean_records(registry: Registry, per_family: int = PER_FAMILY, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_record(f.name, i, registry, _sentence(rng, 10), _sentence(rng, 18))
            for f in registry.families if f.enabled for i in range(per_family)]


def split_frame(records: list[dict[str, Any]], registry: Registry) -> pl.DataFrame:
    kept = dedup_records(contract.records_to_frame(records), family_order=registry.names).kept
    return assign_splits(kept, registry)


def move_records(frame: pl.DataFrame, where: Callable[[dict], bool], split: str, limit: int | None = None,
                 change: Callable[[dict], None] | None = None) -> pl.DataFrame:
    """Set split (column and metadata.split) of the records matching `where` (first `limit`);
    `change` edits each moved record too (e.g. strips its holdout marker)."""
    records, splits, moved = [], [], 0
    for rec_json, current in frame.select("record", "split").iter_rows():
        rec = json.loads(rec_json)
        if (limit is None or moved < limit) and where(rec):
            rec["metadata"]["split"], current, moved = split, split, moved + 1
            if change is not None:
                change(rec)
        records.append(contract.dumps_record(rec))
        splits.append(current)
    assert moved, "no record matched"
    return frame.with_columns(record=pl.Series(records), split=pl.Series(splits))


def add_record_like(frame: pl.DataFrame, like_hash: str, record: dict[str, Any], split: str) -> pl.DataFrame:
    """Append `record` (after dedup, so nothing removes it) with the other columns of `like_hash`'s row."""
    record["metadata"]["split"] = split
    row = frame.filter(pl.col("content_hash") == like_hash).with_columns(
        content_hash=pl.lit(record["metadata"]["content_hash"]), record=pl.lit(contract.dumps_record(record)),
        split=pl.lit(split))
    assert row.height == 1
    return pl.concat([frame, row])


def publish(frame: pl.DataFrame, registry: Registry, root: DataRoot) -> str:
    compiled = build_compiled_dataset(frame, registry, shard_max_bytes=20_000, validate_sample=None)
    return publish_compiled_dataset(compiled, root, prefix=PREFIX)


def stage_clean_dataset(root: DataRoot, registry: Registry | None = None,
                        edit: Callable[[pl.DataFrame], pl.DataFrame] | None = None, seed: int = 7):
    """The clean dataset (optionally edited) staged under staging/<version>/, as compiled_dataset
    does; returns the StagedDataset."""
    from pixel_assets.lib.compiled.promote import stage_compiled_dataset

    registry = registry or load_registry()
    frame = split_frame(clean_records(registry, seed=seed), registry)
    if edit is not None:
        frame = edit(frame)
    return stage_compiled_dataset(build_compiled_dataset(frame, registry, shard_max_bytes=20_000,
                                                         validate_sample=None), root)


def build_clean_dataset(root: DataRoot, registry: Registry | None = None,
                        edit: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
                        records: list[dict[str, Any]] | None = None) -> str:
    registry = registry or load_registry()
    frame = split_frame(records if records is not None else clean_records(registry), registry)
    if edit is not None:
        frame = edit(frame)
    return publish(frame, registry, root)


# --- post-publication edits ----------------------------------------------------------------


def read_manifest(root: DataRoot) -> dict[str, Any]:
    return json.loads(root.read_text(f"{PREFIX}/manifest.json"))


def write_manifest(root: DataRoot, manifest: dict[str, Any]) -> None:
    root.write_text(f"{PREFIX}/manifest.json", json.dumps(manifest))


def first_record(root: DataRoot, split: str) -> dict[str, Any]:
    return json.loads(root.read_text(f"{PREFIX}/{split}/{split}_000.jsonl").splitlines()[0])


def edit_first_record(root: DataRoot, split: str, change: Callable[[dict], None], reseal: bool) -> str:
    """Edit the first record of the split's first shard; returns its id. With `reseal`, shard
    sha256/size and the export are brought back in line (a defect that is not a hash defect)."""
    key = f"{PREFIX}/{split}/{split}_000.jsonl"
    lines = root.read_text(key).splitlines()
    rec = json.loads(lines[0])
    change(rec)
    lines[0] = contract.dumps_record(rec)
    root.write_text(key, "\n".join(lines) + "\n")
    if reseal:
        manifest = read_manifest(root)
        shards = [e for s in contract.SPLITS for e in manifest["splits"][s]["shards"]]
        for entry in shards:
            data = root.read_bytes(f"{PREFIX}/{entry['path']}")
            entry["sha256"], entry["size_bytes"] = sha256_digest(data), len(data)
        export = b"".join(root.read_bytes(f"{PREFIX}/{e['path']}") for e in shards)
        root.write_bytes(f"{PREFIX}/compiled/final_training_dataset.jsonl", export)
        manifest["compiled_export"].update(sha256=sha256_digest(export), size_bytes=len(export))
        write_manifest(root, manifest)
    return f"{split}/{split}_000.jsonl:1"
