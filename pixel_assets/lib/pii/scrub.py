"""Scrub a records frame: detect, replace with typed placeholders, route uncertain records.

Placeholders are consistent within a record (a conversation): the same value gets the same
"<TYPE_n>" in every turn and in metadata.rejected_response. A detection scoring inside the
configured review band makes the record `requires_review`: such records go to `PiiResult.review`
(confident detections replaced, uncertain spans listed by offset in metadata.pii_review) and never
into `PiiResult.clean`. Stats and log lines carry counts only, never values.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pixel_assets.lib import contract
from pixel_assets.lib.pii.cache import PiiCache, text_key
from pixel_assets.lib.pii.detection import Detection

PII_STEP = "pii_scrub"


@dataclass
class PiiResult:
    clean: pl.DataFrame  # records frame; pii_status scrubbed | none_detected
    review: pl.DataFrame  # records frame; pii_status requires_review
    stats: dict[str, Any] = field(default_factory=dict)


class PlaceholderMap:
    """Per-conversation map from (type, value) to "<TYPE_n>"."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, str], int] = {}
        self._next: Counter[str] = Counter()

    def placeholder(self, entity_type: str, value: str) -> str:
        key = (entity_type, " ".join(value.casefold().split()))
        if key not in self._index:
            self._index[key] = self._person_alias(key) or self._new(entity_type)
        return f"<{entity_type}_{self._index[key]}>"

    def _new(self, entity_type: str) -> int:
        self._next[entity_type] += 1
        return self._next[entity_type]

    def _person_alias(self, key: tuple[str, str]) -> int | None:
        # "Sarah" after "Sarah Johnson" (or the other way round) is the same person.
        etype, value = key
        if etype != "PERSON":
            return None
        tokens = set(value.split())
        for (t, v), idx in self._index.items():
            if t == etype and (tokens & set(v.split())):
                return idx
        return None


def _replace(text: str, confident: list[Detection], uncertain: list[Detection], pmap: PlaceholderMap):
    """Replace confident spans; return new text and the uncertain spans' shifted offsets."""
    pieces: list[str] = []
    shifts: list[tuple[int, int]] = []  # (original position, delta) after each replacement
    pos, delta = 0, 0
    for d in sorted(confident):
        pieces.append(text[pos : d.start])
        ph = pmap.placeholder(d.entity_type, text[d.start : d.end])
        pieces.append(ph)
        delta += len(ph) - (d.end - d.start)
        shifts.append((d.end, delta))
        pos = d.end
    pieces.append(text[pos:])

    def shifted(p: int) -> int:
        return p + max([dl for end, dl in shifts if end <= p], default=0)

    moved = [Detection(shifted(d.start), shifted(d.end), d.entity_type, d.score) for d in uncertain]
    return "".join(pieces), moved


def _record_texts(record: dict[str, Any]) -> list[str]:
    texts = [m["content"] for m in record["messages"] if isinstance(m.get("content"), str)]
    rejected = record.get("metadata", {}).get("rejected_response")
    if isinstance(rejected, str):
        texts.append(rejected)
    return texts


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
    texts_per_record = [_record_texts(r) for r in records]

    # Cache lookup: a record hits only when every one of its texts is present by hash.
    fingerprint = scrubber.fingerprint
    cached = cache.get_many([r["metadata"].get("content_hash", "") for r in records], fingerprint) if cache else {}
    known: dict[str, list[Detection]] = {}
    hits = 0
    missed: list[int] = []
    for i, (r, texts) in enumerate(zip(records, texts_per_record)):
        entry = cached.get(r["metadata"].get("content_hash", ""))
        if entry is None or not all(text_key(t) in entry for t in texts):
            missed.append(i)
        else:
            hits += 1
            for t in texts:
                known[text_key(t)] = entry[text_key(t)]
    to_scan = list({text_key(t): t for texts in texts_per_record for t in texts if text_key(t) not in known}.values())
    log(f"pii[{family}]: {len(records)} records, {hits} cache hits, scanning {len(to_scan)} texts")
    for t, dets in zip(to_scan, scrubber.detect_unfiltered(to_scan)):
        known[text_key(t)] = dets
    if cache is not None:
        cache.put_many(
            {records[i]["metadata"]["content_hash"]: {text_key(t): known[text_key(t)] for t in texts_per_record[i]}
             for i in missed if records[i]["metadata"].get("content_hash")},
            fingerprint,
        )

    clean: list[dict] = []
    review: list[dict] = []
    status_counts: Counter[str] = Counter()
    entity_counts: Counter[str] = Counter()
    review_entity_counts: Counter[str] = Counter()
    low, high = scrubber.config.review_band
    for record, texts in zip(records, texts_per_record):
        detections = scrubber.apply_allow_list(texts, [known[text_key(t)] for t in texts], family)
        pmap = PlaceholderMap()
        new_texts, review_spans, replaced = [], [], 0
        for ti, (text, dets) in enumerate(zip(texts, detections)):
            confident = [d for d in dets if d.score >= high]
            uncertain = [d for d in dets if low <= d.score < high]
            new_text, moved = _replace(text, confident, uncertain, pmap)
            new_texts.append(new_text)
            replaced += len(confident)
            entity_counts.update(d.entity_type for d in confident)
            review_entity_counts.update(d.entity_type for d in uncertain)
            review_spans += [{"text_index": ti, **d.as_dict()} for d in moved]
        it = iter(new_texts)
        for m in record["messages"]:
            if isinstance(m.get("content"), str):
                m["content"] = next(it)
        meta = record["metadata"]
        if isinstance(meta.get("rejected_response"), str):
            meta["rejected_response"] = next(it)
        meta["content_hash"] = contract.content_hash(record["messages"])
        meta["total_tokens"] = contract.approx_tokens(record["messages"])
        prov = meta.setdefault("provenance", {})
        prov["processing_steps"] = [*prov.get("processing_steps", []), PII_STEP]
        if review_spans:
            meta["pii_status"] = "requires_review"
            meta["pii_review"] = review_spans  # offsets in the scrubbed texts; no values
            review.append(record)
        else:
            meta["pii_status"] = "scrubbed" if replaced else "none_detected"
            clean.append(record)
        status_counts[meta["pii_status"]] += 1

    stats = {
        "family": family,
        "records_in": len(records),
        "status": {s: status_counts.get(s, 0) for s in contract.PII_STATUSES},
        "entities_replaced": dict(sorted(entity_counts.items())),
        "entities_for_review": dict(sorted(review_entity_counts.items())),
        "cache_hits": hits if cache is not None else 0,
        "cache_misses": len(records) - hits if cache is not None else len(records),
        "texts_scanned": len(to_scan),
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
