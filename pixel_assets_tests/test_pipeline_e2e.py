"""`pixel demo` end to end: the whole asset graph on the demo data, recorded in a real instance.

One run, several properties: every record accounted for, all eight gates pass, the manifest is
where the summary says, and no planted PII value appears anywhere in the event log (logs,
materialization metadata, check metadata).
"""

import json
from pathlib import Path

import dagster as dg
import pytest

from dagster._serdes import serialize_value

from pixel_assets.cli import main
from pixel_assets.lib.demo_data import load_plan
from pixel_assets.lib.storage import LocalDataRoot
from pixel_assets.defs.keys import raw_key


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(tmp / "dagster_home"))
    mp.setenv("PIXEL_CACHE_DIR", str(tmp / "cache"))
    (tmp / "dagster_home").mkdir()
    mp.chdir(tmp)
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # The data half; the training chain has its own end-to-end test (test_training_chain.py).
        code = main(["demo", "--root", str(tmp / "root"), "--scale", "0.25", "--no-train"])
    instance = dg.DagsterInstance.get()
    yield {"code": code, "stdout": out.getvalue(), "root": LocalDataRoot(tmp / "root"), "instance": instance}
    instance.dispose()
    mp.undo()


def test_demo_succeeds_and_prints_summary(demo_run):
    assert demo_run["code"] == 0, demo_run["stdout"][-3000:]
    stdout = demo_run["stdout"]
    assert "per-family accounting" in stdout
    assert "final_dataset/manifest.json" in stdout
    assert "dagster dev" in stdout


def test_every_record_accounted_for(demo_run):
    """Against what the demo wrote (its plan), not against the pipeline's own sums: per family, the
    records written = quarantined + removed as duplicates + waiting for review + held out of test
    + published, and the quarantine reasons are the ones planted."""
    import polars as pl

    instance = demo_run["instance"]
    root = demo_run["root"]
    event = instance.get_latest_materialization_event(dg.AssetKey("dataset_accounting"))
    assert event.asset_materialization.metadata["balanced"].value is True
    plan = load_plan(root)
    manifest = json.loads(root.read_text("final_dataset/manifest.json"))
    published = {f: v["conversations"] for f, v in manifest["source_families"].items()}
    frames = {name: pl.read_parquet(root.local_path(f"assets/{name}.parquet"))
              for name in ("quarantine", "dedup_removed", "pii_review_queue", "held_out_of_test")}

    def count(name: str, family: str) -> int:
        frame = frames[name]
        return frame.filter(pl.col("source_family") == family).height if frame.height else 0

    for family, fam_plan in plan.families.items():
        if family == "nemotron_generic":  # disabled in the registry
            continue
        ends = (count("quarantine", family) + count("dedup_removed", family) + count("pii_review_queue", family)
                + count("held_out_of_test", family) + published.get(family, 0))
        assert ends == fam_plan.records_written, (family, ends, fam_plan.records_written)
        assert count("quarantine", family) == sum(fam_plan.malformed.values()), family


