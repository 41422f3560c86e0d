"""Gate names, titles, storage layout constants and the gate thresholds (GateConfig)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.coverage import CoverageThresholds
from pixel_assets.lib.splits import DEFAULT_SALT

DEFAULT_PREFIX = "final_dataset"
MANIFEST_NAME = "manifest.json"
REPORT_NAME = "verification_report.json"
COMPILED_EXPORT = "compiled/final_training_dataset.jsonl"

# Gate names double as the Dagster asset-check names on `compiled_dataset`.
GATE_NAMES = ("coverage", "leakage", "distribution", "pii", "provenance", "hash", "split", "stats")
GATE_TITLES = {
    "coverage": "1 Coverage: every required family has compiled conversations",
    "leakage": "2 Leakage: no hash, near-duplicate cluster, first user turn or long n-gram run in two splits",
    "distribution": "3 Distribution: train/val/test shares of non-holdout families within tolerance",
    "pii": "4 PII: no requires_review record, no structured PII, names below the residual rate, none in paths",
    "provenance": "5 Provenance: records meet the record contract, full provenance, a matching provenance_map entry",
    "hash": "6 Hash: content hashes recompute, shard sha256/count/size equal the manifest",
    "split": "7 Split: groups in one split, holdouts only in test, no earlier train/val group in test",
    "stats": "8 Stats: manifest statistics equal the figures recomputed from the shards",
}
# The only place a shard may sit: `<split>/<split>_NNN.jsonl` (both splits the same).
SHARD_PATH = re.compile(r"^(train|val|test)/(train|val|test)_\d{3,}\.jsonl$")
PLAIN_PATH = re.compile(r"^[A-Za-z0-9_./-]{1,200}$", re.ASCII)  # shown as is; other paths as a hash
HASH_PREFIX = re.compile(r"^sha256:[0-9a-f]*$")


class VerificationError(RuntimeError):
    """The compiled dataset cannot be verified at all (no manifest, unreadable manifest)."""


@dataclass(frozen=True)
class GateConfig:
    """Thresholds of the gates. Environment: PIXEL_GATE_<FIELD> (e.g. PIXEL_GATE_MIN_PRESENT=50)."""

    # coverage: >= min_present conversations = "present"; >= min_partial = "partial" (passes,
    # flagged); below = "missing" (fails). Same defaults as the coverage report asset.
    min_present: int = CoverageThresholds.min_present
    min_partial: int = CoverageThresholds.min_partial
    train_min: float = 0.85
    train_max: float = 0.95
    val_min: float = 0.03
    val_max: float = 0.07
    test_min: float = 0.03
    test_max: float = 0.07
    # Near-duplicates (leakage, by the gate's own exact similarity join): the exact Jaccard of two
    # records' word shingles (near_dup_shingle words each) at which they count as one cluster.
    near_dup_threshold: float = 0.8
    near_dup_shingle: int = 5
    # Decontamination (leakage gate, independent of dedup): a val/test record fails when this share
    # of its word n-grams occurs in train, n-grams found in more than `common_docs` train records
    # left out (shared phrasing). The demo data, built from phrase banks, peaks near 0.5.
    decontamination_ngram: int = 13
    decontamination_threshold: float = 0.6
    decontamination_common_docs: int = 2
    # Structured PII (the gate's own matcher): the regions whose phone numbers libphonenumber reads
    # in running text: the countries of the sources' people (the name locales), wider than the
    # scrubber's list.
    pii_phone_regions: str = "US,GB,CA,AU,IE,IN,DE,FR,ES,IT,NL,PL,PT,BR,MX,SE,DK,FI,CZ,HU,RO,TR,HR"
    # Names (pii_names): conversations sampled (all when fewer), the sample's seed, and the largest
    # share of sampled conversations that may still carry a PERSON span (the demo measures ~0.014).
    pii_name_sample: int = 2000
    pii_name_seed: int = 0
    pii_name_max_rate: float = 0.02
    split_salt: str = DEFAULT_SALT  # must equal the salt the split stage used
    max_offenders: int = 20  # ids listed per problem kind of a gate (all are counted)

    def __post_init__(self) -> None:
        CoverageThresholds(self.min_present, self.min_partial)  # validates the pair
        for split in contract.SPLITS:
            lo, hi = self.share_bounds(split)
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"GateConfig: {split} share bounds must satisfy 0 <= min <= max <= 1")

    def share_bounds(self, split: str) -> tuple[float, float]:
        return getattr(self, f"{split}_min"), getattr(self, f"{split}_max")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> GateConfig:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"PIXEL_GATE_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
        return cls(**values)

