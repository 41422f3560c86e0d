"""`pixel verify`: the same gates outside Dagster, on a local directory or an S3 prefix."""

from __future__ import annotations

import json
import shutil

import pytest

from pixel_assets.cli import main
from pixel_assets.lib.gates import GATE_NAMES
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot, S3DataRoot
from pixel_assets_tests import test_gates_helpers as h


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("clean_cli")
    h.build_clean_dataset(LocalDataRoot(path), load_registry())
    return path


def test_verify_clean_dataset_dir_passes(clean_dir, capsys):
    assert main(["verify", str(clean_dir / "final_dataset")]) == 0
    out = capsys.readouterr().out
    assert "8/8 gates passed" in out and out.count("[PASS]") == 8


def test_verify_json_on_data_root_with_failed_gate(clean_dir, tmp_path, capsys):
    shutil.copytree(clean_dir, tmp_path / "root")
    root = LocalDataRoot(tmp_path / "root")
    manifest = h.read_manifest(root)
    manifest["total_tokens_approx"] += 1
    h.write_manifest(root, manifest)
    # The data root (not the dataset dir) is accepted too: final_dataset/ is found under it.
    assert main(["verify", str(tmp_path / "root"), "--json", "--write-report"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed_gates"] == ["stats"] and set(report["gates"]) == set(GATE_NAMES)
    assert report["manifest"]["key"] == "final_dataset/manifest.json"
    assert json.loads(root.read_text("final_dataset/verification_report.json"))["failed_gates"] == ["stats"]


def test_verify_without_manifest_exits_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1 and "pixel verify: error: no manifest.json" in err  # one error line


def test_verify_missing_path_is_one_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    out, err = capsys.readouterr()
    assert not out and err.count("\n") == 1 and "nowhere: no such directory" in err


def test_verify_s3_prefix(clean_dir, s3_client, s3_server, capsys):
    s3_client.create_bucket(Bucket="pixelated-training-data")
    remote = S3DataRoot(s3_client, "pixelated-training-data", "nightly")
    local = LocalDataRoot(clean_dir)
    for key in local.list_keys("final_dataset/"):
        remote.write_bytes(key, local.read_bytes(key))
    uri = "s3://pixelated-training-data/nightly/final_dataset"
    assert main(["verify", uri, "--endpoint-url", s3_server]) == 0
    out = capsys.readouterr().out
    assert "8/8 gates passed" in out and uri + "/manifest.json" in out
    # A byte changed on S3 (in an assistant turn: a changed first user turn would also make a new
    # split group) fails the hash gate only.
    key = "final_dataset/val/val_000.jsonl"
    remote.write_bytes(key, remote.read_bytes(key).replace(b'"role":"assistant","content":"', b'"role":"assistant","content":"x', 1))
    assert main(["verify", uri, "--endpoint-url", s3_server, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["failed_gates"] == ["hash"]


def test_bench_verify_small(capsys):
    assert main(["bench", "verify", "--conversations", "400", "--repeats", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["passed"]) == set(GATE_NAMES)
    assert result["conversations_compiled"] > 300 and result["baseline_read_parse_s"] > 0
    ratio = result["verify_total_s"] / result["baseline_read_parse_s"]
    assert result["ratio_verify_to_baseline"] == pytest.approx(ratio, rel=0.02)
