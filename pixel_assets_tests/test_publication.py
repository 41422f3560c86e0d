"""Verify, then publish: a compile is staged, every gate runs on the staged bytes, and only a
compile that passed them all reaches final_dataset/. A failed compile leaves the published dataset
byte for byte as it was (locally and on a loopback S3 server), its report stays readable next to
its staging folder, published shard files are never rewritten, and old versions are pruned."""

from __future__ import annotations

import io
import json

import polars as pl
import pytest

from pixel_assets.lib.compiled import build_compiled_dataset, dataset_fingerprint, read_manifest
from pixel_assets.lib.compiled.promote import (
    PromotionError,
    promote_staged_dataset,
    published_versions,
    stage_compiled_dataset,
)
from pixel_assets.lib.gates import verify_compiled_dataset
from pixel_assets.lib.gates.publication import publish_verified
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.splits import LEDGER_KEY
from pixel_assets.lib.storage import DataRoot, LocalDataRoot, S3DataRoot
from pixel_assets_tests import test_gates_helpers as h


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def _compile(registry, seed: int, defect: bool = False):
    frame = h.split_frame(h.clean_records(registry, per_family=40, seed=seed), registry)
    if defect:  # a test-only (crisis) conversation in train: the split gate fails
        frame = h.move_records(frame, lambda r: r["metadata"]["source_family"] == "edge_case_crisis", "train", limit=1)
    # One compile per second at most in practice; versions sort by this time stamp.
    return build_compiled_dataset(frame, registry, shard_max_bytes=20_000, validate_sample=None,
                                  generated_at=f"2026-11-30T10:00:{seed:02d}+00:00")


def _ledger_bytes(marker: str) -> bytes:
    buf = io.BytesIO()
    pl.DataFrame({"content_hash": [f"sha256:{marker * 64}"], "split": ["train"]}).write_parquet(buf)
    return buf.getvalue()


def snapshot(root: DataRoot) -> dict[str, bytes]:
    keys = [k for k in root.list_keys("final_dataset/") if not k.endswith("/")]
    keys += [LEDGER_KEY] if root.exists(LEDGER_KEY) else []
    return {k: root.read_bytes(k) for k in keys}


def _failed_compile_changes_nothing(root: DataRoot, registry) -> None:
    good = publish_verified(_compile(registry, 1), root, registry=registry, ledger_parquet=_ledger_bytes("a"))
    assert good.report.passed and good.promotion is not None and good.promotion.ledger_committed
    manifest = read_manifest(root)
    assert manifest["dataset_version"] == good.staged.version
    assert all(s["path"].startswith(f"data/{good.staged.version}/train/") for s in manifest["splits"]["train"]["shards"])
    # What was verified on staging is what is published: same fingerprint, and the gates pass there.
    assert dataset_fingerprint(root) == good.report.dataset_fingerprint
    assert verify_compiled_dataset(root, "final_dataset", registry=registry).passed
    assert not root.list_keys(good.staged.prefix + "/")  # the promoted staging folder is gone
    before = snapshot(root)

    bad = publish_verified(_compile(registry, 2, defect=True), root, registry=registry,
                           ledger_parquet=_ledger_bytes("b"))
    assert not bad.report.passed and bad.report.failed_gates == ["split"] and bad.promotion is None
    assert snapshot(root) == before  # manifest, every shard, report and ledger: byte for byte
    # The failed attempt's report is readable next to its staging folder.
    report = json.loads(root.read_text(bad.report_key))
    assert bad.report_key == f"{bad.staged.prefix}/verification_report.json"
    assert report["failed_gates"] == ["split"] and report["manifest"]["key"] == bad.staged.manifest_key


def test_failed_compile_leaves_the_published_dataset_unchanged_local(tmp_path, registry):
    _failed_compile_changes_nothing(LocalDataRoot(tmp_path), registry)


def test_failed_compile_leaves_the_published_dataset_unchanged_s3(s3_client, registry):
    s3_client.create_bucket(Bucket="pixel-publish")
    _failed_compile_changes_nothing(S3DataRoot(s3_client, "pixel-publish", "root"), registry)


def test_old_manifest_reads_old_bytes_and_old_versions_are_pruned(tmp_path, registry):
    root = LocalDataRoot(tmp_path)
    first = publish_verified(_compile(registry, 1), root, registry=registry, keep_versions=2)
    old_manifest = read_manifest(root)
    old_files = {e["path"]: e["sha256"] for s in old_manifest["splits"].values() for e in s["shards"]}
    second = publish_verified(_compile(registry, 3), root, registry=registry, keep_versions=2)
    assert second.promotion and second.staged.version != first.staged.version
    assert read_manifest(root)["dataset_version"] == second.staged.version
    # A reader that fetched the first manifest before the second promotion still reads its bytes.
    for path, sha in old_files.items():
        assert h.sha256_digest(root.read_bytes(f"final_dataset/{path}")) == sha
    third = publish_verified(_compile(registry, 4), root, registry=registry, keep_versions=2)
    assert published_versions(root) == sorted([second.staged.version, third.staged.version])
    assert third.promotion.pruned_versions == [first.staged.version]
    assert not any(root.exists(f"final_dataset/{path}") for path in old_files)
    assert verify_compiled_dataset(root, "final_dataset", registry=registry).passed


def test_promotion_refuses_changed_staged_bytes_and_never_rewrites_a_published_file(tmp_path, registry):
    root = LocalDataRoot(tmp_path)
    staged = stage_compiled_dataset(_compile(registry, 1), root)
    verified = verify_compiled_dataset(root, staged.prefix, registry=registry)
    assert verified.passed
    shard = next(k for k in root.list_keys(staged.prefix + "/") if k.endswith("train_000.jsonl"))
    original = root.read_bytes(shard)
    root.write_bytes(shard, original.replace(b"}\n", b"} \n", 1))  # changed after verification
    with pytest.raises(PromotionError, match="changed since it was verified"):
        promote_staged_dataset(root, staged.version, expected_fingerprint=verified.dataset_fingerprint)
    assert not root.exists("final_dataset/manifest.json")
    # A published file of the same version with other bytes is an error, not an overwrite.
    published = "final_dataset/" + shard[len(staged.prefix) + 1:]
    root.write_bytes(published, b"other bytes\n")
    with pytest.raises(PromotionError, match="never rewritten"):
        promote_staged_dataset(root, staged.version)
    assert root.read_bytes(published) == b"other bytes\n" and not root.exists("final_dataset/manifest.json")
