"""Name evidence: when an NER PERSON span is not a person on its own.

spaCy's small model calls many capitalised or case-restored words people. On real therapist
writing (counsel-chat) those are book titles ("Codependent No More"), clinical terms ("Major
Depression"), misspellings ("treatmetn"), ordinary words ("your boyfriend continuing") and Spanish
function words ("pero lo"). An NER span is dropped when every word in it is one of:

- a word the corpus mostly writes in lower case: lowercase vs. capitalised mid-sentence counts in
  the packaged counsel-chat sample plus the text itself ("Hope" is "hope" far more often);
- a function word of another language (spaCy's stop-word lists, minus English stop words) in a
  text where such words are two or more and language.FOREIGN_SHARE of the words ("pero lo" in
  Spanish; not "Sara" or "ellie and Una" in English);
- written in lower case in careful prose (careful_prose: a long text whose writer starts sentences
  with a capital and writes "I" capitalised also capitalises names), so restored-case NER is for
  chat-style text only ("treatmetn", "netural" in a therapist's answer).

"Mostly lower case" needs the corpus to have seen the word in lower case at least MIN_CORPUS_LOWER
times: a name the text itself writes in lower case ("my roommate raven") is not evidence against it.

In careful prose, a capitalised ordinary English word (noun, verb, adjective or adverb in the
packaged vocabulary) that is not on the detector's name list is no evidence on its own either
("Girl Scout"): such writers capitalise terms and titles; names that are words ("Grace", "Will")
are on the list. In chat text a capitalised "Guy" or "Jade" is more likely a name.

A span inside a quoted title ("Love in Abundance: a Counselor's Advice on Open Marriage",
“Codependent No More”) is a title: three or more words, most of them capitalised.

A span that starts with "the" ("the Vet Center") names an organisation; a title ("Drs") is no
evidence either. The same rules apply to NER LOCATION spans.

Names found by context cues ("my husband will", "dr. okafor", "I met Crystal Sharp") are evidence
themselves; `cue_is_name` drops one only when it is written against the cue (lowercase in careful
prose, an acronym, foreign function words, an ordinary word starting a sentence).
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from pixel_assets.lib import language
from pixel_assets.lib.pii.config import CASE_CORPUS, case_corpus_texts, corpus_fingerprint  # noqa: F401  (re-exported)
from pixel_assets.lib.pii.names import TITLES, detection_names, word_flags

_AFTER_THE = re.compile(r"\b[Tt]he\s+$")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
MIN_CORPUS_LOWER = 2
_LOWER_I = re.compile(r"(?<![\w'’])i(?![\w'’]|\.\s?e\.)|(?<![\w'’])i['’](?:m|ve|d|ll)\b")
_TITLE = re.compile(r"(?:" + TITLES + r"|drs|mrs?|messrs)\.?")
CAREFUL_MIN_SENTENCES = 3
CAREFUL_MIN_WORDS = 40
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])[\"'”’)]*\s+|\n+")
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


@lru_cache(maxsize=1)
def corpus_case_counts() -> tuple[Counter, Counter]:
    """Case counts over the packaged counsel-chat questions and answers in English (HTML stripped)."""
    texts = case_corpus_texts()
    foreign = language.foreign_function_words()

    def english(text: str) -> bool:  # the Spanish answers write "una", "con", "mi" in lower case
        tokens = _WORD.findall(text)
        return sum(1 for w in tokens if w.casefold() in foreign) < language.FOREIGN_SHARE * max(1, len(tokens))

    return case_counts(t for t in texts if english(t))


_QUOTED = re.compile(r"\"([^\"\n]{3,160})\"|“([^”\n]{3,160})”")


def quoted_titles(text: str) -> list[tuple[int, int]]:
    """(start, end) of quoted strings of three or more words, at least 60% of them capitalised."""
    out = []
    for m in _QUOTED.finditer(text):
        group = 1 if m.group(1) is not None else 2
        words = _WORD.findall(m.group(group))
        if len(words) >= 3 and sum(w[0].isupper() for w in words) >= 0.6 * len(words):
            out.append(m.span(group))
    return out


def careful_prose(text: str) -> bool:
    """Long, properly cased prose: CAREFUL_MIN_WORDS words or more in CAREFUL_MIN_SENTENCES sentences
    or more, "I" never in lower case, and at most one sentence in five starting in lower case (list
    items, a sentence after "e.g.")."""
    if len(text.split()) < CAREFUL_MIN_WORDS or _LOWER_I.search(text):
        return False
    firsts = [next((c for c in piece if c.isalpha()), "") for piece in _SENTENCE_SPLIT.split(text)]
    firsts = [c for c in firsts if c]
    return len(firsts) >= CAREFUL_MIN_SENTENCES and sum(c.islower() for c in firsts) <= 0.2 * len(firsts)


class NameEvidence:
    """Decides, for one text, whether an NER PERSON span has name evidence."""

    def __init__(self, text: str):
        self.text = text
        self._lower, self._upper = case_counts([text])
        foreign = language.foreign_function_words()
        tokens = _WORD.findall(text)
        hits = sum(1 for w in tokens if w.casefold() in foreign)
        self._foreign = foreign if hits >= 2 and hits >= language.FOREIGN_SHARE * len(tokens) else frozenset()
        self.careful = careful_prose(text)
        self._titles = quoted_titles(text) if any(q in text for q in "\"“") else []

    def mostly_lowercase(self, word: str) -> bool:
        lower, upper = corpus_case_counts()
        w = word.casefold()
        return lower[w] >= MIN_CORPUS_LOWER and lower[w] + self._lower[w] > upper[w] + self._upper[w]

    def lowercase_in_prose(self, word: str) -> bool:
        """A lowercase word in careful prose (see the module docstring)."""
        return self.careful and word.islower()

    def in_quoted_title(self, start: int, end: int) -> bool:
        return any(a <= start and end <= b for a, b in self._titles)

    def is_person(self, start: int, end: int) -> bool:
        words = list(_WORD.finditer(self.text, start, end))
        if sum(len(m.group()) for m in words) < 2 or words[0].group().casefold() == "the" \
                or self.in_quoted_title(start, end):
            return False  # "i." of "i. e.", "the Vet Center", a word of a quoted title
        if len(words) == 1 and words[0].group().isupper() and _AFTER_THE.search(self.text, max(0, start - 5), start):
            return False  # an acronym after "the" names an organisation: "through the VA", "the FBI"
        for m in words:
            w = m.group()
            if _TITLE.fullmatch(w.casefold()):
                continue
            if w.casefold() in self._foreign or self.lowercase_in_prose(w):
                continue
            base = w[:-2] if w.endswith(("'s", "’s")) else w
            if self.mostly_lowercase(base) or (self.careful and _ordinary_word(base)):
                continue
            return True  # a word with name evidence
        return False

    def cue_is_name(self, start: int, end: int) -> bool:
        """A name found by a context cue, unless it is written against the cue: lowercase in careful
        prose ("nurse practitioner", "basic self-care is"), an acronym of three or more letters ("someone
        is LGBTQ doesn't"; two capitals after a cue are initials: "my brother TJ"),
        foreign function words, or an ordinary word at a sentence start ("Hope this helps")."""
        words = list(_WORD.finditer(self.text, start, end))
        if not words:
            return False
        for m in words:
            w = m.group()
            if w.casefold() in self._foreign or self.lowercase_in_prose(w) or (w.isupper() and len(w) > 2):
                continue
            if (m.start() == 0 or _SENTENCE_START.search(self.text[max(0, m.start() - 3) : m.start()])) \
                    and self.mostly_lowercase(w):
                continue
            return True
        return False


def _ordinary_word(word: str) -> bool:
    flags = word_flags(word)
    return flags is not None and bool(set(flags) & set("nvar")) and word.casefold() not in detection_names()
