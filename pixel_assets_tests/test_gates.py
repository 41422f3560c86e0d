"""The eight verification gates (SPEC §6): a clean compile passes all of them, and each planted
defect fails exactly its own gate with a message that names the defect and the offending ids."""

from __future__ import annotations

import json
import shutil

import pytest

from pixel_assets.lib import contract, gates
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot
from pixel_assets_tests import test_gates_helpers as h


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory, registry):
    path = tmp_path_factory.mktemp("clean")
    h.build_clean_dataset(LocalDataRoot(path), registry)
    return path


@pytest.fixture
def root(clean_dir, tmp_path):
    """A private copy of the clean compiled dataset, to plant one defect in."""
    shutil.copytree(clean_dir, tmp_path / "root")
    return LocalDataRoot(tmp_path / "root")


def only_failure(report: gates.VerificationReport, gate: str) -> gates.GateResult:
    assert report.failed_gates == [gate], {g.name: g.message for g in report.gates if not g.passed}
    result = report.gate(gate)
    assert result.offender_count >= 1 and result.offenders
    return result


def test_clean_compile_passes_all_eight_gates(root, registry):
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert [g.name for g in report.gates] == list(gates.GATE_NAMES)
    assert report.passed, {g.name: g.message for g in report.gates if not g.passed}
    manifest_bytes = root.read_bytes("final_dataset/manifest.json")
    assert report.manifest_sha256 == contract.sha256_digest(manifest_bytes)
    assert report.manifest_generated_at == json.loads(manifest_bytes)["generated_at"]
    # Figures are recomputed from the shards.
    n_lines = sum(len(root.read_text(k).splitlines()) for k in root.glob("final_dataset/*/*_[0-9][0-9][0-9].jsonl"))
    assert report.gate("hash").figures["records"] == n_lines
    assert report.gate("coverage").figures["present"] == len(registry.required)


def test_coverage_fails_on_missing_required_family(tmp_path, registry):
    records = [r for r in h.clean_records(registry) if r["metadata"]["source_family"] != "cptsd"]
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, records=records)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "coverage")
    assert "missing required families: 1" in result.message
    assert result.offenders[0].startswith("cptsd")
    assert {row["family"]: row["status"] for row in result.table}["cptsd"] == "missing"


def test_coverage_partial_family_passes_but_is_flagged(tmp_path, registry):
    records = [r for r in h.clean_records(registry)
               if r["metadata"]["source_family"] != "addiction" or r["metadata"]["source_location"] in ("line 1", "line 2")]
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, records=records)
    report = gates.verify_compiled_dataset(root, registry=registry, config=gates.GateConfig(min_present=10, min_partial=1))
    assert report.gate("coverage").passed
    assert "partial: addiction" in report.gate("coverage").message
    strict = gates.verify_compiled_dataset(root, registry=registry, config=gates.GateConfig(min_present=10, min_partial=5))
    assert not strict.gate("coverage").passed


def test_leakage_fails_on_conversation_copied_into_val(tmp_path, registry):
    records = h.clean_records(registry)
    original = records[0]
    # The same conversation again with one word of the answer changed: a new content hash, the same
    # first user turn, the same near-duplicate cluster; planted into val.
    copy = h.make_record(original["metadata"]["source_family"], 999, registry,
                         original["messages"][1]["content"], original["messages"][2]["content"] + " again")

    def plant(frame):
        frame = h.move_records(frame, lambda r: r["metadata"]["content_hash"] == original["metadata"]["content_hash"], "train")
        return h.add_record_like(frame, original["metadata"]["content_hash"], copy, "val")

    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, records=records, edit=plant)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "leakage")
    assert "first user turns in several splits: 1" in result.message
    assert "near-duplicate clusters in several splits: 1" in result.message
    assert result.figures["first_user_turns_in_several_splits"] == 1
    assert any("train+val" in o for o in result.offenders)
    assert original["messages"][1]["content"] not in json.dumps(result.to_dict())  # ids, never text


def test_distribution_fails_on_skewed_split(tmp_path, registry):
    non_holdout = {f.name for f in registry.families if f.holdout.mode == "none"}
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, edit=lambda f: h.move_records(
        f, lambda r: r["metadata"]["source_family"] in non_holdout and r["metadata"]["split"] == "train", "val", limit=120))
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert report.failed_gates == ["distribution"], {g.name: g.message for g in report.gates if not g.passed}
    result = report.gate("distribution")
    assert "val share" in result.message and "outside 0.03-0.07" in result.message
    assert result.figures["val_share"] > 0.07


