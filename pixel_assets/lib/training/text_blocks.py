"""Phase A (`pretrained`): records as plain text, cut into context-size blocks at paragraph boundaries.

How a record becomes text: system prompts are left out (they are instructions, not material);
every other message's content, stripped, becomes one or more paragraphs, in order, joined by a
blank line. A transcript (one message holding the whole video) is therefore its own text; a
conversation reads as its turns one after another, without role labels.

Blocks: paragraphs of one family are laid end to end (records in mix order, a blank line between
paragraphs) and a block is closed before the paragraph that would make it longer than the budget:
`max_length - 1` tokens (one token is left for the end-of-text token the trainer appends). A single
paragraph longer than the budget is cut at sentence ends, and a sentence longer than the budget at
spaces; those cuts are counted in the stats. Every block is measured again with the real tokenizer
as a whole, so no block is ever longer than its budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pixel_assets.lib.training.packing import text_ids

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?…])\s+")


def record_text(record: dict[str, Any]) -> str:
    parts = []
    for m in record.get("messages") or []:
        if isinstance(m, dict) and m.get("role") != "system" and isinstance(m.get("content"), str):
            parts.extend(paragraphs(m["content"]))
    return "\n\n".join(parts)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]


@dataclass
class TextBlock:
    text: str
    family: str
    content_hashes: list[str] = field(default_factory=list)
    tokens: int = 0


def _pieces(paragraph: str, count, budget: int) -> tuple[list[str], int]:
    """The paragraph, or its sentence/space-cut pieces when it alone exceeds the budget; and how
    many cuts inside a paragraph that took."""
    if count(paragraph) <= budget:
        return [paragraph], 0
    out: list[str] = []
    for sentence in _SENTENCE.split(paragraph):
        if count(sentence) <= budget:
            out.append(sentence)
            continue
        current = ""
        for word in sentence.split(" "):
            candidate = f"{current} {word}" if current else word
            if current and count(candidate) > budget:
                out.append(current)
                current = word
            else:
                current = candidate
            while count(current) > budget:  # one "word" longer than the budget: cut by characters
                cut = max(1, len(current) * budget // max(1, count(current)))
                while cut > 1 and count(current[:cut]) > budget:
                    cut = max(1, cut * 9 // 10)
                out.append(current[:cut])
                current = current[cut:]
        if current:
            out.append(current)
    return out, len(out) - 1


def build_blocks(records: Sequence[dict[str, Any]], tokenizer, max_length: int) -> tuple[list[TextBlock], dict[str, int]]:
    """Blocks per family, in the order the records come (records of different families never share a block)."""
    budget = max_length - 1

    def count(text: str) -> int:
        return len(text_ids(tokenizer, [text])[0])

    open_blocks: dict[str, tuple[list[tuple[str, str]], int]] = {}  # family -> ((paragraph, hash)..., token estimate)
    blocks: list[TextBlock] = []
    cuts = 0

    def emit(family: str, items: list[tuple[str, str]]) -> None:
        text = "\n\n".join(p for p, _ in items)
        blocks.append(TextBlock(text=text, family=family, content_hashes=sorted({h for _, h in items}), tokens=count(text)))

    def close(family: str) -> None:
        items, _ = open_blocks.pop(family, ([], 0))
        while items:  # measured as a whole; trailing paragraphs move on when the estimate was short
            if len(items) == 1 or count("\n\n".join(p for p, _ in items)) <= budget:
                emit(family, items)
                return
            rest = [items.pop()]
            while len(items) > 1 and count("\n\n".join(p for p, _ in items)) > budget:
                rest.insert(0, items.pop())
            emit(family, items)
            items = rest

    sep = count("\n\n")
    for record in records:
        meta = record.get("metadata") or {}
        family, chash = str(meta.get("source_family")), str(meta.get("content_hash"))
        for para in paragraphs(record_text(record)):
            pieces, n_cuts = _pieces(para, count, budget)
            cuts += n_cuts
            for piece in pieces:
                n = count(piece)
                items, est = open_blocks.get(family, ([], 0))
                if items and est + sep + n > budget:
                    close(family)
                    items, est = [], 0
                items.append((piece, chash))
                open_blocks[family] = (items, est + (sep if len(items) > 1 else 0) + n)
    for family in list(open_blocks):
        close(family)
    return blocks, {"paragraph_cuts": cuts}
