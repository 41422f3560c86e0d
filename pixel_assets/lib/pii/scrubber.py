"""PiiScrubber: the detector the pipeline, `pixel pii-detect` and `pixel pii-eval` all use.

Fast path (measured by `pixel bench pii`): spaCy with only its NER component over `nlp.pipe`
batches, presidio's pattern recognizers called directly on every text (no per-message
AnalyzerEngine round trip), and both steps spread over worker processes.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import signal
from collections.abc import Iterable, Sequence
from pathlib import Path

from pixel_assets.lib.pii.config import PiiConfig, load_config, phone_digits
from pixel_assets.lib.language import foreign_paragraphs
from pixel_assets.lib.pii.detection import Detection, drop_placeholders, overlaps, resolve_overlaps
from pixel_assets.lib.pii.evidence import NameEvidence
from pixel_assets.lib.pii.names import after_place_word, context_names, detection_names, informal, restore_case
from pixel_assets.lib.pii.offline import configure_offline
from pixel_assets.lib.pii.recognizers import (
    find_dates_of_birth, other_pattern_recognizers, run_recognizers, structured_recognizers,
)

# Capitalised words that are never names/places on their own: NER is skipped for a text whose
# only capitalised words are these (a name or place in English text is capitalised). Words that
# double as first names (Will, May, June, Bill, ...) are deliberately not in the set.
_NAME_LIKE_WORDS = {"will", "may", "june", "april", "august", "bill", "don", "grace", "hope", "mark", "rose"}
_CALENDAR = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
             "february", "march", "july", "september", "october", "november", "december"}
_WORDS = re.compile(r"[^\W\d_][\w'’]*")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(\w])|\n+")  # chat text: lowercase after a stop too
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "prof.", "mt.", "ft.", "apt.", "no."}
_PLACE_BEFORE = re.compile(r"\b(?:in|from|near|around|outside)\s+$")
_INITIAL = re.compile(r"[A-Z]\.")
_NER_ONLY_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]
_CREDENTIAL_TOKEN = re.compile(r"[\w.'’-]+")
_FORKED: "PiiScrubber | None" = None  # the scrubber a forked worker inherits


_SALUTATION = re.compile(r"(?:\A|\n)[ \t]*(?:hi|hello|hey|dear|greetings|good (?:morning|afternoon|evening))"
                         r"[ \t]*,?[ \t]+\Z", re.IGNORECASE)


def addressed_place(text: str, detection: Detection) -> Detection:
    """A one-word PERSON that an opening salutation addresses ("Hi Attica,") as a LOCATION: for
    families whose sources address the asker by their town (config place_greeting_families). A word
    on the name list, or one the text uses again ("Hi Ingrid, ... Ingrid, tell me"), stays a person:
    the rule is for town names, and a value keeps one type across the text."""
    value = text[detection.start : detection.end]
    if detection.entity_type != "PERSON" or not _WORDS.fullmatch(value) \
            or not text.startswith((",", "!", ":", "\n"), detection.end):
        return detection
    if not _SALUTATION.search(text, max(0, detection.start - 40), detection.start):  # \A: the text's own start
        return detection
    if value.casefold() in detection_names() or len(re.findall(rf"\b{re.escape(value)}\b", text, re.IGNORECASE)) > 1:
        return detection
    return Detection(detection.start, detection.end, "LOCATION", detection.score)


def _reset_worker_signals() -> None:
    # A forked worker inherits its parent's handlers (Dagster turns SIGTERM into an interrupt
    # exception); the pool ends its workers with SIGTERM, which must just end them quietly.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _detect_chunk(texts: list[str]) -> list[list[Detection]]:
    assert _FORKED is not None
    return _FORKED._detect_serial(texts)


_NUMBER_TYPES = ("PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IP_ADDRESS")


def _drop_numbers_inside_links(found: list[Detection]) -> list[Detection]:
    """A number inside a link ("...&qid=1471479801&...") is part of the URL, which is replaced whole:
    without this the merged span would take the number's higher-priority type."""
    links = [(d.start, d.end) for d in found if d.entity_type == "URL"]
    if not links:
        return found
    return [d for d in found if d.entity_type not in _NUMBER_TYPES
            or not any(a <= d.start and d.end <= b for a, b in links)]


