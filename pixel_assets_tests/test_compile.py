"""Compiled dataset: shards, export, manifest (schema + consistency), publication (local and S3)."""

from __future__ import annotations

import copy
import hashlib
import json

import polars as pl
import pytest

from pixel_assets.lib.compiled import (
    CompileError,
    ManifestError,
    build_compiled_dataset,
    publish_compiled_dataset,
    read_manifest,
    validate_manifest,
)
from pixel_assets.lib.compiled.synthetic import exact_dedup, synthetic_records_frame
from pixel_assets.lib.contract import SPLITS, content_hash, record_errors
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.splits import assign_splits
from pixel_assets.lib.storage import DataRoot, LocalDataRoot, S3DataRoot
from pixel_assets_tests.helpers import free_port


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def split_frame(registry):
    return assign_splits(exact_dedup(synthetic_records_frame(3000, registry, seed=11)), registry)


@pytest.fixture(scope="module")
def compiled(split_frame, registry):
    return build_compiled_dataset(split_frame, registry, shard_max_bytes=400_000, generated_at="2026-01-02T03:04:05+00:00",
                                  split_policy={"ratios": [0.9, 0.05, 0.05], "salt": "pixel-split-v1"})


def assert_published_consistent(root: DataRoot, prefix: str = "final_dataset") -> dict:
    """What a gate would check: every referenced file exists with the manifest's sha256 and count,
    and nothing unreferenced lies in the managed folders."""
    manifest = read_manifest(root, prefix)
    referenced = {f"{prefix}/manifest.json", f"{prefix}/{manifest['compiled_export']['path']}"}
    for split in SPLITS:
        for shard in manifest["splits"][split]["shards"]:
            data = root.read_bytes(f"{prefix}/{shard['path']}")
            assert "sha256:" + hashlib.sha256(data).hexdigest() == shard["sha256"]
            assert len(data) == shard["size_bytes"]
            assert data.count(b"\n") == shard["conversation_count"]
            referenced.add(f"{prefix}/{shard['path']}")
    export = root.read_bytes(f"{prefix}/{manifest['compiled_export']['path']}")
    assert "sha256:" + hashlib.sha256(export).hexdigest() == manifest["compiled_export"]["sha256"]
    assert set(root.list_keys(prefix + "/")) == referenced
    return manifest


def test_shards_hold_valid_records_within_the_cap(compiled, split_frame):
    assert len(compiled.shards) > 3
    seen = []
    for shard in compiled.shards:
        assert shard.size_bytes <= 400_000
        assert shard.key == f"{shard.split}/{shard.shard_id}.jsonl"
        assert shard.sha256 == "sha256:" + hashlib.sha256(shard.data).hexdigest()
        lines = shard.data.decode().splitlines()
        assert len(lines) == shard.count
        for line in lines:
            record = json.loads(line)
            assert record_errors(record) == []
            assert record["metadata"]["split"] == shard.split
            assert record["metadata"]["provenance"]["processing_steps"][-1] == "split"
            assert record["metadata"]["content_hash"] == content_hash(record["messages"])
            seen.append(record["metadata"]["content_hash"])
        assert set(shard.families) == {json.loads(x)["metadata"]["source_family"] for x in lines}
    assert sorted(seen) == sorted(split_frame.get_column("content_hash").to_list())
    assert compiled.export == b"".join(s.data for s in compiled.shards)
    for split in SPLITS:  # shard ids are consecutive per split
        assert [s.shard_id for s in compiled.shards_of(split)] == [f"{split}_{i:03d}" for i in range(len(compiled.shards_of(split)))]


def test_manifest_figures_match_the_shards(compiled, split_frame, registry):
    m = compiled.manifest
    assert validate_manifest(m) == []
    assert m["generated_at"] == "2026-01-02T03:04:05+00:00"
    records = [json.loads(line) for s in compiled.shards for line in s.data.decode().splitlines()]
    assert m["total_conversations"] == len(records) == split_frame.height
    assert m["total_tokens_approx"] == sum(r["metadata"]["total_tokens"] for r in records)
    for split in SPLITS:
        assert m["splits"][split]["conversations"] == sum(r["metadata"]["split"] == split for r in records)
    fam_counts = pl.DataFrame([(r["metadata"]["source_family"], r["metadata"]["split"]) for r in records],
                              schema=["f", "s"], orient="row").group_by("f", "s").len()
    for fam, split, n in fam_counts.iter_rows():
        assert m["source_families"][fam]["splits"][split] == n
    for r in records:
        entry = m["provenance_map"][r["metadata"]["content_hash"]]
        assert entry["source_key"] == r["metadata"]["source_key"]
        assert entry["processing_steps"] == r["metadata"]["provenance"]["processing_steps"]
        assert entry["original_format"] == r["metadata"]["original_format"]
    assert m["holdout_families"]["edge_case_crisis"]["mode"] == "test_only"
    assert m["holdout_families"]["sarcasm"] == {
        "mode": "test_slice", "fraction": registry["sarcasm"].holdout.fraction,
        "rationale": registry["sarcasm"].holdout.rationale,
    }
    # Near-duplicates are measured across splits now; this frame had exact dedup only.
    assert (m["leakage"]["exact_overlap"], m["leakage"]["first_user_turn_overlap"]) == (0, 0)
    assert m["leakage"]["near_dup_cluster_checked"] is True and not any(m["leakage"]["holdout_violations"].values())
    assert m["split_policy"]["salt"] == "pixel-split-v1"


