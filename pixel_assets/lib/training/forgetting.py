"""Catastrophic forgetting: a checkpoint's loss on the validation sets of all earlier stages.

Each stage's "own value" is its validation loss measured with `evaluation.evaluate_records` on the
checkpoint of that stage itself; a later checkpoint regresses on that stage when its loss there
rose by more than `max_rise` (a share: 0.1 = 10%) over the own value. The Dagster asset check
`no_catastrophic_forgetting` (WARN by default, ERROR by config) calls `forgetting_check`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pixel_assets.lib.training.evaluation import evaluate_records

DEFAULT_MAX_RISE = 0.10


def evaluate_stage_vals(model, tokenizer, val_sets: Mapping[str, Sequence[dict]], *,
                        max_length: int | None = None) -> dict[str, dict[str, Any]]:
    """{stage: {loss, perplexity, records, tokens, truncated}} on each stage's validation records."""
    return {stage: evaluate_records(model, tokenizer, recs, max_length=max_length)
            for stage, recs in val_sets.items() if recs}


def _loss(value: Any) -> float | None:
    if isinstance(value, Mapping):
        value = value.get("loss")
    return None if value is None else float(value)


def forgetting_regressions(evals: Mapping[str, Any], own_values: Mapping[str, Any],
                           max_rise: float = DEFAULT_MAX_RISE) -> list[dict[str, Any]]:
    """Earlier stages whose validation loss rose by more than `max_rise` over their own value.

    `evals`: {stage: loss or figures} of the checkpoint under test; `own_values`: {stage: loss or
    figures} of each stage's own checkpoint. Stages missing from either side are not compared.
    """
    if not isinstance(max_rise, (int, float)) or max_rise < 0:
        raise ValueError(f"forgetting: max_rise must be a share >= 0 (0.1 = 10%), got {max_rise!r}")
    out = []
    for stage, value in evals.items():
        now, own = _loss(value), _loss(own_values.get(stage))
        if now is None or own is None or own <= 0:
            continue
        rise = (now - own) / own
        if rise > max_rise:
            out.append({"stage": stage, "own_loss": own, "loss": now, "rise_share": rise, "max_rise": max_rise})
    return out


def forgetting_table(evals: Mapping[str, Any], own_values: Mapping[str, Any], max_rise: float) -> str:
    rows = ["| earlier stage | own val loss | val loss now | rise | |", "|---|---|---|---|---|"]
    for stage, value in evals.items():
        now, own = _loss(value), _loss(own_values.get(stage))
        if now is None or own is None or own <= 0:
            rows.append(f"| {stage} | {'' if own is None else f'{own:.4f}'} | "
                        f"{'' if now is None else f'{now:.4f}'} | | not compared |")
            continue
        rise = (now - own) / own
        rows.append(f"| {stage} | {own:.4f} | {now:.4f} | {rise:+.1%} | {'REGRESSED' if rise > max_rise else 'ok'} |")
    return "\n".join(rows)


def forgetting_check(checkpoint: str, evals: Mapping[str, Any], own_values: Mapping[str, Any],
                     max_rise: float = DEFAULT_MAX_RISE) -> tuple[bool, str, dict[str, Any]]:
    """(passed, markdown, metadata) for the `no_catastrophic_forgetting` asset check of `checkpoint`."""
    regressions = forgetting_regressions(evals, own_values, max_rise)
    if regressions:
        named = ", ".join(f"{r['stage']} {r['own_loss']:.4f} -> {r['loss']:.4f} ({r['rise_share']:+.1%})"
                          for r in regressions)
        head = (f"**{checkpoint}** forgot earlier stages: validation loss rose by more than {max_rise:.0%} "
                f"on {named}.")
    else:
        head = f"**{checkpoint}**: no earlier stage's validation loss rose by more than {max_rise:.0%}."
    markdown = head + "\n\n" + forgetting_table(evals, own_values, max_rise)
    metadata: dict[str, Any] = {"max_rise": float(max_rise), "regressions": len(regressions),
                                "regressed_stages": ", ".join(r["stage"] for r in regressions) or "none"}
    for stage, value in evals.items():
        now, own = _loss(value), _loss(own_values.get(stage))
        if now is not None:
            metadata[f"{stage}/val_loss"] = now
        if now is not None and own:
            metadata[f"{stage}/rise_share"] = (now - own) / own
    return not regressions, markdown, metadata
