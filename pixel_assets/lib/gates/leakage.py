"""Gate 2, leakage: no content hash, near-duplicate cluster or first user turn in two splits."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset, ShardRecord
from pixel_assets.lib.gates.near_duplicates import clusters_of, near_duplicate_pairs, shingle_set
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.redaction import gate_result, short_hash, key_spread, text_hash


def _near_duplicate_clusters(records: Sequence[ShardRecord], threshold: float, shingle: int) -> list[list[int]]:
    """Clusters (index lists, size >= 2) of near-duplicate records, by the gate's own exact
    similarity join (near_duplicates), not the dedup stage's LSH."""
    sets = [shingle_set([m["content"] for m in r.messages
                         if m.get("role") != "system" and isinstance(m.get("content"), str)], shingle)
            for r in records]
    return clusters_of(len(sets), near_duplicate_pairs(sets, threshold))


_WORDS = re.compile(r"\w+")


def _ngrams(r: ShardRecord, n: int) -> set[int]:
    """Hashed word n-grams of a record's non-system message texts, lower-cased (n-grams do not
    cross message boundaries)."""
    out: set[int] = set()
    for m in r.messages:
        text = m.get("content")
        if m.get("role") != "system" and isinstance(text, str):
            words = _WORDS.findall(text.lower())
            out.update(hash(tuple(words[i:i + n])) for i in range(len(words) - n + 1))
    return out


def decontamination(ds: CompiledDataset, config: GateConfig) -> tuple[list[str], dict[str, Any]]:
    """Long n-gram overlap between each val/test record and train, independent of dedup (13-gram
    decontamination, as in evaluation-harness practice). An n-gram found in more than
    ``decontamination_common_docs`` train records is shared phrasing, not a copy, and is left out;
    a val/test record fails when at least ``decontamination_threshold`` of its n-grams occur in train."""
    n, common = config.decontamination_ngram, config.decontamination_common_docs
    doc_freq: Counter = Counter()
    for r in ds.records:
        if r.split == "train":
            doc_freq.update(_ngrams(r, n))
    flagged, worst, checked = [], 0.0, 0
    for r in ds.records:
        if r.split == "train":
            continue
        grams = _ngrams(r, n)
        if not grams:
            continue
        checked += 1
        share = sum(1 for g in grams if 0 < doc_freq[g] <= common) / len(grams)
        worst = max(worst, share)
        if share >= config.decontamination_threshold:
            flagged.append(f"{r.id} {short_hash(r.stored_hash)}: {share:.2f} of its {n}-grams in train")
    return flagged, {"decontamination_records_checked": checked, "decontamination_max_overlap": round(worst, 4),
                     "decontamination_records_over_threshold": len(flagged)}


def gate_leakage(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    recs = ds.records
    by_hash = key_spread((ds.recomputed_hash(r), r.split, r.id) for r in recs)
    by_turn = key_spread((text_hash(t), r.split, r.id) for r in recs
                      if (t := contract.first_user_turn(r.messages)) is not None)
    clusters = _near_duplicate_clusters(recs, config.near_dup_threshold, config.near_dup_shingle)
    contaminated, ngram_figures = decontamination(ds, config)
    hash_leaks = [f"{short_hash(h)} in {'+'.join(sorted(s))} ({', '.join(ids[:3])})"
                  for h, (s, ids) in by_hash.items() if len(s) > 1]
    turn_leaks = [f"first-user-turn {short_hash(h)} in {'+'.join(sorted(s))} ({', '.join(ids[:3])})"
                  for h, (s, ids) in by_turn.items() if len(s) > 1]
    cluster_leaks = []
    for members in clusters:
        splits = {recs[i].split for i in members}
        if len(splits) > 1:
            ids = [recs[i].id for i in members]
            cluster_leaks.append(f"near-dup cluster of {len(members)} in {'+'.join(sorted(splits))} ({', '.join(ids[:3])})")
    figures = {"records": len(recs), "distinct_content_hashes": len(by_hash),
               "hashes_in_several_splits": len(hash_leaks),
               "near_duplicate_clusters": len(clusters), "clusters_in_several_splits": len(cluster_leaks),
               "distinct_first_user_turns": len(by_turn), "first_user_turns_in_several_splits": len(turn_leaks),
               **ngram_figures}
    return gate_result("leakage", {"content hashes in several splits": hash_leaks,
                               "near-duplicate clusters in several splits": cluster_leaks,
                               "first user turns in several splits": turn_leaks,
                               "val/test records sharing long n-grams with train": contaminated},
                   "no content hash, near-duplicate cluster or first user turn spans two splits; no val/test "
                   f"record shares >= {config.decontamination_threshold:.2f} of its {config.decontamination_ngram}-grams "
                   "with train", config, figures,
                   settings={"near_dup_threshold": config.near_dup_threshold, "near_dup_shingle": config.near_dup_shingle,
                             "decontamination_ngram": config.decontamination_ngram,
                             "decontamination_threshold": config.decontamination_threshold,
                             "decontamination_common_docs": config.decontamination_common_docs})
