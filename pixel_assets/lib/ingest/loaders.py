"""Ingest entry points: one file's bytes (`load_source_bytes`) and a whole family (`ingest_family`)."""

from __future__ import annotations

import glob as globlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pixel_assets.lib import contract
from pixel_assets.lib.ingest import readers, tables
from pixel_assets.lib.ingest.formats import CONTAINERS, EXTRACTORS, Reject, csv_required_columns, validate_options
from pixel_assets.lib.ingest.normalize import build_record
from pixel_assets.lib.registry import Family, Source
from pixel_assets.lib.storage import DataRoot, LocalDataRoot, S3DataRoot, parse_s3_uri

DEFAULT_MAX_RECORD_BYTES = 1_000_000


def _quarantine_row(family: Family, source_key: str, unit: readers.Unit, reason: str, detail: str) -> dict[str, Any]:
    return {
        "source_family": family.name,
        "source_key": source_key,
        "location": unit.location,
        "reason": reason,
        "detail": detail,
        "raw_sha256": unit.raw_sha256,
        "raw_size_bytes": unit.raw_size_bytes,
    }


# A file whose name says its container is read as that, whatever the format's usual files are:
# Parquet for every row format, and the JSON / CSV data files of a dataset in the HF hub cache.
_CONTAINER_BY_SUFFIX = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


def container_of(source: Source, source_key: str) -> str:
    """json | csv | text | parquet: how one file of this source is read."""
    suffix = os.path.splitext(source_key.lower())[1]
    if source.format != "transcripts" and suffix == ".parquet":
        return "parquet"
    if source.format == "hf_dataset" and suffix in _CONTAINER_BY_SUFFIX:
        return _CONTAINER_BY_SUFFIX[suffix]
    container = CONTAINERS[source.row_format]
    return "json" if container == "hf_dataset" else container


def _units(data: bytes, source: Source, max_record_bytes: int, container: str):
    if container == "parquet":
        return tables.iter_parquet_units(data, max_record_bytes, csv_required_columns(source))
    if container == "csv":
        return readers.iter_csv_units(data, max_record_bytes, csv_required_columns(source))
    if container == "text":
        return readers.iter_text_units(data, max_record_bytes)
    return readers.iter_json_units(data, max_record_bytes)


