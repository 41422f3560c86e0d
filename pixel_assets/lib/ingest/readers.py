"""Split one source file's bytes into read units (JSONL line, JSON array item, CSV row, file).

Every unit is either parsed (``value``) or rejected (``reason``/``detail``); the caller counts
each unit exactly once, so read = valid + quarantined holds per file by construction.
Details never quote content: positions, sizes and reasons only.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pixel_assets.lib.contract import sha256_digest

UTF8_BOM = b"\xef\xbb\xbf"
_BINARY_SNIFF_BYTES = 8192


def _raise_csv_field_limit() -> None:
    # The csv default (128 KiB) raises on big fields; we want to read them and then reject
    # them as oversize_record with a count, not crash.
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # C long is 32-bit on some platforms
            limit //= 2


_raise_csv_field_limit()


@dataclass
class Unit:
    location: str  # "line 12", "item 3", "row 4", "file"
    raw_sha256: str
    raw_size_bytes: int
    value: Any = None
    reason: str | None = None  # a contract.QUARANTINE_REASONS entry when rejected
    detail: str = ""


def make_unit(location: str, raw: bytes, value: Any = None, reason: str | None = None, detail: str = "") -> Unit:
    return Unit(location, sha256_digest(raw), len(raw), value, reason, detail)


_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _has_escaped_bytes(text: str) -> bool:
    """True when surrogateescape decoding met invalid UTF-8 (lone surrogates U+DC80..U+DCFF)."""
    return _ESCAPED_BYTE.search(text) is not None


def sniff_unreadable(data: bytes) -> str | None:
    """Why a whole file cannot be read as text (zero-byte, blank, binary), or None."""
    if not data:
        return "zero-byte file"
    if not data.strip() or data.strip() == UTF8_BOM:
        return "file holds only whitespace"
    sample = data[:_BINARY_SNIFF_BYTES]
    if b"\x00" in sample:
        # NUL bytes in a text file are rare; with invalid UTF-8 or many of them it is binary.
        # (A single stray NUL inside valid JSONL is left to the line-level checks.)
        try:
            sample.decode("utf-8")
            decodes = True
        except UnicodeDecodeError as exc:
            decodes = exc.start >= len(sample) - 3  # only a multi-byte char cut by the sample
        if not decodes or sample.count(b"\x00") > len(sample) // 100:
            return "binary file (NUL bytes, not UTF-8 text)"
    return None


# --- JSON: JSONL or a JSON array -------------------------------------------------------------

_JSON_WS = re.compile(r"[ \t\n\r]*")


def iter_json_units(data: bytes, max_record_bytes: int) -> Iterator[Unit]:
    """JSON Lines, a JSON array of objects, one (pretty-printed) JSON object, or a stream of
    concatenated pretty-printed objects."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    head = data.lstrip()[:1]
    if head == b"[":
        yield from _iter_json_array(data, max_record_bytes)
        return
    if head == b"{" and data.strip().count(b"\n") > 0:
        # A single pretty-printed object spans lines; json.loads stops at the first line's end
        # for real JSONL ("Extra data"), so this costs one line's parse.
        try:
            whole = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            whole = None
        if isinstance(whole, dict):
            if len(data) > max_record_bytes:
                yield make_unit("item 1", data, reason="oversize_record",
                            detail=f"{len(data)} bytes > limit {max_record_bytes}")
            else:
                yield make_unit("item 1", data, whole)
            return
        stream = _json_object_stream(data)
        if stream is not None:
            yield from _stream_units(stream, max_record_bytes)
            return
    yield from _iter_jsonl(data, max_record_bytes)


def _json_object_stream(data: bytes) -> list[tuple[bytes, dict]] | None:
    """Concatenated pretty-printed objects (`jq` output): each object with its bytes, or None when
    the file is not exactly that. Real JSONL (the first line is a whole value) is left to the
    line reader, which keeps line numbers and quarantines a bad line on its own."""
    try:
        text = data.decode("utf-8")
        json.loads(text.split("\n", 1)[0])
        return None  # the first line parses alone: JSON Lines
    except UnicodeDecodeError:
        return None
    except json.JSONDecodeError:
        pass
    decoder, objects = json.JSONDecoder(), []
    pos = _JSON_WS.match(text, 0).end()
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return None  # not a clean stream: the line reader accounts for every line
        if not isinstance(value, dict):
            return None
        objects.append((text[pos:end].encode("utf-8"), value))
        pos = _JSON_WS.match(text, end).end()
    return objects


def _stream_units(objects: list[tuple[bytes, dict]], max_record_bytes: int) -> Iterator[Unit]:
    for index, (raw, value) in enumerate(objects, start=1):
        if len(raw) > max_record_bytes:
            yield make_unit(f"object {index}", raw, reason="oversize_record",
                            detail=f"{len(raw)} bytes > limit {max_record_bytes}")
        else:
            yield make_unit(f"object {index}", raw, value)