def test_pii_fails_on_email_left_in_a_shard(tmp_path, registry):
    records = h.clean_records(registry)
    leaked = h.make_record("cptsd", 500, registry, "please write to me at jane.roe@example.org tonight",
                           records[5]["messages"][2]["content"] + " ok")
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, records=records + [leaked])
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "pii")
    assert "records with structured PII: 1" in result.message
    assert "EMAIL_ADDRESS" in result.offenders[0] and leaked["metadata"]["content_hash"][:23] in result.offenders[0]
    assert "jane.roe" not in json.dumps(result.to_dict())


def test_pii_fails_on_requires_review_record(root, registry):
    rid = h.edit_first_record(root, "train", lambda r: r["metadata"].update(pii_status="requires_review"), reseal=True)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "pii")
    assert "requires_review records in shards: 1" in result.message
    assert result.offenders[0].startswith(rid)


def test_provenance_fails_on_empty_field(root, registry):
    rid = h.edit_first_record(root, "val", lambda r: r["metadata"]["provenance"].update(original_s3_key=""), reseal=True)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "provenance")
    assert "records with empty/missing provenance fields: 1" in result.message
    assert len(result.offenders) == 1
    assert result.offenders[0].startswith(rid + " sha256:") and result.offenders[0].endswith(": original_s3_key")
    assert result.figures["missing_original_s3_key"] == 1


def test_provenance_fails_without_provenance_map_entry(root, registry):
    manifest = h.read_manifest(root)
    manifest["provenance_map"].pop(next(iter(manifest["provenance_map"])))
    h.write_manifest(root, manifest)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "provenance")
    assert "records without a provenance_map entry: 1" in result.message


def test_hash_fails_on_tampered_shard_byte(root, registry):
    key = "final_dataset/test/test_000.jsonl"
    data = bytearray(root.read_bytes(key))
    # Flip one letter inside the first record's last message (the assistant answer).
    pos = data.index(b'"role":"assistant","content":"') + len(b'"role":"assistant","content":"') + 2
    data[pos] = ord("x") if data[pos] != ord("x") else ord("y")
    root.write_bytes(key, bytes(data))
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "hash")
    assert "content hash mismatches: 1" in result.message
    assert "shard sha256/count/size mismatches: 1" in result.message
    assert result.offenders[0].startswith("test/test_000.jsonl:1 stored sha256:")


def test_hash_fails_on_missing_shard(root, registry):
    root.delete("final_dataset/val/val_000.jsonl")
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert "hash" in report.failed_gates
    assert "manifest shards missing: 1" in report.gate("hash").message


def test_split_fails_on_holdout_conversation_in_train(tmp_path, registry):
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, edit=lambda f: h.move_records(
        f, lambda r: r["metadata"]["source_family"] == "edge_case_crisis", "train", limit=1))
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "split")
    assert "test-only family records outside test: 1" in result.message
    assert "(edge_case_crisis)" in result.offenders[0] and result.offenders[0].startswith("train/")


def test_split_fails_on_holdout_slice_record_in_val(tmp_path, registry):
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, edit=lambda f: h.move_records(
        f, lambda r: r["metadata"]["source_family"] == "sarcasm" and r["metadata"]["holdout"] == "slice", "val", limit=1))
    # Also strip the stored marker: the gate recomputes slice membership itself.
    h.edit_first_record(root, "val", lambda r: r["metadata"].update(holdout="none")
                        if r["metadata"]["source_family"] == "sarcasm" else None, reseal=True)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "split")
    assert "holdout-slice records outside test: 1" in result.message
    assert "(sarcasm, held out as slice)" in result.offenders[0]


def test_stats_fails_when_manifest_disagrees_with_shards(root, registry):
    manifest = h.read_manifest(root)
    manifest["total_conversations"] += 3
    manifest["source_families"]["cptsd"]["splits"]["val"] += 1
    h.write_manifest(root, manifest)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "stats")
    assert "manifest statistics that disagree with the shards: 2" in result.message
    assert any(o.startswith("total_conversations: manifest") for o in result.offenders)
    assert any(o.startswith("source_families.cptsd.splits.val") for o in result.offenders)


