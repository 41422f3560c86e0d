"""Accounting flags any family whose valid records are not all compiled, removed or in review."""

from pixel_assets.lib.accounting import family_accounting


def _counts(**overrides):
    counts = {
        "valid": {"a": 10, "b": 5},
        "quarantined": {"a": 2},
        "exact_dups": {"a": 1},
        "near_dups": {"b": 1},
        "requires_review": {"a": 1},
        "compiled": {"a": 8, "b": 4},
    }
    counts.update(overrides)
    return counts


def test_balanced_books():
    report = family_accounting(["a", "b"], **_counts())
    assert report["balanced"] and report["unbalanced"] == []
    assert report["families"][0] == {"family": "a", "read": 12, "quarantined": 2, "valid": 10, "exact_dups": 1,
                                     "near_dups": 0, "requires_review": 1, "held_out_of_test": 0, "compiled": 8}
    assert report["totals"]["read"] == 17 and report["totals"]["compiled"] == 12


def test_a_lost_record_unbalances_its_family():
    report = family_accounting(["a", "b"], **_counts(compiled={"a": 7, "b": 4}))
    assert not report["balanced"] and report["unbalanced"] == ["a"]


def test_records_of_an_unknown_family_are_flagged():
    report = family_accounting(["a", "b"], **_counts(compiled={"a": 8, "b": 4, "zz": 3}))
    assert not report["balanced"] and report["unbalanced"] == ["zz"]


def test_records_held_out_of_test_are_a_reason_of_their_own():
    """A new holdout record whose group trained before is kept out (splits): counted, not lost."""
    lost = family_accounting(["a", "b"], **_counts(compiled={"a": 7, "b": 4}))
    assert not lost["balanced"]
    held = family_accounting(["a", "b"], **_counts(compiled={"a": 7, "b": 4}), held_out_of_test={"a": 1})
    assert held["balanced"] and held["families"][0]["held_out_of_test"] == 1
    assert held["totals"]["held_out_of_test"] == 1
