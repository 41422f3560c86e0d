"""How gates show what they found: counts, record ids and short hashes, never record text.

A field value is shown only when it is one of the values it may take (a split, a registry family),
anything else as a short hash ("value sha256:1a2b3c4d")."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.gates.config import HASH_PREFIX, PLAIN_PATH, GateConfig
from pixel_assets.lib.gates.report import GateResult


def gate_result(name: str, problems: dict[str, list[str]], ok_message: str, config: GateConfig,
            figures: dict[str, Any], table: list[dict[str, Any]] | None = None,
            settings: dict[str, Any] | None = None) -> GateResult:
    """Fail when any problem list is non-empty; the message names each problem kind and its count.
    Offenders are listed per kind, up to max_offenders of each."""
    failing = {k: v for k, v in problems.items() if v}
    message = ok_message if not failing else "; ".join(
        f"{k}: {len(v)} ({v[0]}{', ...' if len(v) > 1 else ''})" for k, v in failing.items())
    return GateResult(name=name, passed=not failing, message=message, figures=figures, settings=settings or {},
                      offenders_by_kind={k: v[: config.max_offenders] for k, v in failing.items()},
                      offender_counts={k: len(v) for k, v in failing.items()}, table=table or [])


def short_hash(h: Any) -> str:
    """A stored hash shortened to "sha256:" + 16 hex digits: enough to find it, short to read."""
    if h is None:
        return "<none>"
    return h[:23] if isinstance(h, str) and HASH_PREFIX.match(h) else value_label(h)


def value_label(value: Any, allowed: Iterable[str] = ()) -> str:
    """A field value fit for a report: itself when it is one of the `allowed` names, else a short
    hash of it ("value sha256:1a2b3c4d"). Any other value may be record text (even PII)."""
    if isinstance(value, str) and value in allowed:
        return value
    if value is None:
        return "<none>"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "value " + contract.sha256_digest(text.encode("utf-8"))[:15]


def number_label(value: Any) -> Any:
    """A manifest figure as stated: a number is shown, anything else as a hash."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else value_label(value)


def path_label(path: str) -> str:
    """A file path (from storage or the manifest) as shown: plain paths as they are."""
    return path if PLAIN_PATH.match(path) else value_label(path)


def text_hash(text: str) -> str:
    return contract.sha256_digest(text.encode("utf-8"))


def key_spread(keys: Iterable[tuple[str, str, str]]) -> dict[str, tuple[set[str], list[str]]]:
    """(key, split, record id) -> key -> (splits it appears in, ids)."""
    seen: dict[str, tuple[set[str], list[str]]] = defaultdict(lambda: (set(), []))
    for key, split, rid in keys:
        seen[key][0].add(split)
        seen[key][1].append(rid)
    return seen


def json_strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value (dict values, list items, nested)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from json_strings(v)


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not (value.strip() if isinstance(value, str) else value))

