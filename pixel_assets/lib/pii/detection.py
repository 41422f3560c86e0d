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
    """Merge overlapping detections into one span each (their union), so no part of either value
    survives: the merged span takes the type of the highest-priority member (then higher score,
    then longer span) and the highest score of the members."""
    priority = priority or {}
    rank = lambda d: (-priority.get(d.entity_type, 0), -d.score, -(d.end - d.start), d.start)  # noqa: E731
    merged: list[Detection] = []
    cluster: list[Detection] = []
    for d in sorted(detections):
        if cluster and d.start >= max(c.end for c in cluster):
            merged.append(_merge(cluster, rank))
            cluster = []
        cluster.append(d)
    if cluster:
        merged.append(_merge(cluster, rank))
    return merged


def _merge(cluster: list[Detection], rank) -> Detection:
    if len(cluster) == 1:
        return cluster[0]
    winner = min(cluster, key=rank)
    return Detection(min(c.start for c in cluster), max(c.end for c in cluster), winner.entity_type,
                     max(c.score for c in cluster))


def drop_placeholders(text: str, detections: list[Detection]) -> list[Detection]:
    spans = placeholder_spans(text)
    if not spans:
        return detections
    return [d for d in detections if not any(overlaps(d.start, d.end, s, e) for s, e in spans)]