def _iter_jsonl(data: bytes, max_record_bytes: int) -> Iterator[Unit]:
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.rstrip(b"\r")
        if not line.strip():
            continue  # blank lines are layout, not records
        location = f"line {number}"
        if len(line) > max_record_bytes:
            yield make_unit(location, line, reason="oversize_record",
                        detail=f"{len(line)} bytes > limit {max_record_bytes}")
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield make_unit(location, line, reason="undecodable_bytes", detail=f"invalid UTF-8 at byte {exc.start}")
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield make_unit(location, line, reason="invalid_json", detail=f"{exc.msg} at column {exc.colno}")
            continue
        yield make_unit(location, line, value)


def _iter_json_array(data: bytes, max_record_bytes: int) -> Iterator[Unit]:
    # Parse item by item so a truncated or corrupt tail costs only the tail, not the file.
    text = data.decode("utf-8", "surrogateescape")
    decoder = json.JSONDecoder()
    pos = _JSON_WS.match(text, 0).end() + 1  # past '['
    index = 0
    while True:
        pos = _JSON_WS.match(text, pos).end()
        if pos >= len(text):
            if index == 0:  # "[" alone: nothing to salvage, but the file was not empty
                yield make_unit("file", data, reason="invalid_json", detail="JSON array never closed")
            return
        if text[pos] == "]":
            rest = _JSON_WS.match(text, pos + 1).end()
            if rest < len(text):
                tail = text[rest:].encode("utf-8", "surrogateescape")
                yield make_unit(f"after item {index}", tail, reason="invalid_json",
                            detail="data after the end of the JSON array")
            return
        index += 1
        location = f"item {index}"
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            tail = text[pos:].encode("utf-8", "surrogateescape")
            yield make_unit(location, tail, reason="invalid_json",
                        detail=f"{exc.msg} at char {exc.pos - pos} of the item; rest of file unparseable")
            return
        raw_text = text[pos:end]
        raw = raw_text.encode("utf-8", "surrogateescape")
        if len(raw) > max_record_bytes:
            yield make_unit(location, raw, reason="oversize_record",
                        detail=f"{len(raw)} bytes > limit {max_record_bytes}")
        elif _has_escaped_bytes(raw_text):
            yield make_unit(location, raw, reason="undecodable_bytes", detail="invalid UTF-8 inside the item")
        else:
            yield make_unit(location, raw, value)
        pos = _JSON_WS.match(text, end).end()
        if pos < len(text) and text[pos] == ",":
            pos += 1
        elif pos < len(text) and text[pos] != "]":
            tail = text[pos:].encode("utf-8", "surrogateescape")
            yield make_unit(f"after item {index}", tail, reason="invalid_json",
                        detail="expected ',' or ']' between array items; rest of file unparseable")
            return


# --- CSV ---------------------------------------------------------------------------------------

def iter_csv_units(data: bytes, max_record_bytes: int, required_columns: list[str]) -> Iterator[Unit]:
    """Rows of a CSV with a header line; each row becomes a {column: value} dict."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    # surrogateescape keeps invalid bytes visible per row instead of failing the whole file.
    reader = csv.reader(io.StringIO(data.decode("utf-8", "surrogateescape"), newline=""))
    try:
        header = next(reader)
    except (csv.Error, StopIteration) as exc:
        yield make_unit("file", data, reason="unreadable_source", detail=f"no readable CSV header ({type(exc).__name__})")
        return
    header = [h.strip() for h in header]
    missing = [c for c in required_columns if c not in header]
    if _has_escaped_bytes("".join(header)) or missing:
        yield make_unit("file", data, reason="unreadable_source",
                    detail=f"CSV header lacks configured columns {missing}" if missing else "invalid UTF-8 in CSV header")
        return
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            number += 1
            yield make_unit(f"row {number}", b"", reason="unreadable_source",
                        detail=f"CSV parse error, rest of file unreadable: {exc}"[:200])
            return
        if not fields:
            continue  # blank line
        number += 1
        location = f"row {number}"
        raw = "\x1f".join(fields).encode("utf-8", "surrogateescape")
        if len(raw) > max_record_bytes:
            yield make_unit(location, raw, reason="oversize_record", detail=f"{len(raw)} bytes > limit {max_record_bytes}")
        elif any(_has_escaped_bytes(f) for f in fields):
            yield make_unit(location, raw, reason="undecodable_bytes", detail="invalid UTF-8 in the row")
        elif len(fields) != len(header):
            # Usually broken quoting: an unclosed quote swallows the following rows.
            yield make_unit(location, raw, reason="wrong_types",
                        detail=f"row has {len(fields)} fields, header has {len(header)} (broken quoting?)")
        else:
            yield make_unit(location, raw, dict(zip(header, fields)))


# --- plain text --------------------------------------------------------------------------------

def iter_text_units(data: bytes, max_record_bytes: int) -> Iterator[Unit]:
    """The whole file is one unit (a transcript)."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    if len(data) > max_record_bytes:
        yield make_unit("file", data, reason="oversize_record", detail=f"{len(data)} bytes > limit {max_record_bytes}")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield make_unit("file", data, reason="undecodable_bytes", detail=f"invalid UTF-8 at byte {exc.start}")
        return
    yield make_unit("file", data, text)