class PiiScrubber:
    """Detects PII spans. `detect()` applies the family allow-list; `detect_unfiltered()` does not."""

    def __init__(self, config: PiiConfig | str | Path | None = None, *, n_process: int | None = None):
        configure_offline()
        self.config = config if isinstance(config, PiiConfig) else load_config(config)
        self.n_process = n_process if n_process is not None else self.config.n_process
        self._nlp = None
        self._recognizers = None
        self._fingerprint: str | None = None
        self._skip: frozenset[str] | None = None
        self._numbers: frozenset[str] | None = None
        self._creds: frozenset[str] | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.config.fingerprint()
        return self._fingerprint

    def _skip_words(self) -> frozenset[str]:
        if self._skip is None:
            from spacy.lang.en.stop_words import STOP_WORDS

            self._skip = frozenset((set(STOP_WORDS) | _CALENDAR) - _NAME_LIKE_WORDS)
        return self._skip

    def needs_ner(self, text: str) -> bool:
        """False only when no capitalised word other than stop words / weekdays / months occurs.
        Pass the case-restored text (names.restore_case): a lowercase name is capitalised there."""
        skip = self._skip_words()
        return any(w[0].isupper() and w.lower() not in skip for w in _WORDS.findall(text))

    @staticmethod
    def sentence_spans(text: str) -> list[tuple[int, int]]:
        """Cheap regex sentence split (NER context rarely crosses a sentence end)."""
        spans, start = [], 0
        for m in _SENTENCE_BREAK.finditer(text):
            words = text[start : m.start()].split()
            if words and (words[-1].lower() in _ABBREVIATIONS or _INITIAL.fullmatch(words[-1])):
                continue  # "Dr. Smith", "Robin J. Landwehr": not a sentence end
            spans.append((start, m.start()))
            start = m.end()
        spans.append((start, len(text)))
        return [(a, b) for a, b in spans if b > a]

    def ner_segments(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, case-restored sentence) of the sentences that need NER (see needs_ner), outside
        paragraphs in another language (lib/language.py: English NER there finds function words)."""
        out = []
        foreign = foreign_paragraphs(text)
        for a, b in self.sentence_spans(text):
            if any(overlaps(a, b, fa, fb) for fa, fb in foreign):
                continue
            sentence = restore_case(text[a:b]) if self.config.restore_case else text[a:b]
            if self.needs_ner(sentence):
                out.append((a, b, sentence))
        return out

    def _load(self) -> None:
        if self._nlp is None:
            import spacy

            self._nlp = spacy.load(self.config.spacy_model, exclude=_NER_ONLY_EXCLUDE)
            self._nlp.max_length = 5_000_000
            self._recognizers = structured_recognizers() + other_pattern_recognizers()
            # Lazy tables built once here, before any fork: a forked worker must not build them
            # (polars, spaCy or langid state from a threaded parent can hang there).
            from pixel_assets.lib import language
            from pixel_assets.lib.pii import evidence

            evidence.corpus_case_counts()
            language.foreign_function_words()
            language.detect_language("warm up the language identifier before the workers fork")

    # --- detection -------------------------------------------------------------------------

    def _detect_serial(self, texts: Sequence[str]) -> list[list[Detection]]:
        self._load()
        cfg = self.config
        wanted = set(cfg.entities) if cfg.entities else None
        out: list[list[Detection]] = []
        # NER runs only on the sentences that contain a capitalised candidate word.
        segments = [self.ner_segments(t) for t in texts]
        docs = iter(self._nlp.pipe((restored for segs in segments for _a, _b, restored in segs),
                                   batch_size=cfg.batch_size))
        want_person = wanted is None or "PERSON" in wanted
        for text, segs in zip(texts, segments):
            found = run_recognizers(text, self._recognizers) + find_dates_of_birth(text)
            evidence = None  # NameEvidence, built when first needed: most texts have no name candidate
            if want_person and cfg.context_names:
                cues = context_names(text, cfg.context_score)
                if cues:
                    foreign = foreign_paragraphs(text)
                    evidence = NameEvidence(text)
                    found += [Detection(a, b, "PERSON", sc) for a, b, sc in cues
                              if not any(overlaps(a, b, fa, fb) for fa, fb in foreign) and evidence.cue_is_name(a, b)]
            for offset, seg_end, _restored in segs:
                casual = informal(text[offset:seg_end])
                for ent in next(docs).ents:
                    start, end = offset + ent.start_char, offset + ent.end_char
                    original = text[start:end]
                    restored = not any(c.isupper() for c in original) and original != ent.text
                    # In lowercase chat (and on a restored word) the small model labels a name
                    # ORG or GPE as often as PERSON: such entities use config restored_labels, and
                    # a lone place-labelled word not after a place preposition is a person.
                    labels = cfg.restored_labels if restored or casual else cfg.ner_labels
                    etype = labels.get(ent.label_)
                    if etype == "LOCATION" and casual and len(ent) == 1 and not after_place_word(text, start):
                        etype = "PERSON"
                    elif etype == "PERSON" and len(ent) == 1 \
                            and _PLACE_BEFORE.search(text[max(0, start - 12) : start]) \
                            and not text.startswith(("'s", "’s"), end) \
                            and original.casefold() not in detection_names():
                        etype = "LOCATION"  # "resources in Whistler", "moved from Cerritos"
                    if etype is None or any(c.isdigit() or c in "@<>/" for c in ent.text):
                        continue
                    evidence = evidence or NameEvidence(text)
                    if not evidence.is_person(start, end):  # titles, terms, common words (evidence.py)
                        continue
                    if any(c.isupper() for c in original):
                        score = cfg.ner_score
                    elif restored:  # capitalised by restore_case: not a common word
                        score = cfg.restored_score
                    else:  # NER on a lowercase common word: a shaky call, a human decides
                        score = min(cfg.ner_score, 0.45)
                    found.append(Detection(start, end, etype, score))
            found = [d for d in found if d.score >= cfg.min_score and (wanted is None or d.entity_type in wanted)]
            found = _drop_numbers_inside_links(found)
            out.append(resolve_overlaps(drop_placeholders(text, found), cfg.priority))
        return out

    def detect_unfiltered(self, texts: Sequence[str]) -> list[list[Detection]]:
        """Detections before the allow-list (what the cache stores)."""
        texts = list(texts)
        workers = min(self.n_process, max(1, len(texts) // max(1, self.config.batch_size)))
        if workers <= 1 or len(texts) < self.config.parallel_min_texts or "fork" not in mp.get_all_start_methods():
            return self._detect_serial(texts)
        self._load()  # load before forking so workers share the model pages
        global _FORKED
        _FORKED = self
        chunk = max(self.config.batch_size, len(texts) // (workers * 4) + 1)
        chunks = [texts[i : i + chunk] for i in range(0, len(texts), chunk)]
        try:
            with mp.get_context("fork").Pool(workers, initializer=_reset_worker_signals) as pool:
                # leaving the block terminates the workers (SIGTERM): no join, because a worker
                # forked from a threaded parent can block forever in its exit handlers
                parts = pool.map(_detect_chunk, chunks)
        finally:
            _FORKED = None
        return [dets for part in parts for dets in part]

    def allowed(self, text: str, detection: Detection, allow: frozenset[str]) -> bool:
        span = " ".join(text[detection.start : detection.end].casefold().split())
        return span in allow

    def keep(self, text: str, detection: Detection, allow: frozenset[str]) -> Detection | None:
        """The detection after the allow-lists: None when allowed (a listed name, a public crisis
        line), trimmed when a clinical credential sits at either end of a name ("Jane Roe, LMFT")."""
        if self.allowed(text, detection, allow):
            return None
        value = text[detection.start : detection.end]
        if detection.entity_type == "PHONE_NUMBER" and phone_digits(value) in self._public_numbers():
            return None
        if detection.entity_type not in ("PERSON", "LOCATION"):
            return detection
        credentials = self._credentials()
        tokens = [(m.start(), m.end()) for m in _CREDENTIAL_TOKEN.finditer(value)]
        is_cred = lambda t: value[t[0] : t[1]].casefold().replace(".", "") in credentials  # noqa: E731
        while tokens and is_cred(tokens[-1]):
            tokens.pop()
        while tokens and is_cred(tokens[0]):
            tokens.pop(0)
        if not tokens:
            return None
        start, end = detection.start + tokens[0][0], detection.start + tokens[-1][1]
        if (start, end) == (detection.start, detection.end):
            return detection
        return None if self.allowed(text, Detection(start, end, detection.entity_type, detection.score), allow) \
            else Detection(start, end, detection.entity_type, detection.score)

    def _public_numbers(self) -> frozenset[str]:
        if self._numbers is None:
            self._numbers = self.config.public_number_set()
        return self._numbers

    def _credentials(self) -> frozenset[str]:
        if self._creds is None:
            self._creds = self.config.credential_set()
        return self._creds

    def apply_allow_list(
        self, texts: Sequence[str], detections: Iterable[list[Detection]], family: str | None,
        *, place_greetings: bool = True,
    ) -> list[list[Detection]]:
        """The family's allow-list, public numbers and credentials; with ``place_greetings``, its
        salutation rule (config place_greeting_families; not for file paths, which have no greeting)."""
        allow = self.config.allow_set(family)
        places = place_greetings and family is not None and family in self.config.place_greeting_families
        out = []
        for t, dets in zip(texts, detections):
            kept = [d for d in (self.keep(t, d, allow) for d in dets) if d is not None]
            out.append([addressed_place(t, d) for d in kept] if places else kept)
        return out

    def detect(self, texts: list[str], family: str | None = None, *, place_greetings: bool = True) -> list[list[Detection]]:
        """One list of non-overlapping detections per text, after the family's allow-list."""
        return self.apply_allow_list(texts, self.detect_unfiltered(texts), family, place_greetings=place_greetings)

    def is_uncertain(self, detection: Detection) -> bool:
        low, high = self.config.review_band
        return low <= detection.score < high
