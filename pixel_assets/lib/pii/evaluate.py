"""Span-overlap evaluation of the detector against a presidio-research labeled set."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pixel_assets.lib.pii.detection import overlaps

# Gold names seen in presidio-research style sets -> the type we score under. Street addresses
# and locations are one category ("LOCATION/street address").
GOLD_TYPE_MAP = {
    "PERSON": "PERSON", "PER": "PERSON", "NAME": "PERSON", "FIRST_NAME": "PERSON", "LAST_NAME": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS", "EMAIL": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER", "PHONE": "PHONE_NUMBER",
    "US_SSN": "US_SSN", "SSN": "US_SSN",
    "CREDIT_CARD": "CREDIT_CARD", "CREDIT_CARD_NUMBER": "CREDIT_CARD",
    "IP_ADDRESS": "IP_ADDRESS", "URL": "URL", "DOMAIN_NAME": "URL",
    "LOCATION": "LOCATION", "GPE": "LOCATION", "LOC": "LOCATION", "CITY": "LOCATION",
    "ADDRESS": "LOCATION", "STREET_ADDRESS": "LOCATION",
    "SOCIAL_HANDLE": "SOCIAL_HANDLE", "USERNAME": "SOCIAL_HANDLE",
    "DATE_OF_BIRTH": "DATE_OF_BIRTH", "BIRTHDAY": "DATE_OF_BIRTH", "DOB": "DATE_OF_BIRTH",
}
DETECTED_TYPE_MAP = {"STREET_ADDRESS": "LOCATION"}


def _f_beta(p: float, r: float, beta: float = 2.0) -> float:
    b2 = beta * beta
    return (1 + b2) * p * r / (b2 * p + r) if (p + r) else 0.0


def evaluate(samples: list[dict[str, Any]], detections: list[list[Any]]) -> dict[str, Any]:
    """Per type and overall precision/recall/F2. A detection is correct when it overlaps a gold
    span of the same (mapped) type; a gold span is found when some same-type detection overlaps it."""
    n_det, tp_det, n_gold, found_gold = Counter(), Counter(), Counter(), Counter()
    ignored_gold: Counter[str] = Counter()
    for sample, dets in zip(samples, detections):
        gold = []
        for s in sample.get("spans", []):
            gtype = GOLD_TYPE_MAP.get(str(s["entity_type"]).upper())
            if gtype is None:
                ignored_gold[str(s["entity_type"])] += 1
                continue
            gold.append((int(s["start_position"]), int(s["end_position"]), gtype))
        mapped = [(d.start, d.end, DETECTED_TYPE_MAP.get(d.entity_type, d.entity_type)) for d in dets]
        for start, end, dtype in mapped:
            n_det[dtype] += 1
            if any(gt == dtype and overlaps(start, end, gs, ge) for gs, ge, gt in gold):
                tp_det[dtype] += 1
        for gs, ge, gt in gold:
            n_gold[gt] += 1
            if any(dt == gt and overlaps(ds, de, gs, ge) for ds, de, dt in mapped):
                found_gold[gt] += 1

    def figures(tp: int, nd: int, fg: int, ng: int) -> dict[str, Any]:
        p = tp / nd if nd else (1.0 if ng == 0 else 0.0)
        r = fg / ng if ng else None
        return {"precision": round(p, 4), "recall": None if r is None else round(r, 4),
                "f2": None if r is None else round(_f_beta(p, r), 4), "support": ng, "detections": nd}

    per_type = {t: figures(tp_det[t], n_det[t], found_gold[t], n_gold[t]) for t in sorted(set(n_det) | set(n_gold))}
    overall = figures(sum(tp_det.values()), sum(n_det.values()), sum(found_gold.values()), sum(n_gold.values()))
    return {"samples": len(samples), "per_type": per_type, "overall": overall,
            "ignored_gold_types": dict(ignored_gold)}


def over_redaction(detections: list[list[list[Any]]]) -> dict[str, Any]:
    """Detections on PII-free conversations (every one is false): per conversation, by type."""
    by_type: Counter[str] = Counter(d.entity_type for conv in detections for msg in conv for d in msg)
    n = len(detections)
    total = sum(by_type.values())
    return {"conversations": n, "false_detections": total,
            "per_conversation": round(total / n, 4) if n else 0.0, "by_type": dict(by_type)}


def evaluate_detector(
    scrubber: Any,
    samples: list[dict[str, Any]],
    *,
    clean: list[list[dict[str, str]]] | None = None,
    family: str | None = None,
) -> dict[str, Any]:
    """Run the scrubber's detector on a labeled set (and PII-free conversations) and score it."""
    result = evaluate(samples, scrubber.detect([s["full_text"] for s in samples], family))
    if clean:
        flat = scrubber.detect([m["content"] for c in clean for m in c], family)
        it = iter(flat)
        result["over_redaction"] = over_redaction([[next(it) for _ in c] for c in clean])
    return result


# The detector's acceptance targets: recall per type, overall precision, over-redaction.
RECALL_TARGETS = {"EMAIL_ADDRESS": 0.95, "PHONE_NUMBER": 0.95, "US_SSN": 0.95, "CREDIT_CARD": 0.95,
                  "IP_ADDRESS": 0.95, "URL": 0.95, "PERSON": 0.85}
