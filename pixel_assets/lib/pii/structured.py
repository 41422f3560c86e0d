"""High-confidence structured PII (email, phone, SSN, credit card, IP) for re-scans of shards.

Regex + validators only (no NER), so it is fast enough to re-scan a whole compiled dataset; our
own placeholders ("<EMAIL_ADDRESS_1>") never count as PII, and neither do the public crisis and
support lines of the config's global allow-list (`allow_list.public_numbers`), which the
scrubber keeps on purpose.
"""

from __future__ import annotations

from functools import lru_cache

from pixel_assets.lib.pii.config import load_config, phone_digits
from pixel_assets.lib.pii.detection import Detection, drop_placeholders, resolve_overlaps
from pixel_assets.lib.pii.recognizers import STRUCTURED_TYPES, run_recognizers, structured_recognizers

HIGH_CONFIDENCE = 0.6  # at or above the top of the default review band


@lru_cache(maxsize=1)
def _default_public_numbers() -> frozenset[str]:
    return load_config().public_number_set()


def find_structured_pii(texts: list[str], min_score: float = HIGH_CONFIDENCE,
                        public_numbers: frozenset[str] | None = None) -> list[list[Detection]]:
    """One list of detections per text (types in STRUCTURED_TYPES, score >= min_score), public
    crisis lines left out (`public_numbers`: digits as config.phone_digits gives them; default:
    the packaged config's list)."""
    recognizers = structured_recognizers()
    public = _default_public_numbers() if public_numbers is None else public_numbers
    results = []
    for text in texts:
        found = [d for d in run_recognizers(text, recognizers) if d.score >= min_score
                 and not (d.entity_type == "PHONE_NUMBER" and phone_digits(text[d.start : d.end]) in public)]
        results.append(resolve_overlaps(drop_placeholders(text, found)))
    return results


__all__ = ["Detection", "STRUCTURED_TYPES", "find_structured_pii"]
