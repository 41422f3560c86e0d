"""The gates as blocking asset checks on the staged compile, published_dataset and the training
guard, with a stand-in compiled_dataset (staging like the real one) and a stand-in training asset:
a failed gate stops publication and training in the same run AND in a later run that selects only
one of them; after a fixed re-compile passes, it is published and training runs."""


import json

import dagster as dg
import pytest

from pixel_assets.defs.compile.assets import accounting_balanced
from pixel_assets.defs.gates.checks import verification_gates, verification_report
from pixel_assets.defs.guard import gate_problems, require_passed_gates
from pixel_assets.defs.keys import DATASET_VERSION_KEY
from pixel_assets.defs.publish.assets import published_dataset
from pixel_assets.defs.storage.resources import DataRootResource
from pixel_assets.lib.compiled import dataset_fingerprint
from pixel_assets.lib.gates import GATE_NAMES
from pixel_assets.lib.registry import load_registry
from pixel_assets_tests import test_gates_helpers as h


class StandInCompileConfig(dg.Config):
    plant_holdout_in_train: bool = False
    seed: int = 7


@dg.asset(name="compiled_dataset")
def compiled_dataset_stand_in(context: dg.AssetExecutionContext, config: StandInCompileConfig,
                              data_root: DataRootResource) -> dict:
    root = data_root.root()
    edit = None
    if config.plant_holdout_in_train:  # the defect: a test-only (crisis) conversation in train
        edit = lambda f: h.move_records(f, lambda r: r["metadata"]["source_family"] == "edge_case_crisis", "train", limit=1)  # noqa: E731
    staged = h.stage_clean_dataset(root, load_registry(), edit=edit, seed=config.seed)
    context.add_output_metadata({DATASET_VERSION_KEY: staged.version})
    return json.loads(root.read_text(staged.manifest_key))


@dg.asset(name="dataset_accounting", deps=["compiled_dataset"])
def accounting_stand_in() -> dict:
    return {"balanced": True, "unbalanced": [], "totals": {}}


@dg.asset(deps=["published_dataset"])
def train_stage_stand_in(context: dg.AssetExecutionContext, data_root: DataRootResource) -> None:
    require_passed_gates(context, data_root.root())
    data_root.root().write_text("trained.marker", context.run_id)


ALL = [compiled_dataset_stand_in, accounting_stand_in, accounting_balanced, verification_gates, published_dataset,
       verification_report, train_stage_stand_in]
PUBLISH = [compiled_dataset_stand_in, accounting_stand_in, accounting_balanced, verification_gates, published_dataset]


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


def published_snapshot(root) -> dict[str, bytes]:
    keys = [k for k in root.list_keys("final_dataset/") if not k.endswith("/")]
    return {k: root.read_bytes(k) for k in keys}


def staged_report(root, result: dg.ExecuteInProcessResult) -> dict:
    mat = next(e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "compiled_dataset")
    version = mat.materialization.metadata[DATASET_VERSION_KEY].value
    return json.loads(root.read_text(f"staging/{version}/verification_report.json"))


def test_failed_gate_blocks_publication_and_training_in_same_and_later_run_until_fixed(env):
    instance, _, root = env
    # 1. A compile with a defect: the split gate fails on the STAGED bytes, the run fails, nothing
    #    is published and training is skipped.
    first = run(env, defect=True)
    assert not first.success
    verdicts = check_verdicts(first)
    assert set(verdicts) == set(GATE_NAMES)  # accounting, downstream of compiled_dataset, is skipped too
    assert [g for g, ok in verdicts.items() if not ok] == ["split"]
    assert "compiled_dataset" in materialized(first)
    assert not {"published_dataset", "train_stage_stand_in"} & materialized(first)
    assert not root.exists("final_dataset/manifest.json") and not root.exists("trained.marker")
    # The failed attempt's report is readable next to its staging folder.
    assert staged_report(root, first)["failed_gates"] == ["split"]

    # 2. Later runs that select only publication or only training: both refuse, naming the gate.
    publish_alone = run(env, selection=[published_dataset])
    assert not publish_alone.success
    assert "not publishing" in step_failure_message(publish_alone, "published_dataset")
    assert not root.exists("final_dataset/manifest.json")
    later = run(env, selection=[train_stage_stand_in])
    assert not later.success
    message = step_failure_message(later, "train_stage_stand_in")
    assert "refusing to train" in message and "split" in message and "coverage" not in message.split("(")[1]
    assert not root.exists("trained.marker")
    assert list(gate_problems(instance)) == ["split"]

    # 3. A fixed re-compile passes all eight gates and is published; training then runs alone.
    fixed = run(env, selection=PUBLISH)
    assert fixed.success and all(check_verdicts(fixed).values()) and "published_dataset" in materialized(fixed)
    assert gate_problems(instance) == {}
    assert json.loads(root.read_text("final_dataset/verification_report.json"))["passed"] is True
    alone = run(env, selection=[train_stage_stand_in])
    assert alone.success and "train_stage_stand_in" in materialized(alone)
    assert root.read_text("trained.marker") == alone.run_id

    # 4. A later compile that fails a gate leaves the published dataset byte for byte as it was.
    before = published_snapshot(root)
    again = run(env, defect=True)
    assert not again.success and "published_dataset" not in materialized(again)
    assert published_snapshot(root) == before


