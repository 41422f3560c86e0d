"""What an extractor returns (turns + extras) or raises (Reject), and the key helpers they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class Reject(Exception):
    """A unit that cannot become a record: ``reason`` is a contract.QUARANTINE_REASONS entry."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class IngestConfigError(ValueError):
    """A source's options are unusable (a configuration error, not bad input)."""


@dataclass
class Turn:
    role: str  # canonical: system | user | assistant
    content: str  # raw, not yet cleaned
    html: bool | None = None  # True: an HTML fragment; False: never HTML; None: detect tags


@dataclass
class Extracted:
    turns: list[Turn]
    record_type: str = "conversation"  # conversation | text | preference
    extras: dict[str, Any] = field(default_factory=dict)  # extra metadata keys
    rejected: str | None = None  # preference pairs: the rejected response, raw


def require_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Reject("wrong_types", f"record is {type(value).__name__}, not an object")
    return value


def get_path(item: dict[str, Any], dotted: str) -> Any:
    """item['a']['b'] for 'a.b'; None when any step is missing."""
    value: Any = item
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def quality_extras(item: dict[str, Any]) -> dict[str, Any]:
    # quality_score is optional in the contract; copy it when the source has one (top level or
    # under metadata). Out-of-range values surface later as schema_violation, not silently.
    for value in (item.get("quality_score"), get_path(item, "metadata.quality_score")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Reject("wrong_types", "quality_score is not a number")
        return {"quality_score": float(value)}
    return {}
