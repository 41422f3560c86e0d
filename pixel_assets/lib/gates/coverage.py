"""Gate 1, coverage: every required family has compiled conversations."""

from __future__ import annotations

from collections import Counter

from pixel_assets.lib.coverage import CoverageThresholds, coverage_status
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.redaction import value_label, gate_result


def gate_coverage(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    counts = Counter(r.family for r in ds.records)
    thresholds = CoverageThresholds(config.min_present, config.min_partial)
    table, missing, partial = [], [], []
    for name in registry.required:
        n = counts.get(name, 0)
        status = coverage_status(n, thresholds)
        table.append({"family": name, "conversations": n, "status": status})
        if status == "missing":
            missing.append(f"{name} ({n} conversations, need >= {config.min_partial})")
        elif status == "partial":
            partial.append(name)
    unknown = sorted(set(counts) - set(registry.names))
    figures = {"present": sum(r["status"] == "present" for r in table), "partial": len(partial),
               "missing": len(missing), "families_not_in_registry": len(unknown)}
    settings = {"required_families": len(registry.required), "min_present": config.min_present,
                "min_partial": config.min_partial}
    ok = f"all {len(registry.required)} required families compiled"
    if partial:
        ok += f" ({len(partial)} partial: {', '.join(partial)})"
    return gate_result("coverage", {"missing required families": missing,
                                "families not in the registry": [f"{value_label(u, ['<none>'])} ({counts[u]} records)"
                                                                 for u in unknown]},
                   ok, config, figures, table, settings)
