"""Per-format extraction: one parsed unit (dict / CSV row / text) -> raw turns + extras.

Extraction only checks structure (types, roles, required keys); text cleaning and record
building happen in normalize.py. Problems raise ``Reject(reason, detail)`` with a content-free
detail. Options come from ``Source.option`` (registry defaults, overridable per source).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pixel_assets.lib.registry import Source

ROLE_ALIASES = {
    "user": "user", "human": "user", "client": "user", "patient": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "therapist": "assistant",
    "counselor": "assistant",
    "system": "system",
}
ROLE_KEYS = ("role", "from", "speaker", "author")
CONTENT_KEYS = ("content", "text", "value", "message", "utterance")


class Reject(Exception):
    """A unit that cannot become a record: ``reason`` is a contract.QUARANTINE_REASONS entry."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


class IngestConfigError(ValueError):
    """A source's options are unusable (a configuration error, not bad input)."""


@dataclass
class Turn:
    role: str  # canonical: system | user | assistant
    content: str  # raw, not yet cleaned
    html: bool | None = None  # True: an HTML fragment; False: never HTML; None: detect tags


@dataclass
class Extracted:
    turns: list[Turn]
    record_type: str = "conversation"  # conversation | text | preference
    extras: dict[str, Any] = field(default_factory=dict)  # extra metadata keys
    rejected: str | None = None  # preference pairs: the rejected response, raw


