"""Person names in paths: `source_key`, `provenance.original_s3_key` (and so the manifest's
provenance_map, built from them) go through the same names check as text.

Only the file name and its folder are checked (transcripts live at .../<creator>/<video>.txt; the
data root above them is the operator's). Separators become spaces and every word gets a capital
letter (a same-length copy, so offsets map back), then the scrubber's detector runs on it with the
family's allow-list; words of a PERSON span are replaced, except allow-listed names and function
words. Words on the detection name list that are not common words count too ("kowalczyk_notes").

`scrub_path(path)` is idempotent: placeholders ("<PERSON_1>") are never detected again, so a gate
can re-scan published paths with `path_names(path) == []`.
"""

from __future__ import annotations

import re
from typing import Any

from pixel_assets.lib.pii.detection import PLACEHOLDER_RE
from pixel_assets.lib.pii.placeholders import PlaceholderMap

_SEPARATORS = re.compile(r"[/_\-.+ %=,;()\[\]]")
_WORD = re.compile(r"[^\W\d_]+")
_default_scrubber: Any = None


def _scrubber(scrubber):
    global _default_scrubber
    if scrubber is not None:
        return scrubber
    if _default_scrubber is None:
        from pixel_assets.lib.pii.scrubber import PiiScrubber

        _default_scrubber = PiiScrubber(n_process=1)
    return _default_scrubber


def _tail_start(path: str) -> int:
    """Offset of the last two path segments (folder + file name)."""
    cut = path.rstrip("/")
    for _ in range(2):
        i = cut.rfind("/")
        if i < 0:
            return 0
        cut = cut[:i]
    return len(cut) + 1


def _render(tail: str) -> str:
    out = list(_SEPARATORS.sub(" ", tail))
    for m in _WORD.finditer(tail):
        first = m.group()[0].upper()
        if len(first) == 1:
            out[m.start()] = first
    return "".join(out)


def _name_word(word: str, names, word_flags) -> bool:
    """A word of a PERSON span that is replaced: capitalised in the path, not a common word, or on
    the name list; never a function word."""
    flags = word_flags(word)
    if flags and set(flags) & set("svrx"):
        return False
    if word[0].isupper() or word.casefold() in names:
        return True
    return flags is None and len(word) > 3 and any(c in "aeiouy" for c in word.casefold())  # not "src"


def path_names(path: str, *, scrubber=None, family: str | None = None) -> list[tuple[int, int]]:
    """(start, end) offsets in `path` of person names (allow-list aware), merged per name."""
    from pixel_assets.lib.pii.names import detection_names, word_flags

    scrubber = _scrubber(scrubber)
    start = _tail_start(path)
    tail = path[start:]
    masked = PLACEHOLDER_RE.sub(lambda m: " " * len(m.group()), tail)
    dot = masked.rfind(".")
    if dot > masked.rfind("/"):  # the file extension is not a name
        masked = masked[:dot] + " " * (len(masked) - dot)
    rendered = _render(masked)
    [dets] = scrubber.detect([rendered], family, place_greetings=False)  # a path has no salutation
    allow_words = {w for name in scrubber.config.allow_set(family) for w in name.split()}
    spans: list[tuple[int, int]] = []
    for d in dets:
        if d.entity_type != "PERSON":
            continue
        words = [m for m in _WORD.finditer(masked[: d.end], d.start)
                 if m.group().casefold() not in allow_words and _name_word(m.group(), detection_names(), word_flags)]
        if words:
            end = words[-1].end()
            # the small model often stops after the first name: take the name-like words that follow
            for m in _WORD.finditer(masked, end):
                gap = masked[end : m.start()]
                if len(gap) > 1 or gap.strip() or m.group().casefold() in allow_words \
                        or not _name_word(m.group(), detection_names(), word_flags):
                    break
                end = m.end()
            spans.append((words[0].start(), end))
    for m in _WORD.finditer(masked):
        w = m.group().casefold()
        if (len(w) > 2 and w in detection_names() and word_flags(w) is None and w not in allow_words
                and not any(a <= m.start() < b for a, b in spans)):
            spans.append(m.span())
    return [(start + a, start + b) for a, b in sorted(spans)]


def scrub_path(path: str, *, scrubber=None, family: str | None = None) -> str:
    """`path` with each person name replaced by "<PERSON_n>" (numbered within the path)."""
    spans = path_names(path, scrubber=scrubber, family=family)
    if not spans:
        return path
    pmap, pieces, pos = PlaceholderMap(), [], 0
    for a, b in spans:
        pieces += [path[pos:a], pmap.placeholder("PERSON", _SEPARATORS.sub(" ", path[a:b]))]
        pos = b
    return "".join(pieces) + path[pos:]
