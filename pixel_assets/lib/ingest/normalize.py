"""Extracted turns -> a normalized record (contract §3 minus split / pii_status)."""

from __future__ import annotations

from typing import Any

from pixel_assets import PIPELINE_NAME
from pixel_assets.lib import contract
from pixel_assets.lib.ingest.encoding import clean_text
from pixel_assets.lib.ingest.formats import Extracted, Reject
from pixel_assets.lib.language import foreign_language
from pixel_assets.lib.ingest.sentences import REPAIRS_KEY, repair_glued_sentences
from pixel_assets.lib.registry import Family, Source

PROCESSING_STEPS = ("ingest", "encoding_repair", "normalize")


def clean_messages(extracted: Extracted) -> list[dict[str, str]]:
    """Cleaned messages; rejects empty user/assistant turns and records lacking either side."""
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(extracted.turns, start=1):
        content = clean_text(turn.content, html=turn.html)
        if not content:
            if turn.role == "system":
                continue  # an empty system prompt carries nothing; dropping it changes no turn
            raise Reject("empty_content", f"turn {i} ({turn.role}) is empty after cleaning")
        messages.append({"role": turn.role, "content": content})
    roles = {m["role"] for m in messages}
    if extracted.record_type == "text":
        if not messages:
            raise Reject("empty_content", "text is empty after cleaning")
    elif not {"user", "assistant"} <= roles:
        missing = sorted({"user", "assistant"} - roles)
        raise Reject("no_user_or_assistant_turn", f"no {' or '.join(missing)} turn")
    return messages


def build_record(
    extracted: Extracted,
    *,
    family: Family,
    source: Source,
    source_key: str,
    location: str,
    processed_at: str,
) -> dict[str, Any]:
    messages = clean_messages(extracted)
    # Glued sentence ends ("loss.There") are repaired before PII detection reads them as links.
    repairs = 0
    for message in messages:
        message["content"], n = repair_glued_sentences(message["content"])
        repairs += n
    language = foreign_language(m["content"] for m in messages)
    if language is not None:  # policy and reasons: lib/language.py
        raise Reject("language", f"a message is in language {language!r}, not English")
    # Extra strings (category, ...) get the same repair: a lone surrogate would break UTF-8 output.
    metadata: dict[str, Any] = {
        k: clean_text(v) if isinstance(v, str) else v for k, v in extracted.extras.items()
    }
    if extracted.record_type == "preference":
        rejected = clean_text(extracted.rejected or "")
        if not rejected:
            raise Reject("empty_content", "rejected response is empty after cleaning")
        metadata["rejected_response"] = rejected
    if repairs:
        metadata[REPAIRS_KEY] = repairs
    metadata.update(
        source_family=family.name,
        source_key=source_key,
        content_hash=contract.content_hash(messages),
        license_tag=family.license_tag,
        phase=family.phase,
        original_format=source.format,
        source_location=location,
        record_type=extracted.record_type,
        conversation_length=len(messages),
        total_tokens=contract.approx_tokens(messages),
        provenance={
            "original_s3_key": source_key,
            "processing_pipeline": PIPELINE_NAME,
            "processed_at": processed_at,
            "dedup_status": "unique",
            "processing_steps": list(PROCESSING_STEPS),
        },
    )
    record = {"messages": messages, "metadata": metadata}
    errors = contract.record_errors(record, compiled=False)
    if errors:
        # Schema messages can quote values; keep only the failing paths.
        paths = sorted({e.split(":", 1)[0] for e in errors})
        raise Reject("schema_violation", f"schema errors at {', '.join(paths)}"[:200])
    return record