def test_all_eight_gates_pass_on_a_clean_demo(demo_run):
    instance = demo_run["instance"]
    records = instance.get_records_for_run(
        run_id=instance.get_runs(limit=1)[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    gates = {e.check_name: e.passed for e in evaluations if e.asset_key == dg.AssetKey("compiled_dataset")}
    assert len(gates) == 8 and all(gates.values()), gates
    assert [e.passed for e in evaluations if e.asset_key == dg.AssetKey("dataset_accounting")] == [True]
    # the detector's own targets (a WARN check on pii_detector_evaluation) are met too
    detector = [e.passed for e in evaluations if e.asset_key == dg.AssetKey("pii_detector_evaluation")]
    assert detector == [True]
    manifest = json.loads(demo_run["root"].read_text("final_dataset/manifest.json"))
    assert manifest["total_conversations"] > 0 and manifest["dataset_version"]
    # Published through staging: the version's files are under final_dataset/data/<version>/.
    assert all(e["path"].startswith(f"data/{manifest['dataset_version']}/")
               for split in manifest["splits"].values() for e in split["shards"])


def test_no_planted_pii_in_event_log_or_metadata(demo_run):
    instance = demo_run["instance"]
    plan = load_plan(demo_run["root"])
    allowed = {n.lower() for n in plan.allow_listed_names}
    planted = {v for values in plan.pii.values() for v in values if len(v) >= 6 and v.lower() not in allowed}
    assert len(planted) > 20
    run_id = instance.get_runs(limit=1)[0].run_id
    dump = "\n".join(
        serialize_value(entry)
        for entry in instance.all_logs(run_id)
    )
    assert "ASSET_MATERIALIZATION" in dump  # the dump really holds the metadata ...
    assert "| PERSON |" in dump  # ... including the scrubbed assets' replaced-by-entity-type tables
    assert "<PERSON_1>" not in dump  # text previews are opt-in: no scrubbed text in metadata by default
    leaked = sorted(v for v in planted if v in dump)
    assert not leaked, f"{len(leaked)} planted PII values found in the event log"


def test_no_planted_person_or_location_in_any_published_shard(demo_run):
    root = demo_run["root"]
    plan = load_plan(root)
    allowed = {n.lower() for n in plan.allow_listed_names}
    planted = {v for kind in ("PERSON", "LOCATION", "STREET_ADDRESS") for v in plan.pii.get(kind, [])
               if len(v) >= 4 and v.lower() not in allowed}
    assert len(planted) > 20
    shards = [k for k in root.list_keys("final_dataset/data/") if k.endswith(".jsonl")]
    assert shards
    text = "\n".join(root.read_text(k) for k in shards)
    leaked = sorted(v for v in planted if v in text)
    assert not leaked, f"{len(leaked)} of {len(planted)} planted names/addresses are in the published shards"


def _where_is_each_record(root: LocalDataRoot) -> dict[tuple[str, str], dict]:
    """(source key relative to the root, location) -> {stage, split} for every valid record."""
    import polars as pl

    prefix = root.uri("") + "/"
    placed: dict[tuple[str, str], dict] = {}
    for asset, stage in (("split_assignment", "compiled"), ("dedup_removed", None), ("pii_review_queue", "review")):
        frame = pl.read_parquet(root.local_path(f"assets/{asset}.parquet"))
        for row in frame.iter_rows(named=True):
            meta = json.loads(row["record"])["metadata"]
            where = (meta["source_key"].removeprefix(prefix), meta["source_location"])
            placed[where] = {"stage": stage or row["reason"], "split": row.get("split")}
    return placed


def test_planted_duplicates_found_and_same_questions_share_a_split(demo_run):
    plan = load_plan(demo_run["root"])
    placed = _where_is_each_record(demo_run["root"])
    ref = lambda r: placed[(r["key"], r["location"])]  # noqa: E731

    assert plan.exact_duplicate_groups and plan.near_duplicate_pairs and plan.same_question_pairs
    for group in plan.exact_duplicate_groups:
        stages = [ref(m)["stage"] for m in group["members"] if ref(m)["stage"] != "review"]
        assert stages.count("compiled") == 1, (group["group"], stages)
        # removed as a duplicate (a member that also sits in a near-dup cluster whose kept record
        # has another hash is removed as a near duplicate: still found)
        assert all(s in ("duplicate_removed", "near_duplicate_removed") for s in stages if s != "compiled"), (
            group["group"], stages)
    for pair in plan.near_duplicate_pairs:
        stages = sorted(ref(pair[s])["stage"] for s in ("a", "b"))
        if "review" in stages:
            continue
        assert stages[0] == "compiled" and stages[1] in ("near_duplicate_removed", "duplicate_removed"), (pair["pair"], stages)
    for pair in plan.same_question_pairs:
        a, b = ref(pair["a"]), ref(pair["b"])
        if a["stage"] == b["stage"] == "compiled":
            assert a["split"] == b["split"], pair["pair"]


def test_ui_metadata_is_labelled_and_readable(demo_run):
    """What a reviewer reads in the UI: row counts, links, labelled tables, settings as text."""
    instance = demo_run["instance"]

    def metadata(*key: str) -> dict:
        return instance.get_latest_materialization_event(dg.AssetKey(list(key))).asset_materialization.metadata

    compiled = metadata("compiled_dataset")
    assert compiled["dagster/row_count"].value == compiled["total_conversations"].value > 0
    assert isinstance(compiled["manifest_uri"], dg.UrlMetadataValue)
    assert compiled["by_family"].value.startswith("| family | train | val | test | total |")
    leakage = metadata("leakage_report")
    assert leakage["ok"].value is True
    assert (leakage["exact_overlap"].value, leakage["first_user_turn_overlap"].value,
            leakage["near_dup_cluster_overlap"].value, leakage["holdout_violations"].value) == (0, 0, 0, 0)
    # near_dup_cluster_overlap is measured (MinHash over the assigned records), not zero by construction:
    # test_splits.test_leakage_report_measures_near_duplicates_across_splits makes it fail.
    assert "| family | records | held_out_records |" in leakage["holdout_slices"].value
    splits = metadata("split_assignment")
    assert splits["by_family"].value.startswith("| source_family | train | val | test |")
    assert splits["groups_new"].value == splits["groups"].value > 0  # a fresh data root: no history
    dedup = metadata("deduplicated")
    assert isinstance(dedup["near_dup_threshold"].value, str)  # a setting, not a series to plot
    assert dedup["exact_duplicates_removed"].value > 0 and dedup["near_duplicates_removed"].value > 0
    assert "| family | input | kept |" in dedup["per_family"].value
    quarantine = metadata("quarantine")
    header = quarantine["by_family_and_reason"].value.splitlines()[0]
    assert header.startswith("| source_family |") and "invalid_json" in header and "len" not in header
    removed = metadata("dedup_removed")
    assert removed["by_family_and_reason"].value.splitlines()[0] == "| source_family | reason | records |"
    coverage = metadata("coverage_report")
    assert "| family | normalized_records |" in coverage["families"].value
    from pixel_assets.definitions import defs

    specs = {spec.key: spec for spec in defs().resolve_all_asset_specs()}
    assert specs[raw_key("cptsd")].tags.get("family") == "cptsd"


def test_demo_run_is_listed_under_its_named_job(demo_run):
    """The UI lists the demo's run under compile_dataset, not the implicit __ASSET_JOB."""
    [run] = demo_run["instance"].get_runs(limit=1)
    assert run.job_name == "compile_dataset"
