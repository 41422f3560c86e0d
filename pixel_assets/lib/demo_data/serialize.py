"""Writing: source file bytes per format, the counsel-chat copy, and the content hash a loader
will compute."""

from __future__ import annotations

import csv
import io
import json

from pixel_assets.lib import contract
from pixel_assets.lib.storage import DataRoot

from .compose import Bad, Conv, FileSpec
from .defects import raw_object
from .plan import COUNSEL_CHAT_DIR, COUNSEL_CHAT_SOURCE, ROLE_ASSISTANT, ROLE_USER, DemoPlan, FamilyPlan


def serialize_file(spec: FileSpec) -> tuple[bytes, list[str]]:
    """File bytes and the loader-facing location of each item."""
    fmt = spec.format
    if fmt == "transcripts":
        (item,) = spec.items
        data = item.payload if isinstance(item, Bad) else item.messages[0]["content"].encode("utf-8")
        return data, ["file"]
    if fmt == "marker_text_csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["text", "source"], lineterminator="\n")
        writer.writeheader()
        for item in spec.items:
            if isinstance(item, Bad):
                writer.writerow({"source": "therapist-sft-format", **item.payload})
            else:
                turns = [f"{'human' if m['role'] == ROLE_USER else 'gpt'}: {m['content']}" for m in item.messages]
                writer.writerow({"text": "\n".join(turns), "source": "therapist-sft-format"})
        return buf.getvalue().encode("utf-8"), [f"row {i + 1}" for i in range(len(spec.items))]
    if spec.key.endswith(".jsonl"):
        lines = [
            item.payload if isinstance(item, Bad) else json.dumps(raw_object(spec, item), ensure_ascii=False).encode("utf-8")
            for item in spec.items
        ]
        return b"\n".join(lines) + b"\n", [f"line {i + 1}" for i in range(len(lines))]
    objects = [item.payload if isinstance(item, Bad) else raw_object(spec, item) for item in spec.items]
    return json.dumps(objects, ensure_ascii=False, indent=1).encode("utf-8"), [f"item {i + 1}" for i in range(len(objects))]


def repaired_hash(messages: list[dict[str, str]]) -> str:
    """Content hash of the messages as the loader produces them (its text repair, then the
    contract hash)."""
    from pixel_assets.lib.ingest import clean_text

    return contract.content_hash([{"content": clean_text(m["content"])} for m in messages])


def finalize_messages(spec: FileSpec, c: Conv) -> list[dict[str, str]]:
    """The messages the loader builds from an item: cot reasoning goes before the answer,
    instruction and a non-empty input form the user turn (both joined by a blank line)."""
    if spec.format == "cot_qa":
        assistant = f"{c.extra['reasoning'].strip()}\n\n{c.extra['answer'].strip()}"
        return [c.messages[0], {"role": ROLE_ASSISTANT, "content": assistant}]
    if spec.format == "instruction" and c.extra.get("input"):
        user = f"{c.extra['instruction'].strip()}\n\n{c.extra['input'].strip()}"
        return [{"role": ROLE_USER, "content": user}, c.messages[1]]
    return c.messages


def write_counsel_chat(root: DataRoot, plan: DemoPlan) -> None:
    data_dir = COUNSEL_CHAT_SOURCE
    csv_bytes = data_dir.joinpath("counselchat-data.csv").read_bytes()
    key = f"{COUNSEL_CHAT_DIR}/counselchat-data.csv"
    root.write_bytes(key, csv_bytes)
    root.write_bytes(f"{COUNSEL_CHAT_DIR}/LICENSE", data_dir.joinpath("LICENSE").read_bytes())
    from pixel_assets.lib.ingest import clean_text

    csv.field_size_limit(1 << 30)
    fam = plan.families.setdefault("professional_therapeutic", FamilyPlan())
    fam.files.append(key)
    from pixel_assets.lib.ingest.sentences import repair_glued_sentences
    from pixel_assets.lib.language import foreign_language

    # Real data: a few rows have no question or an answer that is only markup (quarantined as
    # empty_content), and 28 answers are in Spanish (quarantined as language); the plan says so.
    for row in csv.DictReader(io.StringIO(csv_bytes.decode("utf-8"))):
        fam.records_written += 1
        parts = ((row[c] or "").strip() for c in ("questionTitle", "questionText"))
        question = "\n\n".join(p for p in parts if p)
        turns = [clean_text(question), clean_text(row["answerText"] or "", html=True)]
        reason = None
        if not all(turns):
            reason = "empty_content"
        elif foreign_language(repair_glued_sentences(t)[0] for t in turns):
            reason = "language"
        if reason:
            fam.malformed[reason] = fam.malformed.get(reason, 0) + 1
        else:
            fam.valid += 1
