"""Split groups and holdouts recomputed from the shards alone, without the split stage's code.

An independent reading of the rules in pixel_assets.lib.splits (its module docstring is the
spec): a record's base key is ``u:`` + 32 hex of sha256(normalized first user turn), or ``h:`` +
32 hex of its content hash when it has no user turn; records sharing a base key or a content hash
form one group, keyed by its smallest base key. A group with a test-only family record is held out
whole; otherwise a group is a holdout slice when sha256("<salt>|holdout|<group key>") read as a
number in [0, 1) is below the largest slice fraction of its families. (The dedup stage's
near-duplicate clusters are not in the shards; it keeps one record per cluster, so they add no
edges among the records a compile publishes.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset, ShardRecord
from pixel_assets.lib.registry import Registry


@dataclass(frozen=True)
class Grouping:
    base_key: dict[str, str]  # record id -> its own base key
    group_key: dict[str, str]  # record id -> its group's key
    expected_holdout: dict[str, str]  # record id -> "none" | "family" | "slice" | "group"


def base_key(ds: CompiledDataset, r: ShardRecord) -> str:
    turn = contract.first_user_turn(r.messages)
    if turn:
        return "u:" + hashlib.sha256(turn.encode("utf-8")).hexdigest()[:32]
    return "h:" + ds.recomputed_hash(r).removeprefix("sha256:")[:32]


def unit_interval(key: str, salt: str) -> float:
    return int.from_bytes(hashlib.sha256(f"{salt}|{key}".encode()).digest()[:8], "big") / 2**64


def grouping(ds: CompiledDataset, registry: Registry, config: GateConfig) -> Grouping:
    """The recomputed groups and expected holdouts, once per dataset, registry and salt."""
    return ds.memo(("grouping", id(registry), config.split_salt), lambda: _grouping(ds, registry, config))


def _grouping(ds: CompiledDataset, registry: Registry, config: GateConfig) -> Grouping:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    bases = {r.id: base_key(ds, r) for r in ds.records}
    for r in ds.records:  # a content hash links its records; "~" sorts after every base key
        union(bases[r.id], "~" + ds.recomputed_hash(r))
    members: dict[str, list[ShardRecord]] = {}
    for r in ds.records:
        members.setdefault(find(bases[r.id]), []).append(r)
    holdouts = {f.name: f.holdout for f in registry.families}
    group_key, expected = {}, {}
    for root_key, recs in members.items():
        key = min(bases[r.id] for r in recs)
        modes = [holdouts[r.family] for r in recs if r.family in holdouts]
        test_only = any(h.mode == "test_only" for h in modes)
        fraction = max((h.fraction for h in modes if h.mode == "test_slice"), default=0.0)
        sliced = not test_only and unit_interval(key, f"{config.split_salt}|holdout") < fraction
        for r in recs:
            group_key[r.id] = key
            mode = holdouts[r.family].mode if r.family in holdouts else "none"
            if test_only:
                expected[r.id] = "family" if mode == "test_only" else "group"
            elif sliced:
                expected[r.id] = "slice" if mode == "test_slice" else "group"
            else:
                expected[r.id] = "none"
    return Grouping(base_key=bases, group_key=group_key, expected_holdout=expected)
