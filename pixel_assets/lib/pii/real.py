"""`pixel pii-eval --real`: the detector on real therapist writing, next to naive presidio.

The labeled sample is pixel_assets/data/counsel_chat/pii_labels.jsonl (330 counsel-chat answers,
MIT; how it was made: that folder's README.md and scripts/label_counsel_chat_pii.py). Scored types
are the ones labeled there; a gold span marked "kept" (a public crisis line the policy keeps) is
not a span to find, so a detection on it counts as a false one. Placeholders per 1,000 words
compare how much of the text each detector would replace with how much the labels say should be.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

from pixel_assets.lib.pii.detection import PLACEHOLDER_RE, Detection
from pixel_assets.lib.pii.evaluate import DETECTED_TYPE_MAP, evaluate

REAL_LABELS = "counsel_chat/pii_labels.jsonl"  # in pixel_assets/data/
REAL_TYPES = ("URL", "EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "LOCATION")
# Targets of issue 17 for the real sample.
REAL_TARGETS = {"URL precision": 0.95, "URL recall": 0.95, "PERSON precision": 0.90}
MAX_PLACEHOLDER_DEVIATION = 0.20  # placeholders per 1,000 words within 20% of the labeled truth
_WORD = re.compile(r"\S+")


class RealLabelsError(ValueError):
    """The shipped label file is malformed (line number given)."""


def load_real_labels(path: str | None = None) -> list[dict[str, Any]]:
    """The labeled answers as {row, full_text, spans, kept} (kept: spans the policy keeps)."""
    if path is None:
        text = resources.files("pixel_assets.data").joinpath(REAL_LABELS).read_text("utf-8")
    else:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    samples = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            full_text, spans = item["full_text"], item["spans"]
            for s in spans:
                if not 0 <= s["start_position"] < s["end_position"] <= len(full_text) or \
                        full_text[s["start_position"] : s["end_position"]] != s["entity_value"]:
                    raise ValueError
        except (ValueError, KeyError, TypeError):
            raise RealLabelsError(f"real PII labels: line {lineno} is not a labeled answer with valid spans") from None
        samples.append({"row": item.get("row"), "full_text": full_text,
                        "spans": [s for s in spans if not s.get("kept")],
                        "kept": [s for s in spans if s.get("kept")]})
    if not samples:
        raise RealLabelsError("real PII labels: the file holds no labeled answers")
    return samples


def real_family(registry: Any) -> str | None:
    """The registry family the counsel-chat source feeds: its per-family settings (allow-list, place
    greetings) are the ones the pipeline applies to these answers."""
    for family in registry.families:
        if any("counsel_chat" in source.path for source in family.sources):
            return family.name
    return None


def words(text: str) -> int:
    return len(_WORD.findall(text))


def per_1000_words(count: int, n_words: int) -> float:
    return round(1000 * count / n_words, 3) if n_words else 0.0


def _scored(detections: list[list[Detection]]) -> list[list[Detection]]:
    scored = lambda d: DETECTED_TYPE_MAP.get(d.entity_type, d.entity_type) in REAL_TYPES  # noqa: E731
    return [[d for d in dets if scored(d)] for dets in detections]


def _figures(samples: list[dict[str, Any]], detections: list[list[Detection]], n_words: int) -> dict[str, Any]:
    result = evaluate(samples, _scored(detections))
    per_type = {t: result["per_type"].get(t, {"precision": None, "recall": None, "support": 0, "detections": 0})
                for t in REAL_TYPES}
    total = sum(len(d) for d in detections)
    return {"per_type": per_type, "overall": result["overall"], "placeholders": total,
            "placeholders_per_1000_words": per_1000_words(total, n_words)}


def naive_detections(texts: list[str], model: str) -> list[list[Detection]]:
    """Naive presidio (AnalyzerEngine, default recognizers) on the entity types the project replaces."""
    from pixel_assets.lib.pii.bench import naive_analyzer

    analyzer = naive_analyzer(model)
    wanted = {"PERSON", "LOCATION", "URL", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IP_ADDRESS"}
    return [[Detection(r.start, r.end, r.entity_type, float(r.score)) for r in analyzer.analyze(t, language="en")
             if r.entity_type in wanted] for t in texts]


def evaluate_real(scrubber: Any, samples: list[dict[str, Any]] | None = None, *, family: str | None = None,
                  naive: bool = True) -> dict[str, Any]:
    """Per-type precision/recall and placeholders per 1,000 words: the project's detector, naive
    presidio (same texts, same spaCy model) and the labeled truth."""
    samples = load_real_labels() if samples is None else samples
    texts = [s["full_text"] for s in samples]
    n_words = sum(words(t) for t in texts)
    truth = sum(len(s["spans"]) for s in samples)
    out: dict[str, Any] = {
        "answers": len(samples), "words": n_words,
        "truth": {"spans": truth, "placeholders_per_1000_words": per_1000_words(truth, n_words),
                  "by_type": {t: sum(1 for s in samples for g in s["spans"] if g["entity_type"] == t)
                              for t in REAL_TYPES}},
        "project": _figures(samples, scrubber.detect(texts, family), n_words),
    }
    if naive:
        out["naive_presidio"] = _figures(samples, naive_detections(texts, scrubber.config.spacy_model), n_words)
    out["misses"] = real_target_misses(out)
    return out


def real_target_misses(result: dict[str, Any]) -> list[str]:
    """Which issue-17 targets a result misses (empty = all met)."""
    figures = result["project"]["per_type"]
    misses = []
    for label, target in REAL_TARGETS.items():
        etype, measure = label.split()
        value = figures[etype].get(measure)
        if value is None or value < target:
            misses.append(f"{label} {value} < {target}")
    truth = result["truth"]["placeholders_per_1000_words"]
    ours = result["project"]["placeholders_per_1000_words"]
    if truth and abs(ours - truth) / truth > MAX_PLACEHOLDER_DEVIATION:
        misses.append(f"placeholders per 1,000 words {ours} not within {MAX_PLACEHOLDER_DEVIATION:.0%} of {truth}")
    return misses


def placeholder_density(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Placeholders and words over scrubbed records' messages (for the PII assets' metadata)."""
    placeholders = n_words = 0
    for record in records:
        for message in record.get("messages", []):
            content = message.get("content") or ""
            placeholders += len(PLACEHOLDER_RE.findall(content))
            n_words += words(content)
    return {"placeholders": placeholders, "words": n_words,
            "placeholders_per_1000_words": per_1000_words(placeholders, n_words)}
