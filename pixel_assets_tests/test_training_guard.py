"""The gates as blocking asset checks and the training guard, with a stand-in compiled_dataset and a
stand-in training asset: a failed gate stops training in the same run AND in a later run that
selects only the training asset; after a fixed re-compile passes, training runs."""


import json

import dagster as dg
import pytest

from pixel_assets.defs.gates.checks import verification_gates, verification_report
from pixel_assets.defs.gates.guard import gate_problems, require_passed_gates
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.compiled import dataset_fingerprint
from pixel_assets.lib.gates import GATE_NAMES
from pixel_assets.lib.registry import load_registry
from pixel_assets_tests import test_gates_helpers as h


class StandInCompileConfig(dg.Config):
    plant_holdout_in_train: bool = False


@dg.asset(name="compiled_dataset")
def compiled_dataset_stand_in(config: StandInCompileConfig, data_root: DataRootResource) -> dict:
    root = data_root.root()
    edit = None
    if config.plant_holdout_in_train:  # the defect: a test-only (crisis) conversation in train
        edit = lambda f: h.move_records(f, lambda r: r["metadata"]["source_family"] == "edge_case_crisis", "train", limit=1)  # noqa: E731
    manifest_key = h.build_clean_dataset(root, load_registry(), edit=edit)
    return json.loads(root.read_text(manifest_key))


@dg.asset(deps=["compiled_dataset"])
def train_stage_stand_in(context: dg.AssetExecutionContext, data_root: DataRootResource) -> None:
    require_passed_gates(context, data_root.root())
    data_root.root().write_text("trained.marker", context.run_id)


ALL = [compiled_dataset_stand_in, verification_gates, verification_report, train_stage_stand_in]


@pytest.fixture
def env(tmp_path):
    (tmp_path / "dagster_home").mkdir()
    instance = dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home"))
    resources = {"data_root": DataRootResource(local_path=str(tmp_path / "data"))}
    yield instance, resources, DataRootResource(local_path=str(tmp_path / "data")).root()
    instance.dispose()


# Selecting an asset selects its checks too; these select compiled_dataset without its gates.
COMPILE_ONLY = dg.AssetSelection.assets(compiled_dataset_stand_in).without_checks()
COMPILE_ONLY_THEN_TRAIN = COMPILE_ONLY | dg.AssetSelection.assets(train_stage_stand_in)


def run(env, selection=None, defect=False):
    instance, resources, _ = env
    compiles = selection is None or isinstance(selection, dg.AssetSelection) or compiled_dataset_stand_in in selection
    config = {"compiled_dataset": StandInCompileConfig(plant_holdout_in_train=defect)} if compiles else {}
    return dg.materialize(ALL, instance=instance, resources=resources, selection=selection,
                          raise_on_error=False, run_config=dg.RunConfig(config))


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def check_verdicts(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.event_specific_data.check_name: e.event_specific_data.passed
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def step_failure_message(result: dg.ExecuteInProcessResult, step: str) -> str:
    failures = [e for e in result.all_events if e.is_step_failure and e.step_key == step]
    assert failures, f"step {step} did not fail"
    return failures[0].event_specific_data.error.message


def test_failed_gate_blocks_training_in_same_and_later_run_until_fixed(env):
    instance, _, root = env
    # 1. A compile with a defect: the split gate fails, the run fails, training is skipped.
    first = run(env, defect=True)
    assert not first.success
    verdicts = check_verdicts(first)
    assert set(verdicts) == set(GATE_NAMES)
    assert [g for g, ok in verdicts.items() if not ok] == ["split"]
    assert "compiled_dataset" in materialized(first)
    assert "train_stage_stand_in" not in materialized(first)
    assert not root.exists("trained.marker")
    # The report file exists even though the report asset was skipped with training.
    report = json.loads(root.read_text("final_dataset/verification_report.json"))
    assert report["failed_gates"] == ["split"]

    # 2. A later run that selects only the training asset: the guard refuses, naming the gate.
    later = run(env, selection=[train_stage_stand_in])
    assert not later.success
    message = step_failure_message(later, "train_stage_stand_in")
    assert "refusing to train" in message and "split" in message and "coverage" not in message.split("(")[1]
    assert not root.exists("trained.marker")
    assert list(gate_problems(instance)) == ["split"]

    # 3. A fixed re-compile passes all eight gates; training then runs (same run and alone).
    fixed = run(env, selection=[compiled_dataset_stand_in, verification_gates, verification_report])
    assert fixed.success and all(check_verdicts(fixed).values())
    assert gate_problems(instance) == {}
    assert json.loads(root.read_text("final_dataset/verification_report.json"))["passed"] is True
    alone = run(env, selection=[train_stage_stand_in])
    assert alone.success and "train_stage_stand_in" in materialized(alone)
    assert root.read_text("trained.marker") == alone.run_id


def test_full_clean_run_trains_and_reports(env):
    instance, _, root = env
    result = run(env)
    assert result.success
    assert {"compiled_dataset", "verification_report", "train_stage_stand_in"} <= materialized(result)
    report_mat = next(e for e in result.get_asset_materialization_events()
                      if e.asset_key.to_user_string() == "verification_report")
    metadata = report_mat.materialization.metadata
    assert metadata["passed"].value is True and metadata["gates_passed"].value == 8
    manifest_sha = json.loads(root.read_text("final_dataset/verification_report.json"))["manifest"]["sha256"]
    assert metadata["manifest_sha256"].value == manifest_sha
    assert metadata["source"].value.startswith("gate checks' report")  # not verified a second time
    # Each check carries its figures and a markdown table for the UI.
    evaluation = next(e.event_specific_data for e in result.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "coverage")
    assert "| family | conversations | status |" in evaluation.metadata["report"].value
    assert evaluation.metadata["present"].value == len(load_registry().required)


def test_guard_refuses_when_checks_are_stale_or_missing(env):
    instance, _, root = env
    # Never evaluated at all.
    never = run(env, selection=COMPILE_ONLY_THEN_TRAIN)
    assert "compiled_dataset" in materialized(never) and not check_verdicts(never)
    assert not never.success
    assert "never evaluated" in step_failure_message(never, "train_stage_stand_in")
    # Gates passed on an earlier materialization; compiled_dataset re-materialized without its checks.
    assert run(env, selection=[compiled_dataset_stand_in, verification_gates]).success
    assert gate_problems(instance) == {}
    assert run(env, selection=COMPILE_ONLY).success
    problems = gate_problems(instance)
    assert set(problems) == set(GATE_NAMES)
    assert all("earlier materialization" in why for why in problems.values())
    stale = run(env, selection=[train_stage_stand_in])
    assert not stale.success and not root.exists("trained.marker")


def test_guard_refuses_when_the_published_bytes_changed_after_the_gates(env):
    """The gates passed, then a shard was replaced on storage (same manifest): not trained on."""
    instance, _, root = env
    assert run(env, selection=[compiled_dataset_stand_in, verification_gates]).success
    assert gate_problems(instance, current_fingerprint=dataset_fingerprint(root)) == {}
    key = "final_dataset/test/test_000.jsonl"
    root.write_bytes("final_dataset/train/train_000.jsonl", root.read_bytes(key))
    problems = gate_problems(instance, current_fingerprint=dataset_fingerprint(root))
    assert set(problems) == set(GATE_NAMES) and all("changed since" in why for why in problems.values())
    tampered = run(env, selection=[train_stage_stand_in])
    assert not tampered.success and not root.exists("trained.marker")
    assert "published dataset changed" in step_failure_message(tampered, "train_stage_stand_in")
