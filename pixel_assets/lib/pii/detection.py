"""The Detection type and span helpers shared by every detector."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Our own typed placeholders ("<PERSON_1>", "<EMAIL_ADDRESS_2>"): never PII themselves.
PLACEHOLDER_RE = re.compile(r"<[A-Z][A-Z_]*_\d+>")


@dataclass(frozen=True, order=True)
class Detection:
    start: int
    end: int
    entity_type: str
    score: float

    def as_dict(self) -> dict:
        return {"entity_type": self.entity_type, "start": self.start, "end": self.end,
                "score": round(float(self.score), 4)}


def placeholder_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in PLACEHOLDER_RE.finditer(text)]


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def resolve_overlaps(detections: list[Detection], priority: dict[str, int] | None = None) -> list[Detection]:
    """Keep a non-overlapping set: higher priority type, then higher score, then longer span wins."""
    priority = priority or {}
    ranked = sorted(
        detections,
        key=lambda d: (-priority.get(d.entity_type, 0), -d.score, -(d.end - d.start), d.start),
    )
    kept: list[Detection] = []
    for d in ranked:
        if not any(overlaps(d.start, d.end, k.start, k.end) for k in kept):
            kept.append(d)
    return sorted(kept)


def drop_placeholders(text: str, detections: list[Detection]) -> list[Detection]:
    spans = placeholder_spans(text)
    if not spans:
        return detections
    return [d for d in detections if not any(overlaps(d.start, d.end, s, e) for s, e in spans)]
