"""The record schema's fast path (fastjsonschema) agrees with the jsonschema reference."""

import copy

import pytest

from pixel_assets import PIPELINE_NAME
from pixel_assets.lib.contract import content_hash, record_errors, record_errors_reference


def _record() -> dict:
    messages = [{"role": "user", "content": "I can't sleep."}, {"role": "assistant", "content": "Tell me more."}]
    return {
        "messages": messages,
        "metadata": {
            "source_family": "cptsd", "source_key": "file:///x.jsonl", "content_hash": content_hash(messages),
            "pii_status": "none_detected", "license_tag": "internal", "split": "train", "phase": "stage6",
            "provenance": {"original_s3_key": "file:///x.jsonl", "processing_pipeline": PIPELINE_NAME,
                           "processed_at": "2026-11-22T00:00:00+00:00", "dedup_status": "unique",
                           "processing_steps": ["ingest"]},
            "conversation_length": 2, "total_tokens": 7,
        },
    }


def _set(path: str, value):
    def plant(record):
        *parents, last = path.split("/")
        node = record
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is KeyError:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value
        return record
    return plant


DEFECTS = {
    "missing split": _set("metadata/split", KeyError),
    "unknown role": _set("messages/0/role", "client"),
    "empty content": _set("messages/1/content", ""),
    "bad hash": _set("metadata/content_hash", "sha256:xyz"),
    "bad pii status": _set("metadata/pii_status", "maybe"),
    "quality above 1": _set("metadata/quality_score", 1.5),
    "processed_at not a date": _set("metadata/provenance/processed_at", "yesterday"),
    "empty steps": _set("metadata/provenance/processing_steps", []),
    "length is a string": _set("metadata/conversation_length", "2"),
}


def test_valid_record_passes_both():
    assert record_errors(_record()) == [] == record_errors_reference(_record())


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_rejected_by_both_with_the_reference_wording(defect):
    record = DEFECTS[defect](copy.deepcopy(_record()))
    reference = record_errors_reference(record)
    assert reference, defect
    assert record_errors(record) == reference


def test_normalized_schema_does_not_require_split_or_pii_status():
    record = _record()
    del record["metadata"]["split"], record["metadata"]["pii_status"]
    assert record_errors(record, compiled=False) == []
    assert record_errors(record) != []