def test_full_clean_run_publishes_trains_and_reports(env):
    instance, _, root = env
    result = run(env)
    assert result.success
    assert {"compiled_dataset", "published_dataset", "verification_report", "train_stage_stand_in"} <= materialized(result)
    report_mat = next(e for e in result.get_asset_materialization_events()
                      if e.asset_key.to_user_string() == "verification_report")
    metadata = report_mat.materialization.metadata
    assert metadata["passed"].value is True and metadata["gates_passed"].value == 8
    report = json.loads(root.read_text("final_dataset/verification_report.json"))
    assert report["manifest"]["key"] == "final_dataset/manifest.json"
    assert report["manifest"]["staged_as"].startswith("staging/")
    assert metadata["manifest_sha256"].value == report["manifest"]["sha256"]
    assert metadata["source"].value.startswith("gate checks' report")  # not verified a second time
    # Each check carries its figures and a markdown table for the UI.
    evaluation = next(e.event_specific_data for e in result.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.event_specific_data.check_name == "coverage")
    assert "| family | conversations | status |" in evaluation.metadata["report"].value
    assert evaluation.metadata["present"].value == len(load_registry().required)


def test_guard_refuses_when_checks_are_stale_missing_or_not_promoted(env):
    instance, _, root = env
    # Never evaluated at all.
    never = run(env, selection=COMPILE_ONLY_THEN_TRAIN)
    assert "compiled_dataset" in materialized(never) and not check_verdicts(never)
    assert not never.success
    assert "never evaluated" in step_failure_message(never, "train_stage_stand_in")
    # Verified on staging but not promoted: not what final_dataset/ holds.
    assert run(env, selection=[compiled_dataset_stand_in, verification_gates]).success
    assert gate_problems(instance) == {}
    unpromoted = run(env, selection=[train_stage_stand_in])
    assert not unpromoted.success and "not promoted" in step_failure_message(unpromoted, "train_stage_stand_in")
    # Gates passed on an earlier materialization; compiled_dataset re-materialized without its checks.
    assert run(env, selection=PUBLISH).success
    assert run(env, selection=COMPILE_ONLY).success
    problems = gate_problems(instance)
    assert set(problems) == set(GATE_NAMES)
    assert all("earlier materialization" in why for why in problems.values())
    stale = run(env, selection=[train_stage_stand_in])
    assert not stale.success and not root.exists("trained.marker")


def test_guard_refuses_when_the_published_bytes_changed_after_the_gates(env):
    """The gates passed and the dataset was published, then a shard was replaced on storage (same
    manifest): not trained on."""
    instance, _, root = env
    assert run(env, selection=PUBLISH).success
    assert gate_problems(instance, current_fingerprint=dataset_fingerprint(root)) == {}
    shards = sorted(k for k in root.list_keys("final_dataset/data/") if k.endswith(".jsonl"))
    test_key = next(k for k in shards if "/test/" in k)
    train_key = next(k for k in shards if "/train/" in k)
    root.write_bytes(train_key, root.read_bytes(test_key))
    problems = gate_problems(instance, current_fingerprint=dataset_fingerprint(root))
    assert set(problems) == set(GATE_NAMES) and all("changed since" in why for why in problems.values())
    tampered = run(env, selection=[train_stage_stand_in])
    assert not tampered.success and not root.exists("trained.marker")
    assert "published dataset changed" in step_failure_message(tampered, "train_stage_stand_in")