MIN_OVERALL_PRECISION = 0.90
MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION = 0.05
# Names in informal text (informal.informal_set, eval templates): PERSON recall by the share of
# names written in lowercase, and PERSON precision.
INFORMAL_PERSON_RECALL = {"lowercase 1/3": (1 / 3, 0.90), "lowercase all": (1.0, 0.80)}
MIN_INFORMAL_PERSON_PRECISION = 0.90


def evaluate_informal(scrubber: Any, n: int = 2000, *, seed: int = 17, family: str | None = None) -> dict[str, Any]:
    """PERSON precision/recall on the informal eval set at each lowercase share of INFORMAL_PERSON_RECALL."""
    from pixel_assets.lib.pii.informal import informal_set

    out = {}
    for label, (share, _target) in INFORMAL_PERSON_RECALL.items():
        samples = informal_set(n, seed=seed, split="eval", lowercase=share)
        result = evaluate(samples, scrubber.detect([s["full_text"] for s in samples], family))
        out[label] = {"lowercase": round(share, 4), "person": result["per_type"].get("PERSON", {}),
                      "overall": result["overall"]}
    return out


def target_misses(result: dict[str, Any]) -> list[str]:
    """Which targets an evaluate_detector() result misses (empty list = all met)."""
    misses = []
    for entity, target in RECALL_TARGETS.items():
        recall = result["per_type"].get(entity, {}).get("recall")
        if recall is None or recall < target:
            misses.append(f"{entity} recall {recall} < {target}")
    if result["overall"]["precision"] < MIN_OVERALL_PRECISION:
        misses.append(f"overall precision {result['overall']['precision']} < {MIN_OVERALL_PRECISION}")
    per_conv = result.get("over_redaction", {}).get("per_conversation")
    if per_conv is None or per_conv > MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION:
        misses.append(f"false detections per clean conversation {per_conv} > {MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION}")
    for label, figures in (result.get("informal") or {}).items():
        target = INFORMAL_PERSON_RECALL[label][1]
        recall, precision = figures["person"].get("recall"), figures["person"].get("precision")
        if recall is None or recall < target:
            misses.append(f"informal ({label}) PERSON recall {recall} < {target}")
        if precision is None or precision < MIN_INFORMAL_PERSON_PRECISION:
            misses.append(f"informal ({label}) PERSON precision {precision} < {MIN_INFORMAL_PERSON_PRECISION}")
    return misses


def target_report(result: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """An evaluate_detector() result next to its targets, as table rows (thresholds as text).

    `per_type`: every measured type plus every type with a recall target; a type without a target
    (LOCATION, SOCIAL_HANDLE, ...) shows "—" as target but keeps its measured figures.
    `overall`: overall precision and false detections per clean conversation vs their targets.
    """
    per_type = result.get("per_type", {})
    rows = []
    for entity in [*RECALL_TARGETS, *sorted(set(per_type) - set(RECALL_TARGETS))]:
        figures = per_type.get(entity, {})
        target = RECALL_TARGETS.get(entity)
        recall = figures.get("recall")
        rows.append({
            "entity type": entity,
            "target recall": "—" if target is None else f"≥ {target:.2f}",
            "measured recall": "—" if recall is None else f"{recall:.3f}",
            "precision": "—" if figures.get("precision") is None else f"{figures['precision']:.3f}",
            "support": figures.get("support", 0),
            "meets target": "—" if target is None else ("yes" if recall is not None and recall >= target else "no"),
        })
    precision = result.get("overall", {}).get("precision")
    per_conv = result.get("over_redaction", {}).get("per_conversation")
    overall = [
        {"measure": "overall precision", "target": f"≥ {MIN_OVERALL_PRECISION:.2f}",
         "measured": "—" if precision is None else f"{precision:.3f}",
         "meets target": "yes" if precision is not None and precision >= MIN_OVERALL_PRECISION else "no"},
        {"measure": "false detections per clean conversation (over-redaction)",
         "target": f"≤ {MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION:.2f}",
         "measured": "—" if per_conv is None else f"{per_conv:.3f}",
         "meets target": "no" if per_conv is None or per_conv > MAX_FALSE_DETECTIONS_PER_CLEAN_CONVERSATION else "yes"},
    ]
    for label, figures in (result.get("informal") or {}).items():
        target = INFORMAL_PERSON_RECALL[label][1]
        recall, precision = figures["person"].get("recall"), figures["person"].get("precision")
        overall.append({"measure": f"informal text ({label}): PERSON recall", "target": f"≥ {target:.2f}",
                        "measured": "—" if recall is None else f"{recall:.3f}",
                        "meets target": "yes" if recall is not None and recall >= target else "no"})
        overall.append({"measure": f"informal text ({label}): PERSON precision",
                        "target": f"≥ {MIN_INFORMAL_PERSON_PRECISION:.2f}",
                        "measured": "—" if precision is None else f"{precision:.3f}",
                        "meets target": "yes" if precision is not None and precision >= MIN_INFORMAL_PERSON_PRECISION
                        else "no"})
    return {"per_type": rows, "overall": overall}
