"""The PII gate's second name method: a gazetteer, case-insensitive, filtered by context.

spaCy's NER (the scrubber's detector, and the gate's first name method) reads names by their
shape: a lowercase name that is also an English word ("my friend dawn", "grace hunter") looks like
no name to it. This method has other blind spots: it knows the given and family names of the US
census lists shipped by the ``names`` package (5,494 given names, 88,799 family names), whatever
their case, and keeps a hit only in a context that makes it a person:

- after a relationship, title or naming cue: "my sister X", "dr. X", "a guy named X" (X a given
  name, or after a title a family name too), a following family name joining the span;
- a common given name (the first ``COMMON_RANK`` of either census list) followed by a common
  family name (the first ``COMMON_RANK`` of the family list): "grace hunter", "maria gonzalez";
- a common given name followed by a verb of speech or contact: "dawn said", "mark texted".

Words of one context are separated by spaces only: punctuation ends it ("your friend. Hope this
helps" is no name). Stop words (spaCy's English list) are never names ("will", "may").
Placeholders the scrubber wrote ("<PERSON_1>") end a context too.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from pixel_assets.lib.pii.detection import PLACEHOLDER_RE

COMMON_RANK = 1000  # the most common names of each census list: the bigram and speech rules

_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Cues after which a given name is a person ("my friend dawn"); titles take a family name too.
_RELATION_CUES = frozenset("""
sister brother husband wife mom mum mother dad father son daughter friend boyfriend girlfriend partner
fiance fiancee ex boss coworker colleague roommate cousin aunt uncle niece nephew grandma grandpa
grandmother grandfather neighbor neighbour therapist counselor counsellor sponsor teacher stepdad
stepmom stepfather stepmother bestie buddy manager supervisor named called
""".split())
_TITLE_CUES = frozenset("dr mr mrs ms mx miss prof professor officer coach pastor nurse judge".split())
_SPEECH_VERBS = frozenset("""
said says told tells texted texts called calls asked asks yelled yells thinks thought wants wanted
keeps kept screamed shouted replied messaged emailed hit hits
""".split())


@lru_cache(maxsize=1)
def gazetteer() -> tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]:
    """(given names, family names, common given names, common family names), casefolded; read once
    per process from the census files the ``names`` package ships (about 0.2 s)."""
    files = resources.files("names")

    def read(name: str, limit: int | None = None) -> frozenset[str]:
        lines = files.joinpath(name).read_text(encoding="utf-8").splitlines()
        return frozenset(line.split()[0].casefold() for line in lines[:limit] if line.strip())

    given = read("dist.male.first") | read("dist.female.first")
    common_given = read("dist.male.first", COMMON_RANK) | read("dist.female.first", COMMON_RANK)
    return given, read("dist.all.last"), common_given, read("dist.all.last", COMMON_RANK)


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def _contexts(text: str) -> list[list[str]]:
    """Runs of casefolded words separated by spaces only (punctuation and placeholders end a run;
    a title's abbreviation dot does not: "dr. okafor")."""
    text = PLACEHOLDER_RE.sub(lambda m: "#" * len(m.group()), text)
    runs: list[list[str]] = []
    end = -1
    for m in _TOKEN.finditer(text):
        gap = text[end:m.start()]
        joined = gap.isspace() or (gap.strip() == "." and runs and runs[-1][-1] in _TITLE_CUES)
        if end < 0 or not joined:
            runs.append([])
        runs[-1].append(m.group().casefold())
        end = m.end()
    return runs


def gazetteer_names(text: str) -> list[str]:
    """The names this method reads in one text, each as the span's casefolded words."""
    given, family, common_given, common_family = gazetteer()
    stop = _stop_words()
    found: list[str] = []
    for words in _contexts(text):
        i = 0
        while i < len(words):
            word = words[i]
            before = words[i - 1] if i else ""
            after = words[i + 1] if i + 1 < len(words) else ""
            end = i
            if word in stop or word in _RELATION_CUES or word in _TITLE_CUES:
                pass
            elif before in _TITLE_CUES and (word in given or word in family):
                end = i + 1
            elif before in _RELATION_CUES and word in given:
                end = i + 1
            elif word in common_given and after in common_family and after not in stop:
                end = i + 2
            elif word in common_given and after in _SPEECH_VERBS:
                end = i + 1
            if end > i:
                if end == i + 1 and after in family and after not in stop and after not in _SPEECH_VERBS:
                    end = i + 2  # the family name after a cued given name joins the span
                found.append(" ".join(words[i:end]))
                i = end
            else:
                i += 1
    return found


__all__ = ["COMMON_RANK", "gazetteer", "gazetteer_names"]
