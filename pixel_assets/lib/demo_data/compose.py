"""Text composition and the internal record model: phrase-bank templates filled with a family's
own seeded random source, conversations, malformed items, files, and the per-family builder."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

from . import phrases as P
from .plan import ROLE_ASSISTANT, ROLE_SYSTEM, ROLE_USER


_SLOT_RE = re.compile(r"\{(\w+)\}")


class Composer:
    """Fills phrase-bank templates with a family's own seeded random source and Faker."""

    def __init__(self, rng: random.Random, fake: Faker):
        self.rng, self.fake = rng, fake

    def fill(self, template: str, *, capitalize: bool = True) -> str:
        def slot(m: re.Match) -> str:
            name = m.group(1)
            if name == "job":
                return self.fake.job().split(",")[0].lower()
            if name == "num":
                return str(self.rng.randint(3, 400))
            value = self.rng.choice(P.SLOTS[name])
            return self.fill(value, capitalize=False) if "{" in value else value

        text = _SLOT_RE.sub(slot, template)
        return text[0].upper() + text[1:] if capitalize else text

    def turn(self, role: str, theme: str | None, sentences: tuple[int, int]) -> str:
        rng = self.rng
        is_client = role == ROLE_USER
        general = P.CLIENT_SENTENCES if is_client else P.THERAPIST_SENTENCES
        themed = P.THEMES.get(theme or "", {}).get("client" if is_client else "therapist", [])
        parts: list[str] = []
        if is_client and rng.random() < 0.25:
            parts.append(self.fill(rng.choice(P.CLIENT_OPENERS)))
        for _ in range(rng.randint(*sentences)):
            bank = themed if themed and rng.random() < 0.5 else general
            parts.append(self.fill(rng.choice(bank)))
        if rng.random() < 0.35:
            parts.append(rng.choice(P.CLIENT_QUESTIONS if is_client else P.THERAPIST_CLOSERS))
        return " ".join(parts)

    def dialogue(
        self, theme: str | None, pairs: tuple[int, int], sentences: tuple[int, int] = (2, 4),
        first: str = ROLE_USER,
    ) -> list[dict[str, str]]:
        second = ROLE_ASSISTANT if first == ROLE_USER else ROLE_USER
        out: list[dict[str, str]] = []
        for _ in range(self.rng.randint(*pairs)):
            out.append({"role": first, "content": self.turn(first, theme, sentences)})
            out.append({"role": second, "content": self.turn(second, theme, sentences)})
        return out


# --- internal record model ----------------------------------------------------------------


@dataclass
class Conv:
    messages: list[dict[str, str]]  # normalized roles, the contents a loader will produce
    demo_id: str
    meta: dict[str, Any] = field(default_factory=dict)  # written into the source where it can be
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific (rejected, reasoning, ...)
    encoding: str | None = None  # "mojibake" | "html": not clean, kept out of the hash plan
    pii: list[tuple[str, str]] = field(default_factory=list)
    dup_group: str | None = None
    near_pair: tuple[str, str] | None = None  # (pair id, "a"|"b")
    same_question: tuple[str, str] | None = None


@dataclass
class Bad:
    reason: str
    payload: Any  # bytes (JSONL line / txt file) | object (JSON array item) | dict (CSV row)


@dataclass
class FileSpec:
    key: str
    format: str
    items: list[Conv | Bad] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)


# --- PII planting ------------------------------------------------------------------------


# --- family builders -----------------------------------------------------------------------


def scaled(base: int, scale: float, floor: int = 6) -> int:
    """A family's item count at `scale`, never below `floor`."""
    return max(floor, round(base * scale))


class FamilyBuilder:
    def __init__(self, family: str, seed: int, scale: float):
        self.family, self.scale = family, scale
        digest = hashlib.sha256(f"{seed}:{family}".encode()).digest()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))
        fake = Faker("en_US")
        fake.seed_instance(int.from_bytes(digest[8:16], "big"))
        self.comp = Composer(self.rng, fake)
        self._next_id = 0
        self.files: list[FileSpec] = []

    def new_id(self) -> str:
        self._next_id += 1
        return f"{self.family}-{self._next_id:05d}"

    def conv(self, messages: list[dict[str, str]], **kw: Any) -> Conv:
        return Conv(messages=messages, demo_id=self.new_id(), **kw)

    def add_file(self, key: str, fmt: str, **options: Any) -> FileSpec:
        spec = FileSpec(key=key, format=fmt, options=options)
        self.files.append(spec)
        return spec


def with_system(system: str | None, messages: list[dict[str, str]]) -> list[dict[str, str]]:
    return ([{"role": ROLE_SYSTEM, "content": system}] if system else []) + messages
