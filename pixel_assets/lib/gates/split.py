"""Gate 7, split: holdout families and holdout slices only in test."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.groups import grouping
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.redaction import value_label, number_label, gate_result, short_hash
from pixel_assets.lib.registry import HOLDOUT_MODES
from pixel_assets.lib.splits import HOLDOUT_MARKERS


def family_holdouts(registry: Registry) -> dict[str, Any]:
    return {f.name: f.holdout for f in registry.families}


def recomputed_holdout(ds: CompiledDataset, registry: Registry, config: GateConfig) -> dict[str, str]:
    """Record id -> holdout marker ("none"|"family"|"slice"|"group") recomputed from the shards by
    the gates' own grouping (pixel_assets.lib.gates.groups), not by the split stage's code."""
    return grouping(ds, registry, config).expected_holdout


def _ledger(ds: CompiledDataset) -> tuple[dict[str, str], dict[str, str]] | None:
    """(content hash -> split, group key -> split) of the committed split ledger: what earlier
    compiles trained and validated on. None when the dataset is not under a data root."""
    from pixel_assets.lib.splits import LEDGER_KEY, read_ledger

    if not ds.prefix:
        return None
    ledger = read_ledger(ds.root, LEDGER_KEY)
    if ledger is None:
        return {}, {}
    by_hash = dict(ledger.select("content_hash", "split").iter_rows())
    by_group = {k: s for k, s in ledger.select("group_key", "split").iter_rows() if k is not None and s != "test"}
    return by_hash, by_group


def _holdout_policy_differences(stated: Any, registry: Registry) -> list[str]:
    """The manifest's holdout_families against the registry: the same families held out, with the
    same mode and fraction. A manifest without the policy does not say what test holds, so it fails."""
    if not isinstance(stated, dict):
        return ["manifest has no holdout_families"]
    expected = registry.holdouts()  # the families whose mode is not "none"
    out = []
    for name in sorted(set(stated) | set(expected)):
        entry = stated.get(name)
        family = value_label(name, registry.names)
        mode = registry[name].holdout.mode if name in registry.names else None
        stated_mode = entry.get("mode") if isinstance(entry, dict) else entry
        if mode is None:
            out.append(f"{family}: in the manifest, not in the registry")
        elif entry is None:  # absent: right only for a family the registry does not hold out
            if name in expected:
                out.append(f"{family}: not in the manifest, registry mode {mode}")
        elif stated_mode != mode:
            out.append(f"{family}: manifest mode {value_label(stated_mode, HOLDOUT_MODES)} != registry {mode}")
        elif name in expected and entry.get("fraction") != expected[name].fraction:
            out.append(f"{family}: manifest fraction {number_label(entry.get('fraction'))} "
                       f"!= registry {expected[name].fraction}")
    return out


def gate_split(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    holdouts = family_holdouts(registry)
    wrong_field = [f"{r.id}: metadata.split={value_label(r.meta.get('split'), contract.SPLITS)}"
                   for r in ds.records if r.meta.get("split") != r.split]
    test_only = [f"{r.id} {short_hash(r.stored_hash)} ({r.family})" for r in ds.records
                 if r.split != "test" and r.family in holdouts and holdouts[r.family].mode == "test_only"]
    groups = grouping(ds, registry, config)
    ledger = _ledger(ds)
    by_hash, by_group = ledger if ledger is not None else ({}, {})
    # A group an earlier compile put in train/val stays there (a group never leaves train or val).
    pinned = {groups.group_key[r.id] for r in ds.records if by_hash.get(ds.recomputed_hash(r)) in ("train", "val")}
    # Held out when the stored marker says so or the independent recomputation does: in test.
    held, slice_leaks, excused = 0, [], 0
    for r in ds.records:
        markers = {value_label(r.meta.get("holdout") or "none", HOLDOUT_MARKERS), groups.expected_holdout[r.id]} - {"none"}
        if markers:
            held += 1
            if r.split != "test" and not (r.family in holdouts and holdouts[r.family].mode == "test_only"):
                if groups.group_key[r.id] in pinned and r.meta.get("holdout") in (None, "none"):
                    excused += 1
                    continue
                slice_leaks.append(f"{r.id} {short_hash(r.stored_hash)} ({value_label(r.family, registry.names)}, "
                                   f"held out as {'/'.join(sorted(markers))})")
    # No group in two splits.
    splits_of: dict[str, set[str]] = {}
    ids_of: dict[str, list[str]] = {}
    for r in ds.records:
        splits_of.setdefault(groups.group_key[r.id], set()).add(r.split)
        ids_of.setdefault(groups.group_key[r.id], []).append(r.id)
    spanning = [f"group {short_hash('sha256:' + _hex(k))} in {'+'.join(sorted(s))} ({', '.join(ids_of[k][:3])})"
                for k, s in splits_of.items() if len(s) > 1]
    # Nothing an earlier compile trained or validated on sits in test now.
    contaminated = []
    for r in ds.records:
        if r.split != "test":
            continue
        was = by_hash.get(ds.recomputed_hash(r))
        if was in ("train", "val"):
            contaminated.append(f"{r.id} {short_hash(r.stored_hash)}: content hash in the ledger's {was}")
        elif by_group.get(groups.base_key[r.id]) or by_group.get(groups.group_key[r.id]):
            was = by_group.get(groups.base_key[r.id]) or by_group.get(groups.group_key[r.id])
            contaminated.append(f"{r.id} {short_hash(r.stored_hash)}: group key in the ledger's {was}")
    policy = _holdout_policy_differences(ds.manifest.get("holdout_families"), registry)
    per_family_split = Counter((r.family, r.split) for r in ds.records
                               if r.family in holdouts and holdouts[r.family].mode != "none")
    table = [{"family": n, "mode": holdouts[n].mode,
              **{s: per_family_split.get((n, s), 0) for s in contract.SPLITS}}
             for n in sorted(holdouts) if holdouts[n].mode != "none"]
    settings = {"test_only_families": sum(h.mode == "test_only" for h in holdouts.values()),
                "test_slice_families": sum(h.mode == "test_slice" for h in holdouts.values()),
                "split_salt": config.split_salt,
                "ledger": "not under a data root" if ledger is None else f"{len(by_hash)} content hashes"}
    figures = {"groups": len(splits_of), "groups_in_several_splits": len(spanning),
               "held_out_records": held,
               "test_only_records_outside_test": len(test_only),
               "held_out_records_outside_test": len(slice_leaks),
               "held_out_records_kept_in_train_val_by_the_ledger": excused,
               "test_records_the_ledger_has_in_train_or_val": len(contaminated),
               "records_in_wrong_split_directory": len(wrong_field)}
    return gate_result("split", {"test-only family records outside test": test_only,
                             "holdout-slice records outside test": slice_leaks,
                             "groups in several splits": spanning,
                             "test records an earlier compile trained or validated on": contaminated,
                             "records whose metadata.split differs from their shard's split": wrong_field,
                             "manifest holdout policy differs from the registry": policy},
                   "groups in one split each, holdouts only in test, nothing from the ledger's train/val in test",
                   config, figures, table, settings)


def _hex(group_key: str) -> str:
    return group_key.split(":", 1)[-1]
