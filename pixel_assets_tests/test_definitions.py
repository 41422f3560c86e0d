"""The code location loads, validates, and shows one asset per registry family at every stage."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from pixel_assets.definitions import defs
from pixel_assets.lib.registry import load_registry

REPO = Path(__file__).resolve().parents[1]


def test_every_registry_family_has_its_assets():
    registry = load_registry()
    assert len(registry.families) == 19
    graph = defs().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for family in registry.names:
        for stage in ("raw", "normalized", "quarantine", "scrubbed", "pii_review"):
            assert f"{stage}/{family}" in keys, f"missing asset {stage}/{family}"
    for key in ("quarantine", "coverage_report", "pii_review_queue", "deduplicated", "dedup_removed",
                "split_assignment", "leakage_report", "compiled_dataset", "dataset_accounting"):
        assert key in keys, f"missing asset {key}"


def test_dagster_definitions_validate_cli():
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Validation successful" in proc.stderr + proc.stdout


def test_resources_switch_to_s3_by_environment(monkeypatch):
    monkeypatch.setenv("PIXEL_S3_BUCKET", "some-bucket")
    monkeypatch.setenv("PIXEL_S3_PREFIX", "nightly")
    resources = defs().resources
    data_root = resources["data_root"]
    assert data_root.s3_bucket == "some-bucket" and data_root.s3_prefix == "nightly"
    assert isinstance(resources["io_manager"], dg.ConfigurableIOManager)
