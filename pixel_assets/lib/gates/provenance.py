"""Gate 5, provenance: records meet the record contract, carry full provenance and a matching
provenance_map entry."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.redaction import is_empty, gate_result, short_hash


def _contract_violations(record: dict[str, Any]) -> list[str]:
    """Where a record breaks the record contract (SPEC §3), as schema paths and rule names only:
    a schema error message quotes the offending value, which may be record text."""
    if not contract.record_errors(record):  # the fast compiled check; nearly every record passes
        return []
    out = []
    for e in contract.record_schema_errors(record):
        path = "/".join(map(str, e.absolute_path))  # schema property names and list indices only
        if e.validator == "required" and isinstance(e.instance, dict):
            out += [f"{path + '/' if path else ''}{k} missing" for k in e.validator_value if k not in e.instance]
        else:
            out.append(f"{path or '<root>'} ({e.validator})")
    return list(dict.fromkeys(out)) or ["<root> (rejected by the compiled schema validator)"]


def _map_entry_disagreement(entry: Any, meta: dict[str, Any], prov: dict[str, Any]) -> list[str]:
    """Fields of a provenance_map entry that are empty or differ from the record's own."""
    if not isinstance(entry, dict):
        return ["entry is not an object"]

    def text(value: Any) -> bool:
        return isinstance(value, str) and not is_empty(value)

    wrong = [k for k in ("source_key", "source_family") if not text(entry.get(k)) or entry[k] != meta.get(k)]
    fmt = entry.get("original_format")
    if not text(fmt) or ("original_format" in meta and fmt != meta["original_format"]):
        wrong.append("original_format")
    steps = entry.get("processing_steps")
    if (not isinstance(steps, list) or not steps or not all(text(s) for s in steps)
            or (isinstance(prov.get("processing_steps"), list) and steps != prov["processing_steps"])):
        wrong.append("processing_steps")
    return wrong


def gate_provenance(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    pmap = ds.manifest.get("provenance_map")
    pmap = pmap if isinstance(pmap, dict) else {}
    missing_by_field: Counter = Counter()
    broken, incomplete, unmapped, disagreeing = [], [], [], []
    for r in ds.records:
        violations = _contract_violations(r.record)
        if violations:
            broken.append(f"{r.id} {short_hash(r.stored_hash)}: {', '.join(violations[:5])}"
                          + (f" (+{len(violations) - 5})" if len(violations) > 5 else ""))
        prov = r.meta.get("provenance")
        prov = prov if isinstance(prov, dict) else {}
        lacking = [f for f in contract.PROVENANCE_FIELDS if is_empty(prov.get(f))]
        missing_by_field.update(lacking)
        if lacking:
            incomplete.append(f"{r.id} {short_hash(r.stored_hash)}: {', '.join(lacking)}")
        entry = pmap.get(r.stored_hash) if r.stored_hash else None
        if entry is None:
            unmapped.append(f"{r.id} {short_hash(r.stored_hash)}")
        elif wrong := _map_entry_disagreement(entry, r.meta, prov):
            disagreeing.append(f"{r.id} {short_hash(r.stored_hash)}: {', '.join(wrong)}")
    # An entry no record refers to is provenance for something that is not in the dataset.
    stray = sorted(set(pmap) - {r.stored_hash for r in ds.records})
    figures = {"records": len(ds.records), "records_breaking_the_contract": len(broken),
               "records_missing_a_field": len(incomplete),
               **{f"missing_{f}": missing_by_field.get(f, 0) for f in contract.PROVENANCE_FIELDS},
               "provenance_map_entries": len(pmap), "records_without_map_entry": len(unmapped),
               "map_entries_disagreeing_with_record": len(disagreeing), "map_entries_without_record": len(stray)}
    return gate_result("provenance", {"records that break the record contract": broken,
                                  "records with empty/missing provenance fields": incomplete,
                                  "records without a provenance_map entry": unmapped,
                                  "provenance_map entries that disagree with their record": disagreeing,
                                  "provenance_map entries without a record": [short_hash(k) for k in stray]},
                   f"all {len(ds.records)} records meet the record contract and carry full provenance and a "
                   "matching provenance_map entry", config, figures)
