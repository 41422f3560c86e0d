"""Gate 4, PII: no requires_review record, no PII in a re-scan of the published text."""

from __future__ import annotations

from collections import Counter, defaultdict

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import GateConfig
from pixel_assets.lib.gates.loading import CompiledDataset
from pixel_assets.lib.gates.report import GateResult
from pixel_assets.lib.registry import Registry
from pixel_assets.lib.gates.pii_names import name_scan, wilson_upper
from pixel_assets.lib.gates.pii_structured import find_structured, public_national_numbers, regions_of
from pixel_assets.lib.gates.redaction import gate_result, short_hash, json_strings


def gate_pii(ds: CompiledDataset, registry: Registry, config: GateConfig) -> GateResult:
    # Shared with lib/pii: the list of metadata fields the pipeline writes itself (a constant)
    # and the operator's allow-list of public crisis lines (configuration); no detector code.
    from pixel_assets.lib.pii.config import load_config
    from pixel_assets.lib.pii.scrub import PIPELINE_METADATA

    review = [f"{r.id} {short_hash(r.stored_hash)}" for r in ds.records if r.meta.get("pii_status") == "requires_review"]
    # Every string a record carries that came from a source: all message values (whatever their
    # key or nesting; a valid role is not text), and metadata other than the fields the pipeline
    # writes itself (rejected_response, category, creator, ...: what the scrub stage scrubbed).
    texts, owners = [], []
    for i, r in enumerate(ds.records):
        messages = r.record.get("messages")
        for m in messages if isinstance(messages, list) else []:
            items = m.items() if isinstance(m, dict) else [("", m)]
            for key, value in items:
                if not (key == "role" and value in contract.ROLES):
                    for text in json_strings(value):
                        texts.append(text)
                        owners.append(i)
        for key, value in r.meta.items():
            if key not in PIPELINE_METADATA:
                for text in json_strings(value):
                    texts.append(text)
                    owners.append(i)
    found: dict[int, Counter] = defaultdict(Counter)
    by_type: Counter = Counter()
    regions = regions_of(config.pii_phone_regions)
    public = public_national_numbers(load_config().public_numbers)
    for owner, text in zip(owners, texts):
        counts = find_structured(text, regions, public)
        found[owner].update(counts)
        by_type.update(counts)
    found = {i: c for i, c in found.items() if c}
    pii = [f"{ds.records[i].id} {short_hash(ds.records[i].stored_hash)}: "
           + ", ".join(f"{t} x{n}" for t, n in sorted(c.items())) for i, c in sorted(found.items())]
    # Names, by a detector path independent of the scrubber's (pii_names), on a seeded sample.
    names = name_scan(ds, registry, config.pii_name_sample, config.pii_name_seed)
    sampled, with_names = names["sampled"], names["conversations_with_names"]
    rate = with_names / sampled if sampled else 0.0
    upper = wilson_upper(with_names, sampled)
    name_problems = ([f"{with_names} of {sampled} sampled conversations ({rate:.4f}, 95% upper bound {upper:.4f}) "
                      f"carry a PERSON name: above {config.pii_name_max_rate}", *names["offenders"]]
                     if rate > config.pii_name_max_rate else [])
    figures = {"records_scanned": len(ds.records), "texts_scanned": len(texts),
               "requires_review_records": len(review), "records_with_structured_pii": len(found),
               **{f"found_{t}": n for t, n in sorted(by_type.items())},
               "name_sample_conversations": sampled, "name_sample_with_person": with_names,
               "name_sample_with_person_by_ner": names["with_names_by_ner"],
               "name_sample_with_person_by_gazetteer": names["with_names_by_gazetteer"],
               "name_residual_rate": round(rate, 4), "name_residual_rate_upper95": round(upper, 4),
               "paths_with_person_names": len(names["path_offenders"])}
    result = gate_result("pii", {"requires_review records in shards": review,
                             "records with structured PII": pii,
                             "sampled conversations with person names above the residual rate": name_problems,
                             "paths (source_key, original_s3_key, provenance_map) with person names":
                                 names["path_offenders"]},
                     f"{len(ds.records)} records re-scanned: no requires_review, no structured PII, no name in a "
                     f"path; names in {with_names}/{sampled} sampled conversations (rate {rate:.4f}, "
                     f"95% upper bound {upper:.4f}, limit {config.pii_name_max_rate})",
                     config, figures, settings={"pii_phone_regions": config.pii_phone_regions,
                                                "pii_name_sample": config.pii_name_sample,
                                                "pii_name_seed": config.pii_name_seed,
                                                "pii_name_max_rate": config.pii_name_max_rate})
    return result
