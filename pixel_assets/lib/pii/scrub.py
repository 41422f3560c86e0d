"""Scrub a records frame: detect, replace with typed placeholders, route uncertain records.

Placeholders are consistent within a record (a conversation): the same value gets the same
"<TYPE_n>" in every turn, in metadata.rejected_response and in the metadata strings copied from
sources (category, creator, ...; see _text_slots). A detection scoring inside the
configured review band makes the record `requires_review`: such records go to `PiiResult.review`
(confident detections replaced, uncertain spans listed by offset in metadata.pii_review) and never
into `PiiResult.clean`. Stats and log lines carry counts only, never values.
"""

from __future__ import annotations

import bisect
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pixel_assets.lib import contract
from pixel_assets.lib.pii.cache import PiiCache, text_key
from pixel_assets.lib.pii.detection import Detection
from pixel_assets.lib.pii.placeholders import PlaceholderMap

PII_STEP = "pii_scrub"


@dataclass
class PiiResult:
    clean: pl.DataFrame  # records frame; pii_status scrubbed | none_detected
    review: pl.DataFrame  # records frame; pii_status requires_review
    stats: dict[str, Any] = field(default_factory=dict)


def _replace(text: str, confident: list[Detection], uncertain: list[Detection], pmap: PlaceholderMap):
    """Replace confident spans; return new text and the uncertain spans' shifted offsets."""
    pieces: list[str] = []
    shifts: list[tuple[int, int]] = []  # (end in the original, running delta) per replacement
    pos, delta = 0, 0
    for d in sorted(confident):
        pieces.append(text[pos : d.start])
        ph = pmap.placeholder(d.entity_type, text[d.start : d.end])
        pieces.append(ph)
        delta += len(ph) - (d.end - d.start)
        shifts.append((d.end, delta))
        pos = d.end
    pieces.append(text[pos:])
    ends = [end for end, _ in shifts]

    def shifted(p: int) -> int:
        # The running delta of the last replacement ending at or before p; deltas can shrink
        # (a long value, a short placeholder), so the largest one is not the answer.
        i = bisect.bisect_right(ends, p)
        return p + (shifts[i - 1][1] if i else 0)

    moved = [Detection(shifted(d.start), shifted(d.end), d.entity_type, d.score) for d in uncertain]
    return "".join(pieces), moved


# Metadata the pipeline writes itself: the contract's fields plus the bookkeeping keys of ingest
# (normalize.build_record), splits and this stage. Every other string in metadata was copied from a
# source (category, difficulty_level, creator, video, ...) and is scanned like the messages.
PIPELINE_METADATA = frozenset(contract.RECORD_SCHEMA["properties"]["metadata"]["properties"]) | {
    "original_format", "source_location", "record_type", "holdout", "pii_review",
}


def _text_slots(record: dict[str, Any]) -> list[tuple[str, str]]:
    """Every text to scrub as (field, text): the messages, rejected_response, then source extras.

    The order sets placeholder numbering: names first seen in the turns keep the low numbers.
    """
    slots = [(f"messages.{i}", m["content"]) for i, m in enumerate(record["messages"])
             if isinstance(m.get("content"), str)]
    meta = record.get("metadata", {})
    if isinstance(meta.get("rejected_response"), str):
        slots.append(("metadata.rejected_response", meta["rejected_response"]))
    slots += [(f"metadata.{k}", meta[k]) for k in sorted(meta)
              if k not in PIPELINE_METADATA and k != "rejected_response" and isinstance(meta[k], str)]
    return slots


