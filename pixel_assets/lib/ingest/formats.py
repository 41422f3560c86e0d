"""Per-format extraction: one parsed unit (dict / CSV row / text) -> raw turns + extras.

Extraction only checks structure (types, roles, required keys); text cleaning and record
building happen in normalize.py. Problems raise ``Reject(reason, detail)`` with a content-free
detail. Options come from ``Source.option`` (registry defaults, overridable per source).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pixel_assets.lib.ingest.dialog import DIALOG_FORMATS, messages_format, validate_dialog_options
from pixel_assets.lib.ingest.extracted import (  # noqa: F401 (Reject, Turn, Extracted: re-exported)
    Extracted,
    IngestConfigError,
    Reject,
    Turn,
    get_path,
    quality_extras,
    require_dict,
)
from pixel_assets.lib.sources import Source


def _string_field(item: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = get_path(item, key)
    if value is None:
        if required:
            raise Reject("wrong_types", f"missing key {key!r}")
        return None
    if not isinstance(value, str):
        raise Reject("wrong_types", f"key {key!r} is {type(value).__name__}, not a string")
    return value


def extract_context_response(item: Any, source: Source) -> Extracted:
    item = require_dict(item)
    return Extracted(
        [Turn("user", _string_field(item, source.option("user_key"))),
         Turn("assistant", _string_field(item, source.option("assistant_key")))],
        extras=quality_extras(item),
    )


def extract_cot_qa(item: Any, source: Source) -> Extracted:
    item = require_dict(item)
    question = _string_field(item, source.option("question_key"))
    answer = _string_field(item, source.option("answer_key"))
    reasoning = _string_field(item, source.option("reasoning_key"), required=False)
    # The reasoning is what stage 2 teaches: it goes before the answer in the assistant turn.
    assistant = f"{reasoning.strip()}\n\n{answer.strip()}" if reasoning and reasoning.strip() else answer
    return Extracted([Turn("user", question), Turn("assistant", assistant)], extras=quality_extras(item))


def extract_instruction(item: Any, source: Source) -> Extracted:
    item = require_dict(item)
    instruction = _string_field(item, source.option("instruction_key"))
    extra_input = _string_field(item, source.option("input_key"), required=False)
    output_keys = source.option("output_keys")
    output_key = next((k for k in output_keys if get_path(item, k) is not None), None)
    if output_key is None:
        raise Reject("wrong_types", f"none of the output keys {list(output_keys)} present")
    output = _string_field(item, output_key)
    user = f"{instruction.strip()}\n\n{extra_input.strip()}" if extra_input and extra_input.strip() else instruction
    return Extracted([Turn("user", user), Turn("assistant", output)], extras=quality_extras(item))


def extract_qa_csv(row: Any, source: Source) -> Extracted:
    row = require_dict(row)
    html = bool(source.option("html"))
    # Title and body of the question, each only when non-empty (many rows have no body).
    question = "\n\n".join(row[c].strip() for c in source.option("question_columns") if row[c].strip())
    return Extracted([Turn("user", question), Turn("assistant", row[source.option("answer_column")], html=html)])


def extract_marker_text(row: Any, source: Source) -> Extracted:
    row = require_dict(row)
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
    item = require_dict(item)
    prompt_role = source.option("prompt_role")
    response_role = "user" if prompt_role == "assistant" else "assistant"
    turns = [Turn(prompt_role, _string_field(item, source.option("prompt_key"))),
             Turn(response_role, _string_field(item, source.option("response_key")))]
    extras = {k: item[k] for k in ("category", "difficulty_level")
              if isinstance(item.get(k), (str, int, float)) and not isinstance(item.get(k), bool)}
    return Extracted(turns, extras=extras | quality_extras(item))


def extract_preference(item: Any, source: Source) -> Extracted:
    item = require_dict(item)
    return Extracted(
        [Turn("user", _string_field(item, source.option("prompt_key"))),
         Turn("assistant", _string_field(item, source.option("chosen_key")))],
        record_type="preference",
        rejected=_string_field(item, source.option("rejected_key")),
        extras=quality_extras(item),
    )


def extract_transcript(text: Any, source: Source) -> Extracted:
    # Pretraining text: one assistant message holding the whole transcript.
    return Extracted([Turn("assistant", text)], record_type="text")


def extract_dataset_row(row: Any, source: Source) -> Extracted:
    # An hf_dataset row has the shape of the source's row_format.
    return EXTRACTORS[source.row_format](row, source)


EXTRACTORS: dict[str, Callable[[Any, Source], Extracted]] = {
    "chatml": messages_format("messages_key"),
    "client_therapist": messages_format("conversation_key"),
    "sharegpt": messages_format("conversations_key"),
    "context_response": extract_context_response,
    "cot_qa": extract_cot_qa,
    "instruction": extract_instruction,
    "qa_csv": extract_qa_csv,
    "marker_text_csv": extract_marker_text,
    "edge_case_prompt_response": extract_edge_case,
    "preference_pairs": extract_preference,
    "transcripts": extract_transcript,
    "hf_dataset": extract_dataset_row,
}

# How a format's files are read when the file name does not say (.parquet always reads as Parquet).
CONTAINERS = {fmt: "json" for fmt in EXTRACTORS}
CONTAINERS.update({"qa_csv": "csv", "marker_text_csv": "csv", "transcripts": "text", "hf_dataset": "hf_dataset"})


def csv_required_columns(source: Source) -> list[str]:
    """The columns a CSV-shaped source needs (also checked against a Parquet file's schema)."""
    if source.row_format == "qa_csv":
        return [*source.option("question_columns"), source.option("answer_column")]
    if source.row_format == "marker_text_csv":
        return [source.option("text_column")]
    return []


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def validate_options(source: Source) -> None:
    """Fail fast on unusable option values (the registry checks only their names)."""
    from pixel_assets.lib.sources import DIALOG_OPTIONS, ROW_FORMATS_OF_HF_DATASET

    row_formats = ROW_FORMATS_OF_HF_DATASET if source.format == "hf_dataset" else EXTRACTORS
    if source.format not in EXTRACTORS or source.row_format not in row_formats:
        raise IngestConfigError(f"source {source.path!r}: no loader for format {source.row_format!r}")
    for key, default in source.accepted_options().items():
        if key in DIALOG_OPTIONS and source.row_format in DIALOG_FORMATS:
            continue  # validate_dialog_options below
        value = source.option(key)
        ok = (
            _is_str_list(value) if isinstance(default, list)
            else isinstance(value, bool) if isinstance(default, bool)
            else isinstance(value, str) and bool(value.strip())
        )
        if not ok:
            kind = "a non-empty list of strings" if isinstance(default, list) else type(default).__name__
            raise IngestConfigError(f"source {source.path!r}: option {key!r} must be {kind}")
    if source.row_format in DIALOG_FORMATS:
        validate_dialog_options(source)
    if source.row_format == "edge_case_prompt_response" and source.option("prompt_role") not in ("user", "assistant"):
        raise IngestConfigError(f"source {source.path!r}: option 'prompt_role' must be 'user' or 'assistant'")
