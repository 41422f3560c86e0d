"""Training reads the dataset as `published_dataset` promotes it: versioned shards under
final_dataset/data/<version>/, paths in the manifest relative to it. (The chain test publishes
the unversioned layout through a helper; this one goes through the real promotion.) The expected
records come from the frame handed to the compiler, not from another reader of the shards."""

from __future__ import annotations

import json
from collections import Counter

import polars as pl

from pixel_assets.defs.training.inputs import read_split
from pixel_assets.lib.compiled import build_compiled_dataset, read_manifest
from pixel_assets.lib.gates.publication import publish_verified
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot
from pixel_assets_tests import test_gates_helpers as h


def _hashes_by_split(frame: pl.DataFrame) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for record_json, split in frame.select("record", "split").iter_rows():
        out.setdefault(split, Counter())[json.loads(record_json)["metadata"]["content_hash"]] += 1
    return out


def test_training_reads_every_record_of_a_promoted_versioned_dataset(tmp_path):
    registry = load_registry()
    root = LocalDataRoot(str(tmp_path))
    frame = h.split_frame(h.clean_records(registry, per_family=12, seed=3), registry)
    compiled = build_compiled_dataset(frame, registry, shard_max_bytes=20_000, validate_sample=None)
    published = publish_verified(compiled, root, registry=registry)
    assert published.promotion is not None, published.report.failed_gates
    manifest = read_manifest(root)
    version_dir = f"data/{manifest['dataset_version']}/"
    assert manifest["splits"]["train"]["shards"][0]["path"].startswith(version_dir)
    assert len(manifest["splits"]["train"]["shards"]) > 1  # more than one shard to follow

    expected = _hashes_by_split(frame)
    for split in ("train", "val"):
        records = read_split(root, split)
        assert {r["metadata"]["split"] for r in records} == {split}
        assert Counter(r["metadata"]["content_hash"] for r in records) == expected[split]
