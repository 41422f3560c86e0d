"""The detector-evaluation asset's targets: met on the real detector, missed on a planted defect."""

from pixel_assets.lib.pii.evaluate import RECALL_TARGETS, evaluate, evaluate_detector, over_redaction, target_misses
from pixel_assets.lib.pii.labeled import clean_conversations, labeled_set
from pixel_assets.lib.pii.scrubber import PiiScrubber


def _result(recall: float, precision: float = 1.0, per_conv: float = 0.0) -> dict:
    per_type = {t: {"recall": recall, "precision": precision} for t in RECALL_TARGETS}
    return {"per_type": per_type, "overall": {"precision": precision},
            "over_redaction": {"per_conversation": per_conv}}


def test_target_misses_names_each_missed_target():
    assert target_misses(_result(1.0)) == []
    low = target_misses(_result(0.5))
    assert len(low) == len(RECALL_TARGETS) and any("PERSON recall 0.5" in m for m in low)
    assert any("precision" in m for m in target_misses(_result(1.0, precision=0.8)))
    assert any("per clean conversation" in m for m in target_misses(_result(1.0, per_conv=0.5)))
    missing_type = _result(1.0)
    del missing_type["per_type"]["URL"]
    assert target_misses(missing_type) == ["URL recall None < 0.95"]


def test_real_detector_meets_targets_and_a_blind_one_does_not():
    samples = labeled_set(300, seed=5, split="eval")
    clean = clean_conversations(30)
    scrubber = PiiScrubber()
    result = evaluate_detector(scrubber, samples, clean=clean)
    assert target_misses(result) == [], result["per_type"]

    class Blind:  # a detector that finds nothing: every recall target must be missed
        def detect(self, texts, family=None):
            return [[] for _ in texts]

    blind = evaluate_detector(Blind(), samples, clean=clean)
    misses = target_misses(blind)
    assert all(any(m.startswith(f"{t} recall 0.0") for m in misses) for t in RECALL_TARGETS)
    assert blind == {**evaluate(samples, [[] for _ in samples]),
                     "over_redaction": over_redaction([[[] for _ in c] for c in clean])}
