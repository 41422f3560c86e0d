"""Turn-list formats (chatml, sharegpt, client_therapist): where the turns are, which keys hold role
and text, role names, repeated speakers, and record fields carried as a system turn or metadata.

Every choice is a per-source option (registry.DIALOG_OPTIONS); ``validate_dialog_options`` turns an
unusable value into an IngestConfigError naming the source before any file is read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pixel_assets.lib import contract
from pixel_assets.lib.ingest.extracted import (
    Extracted,
    IngestConfigError,
    Reject,
    Turn,
    get_path,
    quality_extras,
    require_dict,
)
from pixel_assets.lib.sources import Source

ROLE_ALIASES = {
    "user": "user", "human": "user", "client": "user", "patient": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "therapist": "assistant",
    "counselor": "assistant",
    "system": "system",
}
DIALOG_FORMATS = ("chatml", "client_therapist", "sharegpt")
CANONICAL_ROLES = ("user", "assistant", "system")
CONSECUTIVE_TURNS = ("keep", "merge", "quarantine")
# Options that take one key or a list of keys tried in order.
ONE_OR_MORE_KEYS = ("role_key", "content_key")
# Metadata the pipeline writes itself: a copied source field may not take one of these names.
RESERVED_METADATA = frozenset(contract.RECORD_SCHEMA["properties"]["metadata"]["properties"]) | {
    "original_format", "source_location", "record_type", "rejected_response", "merged_turns",
    "holdout", "pii_review", "language", "category", "difficulty_level", "creator", "video",
}


def key_list(source: Source, option: str) -> list[str]:
    value = source.option(option)
    return [value] if isinstance(value, str) else list(value)


def field_name(dotted: str) -> str:
    """The name a carried field gets: the last part of its dotted key (`meta.situation` -> situation)."""
    return dotted.rsplit(".", 1)[-1]


def role_lookup(source: Source) -> dict[str, str]:
    """Source role name (lower case) -> canonical role: the source's role_map over the aliases."""
    mapped = {str(k).strip().lower(): v for k, v in source.option("role_map").items()}
    return ROLE_ALIASES | mapped


def canonical_role(value: Any, where: str, roles: dict[str, str] = ROLE_ALIASES) -> str:
    # Speaker ids are often numbers (0/1): usable when the role_map names them, else wrong_types.
    numeric = isinstance(value, int) and not isinstance(value, bool) and str(value) in roles
    if not isinstance(value, str) and not numeric:
        raise Reject("wrong_types", f"{where}: role is {type(value).__name__}, not a string")
    role = roles.get(str(value).strip().lower())
    if role is None:
        raise Reject("unknown_role", f"{where}: unrecognised role value")
    return role


def _first_usable_key(turn: dict[str, Any], keys: list[str], what: str, where: str,
                      usable: Callable[[Any], bool]) -> str:
    """The first alias key whose value is usable: exports often carry a second alias set to null."""
    present = [k for k in keys if k in turn]
    if not present:
        raise Reject("wrong_types", f"{where} has none of the {what} keys {list(keys)}")
    for key in present:
        if usable(turn[key]):
            return key
    found = ", ".join(f"{k}={type(turn[k]).__name__}" for k in present)
    raise Reject("wrong_types", f"{where}: no usable {what} under the {what} keys {present} ({found})")


def parse_turns(turns: Any, key: str, *, role_keys: list[str], content_keys: list[str],
                roles: dict[str, str] = ROLE_ALIASES) -> list[Turn]:
    """A list of {role key: role, content key: text} turns."""
    if not isinstance(turns, list):
        raise Reject("wrong_types", f"{key!r} is {type(turns).__name__ if turns is not None else 'missing'}, not a list")
    parsed: list[Turn] = []
    for i, turn in enumerate(turns, start=1):
        where = f"turn {i}"
        if not isinstance(turn, dict):
            raise Reject("wrong_types", f"{where} is {type(turn).__name__}, not an object")
        # Any non-null role is taken, so a numeric role still surfaces as wrong_types.
        role_key = _first_usable_key(turn, role_keys, "role", where, lambda v: v is not None)
        role = canonical_role(turn[role_key], where, roles)
        content_key = _first_usable_key(turn, content_keys, "content", where, lambda v: isinstance(v, str))
        parsed.append(Turn(role, turn[content_key]))
    return parsed


