"""Build the compiled dataset in memory (SPEC §5): split shards, the single-file export, manifest.

Shard lines are the record JSON strings of the frame as they are (``assign_splits`` already set
``metadata.split``), so writing a shard is a join of strings, never a re-serialization.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pixel_assets.lib.compiled.manifest import EXPORT_KEY, MANIFEST_VERSION, validate_manifest
from pixel_assets.lib.contract import SPLITS, record_errors, sha256_digest, utc_now_iso
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.leakage import leakage_from_fields
from pixel_assets.lib.splits import decode_record_fields

DEFAULT_SHARD_MAX_BYTES = 50_000_000


class CompileError(ValueError):
    """The input frame cannot be compiled; the message gives counts, never content."""


@dataclass(frozen=True)
class Shard:
    split: str
    shard_id: str  # "train_000"
    key: str  # "train/train_000.jsonl", relative to the publication prefix
    data: bytes  # JSONL, one full record per line, "\n"-terminated
    sha256: str  # "sha256:<hex of data>"
    count: int
    families: tuple[str, ...]

    @property
    def size_bytes(self) -> int:
        return len(self.data)


@dataclass
class CompiledDataset:
    shards: list[Shard]
    manifest: dict[str, Any]
    export_key: str = EXPORT_KEY
    stats: dict[str, Any] = field(default_factory=dict)  # counts for asset metadata

    @property
    def export(self) -> bytes:
        """compiled/final_training_dataset.jsonl: every shard, in train, val, test order.
        Joined on access (not stored) so the dataset is not held twice in memory."""
        return b"".join(s.data for s in self.shards)

    def shards_of(self, split: str) -> list[Shard]:
        return [s for s in self.shards if s.split == split]


def _shard_bounds(line_bytes: list[int], max_bytes: int) -> list[tuple[int, int]]:
    """Greedy [start, end) row ranges whose byte size stays <= max_bytes (a single record larger
    than the cap gets a shard of its own)."""
    bounds, start, size = [], 0, 0
    for i, n in enumerate(line_bytes):
        if size and size + n > max_bytes:
            bounds.append((start, i))
            start, size = i, 0
        size += n
    if start < len(line_bytes):
        bounds.append((start, len(line_bytes)))
    return bounds


def _provenance_map(work: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """content_hash -> {source_key, source_family, original_format, processing_steps}.

    One entry per conversation, so a million of them: the few distinct values of every field are
    shared objects (one string per source key, one list per step sequence) instead of copies."""
    strings: dict[str, str] = {}
    step_lists: dict[str, list[str]] = {}
    sep = "\x1f"
    rows = work.select(
        "content_hash", "source_key", "source_family", "original_format", pl.col("steps").list.join(sep)
    ).iter_rows()
    out = {}
    for h, k, f, o, steps in rows:
        out[h] = {
            "source_key": strings.setdefault(k, k),
            "source_family": strings.setdefault(f, f),
            "original_format": strings.setdefault(o, o),
            # missing or empty steps become [], which the manifest validation then reports
            "processing_steps": step_lists[steps] if steps in step_lists else step_lists.setdefault(
                steps, steps.split(sep) if steps else []
            ),
        }
    return out


def _check_input(frame: pl.DataFrame, registry: Registry, validate_sample: int | None) -> pl.DataFrame:
    missing = [c for c in ("content_hash", "source_family", "record", "split") if c not in frame.columns]
    if missing:
        raise CompileError(f"frame lacks columns {missing}; run splits.assign_splits first")
    try:
        decoded = decode_record_fields(frame)
    except pl.exceptions.PolarsError as exc:
        raise CompileError(f"records do not parse with the record contract's field types: {type(exc).__name__}") from None
    fields = decoded.select(
        pl.col("split").alias("json_split"), "pii_status", "dedup_status", pl.col("content_hash").alias("json_hash"),
    ).with_columns(frame.select("content_hash", "source_family", "split"))
    problems = {
        "split not train/val/test": fields.filter(~pl.col("split").is_in(list(SPLITS)) | pl.col("split").is_null()).height,
        "metadata.split differs from the split column": fields.filter(pl.col("json_split").ne_missing(pl.col("split"))).height,
        "metadata.content_hash differs from the content_hash column": fields.filter(pl.col("json_hash").ne_missing(pl.col("content_hash"))).height,
        "pii_status requires_review (belongs in the review queue)": fields.filter(pl.col("pii_status") == "requires_review").height,
        "dedup_status is not unique (removed duplicates)": fields.filter(pl.col("dedup_status").ne_missing("unique")).height,
        "duplicate content_hash (run dedup first)": frame.height - frame.get_column("content_hash").n_unique(),
        "family not in the registry": fields.filter(~pl.col("source_family").is_in(registry.names)).height,
    }
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        raise CompileError(f"cannot compile {frame.height} records: " + "; ".join(f"{v} {k}" for k, v in problems.items()))
    # Full schema validation on a deterministic sample (None = every record); the gates re-check all.
    if validate_sample is None or frame.height <= validate_sample:
        sample = frame
    else:
        sample = frame.gather_every(frame.height // validate_sample) if validate_sample > 0 else frame.clear()
    import json

    bad = 0
    first: list[str] = []
    for content_hash, record_json in sample.select("content_hash", "record").iter_rows():
        errors = record_errors(json.loads(record_json))
        if errors:
            bad += 1
            if len(first) < 3:
                first.append(f"{content_hash}: {errors[0].split(':')[0]}")  # path only, no content
    if bad:
        raise CompileError(f"{bad} of {sample.height} checked records violate the record schema (e.g. {first})")
    return decoded


def build_compiled_dataset(
    frame: pl.DataFrame,
    registry: Registry,
    *,
    shard_max_bytes: int = DEFAULT_SHARD_MAX_BYTES,
    generated_at: str | None = None,
    validate_sample: int | None = 2000,
    split_policy: dict[str, Any] | None = None,
) -> CompiledDataset:
    """Shards per split, the compiled export and a validated manifest, all in memory.

    ``split_policy`` (e.g. ``{"ratios": [0.9, 0.05, 0.05], "salt": "pixel-split-v1"}``, what
    assign_splits was called with) is recorded in the manifest when given."""
    if shard_max_bytes <= 0:
        raise ValueError("shard_max_bytes must be positive")
    decoded = _check_input(frame, registry, validate_sample)
    rec = pl.col("record")
    # Everything but the record text, sorted by content hash (deterministic order inside each
    # split); the record strings are gathered shard by shard, so no second full copy is held.
    work = frame.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("row"),
        "content_hash", "source_family", "split",
        (rec.str.len_bytes() + 1).alias("line_bytes"),
    ).with_columns(decoded.select("source_key", "original_format", "total_tokens", "steps")).sort("content_hash")
    records = frame.get_column("record")

    shards: list[Shard] = []
    split_entries: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        part = work.filter(pl.col("split") == split)
        entries = []
        for i, (start, end) in enumerate(_shard_bounds(part.get_column("line_bytes").to_list(), shard_max_bytes)):
            rows = part.slice(start, end - start)
            lines = records.gather(rows.get_column("row"))
            data = (lines.str.join("\n").item() + "\n").encode("utf-8")
            del lines
            shard = Shard(
                split=split,
                shard_id=f"{split}_{i:03d}",
                key=f"{split}/{split}_{i:03d}.jsonl",
                data=data,
                sha256=sha256_digest(data),
                count=rows.height,
                families=tuple(sorted(rows.get_column("source_family").unique().to_list())),
            )
            shards.append(shard)
            entries.append({
                "shard_id": shard.shard_id, "path": shard.key, "size_bytes": shard.size_bytes,
                "sha256": shard.sha256, "conversation_count": shard.count, "source_families": list(shard.families),
            })
        split_entries[split] = {"conversations": part.height, "shards": entries}

    export_hash = hashlib.sha256()
    for shard in shards:
        export_hash.update(shard.data)
    export_size = sum(s.size_bytes for s in shards)
    per_family = (
        work.group_by("source_family", "split").len().pivot(on="split", index="source_family", values="len")
        .sort("source_family")
    )
    source_families = {}
    for row in per_family.iter_rows(named=True):
        counts = {s: int(row.get(s) or 0) for s in SPLITS}
        source_families[row["source_family"]] = {"conversations": sum(counts.values()), "splits": counts}

    missing_tokens = work.get_column("total_tokens").null_count()
    if missing_tokens:
        raise CompileError(f"{missing_tokens} records lack an integer metadata.total_tokens")
    provenance_map = _provenance_map(work)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "generated_at": generated_at or utc_now_iso(),
        "total_conversations": frame.height,
        "total_tokens_approx": int(work.get_column("total_tokens").sum()),
        "shard_max_bytes": shard_max_bytes,
        "splits": split_entries,
        "source_families": source_families,
        "holdout_families": {
            name: {"mode": h.mode, "fraction": h.fraction, "rationale": h.rationale}
            for name, h in registry.holdouts().items()
        },
        "compiled_export": {
            "path": EXPORT_KEY, "size_bytes": export_size, "sha256": "sha256:" + export_hash.hexdigest(),
            "conversation_count": frame.height,
        },
        "leakage": leakage_from_fields(frame, decoded, registry),
        **({"split_policy": split_policy} if split_policy is not None else {}),
        "provenance_map": provenance_map,
    }
    errors = validate_manifest(manifest)
    if errors:
        raise CompileError(f"built manifest is invalid: {errors[:5]}")
    stats = {
        "conversations": frame.height,
        "shards": len(shards),
        "bytes": export_size,
        **{f"{s}_conversations": split_entries[s]["conversations"] for s in SPLITS},
    }
    return CompiledDataset(shards=shards, manifest=manifest, stats=stats)
