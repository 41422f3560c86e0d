"""High-confidence structured PII (email, phone, SSN, credit card, IP) for re-scans of shards.

Regex + validators only (no NER), so it is fast enough to re-scan a whole compiled dataset; our
own placeholders ("<EMAIL_ADDRESS_1>") never count as PII.
"""

from __future__ import annotations

from pixel_assets.lib.pii.detection import Detection, drop_placeholders, resolve_overlaps
from pixel_assets.lib.pii.recognizers import STRUCTURED_TYPES, run_recognizers, structured_recognizers

HIGH_CONFIDENCE = 0.6  # at or above the top of the default review band


def find_structured_pii(texts: list[str], min_score: float = HIGH_CONFIDENCE) -> list[list[Detection]]:
    """One list of detections per text (types in STRUCTURED_TYPES, score >= min_score)."""
    recognizers = structured_recognizers()
    results = []
    for text in texts:
        found = [d for d in run_recognizers(text, recognizers) if d.score >= min_score]
        results.append(resolve_overlaps(drop_placeholders(text, found)))
    return results


__all__ = ["Detection", "STRUCTURED_TYPES", "find_structured_pii"]
