"""The PII gate's own name check: two name methods, neither the scrubber's detector path.

Over every whole message text of a seeded sample of conversations (``pii_name_sample``, default
2,000; all of them when the dataset is smaller) it runs spaCy's named-entity recognizer (names by
their shape, on the whole text: the scrubber runs NER only where its capitalization shortcut says
a name may be) and the census gazetteer in context (``pii_gazetteer``: names by their spelling,
whatever their case, which NER misses when a name is lowercase and an English word). A span
counts unless it is a scrubber placeholder (``<PERSON_1>``) or on the allow-list of the record's
family (config/pii.yaml: creators, public figures). The residual rate is the share of sampled
conversations with such a span (either method); the gate fails when it exceeds
``pii_name_max_rate`` and reports its 95% upper bound (Wilson) beside it.

The NER method reads English: paragraphs its own language identification (py3langid, called here,
not the ingest stage's policy) places in another language at >= 0.95 are left to the gazetteer, and
a NER span counts only when one of its words is a census given or family name (the gazetteer's
lists): the small English model tags capitalised common nouns and sentence-initial verbs
("Ignore", "Therapy", "Learn") and Spanish phrases ("tu hijo") as PERSON, which a scrubber that no
longer over-redacts leaves in the text. A name outside the census lists is then caught by NER only
in its gazetteer context; the planted-defect tests cover both methods.

Paths a record carries (``source_key``, ``provenance.original_s3_key``, the manifest's
provenance_map entries) are checked with NER on template sentences.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from functools import lru_cache
from typing import Any

from pixel_assets.lib.pii.detection import PLACEHOLDER_RE
from pixel_assets.lib.gates.loading import CompiledDataset, ShardRecord
from pixel_assets.lib.gates.pii_gazetteer import gazetteer, gazetteer_names

_PATH_SEP = re.compile(r"[/_\-.]+")
_MEMO: dict[str, tuple[str, ...]] = {}  # text sha256 -> PERSON spans (re-verifying the same bytes is free)
_MEMO_MAX = 500_000


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    from pixel_assets.lib.pii.config import load_config

    model = load_config().spacy_model
    # NER only: in the small English model it has its own token-to-vector layer.
    return spacy.load(model, exclude=["tok2vec", "lemmatizer", "attribute_ruler", "tagger", "parser", "senter"])


_WORD = re.compile(r"[^\W\d_]{2,}")
LANGUAGE_MIN_WORDS = 8
LANGUAGE_MIN_PROBABILITY = 0.95


@lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def english_only(text: str) -> str:
    """The text with every paragraph identified as another language blanked (same length, so the
    rest keeps its positions): the English NER model's PERSON tags there are noise."""
    parts = re.split(r"(\n+)", text)
    out = []
    for part in parts:
        if len(_WORD.findall(part)) >= LANGUAGE_MIN_WORDS:
            code, probability = _language_identifier().classify(part)
            if code != "en" and probability >= LANGUAGE_MIN_PROBABILITY:
                part = " " * len(part)
        out.append(part)
    return "".join(out)


def census_evidence(span: str) -> bool:
    """One of the span's words is a census given or family name (the gazetteer's lists)."""
    given, family, _, _ = gazetteer()
    return any(w.casefold() in given or w.casefold() in family for w in _WORD.findall(span))


def person_spans(texts: list[str]) -> list[tuple[str, ...]]:
    """PERSON spans spaCy finds in each whole text, placeholders left out."""
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    todo = {k: t for k, t in zip(keys, texts) if k not in _MEMO}
    found: dict[str, tuple[str, ...]] = {}
    if todo:
        for key, doc in zip(list(todo), _nlp().pipe(list(todo.values()), batch_size=64)):
            found[key] = tuple(e.text for e in doc.ents if e.label_ == "PERSON" and not PLACEHOLDER_RE.search(e.text))
        if len(_MEMO) < _MEMO_MAX:
            _MEMO.update(found)
    return [found[k] if k in found else _MEMO[k] for k in keys]


# Sentences a name reads naturally in. A path phrase counts as a name when NER tags it PERSON in
# at least three of them (one template alone tags almost any capitalized phrase).
_PATH_TEMPLATES = ("This file was made by {}.", "{} said hello to me.", "Yesterday I met {} at the clinic.",
                   "Ask {} about it.")


def path_phrases(path: str, not_names: frozenset[str] = frozenset()) -> list[str]:
    """The last three segments of a path (extension dropped), each as a capitalized phrase of the
    words that are not file or registry words: "sources/video_transcripts/jane_doe/talk_video.txt"
    -> ["Jane Doe", "Talk"] (with "video" and "transcripts" among ``not_names``)."""
    segments = [s for s in path.split("/") if s][-3:]
    if segments:
        segments[-1] = segments[-1].rsplit(".", 1)[0]
    phrases = []
    for segment in segments:
        words = [w.capitalize() for w in _PATH_SEP.split(segment)
                 if w and not w.isdigit() and w.casefold() not in not_names]
        if words:
            phrases.append(" ".join(words))
    return phrases


