"""Glued sentence boundaries: "I'm sorry for your loss.There are programs near you.Consider..."

Text copied from the web often loses the space after a full stop. Left glued, the PII detector
reads "loss.There" as a domain and NER reads "you.Consider" as one token, so normalization puts
the space back before detection. The repair is deliberately narrow: a space goes in only after a
run of `.`, `!` or `?` that follows a lowercase word of two or more letters and precedes a
capitalised word. Left untouched, because a space would break them:

- abbreviations and initials ("U.S.Army", "e.g.The", "J.K.Rowling"): the left side is one letter
  or capitals;
- decimals and versions ("2.5", "v1.2"): digits;
- dotted names (domains, file names: "www.example.Com", "site.co.Uk", "notes.Txt"): the left word
  follows a dot, slash, @ or other word character, or the right word is a top-level domain or
  file extension followed by a non-letter ("Example.Com");
- camel case without punctuation ("iPhone"): no `.`, `!`, `?`.
"""

from __future__ import annotations

import re

# The left word must start at a word boundary that is not part of a dotted name or address.
_GLUED = re.compile(
    r"(?<![\w.@/\\:'’-])(?P<word>[A-Za-z]?[a-z]{2,})(?P<stop>[.!?]+)(?P<next>[A-Z](?:[a-z'’]|\s|,))"
)
# A right-hand word that is a domain or file suffix when a non-letter follows it ("Example.Com/").
_SUFFIXES = frozenset(
    "com org net edu gov info biz io co uk us ca au nz ie de fr es it nl eu tv me ly app "
    "html htm php pdf doc docx txt jpg png gif csv".split()
)
_SUFFIX_AT = re.compile(r"[A-Za-z]+")


def repair_glued_sentences(text: str) -> tuple[str, int]:
    """(text with a space after each glued sentence end, number of spaces inserted)."""
    if "." not in text and "!" not in text and "?" not in text:
        return text, 0
    out: list[str] = []
    last = 0
    repairs = 0
    for m in _GLUED.finditer(text):
        if m.group("word").casefold() == "www":
            continue  # "www.Example.com": a host name
        after = m.start("next")
        suffix = _SUFFIX_AT.match(text, after)
        word_after = suffix.group() if suffix else ""
        end = suffix.end() if suffix else after
        if m.group("stop") == "." and word_after.casefold() in _SUFFIXES and (
            end == len(text) or not text[end].isalpha()
        ):
            continue  # "Example.Com", "notes.Txt": a dotted name, not two sentences
        out.append(text[last:after])
        out.append(" ")
        last = after
        repairs += 1
    if not repairs:
        return text, 0
    out.append(text[last:])
    return "".join(out), repairs


REPAIRS_KEY = "sentence_breaks_repaired"  # record metadata: spaces inserted (absent when none)


def family_repairs(records_frame) -> int:
    """Spaces inserted over a normalized records frame (sum of the records' REPAIRS_KEY)."""
    import polars as pl

    if records_frame.height == 0:
        return 0
    total = records_frame.select(
        pl.col("record").str.json_path_match(f"$.metadata.{REPAIRS_KEY}").cast(pl.Int64).sum()
    ).item()
    return int(total or 0)
