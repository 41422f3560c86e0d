"""Coverage of the registry's families (SPEC §6 gate 1 and the coverage report asset)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixel_assets.lib.registry import Registry


@dataclass(frozen=True)
class CoverageThresholds:
    """present: >= min_present conversations; partial: >= min_partial; missing below that."""

    min_present: int = 50
    min_partial: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.min_partial <= self.min_present:
            raise ValueError(
                f"coverage thresholds need 1 <= min_partial <= min_present, got "
                f"min_partial={self.min_partial}, min_present={self.min_present}"
            )


def coverage_status(count: int, thresholds: CoverageThresholds) -> str:
    if count >= thresholds.min_present:
        return "present"
    return "partial" if count >= thresholds.min_partial else "missing"


def unmatched_sources(registry: Registry, root: Any, s3_client: Any = None) -> dict[str, list[str]]:
    """Enabled family -> its source globs that match no file (``root``: the data root)."""
    from pixel_assets.lib.ingest.loaders import resolve_source

    out: dict[str, list[str]] = {}
    for family in registry.families:
        if family.enabled:
            missing = [s.path for s in family.sources if not resolve_source(s.path, root, s3_client)]
            if missing:
                out[family.name] = missing
    return out


def compute_coverage(
    counts: Mapping[str, int], registry: Registry, thresholds: CoverageThresholds = CoverageThresholds(),
    unmatched: Mapping[str, list[str]] | None = None,
) -> dict:
    """Per-family status from conversation counts; `ok` is False when a required family is missing
    or (given ``unmatched``, see unmatched_sources) one of its source globs matches no file: an
    error for a required family, a warning (``optional_sources_without_files``) otherwise."""
    unmatched = unmatched or {}
    families = {
        f.name: {
            "required": f.required,
            "enabled": f.enabled,
            "conversations": int(counts.get(f.name, 0)),
            "status": coverage_status(int(counts.get(f.name, 0)), thresholds),
            "sources_without_files": len(unmatched.get(f.name, [])),
        }
        for f in registry.families
    }
    missing = [n for n, f in families.items() if f["required"] and f["status"] == "missing"]
    partial = [n for n, f in families.items() if f["required"] and f["status"] == "partial"]
    no_files = [n for n, f in families.items() if f["required"] and f["sources_without_files"]]
    return {
        "ok": not missing and not no_files,
        "required_sources_without_files": no_files,
        "optional_sources_without_files": [n for n, f in families.items()
                                           if not f["required"] and f["sources_without_files"]],
        "thresholds": {"min_present": thresholds.min_present, "min_partial": thresholds.min_partial},
        "required_missing": missing,
        "required_partial": partial,
        "families": families,
    }
