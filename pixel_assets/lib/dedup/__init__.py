"""Exact and near-duplicate detection (SPEC §4): content-hash dedup and MinHash LSH clusters."""

from .lsh import (
    NearDuplicates,
    choose_banding,
    find_near_duplicates,
    near_duplicate_clusters,
    recall_at,
)
from .text import dedup_text, dedup_text_expr, dedup_texts, shingle_hashes

__all__ = [
    "NearDuplicates",
    "choose_banding",
    "dedup_text",
    "dedup_text_expr",
    "dedup_texts",
    "find_near_duplicates",
    "near_duplicate_clusters",
    "recall_at",
    "shingle_hashes",
]

from .records import STRATEGIES, DedupResult, dedup_records, holdout_families, mark_dedup_status  # noqa: E402

__all__ += ["STRATEGIES", "DedupResult", "dedup_records", "holdout_families", "mark_dedup_status"]