def canonical_role(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise Reject("wrong_types", f"{where}: role is {type(value).__name__}, not a string")
    role = ROLE_ALIASES.get(value.strip().lower())
    if role is None:
        raise Reject("unknown_role", f"{where}: unrecognised role value")
    return role


def _require_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Reject("wrong_types", f"record is {type(value).__name__}, not an object")
    return value


def _get_path(item: dict[str, Any], dotted: str) -> Any:
    """item['a']['b'] for 'a.b'; None when any step is missing."""
    value: Any = item
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _string_field(item: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = _get_path(item, key)
    if value is None:
        if required:
            raise Reject("wrong_types", f"missing key {key!r}")
        return None
    if not isinstance(value, str):
        raise Reject("wrong_types", f"key {key!r} is {type(value).__name__}, not a string")
    return value


def _first_usable_key(turn: dict[str, Any], keys: tuple[str, ...], what: str, where: str,
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


def parse_turns(turns: Any, key: str) -> list[Turn]:
    """A list of {role|from|speaker|author, content|text|value|message|utterance} turns."""
    if not isinstance(turns, list):
        raise Reject("wrong_types", f"{key!r} is {type(turns).__name__ if turns is not None else 'missing'}, not a list")
    parsed: list[Turn] = []
    for i, turn in enumerate(turns, start=1):
        where = f"turn {i}"
        if not isinstance(turn, dict):
            raise Reject("wrong_types", f"{where} is {type(turn).__name__}, not an object")
        # Any non-null role is taken, so a numeric role still surfaces as wrong_types.
        role_key = _first_usable_key(turn, ROLE_KEYS, "role", where, lambda v: v is not None)
        role = canonical_role(turn[role_key], where)
        content_key = _first_usable_key(turn, CONTENT_KEYS, "content", where, lambda v: isinstance(v, str))
        parsed.append(Turn(role, turn[content_key]))
    return parsed


def _quality_extras(item: dict[str, Any]) -> dict[str, Any]:
    # quality_score is optional in the contract; copy it when the source has one (top level or
    # under metadata). Out-of-range values surface later as schema_violation, not silently.
    for value in (item.get("quality_score"), _get_path(item, "metadata.quality_score")):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Reject("wrong_types", "quality_score is not a number")
        return {"quality_score": float(value)}
    return {}


def _messages_format(key_option: str) -> Callable[[Any, Source], Extracted]:
    def extract(item: Any, source: Source) -> Extracted:
        item = _require_dict(item)
        key = source.option(key_option)
        turns = parse_turns(item.get(key), key)
        system = item.get("system")  # ShareGPT exports often carry the system prompt beside the turns
        if isinstance(system, str) and system.strip():
            turns.insert(0, Turn("system", system))
        return Extracted(turns, extras=_quality_extras(item))

    return extract


def extract_context_response(item: Any, source: Source) -> Extracted:
    item = _require_dict(item)
    return Extracted(
        [Turn("user", _string_field(item, source.option("user_key"))),
         Turn("assistant", _string_field(item, source.option("assistant_key")))],
        extras=_quality_extras(item),
    )


def extract_cot_qa(item: Any, source: Source) -> Extracted:
    item = _require_dict(item)
    question = _string_field(item, source.option("question_key"))
    answer = _string_field(item, source.option("answer_key"))
    reasoning = _string_field(item, source.option("reasoning_key"), required=False)
    # The reasoning is what stage 2 teaches: it goes before the answer in the assistant turn.
    assistant = f"{reasoning.strip()}\n\n{answer.strip()}" if reasoning and reasoning.strip() else answer
    return Extracted([Turn("user", question), Turn("assistant", assistant)], extras=_quality_extras(item))


def extract_instruction(item: Any, source: Source) -> Extracted:
    item = _require_dict(item)
    instruction = _string_field(item, source.option("instruction_key"))
    extra_input = _string_field(item, source.option("input_key"), required=False)
    output_keys = source.option("output_keys")
    output_key = next((k for k in output_keys if _get_path(item, k) is not None), None)
    if output_key is None:
        raise Reject("wrong_types", f"none of the output keys {list(output_keys)} present")
    output = _string_field(item, output_key)
    user = f"{instruction.strip()}\n\n{extra_input.strip()}" if extra_input and extra_input.strip() else instruction
    return Extracted([Turn("user", user), Turn("assistant", output)], extras=_quality_extras(item))


def extract_qa_csv(row: Any, source: Source) -> Extracted:
    row = _require_dict(row)
    html = bool(source.option("html"))
    # Title and body of the question, each only when non-empty (many rows have no body).
    question = "\n\n".join(row[c].strip() for c in source.option("question_columns") if row[c].strip())
    return Extracted([Turn("user", question), Turn("assistant", row[source.option("answer_column")], html=html)])


def extract_marker_text(row: Any, source: Source) -> Extracted:
    row = _require_dict(row)
    text = row[source.option("text_column")]
    markers = {m.lower(): "user" for m in source.option("user_markers")}
    markers |= {m.lower(): "assistant" for m in source.option("assistant_markers")}
    # A marker counts at the start of the text or after whitespace, case-insensitive.
    pattern = re.compile(
        r"(?:^|(?<=\s))(" + "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True)) + ")",
        re.IGNORECASE,
    )
    pieces = pattern.split(text)
    turns: list[Turn] = []
    if pieces[0].strip():
        # Text before the first marker is the instruction preamble of this format.
        turns.append(Turn("system", pieces[0]))
    for marker, content in zip(pieces[1::2], pieces[2::2]):
        turns.append(Turn(markers[marker.lower()], content))
    return Extracted(turns)


def extract_edge_case(item: Any, source: Source) -> Extracted:
    item = _require_dict(item)
    prompt_role = source.option("prompt_role")
    response_role = "user" if prompt_role == "assistant" else "assistant"
    turns = [Turn(prompt_role, _string_field(item, source.option("prompt_key"))),
             Turn(response_role, _string_field(item, source.option("response_key")))]
    extras = {k: item[k] for k in ("category", "difficulty_level")
              if isinstance(item.get(k), (str, int, float)) and not isinstance(item.get(k), bool)}
    return Extracted(turns, extras=extras | _quality_extras(item))


def extract_preference(item: Any, source: Source) -> Extracted:
    item = _require_dict(item)
    return Extracted(
        [Turn("user", _string_field(item, source.option("prompt_key"))),
         Turn("assistant", _string_field(item, source.option("chosen_key")))],
        record_type="preference",
        rejected=_string_field(item, source.option("rejected_key")),
        extras=_quality_extras(item),
    )


def extract_transcript(text: Any, source: Source) -> Extracted:
    # Pretraining text: one assistant message holding the whole transcript.
    return Extracted([Turn("assistant", text)], record_type="text")


EXTRACTORS: dict[str, Callable[[Any, Source], Extracted]] = {
    "chatml": _messages_format("messages_key"),
    "client_therapist": _messages_format("conversation_key"),
    "sharegpt": _messages_format("conversations_key"),
    "context_response": extract_context_response,
    "cot_qa": extract_cot_qa,
    "instruction": extract_instruction,
    "qa_csv": extract_qa_csv,
    "marker_text_csv": extract_marker_text,
    "edge_case_prompt_response": extract_edge_case,
    "preference_pairs": extract_preference,
    "transcripts": extract_transcript,
}

CONTAINERS = {fmt: "json" for fmt in EXTRACTORS}
CONTAINERS.update({"qa_csv": "csv", "marker_text_csv": "csv", "transcripts": "text"})


def csv_required_columns(source: Source) -> list[str]:
    if source.format == "qa_csv":
        return [*source.option("question_columns"), source.option("answer_column")]
    if source.format == "marker_text_csv":
        return [source.option("text_column")]
    return []


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def validate_options(source: Source) -> None:
    """Fail fast on unusable option values (the registry checks only their names)."""
    from pixel_assets.lib.registry import FORMAT_OPTIONS

    if source.format not in EXTRACTORS:
        raise IngestConfigError(f"source {source.path!r}: no loader for format {source.format!r}")
    for key, default in FORMAT_OPTIONS[source.format].items():
        value = source.option(key)
        ok = (
            _is_str_list(value) if isinstance(default, list)
            else isinstance(value, bool) if isinstance(default, bool)
            else isinstance(value, str) and bool(value.strip())
        )
        if not ok:
            kind = "a non-empty list of strings" if isinstance(default, list) else type(default).__name__
            raise IngestConfigError(f"source {source.path!r}: option {key!r} must be {kind}")
    if source.format == "edge_case_prompt_response" and source.option("prompt_role") not in ("user", "assistant"):
        raise IngestConfigError(f"source {source.path!r}: option 'prompt_role' must be 'user' or 'assistant'")
