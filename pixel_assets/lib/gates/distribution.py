"""Gate 3, distribution: train/val/test shares of non-holdout families within tolerance."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.redaction import gate_result
from pixel_assets.lib.gates.split import family_holdouts, recomputed_holdout


def gate_distribution(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    holdouts = family_holdouts(registry)
    non_holdout = [r for r in ds.records if holdouts.get(r.family) is None or holdouts[r.family].mode == "none"]
    # A conversation whose group shares a question with a holdout family goes to test as a whole
    # (leakage-freedom wins); those are held out, not 90/5/5-assigned, so they are not counted.
    # Which ones is recomputed with the split stage's own assignment, not read from the records.
    recomputed = recomputed_holdout(ds, registry, config)
    counted = [r for r in non_holdout if recomputed.get(r.id, "none") == "none"]
    per_split = Counter(r.split for r in counted)
    total = len(counted)
    # Named non_holdout_*: they count fewer records than the stats gate's <split>_conversations.
    figures: dict[str, Any] = {"non_holdout_conversations": total,
                               "held_out_with_a_holdout_group": len(non_holdout) - total}
    settings: dict[str, Any] = {"split_salt": config.split_salt}
    out_of_band = []
    for split in contract.SPLITS:
        lo, hi = config.share_bounds(split)
        share = per_split.get(split, 0) / total if total else 0.0
        figures[f"non_holdout_{split}_conversations"] = per_split.get(split, 0)
        figures[f"non_holdout_{split}_share"] = round(share, 4)
        settings[f"{split}_share_band"] = f"{lo:.2f}-{hi:.2f}"
        if not lo <= share <= hi:
            out_of_band.append(f"{split} share {share:.4f} outside {lo:.2f}-{hi:.2f}")
    problems = {"shares out of tolerance": out_of_band,
                "no non-holdout conversations": [] if total else ["0 conversations"]}
    result = gate_result("distribution", problems, "non-holdout shares " + ", ".join(
                         f"{s} {figures[f'non_holdout_{s}_share']:.3f}" for s in contract.SPLITS),
                     config, figures, settings=settings)
    if out_of_band:  # every offending share in the message: there are at most three
        result.message = f"shares out of tolerance over {total} non-holdout conversations: " + "; ".join(out_of_band)
    return result
