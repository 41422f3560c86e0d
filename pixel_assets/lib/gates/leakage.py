"""Gate 2, leakage: no content hash, near-duplicate cluster or first user turn in two splits."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.redaction import _result, _short, _spread, _text_hash


def _near_duplicate_clusters(records: Sequence[dict[str, Any]], threshold: float) -> list[list[int]]:
    """Clusters (index lists, size >= 2) of near-duplicate records, by the dedup stage's own code."""
    from pixel_assets.lib.dedup import dedup_text, near_duplicate_clusters

    if not records:
        return []
    labels = near_duplicate_clusters([dedup_text(r) for r in records], threshold=threshold)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels.tolist()):
        groups[label].append(i)
    return [g for g in groups.values() if len(g) > 1]


def gate_leakage(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    recs = ds.records
    by_hash = _spread((ds.recomputed_hash(r), r.split, r.id) for r in recs)
    by_turn = _spread((_text_hash(t), r.split, r.id) for r in recs
                      if (t := contract.first_user_turn(r.messages)) is not None)
    clusters = _near_duplicate_clusters([r.record for r in recs], config.near_dup_threshold)
    hash_leaks = [f"{_short(h)} in {'+'.join(sorted(s))} ({', '.join(ids[:3])})"
                  for h, (s, ids) in by_hash.items() if len(s) > 1]
    turn_leaks = [f"first-user-turn {_short(h)} in {'+'.join(sorted(s))} ({', '.join(ids[:3])})"
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
               "distinct_first_user_turns": len(by_turn), "first_user_turns_in_several_splits": len(turn_leaks)}
    return _result("leakage", {"content hashes in several splits": hash_leaks,
                               "near-duplicate clusters in several splits": cluster_leaks,
                               "first user turns in several splits": turn_leaks},
                   "no content hash, near-duplicate cluster or first user turn spans two splits",
                   config, figures, settings={"near_dup_threshold": config.near_dup_threshold})
