"""Seeded demo-data generator: every registry family in its real source shape (SPEC §2).

``generate_demo_sources(root)`` writes ``sources/...`` files at the paths the registry globs
expect, with planted PII, exact / cross-family / near duplicates, the same question answered
twice, mojibake, HTML and malformed records, and a ``demo_plan.json`` at the root that says what
was planted so other stages' tests can assert on it. Same seed and scale = same bytes.

Modules: plan (what was planted), compose (text and record model), defects (what is planted),
families (one builder per family), serialize (file bytes per format).
"""

from __future__ import annotations

import hashlib
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.registry import Registry, load_registry
from pixel_assets.lib.storage import DataRoot

from . import phrases as P
from .compose import Bad, FamilyBuilder
from .families import BUILDERS, cross_family_dups
from .plan import PLAN_KEY, DemoPlan, FamilyPlan, jaccard, load_plan, shingles
from .serialize import finalize_messages, serialize_file, write_counsel_chat, repaired_hash


def generate_demo_sources(
    root: DataRoot, *, seed: int = 7, scale: float = 1.0, registry: Registry | None = None
) -> DemoPlan:
    """Write every registry family's demo sources under ``sources/`` and ``demo_plan.json``."""
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    registry = registry or load_registry()
    unknown = [f for f in registry.names if f not in BUILDERS]
    if unknown:
        raise ValueError(f"no demo-data builder for families: {', '.join(unknown)}")
    builders: dict[str, FamilyBuilder] = {}
    for name in registry.names:
        builders[name] = FamilyBuilder(name, seed, scale)
        BUILDERS[name](builders[name])
    cross_family_dups(builders, seed, scale)

    plan = DemoPlan(seed=seed, scale=scale, allow_listed_names=sorted(P.CREATORS.values()))
    dup_members: dict[str, list[dict[str, Any]]] = {}
    dup_hashes: dict[str, set[str]] = {}
    near: dict[str, dict[str, Any]] = {}
    same_q: dict[str, dict[str, Any]] = {}
    for name, b in builders.items():
        fam = plan.families.setdefault(name, FamilyPlan())
        if name == "professional_therapeutic":
            write_counsel_chat(root, plan)
        for spec in b.files:
            data, locations = serialize_file(spec)
            root.write_bytes(spec.key, data)
            fam.files.append(spec.key)
            for item, location in zip(spec.items, locations):
                fam.records_written += 1
                if isinstance(item, Bad):
                    fam.malformed[item.reason] = fam.malformed.get(item.reason, 0) + 1
                    continue
                fam.valid += 1
                ref: dict[str, Any] = {"family": name, "key": spec.key, "location": location, "demo_id": item.demo_id}
                if not item.encoding:
                    ref["content_hash"] = repaired_hash(finalize_messages(spec, item))
                for kind, value in item.pii:
                    plan.pii_occurrences.append({"type": kind, "value": value, "ref": ref})
                    values = plan.pii.setdefault(kind, [])
                    if value not in values:
                        values.append(value)
                if item.encoding:
                    plan.encoding_issues.append({"kind": item.encoding, "ref": ref})
                if item.dup_group and "content_hash" in ref:
                    dup_members.setdefault(item.dup_group, []).append(ref)
                    dup_hashes.setdefault(item.dup_group, set()).add(ref["content_hash"])
                if item.near_pair:
                    pair_id, side = item.near_pair
                    near.setdefault(pair_id, {"family": name, "messages": {}})[side] = ref
                    near[pair_id]["messages"][side] = item.messages
                if item.same_question:
                    pair_id, side = item.same_question
                    entry = same_q.setdefault(pair_id, {"family": name})
                    entry[side] = ref
                    entry["first_user_turn_sha256"] = hashlib.sha256(
                        contract.first_user_turn(item.messages).encode("utf-8")).hexdigest()
    for group, members in sorted(dup_members.items()):
        if len(members) < 2:
            continue
        if len(dup_hashes[group]) != 1:
            raise AssertionError(f"planted duplicate group {group} has {len(dup_hashes[group])} hashes")
        plan.exact_duplicate_groups.append({"group": group, "content_hash": members[0]["content_hash"], "members": members})
    for pair_id, entry in sorted(near.items()):
        msgs = entry.pop("messages")
        entry["jaccard"] = round(jaccard(shingles(msgs["a"]), shingles(msgs["b"])), 4)
        plan.near_duplicate_pairs.append({"pair": pair_id, **entry})
    plan.same_question_pairs = [{"pair": k, **v} for k, v in sorted(same_q.items())]
    for values in plan.pii.values():
        values.sort()
    root.write_text(PLAN_KEY, plan.to_json())
    return plan


__all__ = [
    "DemoPlan", "FamilyPlan", "PLAN_KEY", "generate_demo_sources", "load_plan", "shingles", "jaccard",
    "repaired_hash",
]
