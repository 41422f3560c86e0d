"""`pixel bench compile`: the compile path (dedup, split, shard, manifest, publish) timed per phase."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

import polars as pl

from pixel_assets.lib.benchmarking import seconds_per_call
from pixel_assets.lib.compiled.build import build_compiled_dataset
from pixel_assets.lib.compiled.publish import publish_compiled_dataset
from pixel_assets.lib.compiled.synthetic import exact_dedup, synthetic_records_frame
from pixel_assets.lib.process_memory import peak_rss_bytes, reset_peak_rss
from pixel_assets.lib.registry import load_registry
from pixel_assets.lib.splits import assign_splits, set_split_in_record_json, set_split_in_records
from pixel_assets.lib.storage import LocalDataRoot


def peak_rss_mb() -> float:
    return peak_rss_bytes() / 2**20


def _baseline(frame: pl.DataFrame, rows: int) -> dict[str, Any]:
    """Setting the split per record with json.loads/dumps vs the string-level patch, same rows."""
    part = frame.head(rows).select("record").with_columns(split=pl.lit("train"), holdout=pl.lit("none"))
    string_s = seconds_per_call(lambda: set_split_in_records(part))  # milliseconds a call: timed over seconds
    t = time.perf_counter()
    [set_split_in_record_json(r, "train", "none") for r in part.get_column("record")]
    json_s = time.perf_counter() - t
    return {"records": part.height, "json_seconds": round(json_s, 3), "string_seconds": round(string_s, 3),
            "speedup": round(json_s / max(string_s, 1e-9), 1)}


def _pii_extrapolation(frame: pl.DataFrame, sample: int, n: int) -> dict[str, Any]:
    if sample <= 0:
        return {"note": "skipped (--pii-sample 0)"}
    try:
        from pixel_assets.lib.pii import scrub_frame
    except ImportError as exc:  # the PII stage not available in this checkout
        return {"note": f"pixel_assets.lib.pii unavailable ({exc.__class__.__name__})"}
    family = frame.get_column("source_family")[0]
    part = frame.filter(pl.col("source_family") == family).head(sample).select("content_hash", "source_family", "record")
    scrub_frame(part.head(5), family=family)  # model load, not per-record cost
    t = time.perf_counter()
    scrub_frame(part, family=family)
    seconds = time.perf_counter() - t
    return {"sample": part.height, "sample_seconds": round(seconds, 2),
            "extrapolated_seconds": round(seconds / part.height * n, 1), "extrapolated": True}


def _normalize_measurement(frame: pl.DataFrame, sample: int, n: int, registry) -> dict[str, Any]:
    """Time ingest normalization (parse, repair, normalize, validate) of raw ChatML lines made from
    a sample of the records, and extrapolate to n (one process; families ingest in parallel steps)."""
    import json

    from pixel_assets.lib.ingest import load_source_bytes
    from pixel_assets.lib.registry import Source

    if sample <= 0:
        return {"note": "skipped (--normalize-sample 0)"}
    part = frame.head(sample)
    family = registry[part.get_column("source_family")[0]]
    raw = "\n".join(
        json.dumps({"messages": json.loads(r)["messages"]}, ensure_ascii=False) for r in part.get_column("record")
    ).encode("utf-8")
    t = time.perf_counter()
    records, quarantined = load_source_bytes(raw, source=Source("bench/*.jsonl", "chatml"), family=family,
                                             source_key="file:///bench/raw.jsonl")
    seconds = time.perf_counter() - t
    return {"sample": part.height, "valid": len(records), "quarantined": len(quarantined),
            "sample_seconds": round(seconds, 2), "records_per_s": round(part.height / seconds),
            "extrapolated_seconds": round(seconds / part.height * n, 1), "extrapolated": True}


def bench_compile(
    n: int,
    *,
    shard_max_bytes: int = 50_000_000,
    seed: int = 0,
    near_dup: bool = True,
    pii_sample: int = 200,
    normalize_sample: int = 20_000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _m: None)
    registry = load_registry()
    phases: dict[str, float] = {}
    peak_in: dict[str, float] = {}  # peak RSS (MB) during each phase (VmHWM reset per phase)

    def timed(name: str, fn):
        say(f"  {name} ...")
        reset_peak_rss()  # the phases' peaks together give the overall peak
        t = time.perf_counter()
        value = fn()
        phases[name] = round(time.perf_counter() - t, 2)
        peak_in[name] = round(peak_rss_mb())
        return value

    frame = timed("generate records frame", lambda: synthetic_records_frame(n, registry, seed=seed))
    input_mb = round(frame.get_column("record").str.len_bytes().sum() / 1e6, 1)
    try:
        from pixel_assets.lib.dedup import dedup_records
    except ImportError:
        dedup_records = None
    if dedup_records is not None:
        mode = "dedup_records (exact + near-dup MinHash LSH)" if near_dup else "dedup_records (exact only)"
        result = timed("dedup", lambda: dedup_records(frame, threshold=0.8 if near_dup else None))
        kept, removed = result.kept, result.stats["removed"]
        removed_exact, removed_near = removed["duplicate_removed"], removed["near_duplicate_removed"]
    else:
        mode = "exact only (pixel_assets.lib.dedup.dedup_records not available)"
        kept = timed("dedup", lambda: exact_dedup(frame))
        removed_exact, removed_near = frame.height - kept.height, 0
    pii = _pii_extrapolation(frame, pii_sample, n)
    normalize = _normalize_measurement(frame, min(normalize_sample, n), n, registry)
    baseline = _baseline(frame, min(n, 100_000))
    del frame
    split = timed("split", lambda: assign_splits(kept, registry))
    del kept
    compiled = timed("shard + manifest", lambda: build_compiled_dataset(split, registry, shard_max_bytes=shard_max_bytes))
    del split
    with tempfile.TemporaryDirectory() as tmp:
        timed("publish (local)", lambda: publish_compiled_dataset(compiled, LocalDataRoot(tmp)))
    target = sum(v for k, v in phases.items() if k != "generate records frame")
    return {
        "conversations": n,
        "input_mb": input_mb,
        "dedup_mode": mode,
        "kept": compiled.manifest["total_conversations"],
        "removed_exact": removed_exact,
        "removed_near": removed_near,
        "shards": len(compiled.shards),
        "splits": {s: v["conversations"] for s, v in compiled.manifest["splits"].items()},
        "phases": phases,
        "target_seconds": round(target, 2),
        # the kernel's high-water mark is reset per phase, so the run's peak is the largest of them
        "peak_rss_mb": round(max([peak_rss_mb(), *peak_in.values()]), 1),
        "peak_rss_mb_per_phase": peak_in,
        "baseline": baseline,
        "pii": pii,
        "normalize": normalize,
    }
