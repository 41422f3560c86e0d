"""The eight verification gates (SPEC §6): a clean compile passes all of them, and each planted
defect fails exactly its own gate with a message that names the defect and the offending ids."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from pixel_assets.lib import contract, gates
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.storage import LocalDataRoot, S3DataRoot
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


def _near_copy_in_val(tmp_path, registry, index: int) -> tuple[LocalDataRoot, dict]:
    """A clean dataset in which record `index` sits in train and the same conversation with one
    word of the answer changed (a new content hash, the same first user turn, the same
    near-duplicate cluster) sits in val."""
    records = h.clean_records(registry)
    original = records[index]
    copy = h.make_record(original["metadata"]["source_family"], 999, registry,
                         original["messages"][1]["content"], original["messages"][2]["content"] + " again")

    def plant(frame):
        frame = h.move_records(frame, lambda r: r["metadata"]["content_hash"] == original["metadata"]["content_hash"], "train")
        return h.add_record_like(frame, original["metadata"]["content_hash"], copy, "val")

    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, records=records, edit=plant)
    return root, original


def test_leakage_fails_on_conversation_copied_into_val(tmp_path, registry):
    root, original = _near_copy_in_val(tmp_path, registry, 0)
    report = gates.verify_compiled_dataset(root, registry=registry)
    # The same first user turn makes one split group: the split gate sees it from the shards too.
    assert report.failed_gates == ["leakage", "split"]
    assert list(report.gate("split").offender_counts) == ["groups in several splits"]
    result = report.gate("leakage")
    assert "first user turns in several splits: 1" in result.message
    assert "near-duplicate clusters in several splits: 1" in result.message
    assert result.figures["first_user_turns_in_several_splits"] == 1
    assert any("train+val" in o for o in result.offenders)
    assert original["messages"][1]["content"] not in json.dumps(result.to_dict())  # ids, never text


def test_leakage_decontamination_fails_on_a_reworded_copy_that_dedup_misses(tmp_path, registry):
    """A long train answer copied into val under another question, one word in fifty changed: a
    new content hash, a new first user turn, and a 5-shingle Jaccard below the dedup threshold (the
    old checks all pass it). 13-gram decontamination finds it."""
    import random

    rng = random.Random(5)
    answer = h._sentence(rng, 200)
    records = h.clean_records(registry)
    family = records[0]["metadata"]["source_family"]
    original = h.make_record(family, 998, registry, h._sentence(rng, 10), answer)
    words = answer.split()
    reworded = " ".join("changed" if i % 50 == 25 else w for i, w in enumerate(words))
    copy = h.make_record(family, 999, registry, h._sentence(rng, 10), reworded)

    def plant(frame):
        frame = h.move_records(frame, lambda r: r["metadata"]["content_hash"] == original["metadata"]["content_hash"],
                               "train")
        return h.add_record_like(frame, original["metadata"]["content_hash"], copy, "val")

    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, records=[*records, original], edit=plant)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "leakage")
    assert list(result.offender_counts) == ["val/test records sharing long n-grams with train"]
    assert result.offenders[0].startswith("val/") and "of its 13-grams in train" in result.offenders[0]
    assert result.figures["clusters_in_several_splits"] == 0  # the dedup-based check misses it
    # The same dataset with decontamination set above any overlap: every older check passes it.
    assert gates.verify_compiled_dataset(root, registry=registry,
                                         config=gates.GateConfig(decontamination_threshold=1.01)).passed


def test_leakage_lists_every_kind_of_offender_despite_the_cap(tmp_path, registry):
    """max_offenders caps each problem kind, not the gate: four exact copies in val (more than the
    cap) do not push the near-duplicate and first-user-turn offenders out of the report."""
    root, original = _near_copy_in_val(tmp_path, registry, 10)
    # Four train records copied byte for byte into val after publication (the compile refuses
    # duplicates): four content hashes in two splits, more than max_offenders.
    train = root.read_text(f"{h.PREFIX}/train/train_000.jsonl").splitlines()
    copies = [line for line in train if original["metadata"]["content_hash"] not in line][:4]
    val_key = f"{h.PREFIX}/val/val_000.jsonl"
    root.write_text(val_key, root.read_text(val_key) + "\n".join(copies) + "\n")
    config = gates.GateConfig(max_offenders=2)
    report = gates.verify_compiled_dataset(root, registry=registry, config=config)
    result = report.gate("leakage")
    assert not result.passed
    counts = result.offender_counts
    assert counts["content hashes in several splits"] == 4
    assert counts["first user turns in several splits"] == 5  # the copies' first turns and the near-dup's
    assert counts["near-duplicate clusters in several splits"] >= 1
    assert result.offender_count == sum(counts.values())
    assert all(len(result.offenders_by_kind[k]) == min(n, 2) for k, n in counts.items())
    md = result.markdown()
    assert counts["val/test records sharing long n-grams with train"] == 5  # the copies and the near copy
    assert f"Offenders: {result.offender_count} in 4 kinds" in md
    assert "**content hashes in several splits** (4, first 2):" in md
    assert "**first user turns in several splits** (5, first 2):" in md
    assert "**near-duplicate clusters in several splits** (" in md
    assert "near-dup cluster of" in md and "first-user-turn sha256:" in md
    # The same in the written report (kinds survive the JSON round trip) and in `pixel verify`'s text.
    report = gates.VerificationReport.from_dict(json.loads(report.to_json()))
    assert report.gate("leakage").offender_counts == counts
    text = report.text()
    assert "near-duplicate clusters in several splits (" in text and "first user turns in several splits (5):" in text


def test_settings_are_text_and_figures_are_measurements(root, registry):
    """The Dagster UI plots numeric metadata over runs: what a gate was configured with (GateConfig
    values, registry policy) is text, what it measured stays numeric."""
    from pixel_assets.defs.gates.checks import gate_metadata

    report = gates.verify_compiled_dataset(root, registry=registry)
    config_fields = {f.name for f in dataclasses.fields(gates.GateConfig)}
    for gate in report.gates:
        assert not config_fields & set(gate.figures), gate.name  # a GateConfig value is a setting
        metadata = gate_metadata(report, gate)
        assert all(isinstance(metadata[k], str) for k in gate.settings), gate.name
    assert gate_metadata(report, report.gate("leakage"))["near_dup_threshold"] == "0.8"
    assert gate_metadata(report, report.gate("pii"))["pii_phone_regions"].startswith("US,GB,")
    assert gate_metadata(report, report.gate("coverage"))["min_present"] == str(gates.GateConfig().min_present)
    distribution = gate_metadata(report, report.gate("distribution"))
    assert distribution["train_share_band"] == "0.85-0.95" and isinstance(distribution["non_holdout_train_share"], float)
    # Not the stats gate's train_conversations: the distribution gate counts non-holdout families only.
    assert "train_conversations" not in report.gate("distribution").figures
    assert report.gate("stats").figures["train_conversations"] > distribution["non_holdout_train_conversations"]


def test_distribution_fails_on_skewed_split(tmp_path, registry):
    non_holdout = {f.name for f in registry.families if f.holdout.mode == "none"}
    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, edit=lambda f: h.move_records(
        f, lambda r: r["metadata"]["source_family"] in non_holdout and r["metadata"]["split"] == "train", "val", limit=120))
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert report.failed_gates == ["distribution"], {g.name: g.message for g in report.gates if not g.passed}
    result = report.gate("distribution")
    assert "val share" in result.message and "outside 0.03-0.07" in result.message
    assert result.figures["non_holdout_val_share"] > 0.07


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
    # One record, named twice: as a contract violation (with the schema rule) and as an empty field.
    assert len(result.offenders) == 2 and all(o.startswith(rid + " sha256:") for o in result.offenders)
    assert result.offenders[0].endswith(": metadata/provenance/original_s3_key (minLength)")
    assert result.offenders[1].endswith(": original_s3_key")
    assert result.figures["missing_original_s3_key"] == 1


def test_provenance_fails_on_record_breaking_the_contract(root, registry):
    rid = h.edit_first_record(root, "train", lambda r: [r["metadata"].pop(k) for k in ("pii_status", "license_tag")]
                              + [r["metadata"].update(phase=3, total_tokens="many")], reseal=True)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "provenance")
    assert "records that break the record contract: 1" in result.message
    assert result.offenders == [f"{rid} {h.first_record(root, 'train')['metadata']['content_hash'][:23]}: "
                                "metadata/pii_status missing, metadata/license_tag missing, "
                                "metadata/phase (type), metadata/total_tokens (type)"]
    assert result.figures["records_breaking_the_contract"] == 1


def test_provenance_fails_on_map_entry_that_disagrees_with_its_record(root, registry):
    record = h.first_record(root, "val")
    manifest = h.read_manifest(root)
    entry = manifest["provenance_map"][record["metadata"]["content_hash"]]
    # Another family's source, format and steps: every field non-empty, every field wrong.
    entry.update(source_family="sarcasm", source_key="file:///data/sources/sarcasm/part.jsonl",
                 original_format="chatml", processing_steps=["ingest"])
    h.write_manifest(root, manifest)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "provenance")
    assert "provenance_map entries that disagree with their record: 1" in result.message
    assert result.offenders[0].startswith("val/val_000.jsonl:1 ")
    assert result.offenders[0].endswith(": source_key, source_family, original_format, processing_steps")
    entry["processing_steps"] = []  # and an empty list, with every other field restored
    entry.update({k: v for k, v in h.make_record(record["metadata"]["source_family"], 0, registry, "a", "b")
                  ["metadata"].items() if k in ("source_key", "source_family", "original_format")})
    h.write_manifest(root, manifest)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "provenance")
    assert result.offenders[0].endswith(": processing_steps")


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


@pytest.mark.parametrize("split", ["train", "test"])
def test_hash_fails_on_shard_listed_twice(root, registry, split):
    """train_000 listed twice, or the test shard listed under splits.train as well: a trainer
    following the manifest would read those records twice, or test records as training data."""
    manifest = h.read_manifest(root)
    manifest["splits"]["train"]["shards"].append(dict(manifest["splits"][split]["shards"][0]))
    h.write_manifest(root, manifest)
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert "hash" in report.failed_gates
    result = report.gate("hash")
    assert f"shard paths listed more than once: 1 ({split}/{split}_000.jsonl listed 2 times)" in result.message
    if split == "test":
        assert ("shards listed under the wrong split or id: 1 (test/test_000.jsonl listed under splits.train, "
                "which holds only train/train_NNN.jsonl)") in result.message
    # The listed counts no longer add up to the shards' either.
    assert any(o.startswith("splits.train.shards conversation_count sum") for o in report.gate("stats").offenders)


def test_hash_fails_on_shard_listed_under_another_split(root, registry):
    manifest = h.read_manifest(root)
    manifest["splits"]["train"]["shards"].append(manifest["splits"]["val"]["shards"].pop(0))
    h.write_manifest(root, manifest)
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert "hash" in report.failed_gates
    assert ("shards listed under the wrong split or id: 1 (val/val_000.jsonl listed under splits.train"
            in report.gate("hash").message)


@pytest.mark.parametrize("name", ["train/part-0.jsonl", "train/train_00.jsonl", "train/extra/train_000.jsonl",
                                  "train/TRAIN_000.jsonl", "train/train_000.json", "val/val_999.jsonl"])
def test_hash_fails_on_file_in_split_folder_not_in_manifest(root, registry, name):
    """A trainer globbing a split folder would read any file there: the manifest must list it."""
    root.write_bytes(f"final_dataset/{name}", root.read_bytes("final_dataset/test/test_000.jsonl"))
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert "hash" in report.failed_gates
    assert (f"files in split folders not in the manifest: 1 ({name} (18 lines, under {name.split('/')[0]}/ "
            "but not in the manifest))") in report.gate("hash").message


def test_hash_lists_s3_split_folders_too(clean_dir, s3_client, registry):
    # A bucket of its own: moto keeps buckets between tests of one process.
    s3_client.create_bucket(Bucket="gates-unlisted-files")
    remote = S3DataRoot(s3_client, "gates-unlisted-files", "nightly")
    for key in LocalDataRoot(clean_dir).list_keys():
        remote.write_bytes(key, LocalDataRoot(clean_dir).read_bytes(key))
    remote.write_bytes("final_dataset/train/", b"")  # a "folder" marker object is not a file
    assert gates.verify_compiled_dataset(remote, registry=registry).passed
    remote.write_bytes("final_dataset/train/extra/part-0.jsonl", remote.read_bytes("final_dataset/train/train_000.jsonl"))
    report = gates.verify_compiled_dataset(remote, registry=registry)
    assert "files in split folders not in the manifest: 1 (train/extra/part-0.jsonl" in report.gate("hash").message


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


def test_split_fails_on_holdout_slice_record_in_val(tmp_path, registry, monkeypatch):
    moved = []

    def strip_marker(record):  # the stored marker goes: the gate must recompute slice membership
        moved.append(record["metadata"]["content_hash"])
        record["metadata"]["holdout"] = "none"

    root = LocalDataRoot(tmp_path)
    h.build_clean_dataset(root, registry, edit=lambda f: h.move_records(
        f, lambda r: r["metadata"]["source_family"] == "sarcasm" and r["metadata"]["holdout"] == "slice", "val",
        limit=1, change=strip_marker))
    in_val = [r for k in root.glob("final_dataset/val/*.jsonl") for r in map(json.loads, root.read_text(k).splitlines())
              if r["metadata"]["content_hash"] == moved[0]]
    assert [r["metadata"]["holdout"] for r in in_val] == ["none"]
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "split")
    assert "holdout-slice records outside test: 1" in result.message
    assert moved[0][:23] in result.offenders[0] and "(sarcasm, held out as slice)" in result.offenders[0]
    # Nothing on the record says it is held out: without the gate's own slice recomputation (no
    # group falls in a slice) it would pass.
    monkeypatch.setattr(gates.groups, "unit_interval", lambda *args: 1.0)
    assert gates.verify_compiled_dataset(root, registry=registry).passed


def test_split_fails_on_manifest_without_holdout_policy(root, registry):
    manifest = h.read_manifest(root)
    manifest.pop("holdout_families")
    h.write_manifest(root, manifest)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "split")
    assert "manifest holdout policy differs from the registry: 1 (manifest has no holdout_families)" in result.message
    manifest["holdout_families"] = {"sarcasm": {"mode": "test_slice", "fraction": 0.5, "rationale": ""}}
    h.write_manifest(root, manifest)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "split")
    expected = {n for n, f in registry.holdouts().items()} - {"sarcasm"}
    assert result.offender_count == len(expected) + 1
    assert any(o.startswith("sarcasm: manifest fraction 0.5 != registry") for o in result.offenders)
    assert {o.split(":")[0] for o in result.offenders if "not in the manifest" in o} == expected


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


def test_verified_fingerprint_equals_the_stored_one_without_a_second_read(root, registry):
    """The report's fingerprint is built from the digests taken while loading; it must be the value
    dataset_fingerprint computes from storage, or the training guard would refuse a clean dataset."""
    from pixel_assets.lib.compiled import dataset_fingerprint

    assert gates.verify_compiled_dataset(root, registry=registry).dataset_fingerprint == dataset_fingerprint(root)
    root.write_text("final_dataset/compiled/notes.txt", "a stray file the gates do not parse")
    root.write_text("final_dataset/train/part-0.jsonl", "{}\n")
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert report.dataset_fingerprint == dataset_fingerprint(root) and "hash" in report.failed_gates


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
    # A shard replaced with the manifest left alone is verified again too.
    assert gates.current_report(root)[1]  # the report just written is current
    manifest_before = root.read_bytes("final_dataset/manifest.json")
    h.edit_first_record(root, "val", lambda r: r["metadata"].update(pii_status="requires_review"), reseal=False)
    assert root.read_bytes("final_dataset/manifest.json") == manifest_before
    report, reused = gates.current_report(root)
    assert not reused and "hash" in report.failed_gates


def test_gate_config_from_env():
    cfg = gates.GateConfig.from_env({"PIXEL_GATE_MIN_PRESENT": "50", "PIXEL_GATE_VAL_MAX": "0.1",
                                     "PIXEL_GATE_SPLIT_SALT": "other"})
    assert cfg.min_present == 50 and cfg.val_max == 0.1 and cfg.train_min == 0.85 and cfg.split_salt == "other"
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
    assert (figures["non_holdout_test_conversations"] + 40) / (figures["non_holdout_conversations"] + 40) > 0.07


def test_split_salt_is_the_one_the_split_stage_used(root, registry):
    """The split gate recomputes slice membership with GateConfig.split_salt: the default passes the
    clean compile; another salt picks other slices, which then sit outside test."""
    assert gates.verify_compiled_dataset(root, registry=registry).passed
    report = gates.verify_compiled_dataset(root, registry=registry, config=gates.GateConfig(split_salt="other"))
    assert "split" in report.failed_gates
    assert "holdout-slice records outside test" in report.gate("split").message


@pytest.mark.parametrize("where", ["metadata.category", "metadata.creator list", "message extra key",
                                  "rejected_response"])
def test_pii_rescans_every_source_string(root, registry, where):
    """Not only message content: every string of the messages and the metadata copied from sources."""
    change = {
        "metadata.category": lambda r: r["metadata"].update(category="write to jane.roe@example.org"),
        "metadata.creator list": lambda r: r["metadata"].update(creator={"names": ["Jane", "jane.roe@example.org"]}),
        "message extra key": lambda r: r["messages"][1].update(name="call 555-867-5309 now"),
        "rejected_response": lambda r: r["metadata"].update(rejected_response="ssn 219-09-9999"),
    }[where]
    rid = h.edit_first_record(root, "train", change, reseal=True)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "pii")
    assert "records with structured PII: 1" in result.message and result.offenders[0].startswith(rid)
    assert "jane.roe" not in json.dumps(result.to_dict()) and "867-5309" not in json.dumps(result.to_dict())


def test_no_field_value_or_exception_text_in_the_report(root, registry, monkeypatch):
    """Record fields hold text (maybe PII): offenders name ids, allowed values and hashes, and a
    crashing gate reports its exception type only."""
    secret = "jane.roe@example.org 555-867-5309"

    def assert_no_secret(report):
        blob = report.to_json() + report.markdown() + report.text() + "".join(g.markdown() for g in report.gates)
        assert "jane.roe" not in blob and "867-5309" not in blob

    h.edit_first_record(root, "train", lambda r: r["metadata"].update(split=secret, holdout=secret), reseal=True)
    h.edit_first_record(root, "val", lambda r: r["metadata"].update(source_family=secret), reseal=True)
    manifest = h.read_manifest(root)
    manifest["source_families"][secret + " x"] = {"conversations": secret, "splits": {}}
    manifest["holdout_families"]["sarcasm"]["mode"] = secret
    h.write_manifest(root, manifest)

    def crash(*args):
        raise ValueError(f"cannot parse {secret}")

    monkeypatch.setitem(gates.GATES, "leakage", crash)
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert report.failed_gates == ["coverage", "leakage", "provenance", "split", "stats"]
    assert report.gate("leakage").message.startswith("gate crashed: ValueError (details withheld")
    split = report.gate("split").offenders
    assert any(o.startswith("train/train_000.jsonl:1: metadata.split=value sha256:") for o in split)
    assert any("held out as value sha256:" in o for o in split)
    assert any(o.startswith("sarcasm: manifest mode value sha256:") for o in split)
    assert any(o.startswith("value sha256:") for o in report.gate("coverage").offenders)
    assert any(o.startswith("source_families.value sha256:") for o in report.gate("stats").offenders)
    assert_no_secret(report)
    # Content that is not a string: polars' error while the splits are recomputed quotes it.
    h.edit_first_record(root, "test", lambda r: r["messages"][1].update(content=[secret]), reseal=True)
    report = gates.verify_compiled_dataset(root, registry=registry)
    assert report.gate("split").message.startswith("gate crashed: ")
    assert_no_secret(report)


def test_split_fails_when_a_test_record_was_in_train_or_val_in_an_earlier_compile(root, registry):
    """Forced cross-compile contamination: the committed ledger says a record now in test (or its
    group) was trained or validated on. The assignment would never do it (test_splits); the gate
    catches it from the shards and the ledger alone."""
    import polars as pl

    from pixel_assets.lib.gates.groups import base_key
    from pixel_assets.lib.splits import LEDGER_KEY, write_ledger

    assert gates.verify_compiled_dataset(root, registry=registry).passed  # no ledger yet
    ds = gates.load_compiled_dataset(root, "final_dataset")
    tests = [r for r in ds.records if r.split == "test"]
    by_hash, by_group = tests[0], tests[1]
    write_ledger(root, pl.DataFrame({
        "content_hash": [by_hash.stored_hash, "sha256:" + "1" * 64],
        "split": ["train", "val"],
        "group_key": [None, base_key(ds, by_group)],
    }))
    assert root.exists(LEDGER_KEY)
    result = only_failure(gates.verify_compiled_dataset(root, registry=registry), "split")
    kind = "test records an earlier compile trained or validated on"
    assert list(result.offender_counts) == [kind] and result.offender_counts[kind] == 2
    assert any("content hash in the ledger's train" in o for o in result.offenders)
    assert any("group key in the ledger's val" in o for o in result.offenders)