def path_names(phrases: list[str]) -> list[str]:
    """The phrases NER reads as a person's name in at least three of the templates."""
    sentences = [t.format(p) for p in phrases for t in _PATH_TEMPLATES]
    found = person_spans(sentences)
    out = []
    for i, phrase in enumerate(phrases):
        votes = sum(any(phrase in span or span in phrase for span in found[i * len(_PATH_TEMPLATES) + j])
                    for j in range(len(_PATH_TEMPLATES)))
        if votes >= 3:
            out.append(phrase)
    return out


def _path_words(path: str) -> set[str]:
    return {w.casefold() for w in _PATH_SEP.split(path) if w}


# Words a path may hold that are not names: file words, and (added per registry) every word of the
# family names and source globs the operator configured.
_FILE_WORDS = frozenset("sources source data demo file files part final video videos txt json jsonl csv parquet "
                        "transcript transcripts session sessions conversation conversations filtered".split())


def _not_names(registry: Any) -> frozenset[str]:
    words = set(_FILE_WORDS)
    for family in registry.families:
        words |= _path_words(family.name)
        for source in family.sources:
            words |= _path_words(source.path.replace("*", " "))
    return frozenset(words)


def wilson_upper(hits: int, n: int, z: float = 1.96) -> float:
    if n == 0:
        return 0.0
    p = hits / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + margin) / (1 + z * z / n))


@lru_cache(maxsize=256)
def _allowed(family: str) -> frozenset[str]:
    """The family's allow-list (config/pii.yaml: global + per family), casefolded."""
    from pixel_assets.lib.pii.config import load_config

    return load_config().allow_set(family)


def _residual(spans: tuple[str, ...], allowed: frozenset[str]) -> list[str]:
    return [s for s in spans if " ".join(s.casefold().split()) not in allowed]


def name_scan(ds: CompiledDataset, registry: Any, sample_size: int, seed: int) -> dict[str, Any]:
    """Sampled conversations with a residual PERSON span in their messages, and records / map
    entries whose paths carry one."""
    records = list(ds.records)
    sample = records if len(records) <= sample_size else random.Random(seed).sample(records, sample_size)
    texts, owners = [], []
    for i, r in enumerate(sample):
        for m in r.messages:
            if m.get("role") != "system" and isinstance(m.get("content"), str):
                texts.append(m["content"])
                owners.append(i)
    # Two methods with different blind spots, each counted: spaCy NER (names by their shape) and
    # the census gazetteer in context (names by their spelling, whatever their case).
    hits: dict[int, int] = {}
    by_method: dict[str, set[int]] = {"ner": set(), "gazetteer": set()}
    ner = person_spans([english_only(t) for t in texts])
    for owner, text, spans in zip(owners, texts, ner):
        allowed = _allowed(sample[owner].family)
        spans = tuple(span for span in spans if census_evidence(span))
        for method, found in (("ner", spans), ("gazetteer", tuple(gazetteer_names(text)))):
            residual = _residual(found, allowed)
            if residual:
                hits[owner] = hits.get(owner, 0) + len(residual)
                by_method[method].add(owner)
    in_messages = [f"{sample[i].id} {_hash(sample[i])}: {n} PERSON span{'s' if n > 1 else ''}" for i, n in sorted(hits.items())]
    in_paths = _path_hits(ds, records, _not_names(registry))
    return {"sampled": len(sample), "conversations_with_names": len(hits), "offenders": in_messages,
            "with_names_by_ner": len(by_method["ner"]), "with_names_by_gazetteer": len(by_method["gazetteer"]),
            "path_offenders": in_paths}


def _hash(r: ShardRecord) -> str:
    h = r.stored_hash
    return h[:23] if isinstance(h, str) else "<none>"


def _path_hits(ds: CompiledDataset, records: list[ShardRecord], not_names: frozenset[str]) -> list[str]:
    """Every distinct path (source_key, original_s3_key, provenance_map source_key) with its family."""
    paths: dict[tuple[str, str], list[str]] = {}
    for r in records:
        prov = r.meta.get("provenance") if isinstance(r.meta.get("provenance"), dict) else {}
        for where, value in (("source_key", r.meta.get("source_key")), ("original_s3_key", prov.get("original_s3_key"))):
            if isinstance(value, str):
                paths.setdefault((value, r.family), []).append(f"{r.id} {where}")
    pmap = ds.manifest.get("provenance_map") if isinstance(ds.manifest.get("provenance_map"), dict) else {}
    for key, entry in pmap.items():
        if isinstance(entry, dict) and isinstance(entry.get("source_key"), str):
            paths.setdefault((entry["source_key"], str(entry.get("source_family"))), []).append(
                f"provenance_map {str(key)[:23]} source_key")
    out = []
    for (path, family), where in paths.items():
        if _residual(tuple(path_names(path_phrases(path, not_names))), _allowed(family)):
            out.append(f"{where[0]} (+{len(where) - 1} more)" if len(where) > 1 else where[0])
    return out
