"""What the demo planted (demo_plan.json) and the similarity measure its near-dup pairs are
described by."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pixel_assets.lib.storage import DataRoot

PLAN_KEY = "demo_plan.json"
COUNSEL_CHAT_DIR = "sources/professional_therapeutic/counsel_chat"
# The real counsel-chat sample shipped in the package (MIT licence), copied as-is.
COUNSEL_CHAT_SOURCE = Path(__file__).resolve().parents[2] / "data" / "counsel_chat"
OVERSIZE_BYTES = 1_100_000  # above the 1 MB record limit
ROLE_USER, ROLE_ASSISTANT, ROLE_SYSTEM = "user", "assistant", "system"

# --- plan -------------------------------------------------------------------------------


@dataclass
class FamilyPlan:
    records_written: int = 0  # every record a loader will see (valid + malformed)
    valid: int = 0
    malformed: dict[str, int] = field(default_factory=dict)  # quarantine reason -> count
    files: list[str] = field(default_factory=list)


@dataclass
class DemoPlan:
    """What was planted. Record references are {family, key, location[, demo_id, content_hash]};
    location follows the loaders' convention ("line N", "item N", "row N" all 1-based, "file")."""

    seed: int
    scale: float
    families: dict[str, FamilyPlan] = field(default_factory=dict)
    # [{content_hash, members: [ref, ...]}]; members >= 2, possibly across families
    exact_duplicate_groups: list[dict[str, Any]] = field(default_factory=list)
    # [{family, a: ref, b: ref, jaccard}] (5-word shingles of the non-system text)
    near_duplicate_pairs: list[dict[str, Any]] = field(default_factory=list)
    # [{family, first_user_turn_sha256, a: ref, b: ref}]
    same_question_pairs: list[dict[str, Any]] = field(default_factory=list)
    pii: dict[str, list[str]] = field(default_factory=dict)  # type -> planted values
    pii_occurrences: list[dict[str, Any]] = field(default_factory=list)  # {type, value, ref}
    allow_listed_names: list[str] = field(default_factory=list)  # creators: not PII
    encoding_issues: list[dict[str, Any]] = field(default_factory=list)  # {kind, ref}

    @property
    def total_records(self) -> int:
        return sum(f.records_written for f in self.families.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "DemoPlan":
        data = json.loads(text)
        data["families"] = {k: FamilyPlan(**v) for k, v in data["families"].items()}
        return cls(**data)


def load_plan(root: DataRoot) -> DemoPlan:
    return DemoPlan.from_json(root.read_text(PLAN_KEY))


# --- similarity (the measure the near-dup stage uses) -------------------------------------

_WORD_RE = re.compile(r"\w+")


def shingles(messages: list[dict[str, Any]], k: int = 5) -> set[tuple[str, ...]]:
    """Word k-shingles of the lower-cased non-system text."""
    words = _WORD_RE.findall(
        " ".join(m["content"] for m in messages if m.get("role") != ROLE_SYSTEM).lower()
    )
    return {tuple(words[i : i + k]) for i in range(max(1, len(words) - k + 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


# --- text composition ---------------------------------------------------------------------
