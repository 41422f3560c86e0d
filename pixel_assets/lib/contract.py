"""The record contract (SPEC §3): content hash, JSON schemas, and the records frame.

A *record* is a plain dict: ``{"messages": [...], "metadata": {...}}``.
Between pipeline stages records travel as a *records frame*: a polars DataFrame with one row
per record and the columns of ``RECORDS_FRAME_SCHEMA``; the ``record`` column holds the record
serialized as JSON, the other columns are copies of fields every stage needs to group by.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import fastjsonschema
import jsonschema
import polars as pl

ROLES = ("system", "user", "assistant")
PII_STATUSES = ("scrubbed", "none_detected", "requires_review")
SPLITS = ("train", "val", "test")
DEDUP_STATUSES = ("unique", "duplicate_removed", "near_duplicate_removed")
PROVENANCE_FIELDS = (
    "original_s3_key",
    "processing_pipeline",
    "processed_at",
    "dedup_status",
    "processing_steps",
)


def content_hash(messages: Iterable[dict[str, Any]]) -> str:
    """SPEC §3 content hash; other tools depend on it, keep it exactly.

    Every message whose content is a string: ``content.strip().lower()``; sort; join with one
    space; UTF-8; SHA-256; prefix ``sha256:``. Roles and order are ignored by design.
    """
    parts = sorted(
        m["content"].strip().lower()
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    )
    return "sha256:" + hashlib.sha256(" ".join(parts).encode("utf-8")).hexdigest()


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of raw bytes: the format of every file and record hash in the contract."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def approx_tokens(messages: Iterable[dict[str, Any]]) -> int:
    """Tokenizer-free token estimate (~4 characters per token), used for manifest totals."""
    chars = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str))
    return math.ceil(chars / 4)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def first_user_turn(messages: Sequence[dict[str, Any]]) -> str | None:
    """Normalized first user turn: the leakage key for 'the same question answered twice'."""
    for m in messages:
        if m.get("role") == "user":
            return " ".join(m["content"].lower().split())
    return None


_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"enum": list(ROLES)}, "content": {"type": "string", "minLength": 1}},
}
_HASH = {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"}

# Schema of a compiled record (every field of SPEC §3). Extra metadata keys are allowed.
RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["messages", "metadata"],
    "properties": {
        "messages": {"type": "array", "minItems": 1, "items": _MESSAGE},
        "metadata": {
            "type": "object",
            "required": [
                "source_family", "source_key", "content_hash", "pii_status", "license_tag",
                "split", "phase", "provenance", "conversation_length", "total_tokens",
            ],
            "properties": {
                "source_family": {"type": "string", "minLength": 1},
                "source_key": {"type": "string", "minLength": 1},
                "content_hash": _HASH,
                "pii_status": {"enum": list(PII_STATUSES)},
                "license_tag": {"type": "string", "minLength": 1},
                "split": {"enum": list(SPLITS)},
                "phase": {"type": "string", "minLength": 1},
                "provenance": {
                    "type": "object",
                    "required": list(PROVENANCE_FIELDS),
                    "properties": {
                        "original_s3_key": {"type": "string", "minLength": 1},
                        "processing_pipeline": {"type": "string", "minLength": 1},
                        "processed_at": {"type": "string", "format": "date-time"},
                        "dedup_status": {"enum": list(DEDUP_STATUSES)},
                        "processing_steps": {
                            "type": "array", "minItems": 1, "items": {"type": "string"}
                        },
                    },
                },
                "conversation_length": {"type": "integer", "minimum": 1},
                "total_tokens": {"type": "integer", "minimum": 0},
                "quality_score": {"type": "number", "minimum": 0, "maximum": 1},
            },
        },
    },
}

# A normalized record (before PII, dedup and splits): the same minus the fields later stages set.
NORMALIZED_RECORD_SCHEMA: dict[str, Any] = json.loads(json.dumps(RECORD_SCHEMA))
NORMALIZED_RECORD_SCHEMA["properties"]["metadata"]["required"] = [
    f for f in RECORD_SCHEMA["properties"]["metadata"]["required"] if f not in ("split", "pii_status")
]

_RECORD_VALIDATOR = jsonschema.Draft202012Validator(
    RECORD_SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
_NORMALIZED_VALIDATOR = jsonschema.Draft202012Validator(NORMALIZED_RECORD_SCHEMA)
# The same schemas compiled to Python code: ~20x faster on valid records (`pixel bench validate`),
# which is nearly every record. jsonschema stays the reference and words the errors.
_FAST_RECORD = fastjsonschema.compile(RECORD_SCHEMA)
_FAST_NORMALIZED = fastjsonschema.compile(NORMALIZED_RECORD_SCHEMA)


def record_errors(record: dict[str, Any], *, compiled: bool = True) -> list[str]:
    """Schema violations of a record as short strings (empty list = valid)."""
    try:
        (_FAST_RECORD if compiled else _FAST_NORMALIZED)(record)
    except fastjsonschema.JsonSchemaException:
        pass
    else:
        return []
    # Should the two ever disagree, the record is still rejected: never let it through silently.
    return record_errors_reference(record, compiled=compiled) or ["<root>: rejected by the compiled schema validator"]


def record_errors_reference(record: dict[str, Any], *, compiled: bool = True) -> list[str]:
    """record_errors through jsonschema alone: the baseline of `pixel bench validate`."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}"
        for e in record_schema_errors(record, compiled=compiled)
    ]


def record_schema_errors(record: dict[str, Any], *, compiled: bool = True) -> Iterator[jsonschema.ValidationError]:
    """jsonschema's own errors for a record (the reference validator), for callers that word them."""
    return (_RECORD_VALIDATOR if compiled else _NORMALIZED_VALIDATOR).iter_errors(record)


# --- records frame -----------------------------------------------------------------------

RECORDS_FRAME_SCHEMA = {
    "content_hash": pl.String,
    "source_family": pl.String,
    "record": pl.String,  # the record as JSON
}


def dumps_record(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def records_to_frame(records: Iterable[dict[str, Any]]) -> pl.DataFrame:
    rows = [
        {
            "content_hash": r["metadata"]["content_hash"],
            "source_family": r["metadata"]["source_family"],
            "record": dumps_record(r),
        }
        for r in records
    ]
    return pl.DataFrame(rows, schema=RECORDS_FRAME_SCHEMA)


def frame_to_records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [json.loads(s) for s in frame.get_column("record")]


def empty_records_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=RECORDS_FRAME_SCHEMA)


# --- quarantine frame ----------------------------------------------------------------------

QUARANTINE_REASONS = (
    "invalid_json",
    "undecodable_bytes",
    "no_user_or_assistant_turn",
    "empty_content",
    "unknown_role",
    "consecutive_turns",  # two turns in a row by one speaker, with the source's consecutive_turns: quarantine
    "wrong_types",
    "oversize_record",
    "unreadable_source",
    "schema_violation",
    "language",  # a message confidently identified as not English (lib/language.py)
)

# Quarantine entries never hold raw content (it may contain PII): where it is, its hash, its size.
QUARANTINE_FRAME_SCHEMA = {
    "source_family": pl.String,
    "source_key": pl.String,
    "location": pl.String,  # e.g. "line 17", "row 4", "item 3", "file"
    "reason": pl.String,  # one of QUARANTINE_REASONS
    "detail": pl.String,  # short, content-free explanation
    "raw_sha256": pl.String,
    "raw_size_bytes": pl.Int64,
}


def empty_quarantine_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_FRAME_SCHEMA)
