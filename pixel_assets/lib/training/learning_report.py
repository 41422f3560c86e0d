"""Did the model learn? The figures a reviewer (and `pixel demo`) reads off a trained chain:

- the final model's mean test-split loss against the untrained model's (the seeded initialisation of
  the embedded tiny base, before its pre-training): target at most ``FINAL_TO_UNTRAINED_MAX`` of it;
- per stage, its own validation loss before it trained (the parent on the same records) and after:
  a stage that learned its families ends below its parent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FINAL_TO_UNTRAINED_MAX = 0.5
UNTRAINED = "untrained"
FINAL = "final_model"


def mean_loss(table: Mapping[str, Any], column: str) -> float | None:
    """Mean loss of one column over every family row of the evaluation table (all sections)."""
    values = [cells[column]["loss"] for fams in table["sections"].values() for cells in fams.values()
              if cells.get(column, {}).get("loss") is not None]
    return sum(values) / len(values) if values else None


def final_vs_untrained(table: Mapping[str, Any], final: str = FINAL, untrained: str = UNTRAINED) -> dict[str, Any]:
    """{untrained, final, ratio, target, met}; ``met`` is None when a column is missing (e.g. a
    production base has no untrained column)."""
    before, after = mean_loss(table, untrained), mean_loss(table, final)
    ratio = after / before if before and after is not None else None
    return {"untrained_mean_loss": before, "final_mean_loss": after, "ratio": ratio,
            "target_ratio_at_most": FINAL_TO_UNTRAINED_MAX,
            "met": None if ratio is None else ratio <= FINAL_TO_UNTRAINED_MAX}


def stage_improvement(stage: str, parent_loss: float | None, own_loss: float | None) -> dict[str, Any]:
    """One stage on its own validation records: the parent's loss before, this stage's after."""
    lowered = None if parent_loss is None or own_loss is None else own_loss < parent_loss
    return {"stage": stage, "parent_val_loss": parent_loss, "val_loss": own_loss, "lowered": lowered}


def stage_improvements(rows: Iterable[tuple[str, float | None, float | None]]) -> dict[str, Any]:
    """Every stage's improvement and whether all evaluated stages lowered their own loss."""
    stages = [stage_improvement(*row) for row in rows]
    judged = [s["lowered"] for s in stages if s["lowered"] is not None]
    return {"stages": stages, "evaluated": len(judged), "all_lowered": bool(judged) and all(judged)}
