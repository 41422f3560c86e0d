"""Per-family record accounting (SPEC §3): nothing is lost without a count and a reason.

read = valid + quarantined, and valid = exact dups + near dups + requires_review + held_out_of_test
+ compiled (held_out_of_test: new holdout records whose group trained in an earlier compile).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

COLUMNS = ("read", "quarantined", "valid", "exact_dups", "near_dups", "requires_review", "held_out_of_test", "compiled")


def family_accounting(
    families: Sequence[str],
    *,
    valid: Mapping[str, int],
    quarantined: Mapping[str, int],
    exact_dups: Mapping[str, int],
    near_dups: Mapping[str, int],
    requires_review: Mapping[str, int],
    compiled: Mapping[str, int],
    held_out_of_test: Mapping[str, int] | None = None,
) -> dict:
    """Rows per family, totals, and the families whose valid records are not all accounted for."""
    held_out_of_test = held_out_of_test or {}
    rows, unbalanced = [], []
    for family in families:
        row = {
            "family": family,
            "read": valid.get(family, 0) + quarantined.get(family, 0),
            "quarantined": quarantined.get(family, 0),
            "valid": valid.get(family, 0),
            "exact_dups": exact_dups.get(family, 0),
            "near_dups": near_dups.get(family, 0),
            "requires_review": requires_review.get(family, 0),
            "held_out_of_test": held_out_of_test.get(family, 0),
            "compiled": compiled.get(family, 0),
        }
        if row["valid"] != (row["exact_dups"] + row["near_dups"] + row["requires_review"] + row["held_out_of_test"]
                            + row["compiled"]):
            unbalanced.append(family)
        rows.append(row)
    strays = sorted(
        set().union(exact_dups, near_dups, requires_review, held_out_of_test, compiled) - set(families)
    )  # records attributed to a family the registry does not know: never silently ignored
    totals = {c: sum(r[c] for r in rows) for c in COLUMNS}
    return {"families": rows, "totals": totals, "unbalanced": unbalanced + strays, "balanced": not (unbalanced or strays)}