def test_missing_manifest_fails_every_gate(tmp_path, registry):
    report = gates.verify_compiled_dataset(LocalDataRoot(tmp_path), registry=registry)
    assert report.failed_gates == list(gates.GATE_NAMES)
    assert "no manifest.json" in report.gate("hash").message


def test_report_json_and_markdown_carry_ids_not_text(root, registry):
    h.edit_first_record(root, "train", lambda r: r["metadata"].update(pii_status="requires_review"), reseal=True)
    report = gates.verify_compiled_dataset(root, registry=registry)
    data = json.loads(report.to_json())
    assert data["passed"] is False and data["failed_gates"] == ["pii"]
    assert set(data["gates"]) == set(gates.GATE_NAMES)
    assert data["manifest"]["sha256"].startswith("sha256:")
    md = report.gate("pii").markdown()
    assert "| requires_review_records | 1 |" in md and "train/train_000.jsonl:1" in md
    first_text = json.loads(root.read_text("final_dataset/train/train_000.jsonl").splitlines()[0])["messages"][1]["content"]
    assert first_text not in report.to_json() and first_text not in md
    key = gates.write_report(root, report)
    assert key == "final_dataset/verification_report.json"
    assert json.loads(root.read_text(key))["failed_gates"] == ["pii"]


def test_current_report_reuses_only_a_report_of_this_manifest_and_thresholds(root, registry):
    written = gates.verify_compiled_dataset(root, registry=registry)
    gates.write_report(root, written)
    report, reused = gates.current_report(root)
    assert reused and report.to_dict() == written.to_dict()
    # Other thresholds: verified again (and a failing verdict is not hidden by the old pass).
    report, reused = gates.current_report(root, config=gates.GateConfig(min_present=10**6, min_partial=10**6))
    assert not reused and "coverage" in report.failed_gates
    # A re-published manifest (other sha256) is verified again, even with the old thresholds.
    gates.write_report(root, written)
    h.edit_first_record(root, "train", lambda r: r["metadata"].update(pii_status="requires_review"), reseal=True)
    report, reused = gates.current_report(root)
    assert not reused and report.failed_gates == ["pii"]
    assert json.loads(root.read_text("final_dataset/verification_report.json"))["failed_gates"] == ["pii"]


def test_gate_config_from_env():
    cfg = gates.GateConfig.from_env({"PIXEL_GATE_MIN_PRESENT": "50", "PIXEL_GATE_VAL_MAX": "0.1",
                                     "PIXEL_GATE_SPLIT_SALT": "other"})
    assert cfg.min_present == 50 and cfg.val_max == 0.1 and cfg.train_min == 0.85 and cfg.split_salt == "other"
    from pixel_assets.lib.splits import DEFAULT_SALT
    assert gates.GateConfig().split_salt == DEFAULT_SALT
    with pytest.raises(ValueError):
        gates.GateConfig(min_partial=5, min_present=2)


def test_hash_fails_when_compiled_export_drops_a_record(root, registry):
    key = "final_dataset/compiled/final_training_dataset.jsonl"
    lines = root.read_text(key).splitlines()
    root.write_text(key, "\n".join(lines[:-1]) + "\n")
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "hash")
    assert "compiled export differs: 2" in result.message  # sha256 vs manifest, and the content
    assert any(f"{len(lines) - 1} records, 1 differ from the shards" in o for o in result.offenders)


def test_distribution_does_not_count_group_holdouts(tmp_path, registry):
    """Conversations sharing a question with a test-only family go to test as a group; they are
    held out, not 90/5/5-assigned, so they must not skew the distribution gate."""
    import random

    records = h.clean_records(registry)
    rng = random.Random(3)
    shared = [r for r in records if r["metadata"]["source_family"] == "cptsd"][:40]
    crisis = [h.make_record("edge_case_crisis", 900 + i, registry, r["messages"][1]["content"], h._sentence(rng, 18))
              for i, r in enumerate(shared)]
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, records=records + crisis)
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert report.passed, {g.name: g.message for g in report.gates if not g.passed}
    figures = report.gate("distribution").figures
    assert figures["held_out_with_a_holdout_group"] == 40
    # Counted in, those 40 would push the test share out of its band.
    assert (figures["test_conversations"] + 40) / (figures["non_holdout_conversations"] + 40) > 0.07