def load_source_bytes(
    data: bytes,
    *,
    source: Source,
    family: Family,
    source_key: str,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    processed_at: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse one source file: (normalized records, quarantine rows).

    Never raises on bad content: every read unit (line, item, row, or the file itself when it
    is zero-byte / binary) ends up in exactly one of the two lists. Raises IngestConfigError
    only for unusable source options.
    """
    validate_options(source)
    container = container_of(source, source_key)
    # Parquet is binary by design: only the zero-byte check applies to it.
    why_unreadable = readers.sniff_unreadable(data) if container != "parquet" or not data else None
    if why_unreadable:
        unit = readers.make_unit("file", data)
        return [], [_quarantine_row(family, source_key, unit, "unreadable_source", why_unreadable)]
    units = _units(data, source, max_record_bytes, container)
    return _build_records(units, source=source, family=family, source_key=source_key, processed_at=processed_at)


def load_saved_dataset(
    path: str,
    *,
    source: Source,
    family: Family,
    source_key: str,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    processed_at: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One split (option ``split``) of a dataset saved with ``datasets.save_to_disk`` at ``path``."""
    validate_options(source)
    units = tables.iter_saved_dataset_units(path, source.option("split"), max_record_bytes, csv_required_columns(source))
    return _build_records(units, source=source, family=family, source_key=source_key, processed_at=processed_at)


def _build_records(units, *, source: Source, family: Family, source_key: str, processed_at: str | None):
    processed_at = processed_at or contract.utc_now_iso()
    records: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    extract = EXTRACTORS[source.format]
    for unit in units:
        if unit.reason:
            quarantine.append(_quarantine_row(family, source_key, unit, unit.reason, unit.detail))
            continue
        try:
            extracted = extract(unit.value, source)
            if source.format == "transcripts":
                extracted.extras.update(_transcript_extras(source_key))
            records.append(build_record(
                extracted, family=family, source=source, source_key=source_key,
                location=unit.location, processed_at=processed_at,
            ))
        except Reject as rej:
            quarantine.append(_quarantine_row(family, source_key, unit, rej.reason, rej.detail))
    return records, quarantine


def _transcript_extras(source_key: str) -> dict[str, str]:
    # Transcripts live at .../<creator>/<video>.txt; both names are useful for mixing and audits.
    parts = source_key.rstrip("/").split("/")
    extras = {"video": parts[-1].rsplit(".", 1)[0]}
    if len(parts) >= 2 and parts[-2]:
        extras["creator"] = parts[-2]
    return extras


# --- a whole family ----------------------------------------------------------------------------

@dataclass
class IngestResult:
    records: pl.DataFrame  # contract records frame
    quarantine: pl.DataFrame  # contract.QUARANTINE_FRAME_SCHEMA
    read: int
    files: list[str] = field(default_factory=list)  # source URIs, in processing order
    per_reason: dict[str, int] = field(default_factory=dict)
    per_file: list[dict[str, Any]] = field(default_factory=list)  # {source_key, read, valid, quarantined}
    merged_turns: int = 0  # consecutive same-speaker turns merged (consecutive_turns: merge)

    @property
    def valid(self) -> int:
        return self.records.height

    @property
    def quarantined(self) -> int:
        return self.quarantine.height


def default_s3_client():
    import boto3

    return boto3.client("s3", endpoint_url=os.environ.get("PIXEL_S3_ENDPOINT_URL") or None)


def resolve_source(path: str, root: DataRoot, s3_client: Any = None, *, split: str | None = None) -> list[tuple[DataRoot, str]]:
    """(data root, key) pairs of the files a source path matches, sorted.

    Relative globs are keys under ``root``; absolute local globs use the file system;
    ``s3://bucket/prefix/glob`` lists that bucket. Local globs also match directories written by
    ``datasets.save_to_disk``; ``hf://owner/name`` is that dataset's data files (of ``split``
    when given) in the local Hugging Face hub cache.
    """
    if path.startswith("s3://"):
        bucket, pattern = parse_s3_uri(path)
        s3_root = S3DataRoot(s3_client or default_s3_client(), bucket, "")
        return [(s3_root, key) for key in s3_root.glob(pattern)]
    fs_root = LocalDataRoot("/")
    if path.startswith(tables.HF_PREFIX):
        return [(fs_root, os.path.relpath(p, "/")) for p in tables.hub_cache_files(path, split)]
    if os.path.isabs(path):
        return [(fs_root, os.path.relpath(p, "/")) for p in sorted(globlib.glob(path))
                if os.path.isfile(p) or tables.is_saved_dataset(p)]
    found = [(root, key) for key in root.glob(path)]
    if isinstance(root, LocalDataRoot):
        found += [(root, os.path.relpath(p, root.path)) for p in tables.saved_dataset_dirs(str(root.local_path(path)))]
    return found


def ingest_family(
    family: Family,
    root: DataRoot,
    *,
    s3_client: Any = None,
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    processed_at: str | None = None,
    log: Callable[[str], None] | None = None,
) -> IngestResult:
    """Read and normalize every source file of a family; counts only in logs and quarantine."""
    log = log or (lambda _msg: None)
    if not family.enabled:
        log(f"{family.name}: disabled in the registry, nothing ingested")
        return IngestResult(contract.empty_records_frame(), contract.empty_quarantine_frame(), read=0)
    processed_at = processed_at or contract.utc_now_iso()
    records: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    files: list[str] = []
    per_file: list[dict[str, Any]] = []
    for source in family.sources:
        validate_options(source)
        split = source.option("split") if source.format == "hf_dataset" else None
        matches = resolve_source(source.path, root, s3_client, split=split)
        if not matches:
            where = " (not in the local Hugging Face cache)" if source.path.startswith(tables.HF_PREFIX) else ""
            log(f"WARNING {family.name}: source glob {source.path!r} matched no files{where}")
            continue
        for file_root, key in matches:
            source_key = file_root.uri(key)
            files.append(source_key)
            saved = (source.format == "hf_dataset" and isinstance(file_root, LocalDataRoot)
                     and tables.is_saved_dataset(file_root.local_path(key)))
            try:
                data = b"" if saved else file_root.read_bytes(key)
            except Exception as exc:  # permissions, vanished object, I/O error: count, don't crash
                unit = readers.make_unit("file", b"")
                recs, quar = [], [_quarantine_row(family, source_key, unit, "unreadable_source",
                                                  f"read failed: {type(exc).__name__}")]
            else:
                where = {"source": source, "family": family, "source_key": source_key,
                         "max_record_bytes": max_record_bytes, "processed_at": processed_at}
                recs, quar = (load_saved_dataset(str(file_root.local_path(key)), **where) if saved
                              else load_source_bytes(data, **where))
            records.extend(recs)
            quarantine.extend(quar)
            stats = {"source_key": source_key, "read": len(recs) + len(quar), "valid": len(recs),
                     "quarantined": len(quar)}
            per_file.append(stats)
            log(f"{family.name}: {source_key}: read {stats['read']}, valid {stats['valid']}, "
                f"quarantined {stats['quarantined']}")
    per_reason = dict(Counter(q["reason"] for q in quarantine))
    return IngestResult(
        records=contract.records_to_frame(records),
        quarantine=pl.DataFrame(quarantine, schema=contract.QUARANTINE_FRAME_SCHEMA),
        read=len(records) + len(quarantine),
        files=files,
        per_reason=per_reason,
        per_file=per_file,
        merged_turns=sum(r["metadata"].get("merged_turns", 0) for r in records),
    )
