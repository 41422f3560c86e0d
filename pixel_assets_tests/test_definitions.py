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
            assert f"{stage}/{family}_{stage}" in keys, f"missing asset {stage}/{family}_{stage}"
    for key in ("quarantine", "coverage_report", "pii_review_queue", "deduplicated", "dedup_removed",
                "split_assignment", "leakage_report", "compiled_dataset", "dataset_accounting"):
        assert key in keys, f"missing asset {key}"


def duplicate_labels(keys) -> dict[str, list[str]]:
    """Last key parts (what a lineage-graph node shows) shared by more than one asset."""
    by_label: dict[str, list[str]] = {}
    for key in keys:
        by_label.setdefault(key.path[-1], []).append(key.to_user_string())
    return {label: sorted(k) for label, k in by_label.items() if len(k) > 1}


def test_no_two_assets_share_the_last_part_of_their_key(monkeypatch):
    """The lineage graph shows only a node's last key part: it must tell the assets apart, in the
    default curriculum and in the demo profile (the training assets differ)."""
    from pixel_assets.defs.training import settings as s

    for profile in (None, "demo"):
        if profile:
            monkeypatch.setenv("PIXEL_CURRICULUM_PROFILE", profile)
        keys = list(defs().resolve_asset_graph().get_all_asset_keys())
        assert len(keys) > 100 and duplicate_labels(keys) == {}, duplicate_labels(keys)
    # The check catches what the graph used to show: three assets reading "stage7_roleplay".
    planted = [dg.AssetKey(["stage_data", "stage7_roleplay"]), dg.AssetKey(["checkpoints", "stage7_roleplay"])]
    assert duplicate_labels(planted) == {"stage7_roleplay": ["checkpoints/stage7_roleplay", "stage_data/stage7_roleplay"]}
    assert s.asset_label(s.stage_data_key("stage7_roleplay")) == "stage7_roleplay_data"
    assert s.asset_label(s.checkpoint_key("stage7_roleplay")) == "stage7_roleplay_checkpoint"


def test_groups_are_named_for_a_reviewer():
    graph = defs().resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert groups == {"sources", "data", "verification", "reports", "training"}


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
