"""The seeded weighted mix of a stage's families.

Weights are shares of records (default) or of tokens (`mix_unit: tokens`, phase A). By default
the mix down-samples: the family that is scarcest relative to its weight is used whole and every
other family is sampled down to its share, so no record is repeated. With `oversample` the most
plentiful family is used whole and the others are repeated (whole passes over a reshuffled copy)
up to their share. A record cap (`max_records`) scales the whole mix down, keeping the weights.
Every random choice comes from `random.Random` seeded with the stage seed and the family name,
and the caller hands units in a canonical order, so the same input and seed give the same mix.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Achieved weights of a down-sampled mix are within this of the targets once every family has
# at least 1/TOLERANCE records in the mix (rounding to whole records is the only error).
TOLERANCE = 0.02


@dataclass
class Mix:
    selected: list[int]  # unit indices in training order; an index repeats only when oversampled
    families: dict[str, dict[str, Any]] = field(default_factory=dict)  # per family: target/achieved/...


def _rng(seed: int, *parts: str) -> random.Random:
    return random.Random(":".join([str(seed), *parts]))


def _take(order: list[int], sizes: Sequence[int], target: float, repeat: bool, rng: random.Random) -> list[int]:
    """Units from `order` until their size reaches `target` (whole passes, reshuffled, if `repeat`)."""
    out: list[int] = []
    total = 0
    pool = list(order)
    while pool:
        for i in pool:
            if total >= target - sizes[i] / 2:  # nearest whole unit to the target
                return out
            out.append(i)
            total += sizes[i]
        if not repeat:
            break
        pool = list(order)
        rng.shuffle(pool)
    return out


def _shuffled_by_family(unit_families: Sequence[str], weights: dict[str, float], seed: int,
                        label: str) -> dict[str, list[int]]:
    """Unit indices per weighted family, each list in a seeded order of its own."""
    by_family: dict[str, list[int]] = {f: [] for f in weights}
    for i, fam in enumerate(unit_families):
        if fam in by_family:
            by_family[fam].append(i)
    for fam, idx in by_family.items():
        _rng(seed, label, fam).shuffle(idx)
    return by_family


def mix(unit_families: Sequence[str], sizes: Sequence[int], weights: dict[str, float], *, seed: int,
        oversample: bool = False, max_records: int | None = None, label: str = "") -> Mix:
    """Choose units (records, windows or documents) so each family's share of the total size meets
    its weight. `sizes` are 1 per unit for a record mix, token counts for a token mix."""
    by_family = _shuffled_by_family(unit_families, weights, seed, label)
    available = {f: sum(sizes[i] for i in idx) for f, idx in by_family.items()}
    present = {f: w for f, w in weights.items() if available[f] > 0}
    chosen: dict[str, list[int]] = {f: [] for f in weights}
    if present:
        ratios = [available[f] / w for f, w in present.items()]
        scale = max(ratios) if oversample else min(ratios)  # total size of the mix if weights summed to 1
        for _ in range(8):  # a record cap shrinks the mix; a token mix needs a few passes to settle
            chosen = {f: _take(by_family[f], sizes, present[f] * scale, oversample, _rng(seed, label, f, "repeat"))
                      if f in present else [] for f in weights}
            n = sum(len(c) for c in chosen.values())
            if not max_records or n <= max_records:
                break
            scale *= max_records / n
        if max_records:  # rounding can leave one or two over the cap
            while sum(len(c) for c in chosen.values()) > max_records:
                biggest = max(chosen, key=lambda f: len(chosen[f]))
                chosen[biggest].pop()
    selected = [i for f in weights for i in chosen[f]]
    _rng(seed, label, "order").shuffle(selected)
    total = sum(sizes[i] for i in selected) or 1
    fams: dict[str, dict[str, Any]] = {}
    for f, w in weights.items():
        picked = chosen[f]
        fams[f] = {
            "target_weight": round(w, 6),
            "achieved_weight": round(sum(sizes[i] for i in picked) / total, 6),
            "available": len(by_family[f]),
            "selected": len(picked),
            "distinct": len(set(picked)),
            "repeated": len(picked) - len(set(picked)),
        }
        if not by_family[f]:
            fams[f]["missing"] = True
    return Mix(selected=selected, families=fams)


def cap_stratified(unit_families: Sequence[str], weights: dict[str, float], cap: int | None, *, seed: int,
                   label: str = "val") -> list[int]:
    """All units of the weighted families (a validation set), or, over `cap`, a seeded sample with
    per-family counts following the weights (spare room given to families that have more)."""
    by_family = _shuffled_by_family(unit_families, weights, seed, label)
    total = sum(len(v) for v in by_family.values())
    if cap is None or total <= cap:
        out = [i for f in weights for i in by_family[f]]
    else:
        quota = {f: min(len(by_family[f]), int(weights[f] * cap)) for f in weights}
        spare = cap - sum(quota.values())
        while spare > 0:
            room = [f for f in weights if quota[f] < len(by_family[f])]
            if not room:
                break
            for f in sorted(room, key=lambda f: -weights[f]):
                if spare == 0:
                    break
                quota[f] += 1
                spare -= 1
        out = [i for f in weights for i in by_family[f][:quota[f]]]
    _rng(seed, label, "order").shuffle(out)
    return out
