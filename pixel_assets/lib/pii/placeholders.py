"""Placeholders for replaced PII: one number per (type, value) within a conversation, and one
per person however the conversation names them ("Sarah", "Dr. Johnson", "Sarah Johnson")."""

from __future__ import annotations

import re
from collections import Counter


# Ignored when comparing PERSON values: "Dr. Smith" and "Smith" are one person, "Dr. Smith" and
# "Dr. Jones" are not.
_NAME_TITLES = frozenset({
    "dr", "doctor", "mr", "mister", "mrs", "ms", "miss", "mx", "prof", "professor", "sir", "dame",
    "madam", "rev", "reverend", "fr", "pastor", "jr", "sr", "ii", "iii",
})


def name_tokens(value: str) -> tuple[str, ...]:
    """A PERSON value as comparable tokens: casefolded, no punctuation, no titles."""
    text = re.sub(r"['’]s\b", "", value.casefold())  # "Sarah's" is Sarah
    text = re.sub(r"[^\w\s]", " ", re.sub(r"['’]", "", text))  # O'Brien -> obrien; Mary-Jane -> mary jane
    words = tuple(text.split())
    return tuple(w for w in words if w not in _NAME_TITLES) or words


class PlaceholderMap:
    """Per-conversation map from (type, value) to "<TYPE_n>"."""

    def __init__(self) -> None:
        self._index: dict[tuple[str, str], int] = {}
        self._people: dict[tuple[str, ...], int] = {}  # PERSON name tokens -> placeholder number
        self._next: Counter[str] = Counter()

    def placeholder(self, entity_type: str, value: str) -> str:
        if entity_type == "PERSON":
            return f"<PERSON_{self._person(name_tokens(value))}>"
        key = (entity_type, " ".join(value.casefold().split()))
        if key not in self._index:
            self._index[key] = self._new(entity_type)
        return f"<{entity_type}_{self._index[key]}>"

    def _new(self, entity_type: str) -> int:
        self._next[entity_type] += 1
        return self._next[entity_type]

    def _person(self, tokens: tuple[str, ...]) -> int:
        if tokens not in self._people:
            self._people[tokens] = self._person_alias(tokens) or self._new("PERSON")
        return self._people[tokens]

    def _person_alias(self, tokens: tuple[str, ...]) -> int | None:
        """The earlier person a new name refers to, when exactly one fits.

        "Sarah" after "Sarah Johnson" (or the other way round) is the same person; "Mike Johnson"
        is not, and neither is "Sarah Williams" after "Sarah" + "Sarah Johnson". Two full names
        match when one is a run of the other ("Bob Smith" in an NER span "Sure Bob Smith"). A
        mention that fits several earlier people ("Johnson" after Sarah and Mike Johnson) gets its
        own placeholder: merging two people would tell the model something false about the text.
        """
        if len(tokens) == 1:
            fits = {idx for known, idx in self._people.items() if len(known) > 1 and tokens[0] in known}
        else:
            full_named = {idx for known, idx in self._people.items() if len(known) > 1}
            fits = {idx for known, idx in self._people.items()
                    if (len(known) > 1 and (_is_run(known, tokens) or _is_run(tokens, known)))
                    # a first name alone fits unless that person already has another full name
                    or (len(known) == 1 and known[0] in tokens and idx not in full_named)}
        return fits.pop() if len(fits) == 1 else None


def _is_run(part: tuple[str, ...], whole: tuple[str, ...]) -> bool:
    n = len(part)
    return any(whole[i : i + n] == part for i in range(len(whole) - n + 1))