class _RecordState:
    """One record's texts while they are scrubbed pass by pass."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = list(texts)
        self.pending = list(range(len(texts)))  # text indexes to (re-)scan in the next pass
        self.review: list[list[Detection]] = [[] for _ in texts]  # uncertain spans, current offsets
        self.residual: dict[int, list[Detection]] = {}
        self.pmap = PlaceholderMap()
        self.replaced = 0


def _scrub_paths(meta: dict[str, Any], scrub: Callable[[str], str]) -> None:
    """source_key and provenance.original_s3_key through the names check (paths.scrub_path)."""
    if isinstance(meta.get("source_key"), str):
        meta["source_key"] = scrub(meta["source_key"])
    prov = meta.get("provenance")
    if isinstance(prov, dict) and isinstance(prov.get("original_s3_key"), str):
        prov["original_s3_key"] = scrub(prov["original_s3_key"])


def _put_text(record: dict[str, Any], slot: str, text: str) -> None:
    where, key = slot.split(".", 1)
    if where == "messages":
        record["messages"][int(key)]["content"] = text
    else:
        record["metadata"][key] = text


def scrub_records(
    records: list[dict[str, Any]], *, family: str, scrubber=None, cache: PiiCache | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Scrub record dicts; returns (clean, review, stats). Does not mutate the inputs."""
    from pixel_assets.lib.pii.scrubber import PiiScrubber

    started = time.perf_counter()
    scrubber = scrubber or PiiScrubber()
    log = log or (lambda _msg: None)
    records = [json.loads(json.dumps(r)) for r in records]
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not isinstance(r.get("messages"), list) or not isinstance(r.get("metadata"), dict):
            raise ValueError(f"pii: record {i} of family {family!r} lacks messages/metadata")
    slots_per_record = [_text_slots(r) for r in records]
    texts_per_record = [[text for _slot, text in slots] for slots in slots_per_record]

    # Cache lookup: a record hits only when every one of its texts is present by hash.
    fingerprint = scrubber.fingerprint
    hashes = [r["metadata"].get("content_hash", "") for r in records]
    cached = cache.get_many(hashes, fingerprint) if cache else {}
    known: dict[str, list[Detection]] = {}
    hits = 0
    for h, texts in zip(hashes, texts_per_record):
        entry = cached.get(h)
        if entry is not None and all(text_key(t) in entry for t in texts):
            hits += 1
            known.update(entry)  # also the re-scans of its scrubbed texts, when stored
    to_scan = list({text_key(t): t for texts in texts_per_record for t in texts if text_key(t) not in known}.values())
    log(f"pii[{family}]: {len(records)} records, {hits} cache hits, scanning {len(to_scan)} texts")
    for t, dets in zip(to_scan, scrubber.detect_unfiltered(to_scan)):
        known[text_key(t)] = dets
    fresh: dict[str, dict[str, list[Detection]]] = {}  # content hash -> texts scanned in this run

    def remember(i: int, texts: list[str]) -> None:
        h = hashes[i]
        if cache is not None and h:
            entry = fresh.setdefault(h, {})
            for t in texts:
                k = text_key(t)
                if k not in cached.get(h, {}):
                    entry[k] = known[k]

    clean: list[dict] = []
    review: list[dict] = []
    status_counts: Counter[str] = Counter()
    entity_counts: Counter[str] = Counter()
    review_entity_counts: Counter[str] = Counter()
    rescans: Counter[str] = Counter()
    low, high = scrubber.config.review_band
    passes = scrubber.config.max_passes
    states = [_RecordState(texts) for texts in texts_per_record]
    for i, texts in enumerate(texts_per_record):
        remember(i, texts)
    # Pass 0 scrubs every text; passes 1..max_passes re-scan the texts the previous pass changed and
    # scrub what they find; one more re-scan checks the last one. A confident detection it still
    # finds sends the record to review (metadata.pii_review, reason "residual"): the output passes
    # its own detector.
    for p in range(passes + 2):
        pending = [(i, ti) for i, st in enumerate(states) for ti in st.pending]
        if not pending:
            break
        if p:
            rescan = list({text_key(states[i].texts[ti]): states[i].texts[ti] for i, ti in pending
                           if text_key(states[i].texts[ti]) not in known}.values())
            rescans["texts"] += len(rescan)
            for t, dets in zip(rescan, scrubber.detect_unfiltered(rescan)):
                known[text_key(t)] = dets
        for i, st in enumerate(states):
            if not st.pending:
                continue
            todo, st.pending = st.pending, []
            if p:
                remember(i, [st.texts[ti] for ti in todo])
            found = scrubber.apply_allow_list([st.texts[ti] for ti in todo],
                                              [known[text_key(st.texts[ti])] for ti in todo], family)
            for ti, dets in zip(todo, found):
                confident = [d for d in dets if d.score >= high]
                uncertain = [d for d in dets if low <= d.score < high
                             and not any(d.start < r.end and r.start < d.end for r in st.review[ti])]
                if p == passes + 1 and confident:  # still found after the last scrub pass: a human decides
                    st.residual.setdefault(ti, []).extend(confident)
                    confident = []
                new_text, moved = _replace(st.texts[ti], confident, st.review[ti] + uncertain, st.pmap)
                st.review[ti] = moved
                st.replaced += len(confident)
                entity_counts.update(d.entity_type for d in confident)
                review_entity_counts.update(d.entity_type for d in uncertain)
                if confident:
                    st.texts[ti] = new_text
                    st.pending.append(ti)
                    if p:
                        rescans["replaced"] += len(confident)
    from pixel_assets.lib.pii.paths import scrub_path

    scrubbed_paths: dict[str, str] = {}  # a few distinct paths (one per source file)

    def scrub_path_cached(path: str) -> str:
        if path not in scrubbed_paths:
            scrubbed_paths[path] = scrub_path(path, scrubber=scrubber, family=family)
        return scrubbed_paths[path]

    for record, slots, st in zip(records, slots_per_record, states):
        review_spans = []
        for ti, (slot, _text) in enumerate(slots):
            _put_text(record, slot, st.texts[ti])
            review_spans += [{"text_index": ti, "field": slot, **d.as_dict()} for d in st.review[ti]]
            review_spans += [{"text_index": ti, "field": slot, "reason": "residual", **d.as_dict()}
                             for d in st.residual.get(ti, [])]
        meta = record["metadata"]
        _scrub_paths(meta, scrub_path_cached)
        meta["content_hash"] = contract.content_hash(record["messages"])
        meta["total_tokens"] = contract.approx_tokens(record["messages"])
        prov = meta.setdefault("provenance", {})
        prov["processing_steps"] = [*prov.get("processing_steps", []), PII_STEP]
        if review_spans:
            meta["pii_status"] = "requires_review"
            meta["pii_review"] = review_spans  # field + offsets in the scrubbed texts; no values
            review.append(record)
            rescans["residual_records"] += bool(st.residual)
        else:
            meta["pii_status"] = "scrubbed" if st.replaced else "none_detected"
            clean.append(record)
        status_counts[meta["pii_status"]] += 1
    if cache is not None:
        cache.put_many({h: {**cached.get(h, {}), **entry} for h, entry in fresh.items() if entry}, fingerprint)

    stats = {
        "family": family,
        "records_in": len(records),
        "status": {s: status_counts.get(s, 0) for s in contract.PII_STATUSES},
        "entities_replaced": dict(sorted(entity_counts.items())),
        "entities_for_review": dict(sorted(review_entity_counts.items())),
        "cache_hits": hits if cache is not None else 0,
        "cache_misses": len(records) - hits if cache is not None else len(records),
        "texts_scanned": len(to_scan),
        "rescan": {"texts": rescans["texts"], "replaced": rescans["replaced"],
                   "residual_records": rescans["residual_records"]},
        "detector_fingerprint": fingerprint,
        "seconds": round(time.perf_counter() - started, 3),
    }
    log(f"pii[{family}]: done: " + ", ".join(f"{k}={v}" for k, v in stats["status"].items()))
    return clean, review, stats


def scrub_frame(
    frame: pl.DataFrame, *, family: str, scrubber=None, cache: PiiCache | None = None,
    log: Callable[[str], None] | None = None,
) -> PiiResult:
    """Scrub a records frame (contract.RECORDS_FRAME_SCHEMA) of one family."""
    records = contract.frame_to_records(frame) if frame.height else []
    clean, review, stats = scrub_records(records, family=family, scrubber=scrubber, cache=cache, log=log)
    to_frame = lambda rs: contract.records_to_frame(rs) if rs else contract.empty_records_frame()  # noqa: E731
    return PiiResult(clean=to_frame(clean), review=to_frame(review), stats=stats)
