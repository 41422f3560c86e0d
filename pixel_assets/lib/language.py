"""Language policy: records are English; a record with a message in another language is quarantined.

Why quarantine rather than keep: the PII detector's NER model, its common-word vocabulary and its
name cues are English. On Spanish text it calls function words people ("pero lo") and misses
names written the Spanish way, so neither the text nor its privacy would be right. Quarantined
records are counted under reason `language` (the detail names the detected language code only).

Identification is py3langid (langid.py's model, bundled in the wheel: no download). A message is
judged only when it has enough words to be judged (MIN_WORDS); a short message ("ok", "gracias")
never quarantines a record, and a confident call is required (MIN_PROBABILITY). Only a message that
`worth_identifying` (non-Latin script, or many foreign function words) goes to the identifier.
"""

from __future__ import annotations

import re
from functools import lru_cache

ACCEPTED_LANGUAGES = frozenset({"en"})
MIN_WORDS = 8
MIN_PROBABILITY = 0.95
_WORD = re.compile(r"[^\W\d_]{2,}")


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of a confidently identified language, or None (too short or unsure)."""
    if len(_WORD.findall(text)) < MIN_WORDS:
        return None
    code, probability = _identifier().classify(text)
    return str(code) if probability >= MIN_PROBABILITY else None


def worth_identifying(text: str) -> bool:
    """Cheap filter before the identifier (a few ms a message, too slow for every message of a
    large corpus): a fifth of the words in a non-Latin script, or function words of
    FOREIGN_LANGUAGES making up a tenth of the words. English prose passes neither."""
    tokens = _WORD.findall(text)
    if not tokens:
        return False
    if sum(1 for w in tokens if max(w) > "\u024f") >= 0.2 * len(tokens):
        return True
    function_words = foreign_function_words()
    hits = sum(1 for w in tokens if w.casefold() in function_words)
    return hits >= 2 and hits >= 0.1 * len(tokens)


def foreign_language(texts) -> str | None:
    """The first confidently identified language outside ACCEPTED_LANGUAGES among `texts`, or None."""
    for text in texts:
        if not worth_identifying(text):
            continue
        code = detect_language(text)
        if code is not None and code not in ACCEPTED_LANGUAGES:
            return code
    return None


# --- inside the PII detector --------------------------------------------------------------------
# The detector's NER and name cues are English: in a paragraph of another language they mark
# function words as people ("pero lo"). Such paragraphs get the pattern recognizers only (email,
# phone, URL, ...); the pipeline quarantines the record anyway (policy above), so this matters for
# `pixel pii-detect` / `pii-eval` on raw text and for bilingual answers.
FOREIGN_LANGUAGES = ("es", "fr", "it", "pt", "de", "nl")
_PARAGRAPH = re.compile(r"[^\n]+(?:\n(?!\s*\n)[^\n]*)*")
_TOKEN = re.compile(r"[^\W\d_]+")


@lru_cache(maxsize=1)
def foreign_function_words() -> frozenset[str]:
    """Function words of FOREIGN_LANGUAGES (spaCy's stop-word lists) that are not English stop words."""
    import importlib

    from spacy.lang.en.stop_words import STOP_WORDS as ENGLISH

    words: set[str] = set()
    for code in FOREIGN_LANGUAGES:
        words |= importlib.import_module(f"spacy.lang.{code}.stop_words").STOP_WORDS
    return frozenset(w for w in words - set(ENGLISH) if len(w) > 1)


FOREIGN_SHARE = 0.15  # Spanish/French/... prose is a third function words; an English book list is not


def foreign_paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of the paragraphs confidently in a language outside ACCEPTED_LANGUAGES. Only a
    paragraph in which foreign function words are two or more and FOREIGN_SHARE of the words goes to
    the identifier (cheap filter); one too short to judge that follows a foreign paragraph and holds
    a foreign function word ("¡Mucho éxito en tu nueva jornada!") is taken as the same language."""
    function_words = foreign_function_words()
    out: list[tuple[int, int]] = []
    previous_foreign = False
    for m in _PARAGRAPH.finditer(text):
        tokens = _TOKEN.findall(m.group())
        hits = sum(1 for w in tokens if w.casefold() in function_words)
        foreign = False
        if hits >= 2 and hits >= FOREIGN_SHARE * len(tokens):
            code = detect_language(m.group())
            foreign = code is not None and code not in ACCEPTED_LANGUAGES
            if code is None and previous_foreign:
                foreign = True
        elif len(_WORD.findall(m.group())) < MIN_WORDS and (
                (hits and previous_foreign) or ("¿" in m.group() or "¡" in m.group())):
            foreign = True  # too short to identify: Spanish punctuation or the previous paragraph's language
        if foreign:
            out.append(m.span())
        if any(c.isalpha() for c in m.group()):
            previous_foreign = foreign
    return out
