"""Arrow-backed sources: Parquet files and Hugging Face datasets (save_to_disk, or the hub cache).

Rows come out as read units like the text containers' (``readers.Unit``, location ``row N``), so
read = valid + quarantined holds the same way. A row's "raw bytes" (for the quarantine hash and
the size limit) are its canonical JSON. Batches keep a big file from becoming Python objects at once.
"""

from __future__ import annotations

import glob as globlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pixel_assets.lib.ingest.readers import Unit, make_unit

BATCH_ROWS = 1024
HF_PREFIX = "hf://"
# save_to_disk writes one of these beside the Arrow files (a Dataset, or a DatasetDict of splits).
SAVED_DATASET_MARKERS = ("state.json", "dataset_dict.json")


def _row_bytes(row: dict[str, Any]) -> bytes:
    return json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")


def _row_units(batches: Iterable[pa.RecordBatch | pa.Table], max_record_bytes: int,
               text_columns: list[str] | None) -> Iterator[Unit]:
    """One unit per row. ``text_columns`` (CSV-shaped formats): these must hold text; a null
    reads as an empty cell, as in a CSV."""
    number = 0
    batches = iter(batches)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:  # a corrupt row group: the rest of the file
            yield make_unit(f"row {number + 1}", b"", reason="unreadable_source",
                            detail=f"Arrow read error, rest of file unreadable ({type(exc).__name__})")
            return
        for row in batch.to_pylist():
            number += 1
            raw = _row_bytes(row)
            location = f"row {number}"
            if len(raw) > max_record_bytes:
                yield make_unit(location, raw, reason="oversize_record", detail=f"{len(raw)} bytes > limit {max_record_bytes}")
                continue
            if text_columns:
                bad = [c for c in text_columns if row[c] is not None and not isinstance(row[c], str)]
                if bad:
                    yield make_unit(location, raw, reason="wrong_types", detail=f"columns {bad} do not hold text")
                    continue
                row = {**row, **{c: "" for c in text_columns if row[c] is None}}
            yield make_unit(location, raw, row)


def _missing_columns(schema: pa.Schema, required: list[str]) -> list[str]:
    return [c for c in required if c not in schema.names]


def iter_parquet_units(data: bytes, max_record_bytes: int, required_columns: list[str]) -> Iterator[Unit]:
    """Rows of a Parquet file as {column: value} dicts (structs -> dicts, lists -> lists).

    ``required_columns`` are a CSV-shaped format's columns: absent ones make the file
    unreadable_source, as for a CSV header."""
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        yield make_unit("file", data, reason="unreadable_source", detail=f"not a readable Parquet file ({type(exc).__name__})")
        return
    missing = _missing_columns(parquet.schema_arrow, required_columns)
    if missing:
        yield make_unit("file", data, reason="unreadable_source", detail=f"Parquet file lacks configured columns {missing}")
        return
    yield from _row_units(parquet.iter_batches(batch_size=BATCH_ROWS), max_record_bytes, required_columns or None)


def is_saved_dataset(path: str | Path) -> bool:
    return any(os.path.isfile(os.path.join(path, marker)) for marker in SAVED_DATASET_MARKERS)


def iter_saved_dataset_units(path: str | Path, split: str, max_record_bytes: int,
                             required_columns: list[str]) -> Iterator[Unit]:
    """Rows of one split of a dataset written by ``datasets.save_to_disk``, read offline."""
    import datasets

    marker = next((m for m in SAVED_DATASET_MARKERS if os.path.isfile(os.path.join(path, m))), "")
    marker_bytes = Path(path, marker).read_bytes() if marker else b""
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 (datasets raises many kinds: the file is unreadable either way)
        yield make_unit("file", marker_bytes, reason="unreadable_source",
                        detail=f"not a readable saved dataset ({type(exc).__name__})")
        return
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            yield make_unit("file", marker_bytes, reason="unreadable_source",
                            detail=f"saved dataset has no split {split!r} (splits: {sorted(loaded)})")
            return
        loaded = loaded[split]
    missing = _missing_columns(loaded.data.schema, required_columns)
    if missing:
        yield make_unit("file", marker_bytes, reason="unreadable_source", detail=f"dataset lacks configured columns {missing}")
        return
    # The arrow format honours an indices mapping (a selected or shuffled dataset saved as is).
    batches = loaded.with_format("arrow").iter(batch_size=BATCH_ROWS)
    yield from _row_units(batches, max_record_bytes, required_columns or None)


def hub_cache_files(uri: str, split: str | None) -> list[str]:
    """Data files of ``hf://owner/name`` in the local Hugging Face hub cache (never the network):
    the split's files when ``split`` is given, found the way `datasets` infers splits."""
    from datasets.data_files import DataFilesDict, get_data_patterns
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    repo_id = uri[len(HF_PREFIX):].strip("/")
    try:
        snapshot = snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        return []  # not in the cache: the source matches nothing (a WARNING, and coverage says so)
    try:
        files = DataFilesDict.from_patterns(get_data_patterns(snapshot), base_path=snapshot)
    except Exception:  # noqa: BLE001 (no data files datasets can recognise)
        return []
    wanted = [s for s in files if split is None or s == split]
    return sorted({f for s in wanted for f in files[s]})


def saved_dataset_dirs(pattern: str) -> list[str]:
    """Directories matching a local glob that hold a dataset written by save_to_disk."""
    return [p for p in sorted(globlib.glob(pattern)) if os.path.isdir(p) and is_saved_dataset(p)]