@pytest.mark.parametrize("breakage, expected", [
    (lambda m: m.pop("provenance_map"), "provenance_map"),
    (lambda m: m["splits"]["train"]["shards"][0].update(sha256="sha256:xyz"), "sha256"),
    (lambda m: m["splits"]["val"].update(conversations=m["splits"]["val"]["conversations"] + 1), "splits/val"),
    (lambda m: m.update(total_conversations=1), "total_conversations"),
    (lambda m: m["provenance_map"][next(iter(m["provenance_map"]))].update(processing_steps=[]), "processing_steps"),
    (lambda m: m["holdout_families"]["sarcasm"].update(mode="sometimes"), "mode"),
])
def test_validate_manifest_reports_problems(compiled, breakage, expected):
    broken = copy.deepcopy(compiled.manifest)
    breakage(broken)
    errors = validate_manifest(broken)
    assert errors and any(expected in e for e in errors), errors


def test_build_rejects_records_that_must_not_be_compiled(split_frame, registry):
    with pytest.raises(CompileError, match="assign_splits"):
        build_compiled_dataset(split_frame.drop("split"), registry)
    dup = pl.concat([split_frame, split_frame.head(2)])
    with pytest.raises(CompileError, match="2 duplicate content_hash"):
        build_compiled_dataset(dup, registry)
    review = split_frame.with_columns(
        record=pl.col("record").str.replace('"pii_status":"none_detected"', '"pii_status":"requires_review"', literal=True)
    )
    with pytest.raises(CompileError, match="requires_review") as info:
        build_compiled_dataset(review, registry)
    assert "Okay" not in str(info.value) and "{" not in str(info.value)  # counts, no content


def test_local_publish_layout_and_republish_removes_stale_shards(tmp_path, split_frame, registry):
    root = LocalDataRoot(tmp_path)
    with pytest.raises(ManifestError, match="no manifest"):
        read_manifest(root)
    big = build_compiled_dataset(split_frame, registry, shard_max_bytes=200_000)
    written = []
    key = publish_compiled_dataset(big, root, on_shard_written=lambda k, n: written.append(k))
    assert key == "final_dataset/manifest.json"
    assert written == [s.key for s in big.shards]
    assert assert_published_consistent(root) == json.loads(json.dumps(big.manifest))
    small = build_compiled_dataset(split_frame.head(500), registry, shard_max_bytes=200_000)
    assert len(small.shards) < len(big.shards)
    publish_compiled_dataset(small, root)
    assert assert_published_consistent(root)["total_conversations"] == 500


# --- S3 publication against a real S3-compatible server on loopback -------------------------


@pytest.fixture
def s3_env(monkeypatch):
    for var in list(__import__("os").environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_s3_publish_survives_a_server_killed_mid_publish(s3_env, split_frame, registry):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    from pixel_assets.lib.storage import S3AccessError
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=5),
        )
        client.create_bucket(Bucket="pixelated-training-data")
        root = S3DataRoot(client, "pixelated-training-data")
        first = build_compiled_dataset(split_frame.head(1500), registry, shard_max_bytes=150_000)
        publish_compiled_dataset(first, root)
        assert_published_consistent(root)

        second = build_compiled_dataset(split_frame, registry, shard_max_bytes=150_000)
        assert len(second.shards) > 4

        def kill_after_three(key: str, n: int) -> None:
            if n == 3:
                server.stop()

        with pytest.raises(S3AccessError) as failure:  # connection refused: the server is gone
            publish_compiled_dataset(second, root, on_shard_written=kill_after_three)
        assert isinstance(failure.value.__cause__, BotoCoreError)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        if "pixelated-training-data" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
            client.create_bucket(Bucket="pixelated-training-data")  # a server that lost its state
        # No manifest points at the half-written shards.
        with pytest.raises(ManifestError, match="no manifest"):
            read_manifest(root)
        publish_compiled_dataset(second, root)
        manifest = assert_published_consistent(root)
        assert manifest["total_conversations"] == split_frame.height
        assert manifest == json.loads(json.dumps(second.manifest))
    finally:
        server.stop()


# --- CLI -----------------------------------------------------------------------------------

def test_pixel_manifest_command(tmp_path, compiled, capsys):
    from pixel_assets.cli import main

    assert main(["manifest", "--root", str(tmp_path), "--json"]) == 1  # nothing published yet
    assert "no manifest" in capsys.readouterr().err
    publish_compiled_dataset(compiled, LocalDataRoot(tmp_path))
    assert main(["manifest", "--root", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total_conversations"] == compiled.manifest["total_conversations"]
    assert summary["splits"]["train"]["shards"] == len(compiled.shards_of("train"))
    # A tampered manifest is reported invalid.
    manifest = json.loads((tmp_path / "final_dataset/manifest.json").read_text())
    manifest["total_conversations"] += 1
    (tmp_path / "final_dataset/manifest.json").write_text(json.dumps(manifest))
    assert main(["manifest", "--root", str(tmp_path)]) == 1


def test_pixel_bench_compile_json(capsys):
    from pixel_assets.cli import main

    assert main(["bench", "compile", "--conversations", "3000", "--pii-sample", "0", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["conversations"] == 3000
    assert result["kept"] + result["removed_exact"] + result["removed_near"] == 3000
    assert sum(result["splits"].values()) == result["kept"]
    assert {"dedup", "split", "shard + manifest", "publish (local)"} <= set(result["phases"])
    assert result["peak_rss_mb"] > 0 and result["baseline"]["records"] == 3000


def test_records_without_provenance_fields_are_refused(split_frame, registry):
    # A record whose provenance lost its steps: the sampled schema check may not see it, the
    # manifest validation (one provenance_map entry per record) does.
    broken = split_frame.with_columns(
        record=pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.col("record").str.replace(r'"processing_steps":\[[^\]]*\]', '"processing_steps":[]'))
        .otherwise(pl.col("record"))
    )
    with pytest.raises(CompileError, match="processing_steps"):
        build_compiled_dataset(broken, registry, validate_sample=0)