def fold_consecutive(turns: list[Turn], policy: str) -> tuple[list[Turn], int]:
    """Apply the consecutive_turns policy to user/assistant turns; returns (turns, turns merged).

    merge: a turn by the same speaker as the one before is appended to it after a blank line.
    quarantine: such a record is rejected. keep: nothing changes. System turns are left alone.
    """
    if policy == "keep":
        return turns, 0
    folded: list[Turn] = []
    merged = 0
    for i, turn in enumerate(turns, start=1):
        previous = folded[-1] if folded else None
        if previous is not None and turn.role == previous.role and turn.role != "system":
            if policy == "quarantine":
                raise Reject("consecutive_turns", f"turn {i} has the same role ({turn.role}) as turn {i - 1}")
            folded[-1] = Turn(turn.role, f"{previous.content}\n\n{turn.content}", previous.html)
            merged += 1
        else:
            folded.append(turn)
    return folded, merged


def _scalar(item: dict[str, Any], dotted: str) -> str | int | float | bool | None:
    value = item[dotted] if dotted in item else get_path(item, dotted)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    # Lists and objects would leave the scanned metadata strings (PII) or need a rendering.
    raise Reject("wrong_types", f"field {dotted!r} is {type(value).__name__}, not a string or number")


def carried_fields(item: dict[str, Any], source: Source) -> tuple[Turn | None, dict[str, Any]]:
    """(system turn built from system_fields or None, metadata from metadata_fields)."""
    lines = []
    for dotted in source.option("system_fields"):
        value = _scalar(item, dotted)
        if value is not None and str(value).strip():
            lines.append(f"{field_name(dotted)}: {value}")
    metadata = {}
    for dotted in source.option("metadata_fields"):
        value = _scalar(item, dotted)
        if value is not None:
            metadata[field_name(dotted)] = value
    return (Turn("system", "\n".join(lines)) if lines else None), metadata


def messages_format(key_option: str) -> Callable[[Any, Source], Extracted]:
    def extract(item: Any, source: Source) -> Extracted:
        item = require_dict(item)
        key = source.option(key_option)
        turns = parse_turns(
            item[key] if key in item else get_path(item, key), key,
            role_keys=key_list(source, "role_key"), content_keys=key_list(source, "content_key"),
            roles=role_lookup(source),
        )
        turns, merged = fold_consecutive(turns, source.option("consecutive_turns"))
        system = item.get("system")  # ShareGPT exports often carry the system prompt beside the turns
        if isinstance(system, str) and system.strip():
            turns.insert(0, Turn("system", system))
        carried, metadata = carried_fields(item, source)
        if carried is not None:  # after the record's own system prompt, before the dialog
            turns.insert(next((i for i, t in enumerate(turns) if t.role != "system"), len(turns)), carried)
        extras = quality_extras(item) | metadata
        if merged:
            extras["merged_turns"] = merged
        return Extracted(turns, extras=extras)

    return extract


def validate_dialog_options(source: Source) -> None:
    """Unusable dialog option values -> IngestConfigError naming the source."""
    where = f"source {source.path!r}"
    for option in ONE_OR_MORE_KEYS:
        value = source.option(option)
        keys = [value] if isinstance(value, str) else value
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k for k in keys):
            raise IngestConfigError(f"{where}: option {option!r} must be a key or a non-empty list of keys")
    role_map = source.option("role_map")
    if not isinstance(role_map, dict) or not all(
        isinstance(k, (str, int)) and not isinstance(k, bool) and v in CANONICAL_ROLES for k, v in role_map.items()
    ):
        raise IngestConfigError(f"{where}: option 'role_map' must map role names to one of {', '.join(CANONICAL_ROLES)}")
    if source.option("consecutive_turns") not in CONSECUTIVE_TURNS:
        raise IngestConfigError(f"{where}: option 'consecutive_turns' must be one of {', '.join(CONSECUTIVE_TURNS)}")
    for option in ("system_fields", "metadata_fields"):
        value = source.option(option)
        if not isinstance(value, list) or not all(isinstance(k, str) and k.strip() for k in value):
            raise IngestConfigError(f"{where}: option {option!r} must be a list of keys")
    names = [field_name(k) for k in source.option("metadata_fields")]
    clash = sorted({n for n in names if n in RESERVED_METADATA or names.count(n) > 1})
    if clash:
        raise IngestConfigError(f"{where}: metadata_fields {clash} clash with a pipeline metadata key or each other")
