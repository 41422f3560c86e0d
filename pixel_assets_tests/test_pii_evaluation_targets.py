"""The detector-evaluation targets: met by the real detector, missed by detectors with a planted
defect (a blind spot for one type, the capitalization-only name path), each miss named."""

import dataclasses

import pytest

from pixel_assets.lib.pii.evaluate import RECALL_TARGETS, evaluate_detector, evaluate_informal, target_misses
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


@pytest.fixture(scope="module")
def scrubber():
    return PiiScrubber(n_process=1)


@pytest.fixture(scope="module")
def samples():
    return labeled_set(300, seed=5, split="eval"), clean_conversations(30)


def _evaluate(scrubber, samples, informal=120):
    labeled, clean = samples
    result = evaluate_detector(scrubber, labeled, clean=clean)
    result["informal"] = evaluate_informal(scrubber, informal, seed=41)
    return result


def test_real_detector_meets_every_target(scrubber, samples):
    result = _evaluate(scrubber, samples)
    assert target_misses(result) == [], (result["per_type"], result["informal"])


def test_a_detector_blind_to_phone_numbers_misses_that_target_only(scrubber, samples):
    config = dataclasses.replace(scrubber.config, entities=tuple(e for e in scrubber.config.entities
                                                                 if e != "PHONE_NUMBER"))
    misses = target_misses(_evaluate(PiiScrubber(config, n_process=1), samples))
    assert [m.split(" recall")[0] for m in misses] == ["PHONE_NUMBER"], misses


def test_the_capitalization_only_name_path_misses_the_informal_targets(scrubber, samples):
    config = dataclasses.replace(scrubber.config, restore_case=False, context_names=False)
    misses = target_misses(_evaluate(PiiScrubber(config, n_process=1), samples))
    assert any(m.startswith("informal (lowercase all) PERSON recall") for m in misses), misses
    assert any(m.startswith("informal (lowercase 1/3) PERSON recall") for m in misses), misses
