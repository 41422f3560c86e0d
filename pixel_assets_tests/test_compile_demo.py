"""The compile path on the demo generator's output: ingest -> PII -> dedup -> split -> compile."""

from __future__ import annotations

import polars as pl
import pytest

from pixel_assets.lib.compiled import build_compiled_dataset, publish_compiled_dataset, read_manifest
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.leakage import leakage_report
from pixel_assets.lib.splits import assign_splits
from pixel_assets.lib.storage import LocalDataRoot


@pytest.mark.slow
def test_demo_sources_compile_and_load_with_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    from pixel_assets.lib.dedup import dedup_records
    from pixel_assets.lib.demo_data import generate_demo_sources
    from pixel_assets.lib.ingest import ingest_family
    from pixel_assets.lib.pii import PiiScrubber, scrub_frame

    registry = load_registry()
    root = LocalDataRoot(tmp_path / "root")
    generate_demo_sources(root, seed=7, scale=0.05)
    scrubber = PiiScrubber()
    frames = []
    for family in registry.families:
        ingested = ingest_family(family, root)
        if ingested.records.height:
            frames.append(scrub_frame(ingested.records, family=family.name, scrubber=scrubber).clean)
    kept = dedup_records(pl.concat(frames)).kept
    split_frame = assign_splits(kept, registry)
    assert leakage_report(split_frame, registry)["ok"]

    # Every record validated against the record schema (validate_sample=None).
    compiled = build_compiled_dataset(split_frame, registry, shard_max_bytes=300_000, validate_sample=None)
    publish_compiled_dataset(compiled, root)
    manifest = read_manifest(root)
    assert manifest["total_conversations"] == kept.height
    assert set(manifest["source_families"]) == {n for n in registry.names if registry[n].enabled} & set(
        kept.get_column("source_family").unique()
    )
    for split in ("train", "val", "test"):
        files = [str(root.local_path(f"final_dataset/{s['path']}")) for s in manifest["splits"][split]["shards"]]
        ds = datasets.load_dataset("json", data_files=files, split="train", cache_dir=str(tmp_path / "cache"))
        assert ds.num_rows == manifest["splits"][split]["conversations"]
        assert {m["split"] for m in ds["metadata"]} == {split}
