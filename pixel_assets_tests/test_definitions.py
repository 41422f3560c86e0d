"""The code location loads, validates, and shows one asset per registry family at every stage."""

import json
import os
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


def test_loading_the_definitions_leaves_the_environment_unchanged():
    """A fresh process: importing the code location and building every definition (the training
    resources included) sets, changes and removes no environment variable. (Libraries that set one
    when imported, like polars' allocator setting, are imported before the snapshot.)"""
    script = ("import json, os, dagster, polars; before = dict(os.environ)\n"
              "from pixel_assets.definitions import defs; defs().resolve_asset_graph()\n"
              "after = dict(os.environ)\n"
              "print(json.dumps(sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_wandb_is_offline_unless_online_is_configured_with_a_key():
    from pixel_assets.defs.training.settings import wandb_resource_from_env

    for env in ({}, {"WANDB_API_KEY": "k"}, {"WANDB_MODE": "online"}, {"WANDB_MODE": "offline", "WANDB_API_KEY": "k"}):
        with dg.build_resources({"wandb": wandb_resource_from_env(env)}) as resources:
            assert resources.wandb == {"sdk": None, "mode": "offline"}, env
    online = wandb_resource_from_env({"WANDB_MODE": "online", "WANDB_API_KEY": "k"})
    assert online.config_schema is not None and "offline" not in (online.description or "")
