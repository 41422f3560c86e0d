"""Gate 7, split: holdout families and holdout slices only in test."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.redaction import _label, _number_label, _result, _short
from pixel_assets.lib.registry import HOLDOUT_MODES
from pixel_assets.lib.splits import HOLDOUT_MARKERS


def _family_holdouts(registry: Registry) -> dict[str, Any]:
    return {f.name: f.holdout for f in registry.families}


def _recomputed_holdout(ds: CompiledDataset, registry: Registry, config: GateConfig) -> dict[str, str]:
    """Record id -> holdout marker ("none"|"family"|"slice"|"group") recomputed by the split stage's
    own assignment (pixel_assets.lib.splits.assign_splits) over the records as written."""
    from pixel_assets.lib.splits import assign_splits

    cache_key = (id(registry), config.split_salt)
    if cache_key not in ds._holdouts:  # shared by the distribution and split gates
        known = [r for r in ds.records if r.family in registry.names and r.stored_hash]
        assigned: list[str] = []
        if known:
            frame = contract.records_to_frame(r.record for r in known)
            assigned = assign_splits(frame, registry, salt=config.split_salt).get_column("holdout").to_list()
        ds._holdouts[cache_key] = {r.id: h for r, h in zip(known, assigned)}
    return ds._holdouts[cache_key]


def _holdout_policy_differences(stated: Any, registry: Registry) -> list[str]:
    """The manifest's holdout_families against the registry: the same families held out, with the
    same mode and fraction. A manifest without the policy does not say what test holds, so it fails."""
    if not isinstance(stated, dict):
        return ["manifest has no holdout_families"]
    expected = registry.holdouts()  # the families whose mode is not "none"
    out = []
    for name in sorted(set(stated) | set(expected)):
        entry = stated.get(name)
        family = _label(name, registry.names)
        mode = registry[name].holdout.mode if name in registry.names else None
        stated_mode = entry.get("mode") if isinstance(entry, dict) else entry
        if mode is None:
            out.append(f"{family}: in the manifest, not in the registry")
        elif entry is None:  # absent: right only for a family the registry does not hold out
            if name in expected:
                out.append(f"{family}: not in the manifest, registry mode {mode}")
        elif stated_mode != mode:
            out.append(f"{family}: manifest mode {_label(stated_mode, HOLDOUT_MODES)} != registry {mode}")
        elif name in expected and entry.get("fraction") != expected[name].fraction:
            out.append(f"{family}: manifest fraction {_number_label(entry.get('fraction'))} "
                       f"!= registry {expected[name].fraction}")
    return out


def gate_split(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    holdouts = _family_holdouts(registry)
    wrong_field = [f"{r.id}: metadata.split={_label(r.meta.get('split'), contract.SPLITS)}"
                   for r in ds.records if r.meta.get("split") != r.split]
    test_only = [f"{r.id} {_short(r.stored_hash)} ({r.family})" for r in ds.records
                 if r.split != "test" and r.family in holdouts and holdouts[r.family].mode == "test_only"]
    # A record is held out when the stored marker says so or the recomputed assignment does: either
    # way it must sit in test.
    recomputed = _recomputed_holdout(ds, registry, config)
    held, slice_leaks = 0, []
    for r in ds.records:
        markers = {_label(r.meta.get("holdout") or "none", HOLDOUT_MARKERS), recomputed.get(r.id, "none")} - {"none"}
        if markers:
            held += 1
            if r.split != "test" and not (r.family in holdouts and holdouts[r.family].mode == "test_only"):
                slice_leaks.append(f"{r.id} {_short(r.stored_hash)} ({_label(r.family, registry.names)}, "
                                   f"held out as {'/'.join(sorted(markers))})")
    policy = _holdout_policy_differences(ds.manifest.get("holdout_families"), registry)
    per_family_split = Counter((r.family, r.split) for r in ds.records
                               if r.family in holdouts and holdouts[r.family].mode != "none")
    table = [{"family": n, "mode": holdouts[n].mode,
              **{s: per_family_split.get((n, s), 0) for s in contract.SPLITS}}
             for n in sorted(holdouts) if holdouts[n].mode != "none"]
    settings = {"test_only_families": sum(h.mode == "test_only" for h in holdouts.values()),
                "test_slice_families": sum(h.mode == "test_slice" for h in holdouts.values()),
                "split_salt": config.split_salt}
    figures = {"held_out_records": held,
               "test_only_records_outside_test": len(test_only),
               "held_out_records_outside_test": len(slice_leaks),
               "records_in_wrong_split_directory": len(wrong_field)}
    return _result("split", {"test-only family records outside test": test_only,
                             "holdout-slice records outside test": slice_leaks,
                             "records whose metadata.split differs from their shard's split": wrong_field,
                             "manifest holdout policy differs from the registry": policy},
                   "holdout families and slices appear only in test", config, figures, table, settings)
