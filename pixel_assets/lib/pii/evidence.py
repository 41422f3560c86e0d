"""Name evidence: when an NER PERSON span is not a person on its own.

spaCy's small model calls many capitalised or case-restored words people. On real therapist
writing (counsel-chat) those are book titles ("Codependent No More"), clinical terms ("Major
Depression"), misspellings ("treatmetn"), ordinary words ("your boyfriend continuing") and Spanish
function words ("pero lo"). An NER span is dropped when every word in it is one of:

- a word the corpus mostly writes in lower case: lowercase vs. capitalised mid-sentence counts in
  the packaged counsel-chat sample plus the text itself ("Hope" is "hope" far more often);
- a function word of another language (spaCy's stop-word lists, minus English stop words and
  the detector's name list);
- written in lower case inside properly cased prose: a writer who capitalises sentences and "I"
  capitalises names, so restored-case NER is for chat-style text only.

Names found by context cues ("my husband will", "dr. okafor", "I met Crystal Sharp") are evidence
themselves and never pass through here.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from functools import lru_cache

from pixel_assets.lib import language
from pixel_assets.lib.pii.names import detection_names, informal

CASE_CORPUS = "counsel_chat/counselchat-data.csv"  # in pixel_assets/data/
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“(]\s*|\n\s*)$")


def _mid_sentence_words(text: str):
    """(word, start) of words not at a sentence or line start (their case is the writer's choice)."""
    for m in _WORD.finditer(text):
        if not _SENTENCE_START.search(text[max(0, m.start() - 3) : m.start()]) and m.start() > 0:
            yield m.group(), m.start()


def case_counts(texts) -> tuple[Counter, Counter]:
    """(lowercase, capitalised) mid-sentence counts per casefolded word."""
    lower: Counter[str] = Counter()
    upper: Counter[str] = Counter()
    for text in texts:
        for w, _ in _mid_sentence_words(text):
            if w.islower():
                lower[w.casefold()] += 1
            elif w[0].isupper():
                upper[w.casefold()] += 1
    return lower, upper


def _corpus_bytes() -> bytes:
    from importlib import resources

    return resources.files("pixel_assets.data").joinpath(CASE_CORPUS).read_bytes()


def corpus_fingerprint() -> str:
    """Part of the detector fingerprint: the case statistics change detections."""
    return hashlib.sha256(_corpus_bytes()).hexdigest()[:16]


@lru_cache(maxsize=1)
def corpus_case_counts() -> tuple[Counter, Counter]:
    """Case counts over the packaged counsel-chat questions and answers (HTML stripped)."""
    import html
    import io

    import polars as pl

    frame = pl.read_csv(io.BytesIO(_corpus_bytes()), columns=["questionText", "answerText"])
    texts = (html.unescape(re.sub(r"<[^>]+>", " ", v)) for col in frame.iter_columns() for v in col.drop_nulls())
    return case_counts(texts)


@lru_cache(maxsize=1)
def foreign_function_words() -> frozenset[str]:
    """Function words of other languages that are not on the detector's name list ("sara", "ben")."""
    return language.foreign_function_words() - detection_names()


class NameEvidence:
    """Decides, for one text, whether an NER PERSON span has name evidence."""

    def __init__(self, text: str):
        self.text = text
        self._lower, self._upper = case_counts([text])

    def mostly_lowercase(self, word: str) -> bool:
        lower, upper = corpus_case_counts()
        w = word.casefold()
        return lower[w] + self._lower[w] > upper[w] + self._upper[w]

    def lowercase_in_prose(self, start: int, word: str) -> bool:
        """A lowercase word inside a properly cased sentence (not chat style)."""
        if not word.islower():
            return False
        a = max(self.text.rfind(c, 0, start) for c in ".!?\n") + 1
        ends = [i for i in (self.text.find(c, start) for c in ".!?\n") if i >= 0]
        return not informal(self.text[a : min(ends) if ends else len(self.text)].strip())

    def is_person(self, start: int, end: int) -> bool:
        words = list(_WORD.finditer(self.text, start, end))
        if not words:
            return False
        foreign = foreign_function_words()
        for m in words:
            w = m.group()
            if w.casefold() in foreign or self.lowercase_in_prose(m.start(), w):
                continue
            if self.mostly_lowercase(w[:-2] if w.endswith(("'s", "’s")) else w):
                continue
            return True  # a word with name evidence
        return False
