"""Training data checked against the test split by content, whatever its labels say.

Every writer of training data (stage files, phase-A blocks, preference pairs and KTO rows) calls
`refuse_test_content` before it writes; a line that carries test content raises TestSplitLeak and
nothing is written. A line is test content when

- a content hash it carries (metadata ``content_hash`` / ``content_hashes``) or the content hash
  recomputed from its messages is a test record's; or
- its whole normalized assistant text (every assistant turn, whitespace collapsed, casefolded, in
  order: a preference pair's prompt turns and chosen answer) equals a test record's: a relabelled
  record with a new hash still carries it; or
- (a phase-A block, plain text) it holds the paragraphs of one test record's text (every
  non-system turn, as phase A lays a record out) in a row.

A single turn may legitimately repeat across records in templated data; the whole assistant text
of a record must not. The test split is read from the data root's published dataset and indexed
once per manifest; at a root with nothing published there is no test split to check against.
Messages name the line and hashes, never text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.storage import DataRoot
from pixel_assets.lib.training.text_blocks import paragraphs, record_text

_SEPARATOR = "\n\x1f\n"  # between turns of one assistant text (never inside a normalized turn)
_CACHE: dict[tuple[str, str], TestContent] = {}
_CACHE_MAX = 4


class TestSplitLeak(RuntimeError):
    """A test-split record (by its label or by its content) was about to enter training data."""

    __test__ = False  # not a pytest class


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _assistant_turns(messages: Any) -> list[str]:
    if not isinstance(messages, list):
        return []
    return [_normalize(m["content"]) for m in messages
            if isinstance(m, dict) and m.get("role") == "assistant" and isinstance(m.get("content"), str)
            and m["content"].strip()]


def _paragraphs(texts: Iterable[str]) -> list[str]:
    """Normalized paragraphs, cut where phase-A text blocks cut a record's text."""
    return [_normalize(p) for t in texts for p in paragraphs(t)]


@dataclass
class TestContent:
    """What the test split's records look like, for lookups: content hashes, the digest of each
    record's whole assistant text, and each record's text as paragraphs (by its first one)."""

    __test__ = False

    hashes: dict[str, str] = field(default_factory=dict)  # content hash -> itself (a known test hash)
    assistant_texts: dict[str, str] = field(default_factory=dict)  # digest of whole assistant text -> hash
    paragraphs_by_first: dict[str, list[tuple[str, tuple[str, ...]]]] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> TestContent:
        out = cls()
        for r in records:
            messages = r.get("messages")
            meta = r.get("metadata") if isinstance(r.get("metadata"), Mapping) else {}
            recomputed = contract.content_hash(messages) if isinstance(messages, list) else None
            chash = str(meta.get("content_hash") or recomputed or "")
            for h in (chash, recomputed):
                if h:
                    out.hashes.setdefault(h, chash)
            turns = _assistant_turns(messages)
            if turns:
                out.assistant_texts[_digest(_SEPARATOR.join(turns))] = chash
                paras = tuple(_paragraphs([record_text(r)]))
                if paras:
                    out.paragraphs_by_first.setdefault(paras[0], []).append((chash, paras))
        return out

    def match(self, line: Mapping[str, Any]) -> str | None:
        """The test record's content hash this line carries, or None."""
        meta = line.get("metadata") if isinstance(line.get("metadata"), Mapping) else {}
        carried = [meta.get("content_hash"), *(meta.get("content_hashes") or [])]
        messages = line.get("messages")
        if isinstance(messages, list):
            carried.append(contract.content_hash(messages))
        for h in carried:
            if isinstance(h, str) and h in self.hashes:
                return self.hashes[h]
        # A conversation, or a preference pair / KTO row read as its prompt and answer.
        turns = _assistant_turns(messages) if isinstance(messages, list) else (
            _assistant_turns((line.get("prompt") or []) + (line.get("chosen") or line.get("completion") or []))
            if isinstance(line.get("prompt"), list) else [])
        if turns and (found := self.assistant_texts.get(_digest(_SEPARATOR.join(turns)))):
            return found
        if isinstance(line.get("text"), str):  # a phase-A block: paragraphs, no roles
            block = _paragraphs([line["text"]])
            for i, para in enumerate(block):
                for chash, paras in self.paragraphs_by_first.get(para, ()):
                    if tuple(block[i:i + len(paras)]) == paras:
                        return chash
        return None


def published_test_content(root: DataRoot, prefix: str | None = None) -> TestContent | None:
    """The published test split's index (cached per manifest), None when nothing is published."""
    from pixel_assets.lib.compiled import ManifestError
    from pixel_assets.lib.training.published import PUBLISHED_PREFIX, read_published_split

    prefix = prefix or PUBLISHED_PREFIX
    key = f"{prefix}/manifest.json"
    if not root.exists(key):
        return None
    cache_key = (root.uri(prefix), _digest(root.read_text(key)))
    if cache_key not in _CACHE:
        try:
            records = read_published_split(root, "test", prefix=prefix)
        except ManifestError:
            return None
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[cache_key] = TestContent.from_records(records)
    return _CACHE[cache_key]


def refuse_test_content(root: DataRoot, files: Mapping[str, Sequence[Mapping[str, Any]]], where: str,
                        test: TestContent | None = None) -> None:
    """TestSplitLeak naming the first line (file, line number, test record hash) labelled `test` or
    carrying test content. `files`: file name -> lines; `test`: the index to check against
    (default: the root's published test split)."""
    test = test if test is not None else published_test_content(root)
    for name, lines in files.items():
        for n, line in enumerate(lines, start=1):
            meta = line.get("metadata") if isinstance(line.get("metadata"), Mapping) else {}
            if meta.get("split") == "test":
                raise TestSplitLeak(f"{where} {name} line {n}: labelled test; a test-split record must never "
                                    "enter training data")
            found = test.match(line) if test is not None else None
            if found is not None:
                raise TestSplitLeak(f"{where} {name} line {n}: the content of test record {found[:23]} "
                                    "must never enter training data")


__all__ = ["TestContent", "TestSplitLeak", "published_test_content", "refuse_test_content"]
