"""Vectorized synthetic records frame for tests and `pixel bench compile` (no real data, no PII).

Records follow the record conventions (normalized + PII stage: pii_status "none_detected",
"pii_scrub" in processing_steps); about 1 KB each. Planted on purpose: conversations that share a
first user turn with different answers, exact duplicates (same messages, maybe another family) and
near duplicates (one word appended to the last turn).
"""

from __future__ import annotations

import hashlib

import numpy as np
import polars as pl

from pixel_assets import PIPELINE_NAME
from pixel_assets.lib.contract import RECORDS_FRAME_SCHEMA
from pixel_assets.lib.registry import Registry

_SYLLABLES = ("ka", "lo", "mi", "ne", "su", "ra", "to", "vi", "pe", "da", "fo", "gu", "hi", "jo", "be", "wy")
_SYSTEM_PROMPTS = (
    "You are a supportive, careful therapeutic assistant.",
    "You are a licensed counselor. Be warm and concrete.",
    "",
)


def _word_pool(rng: np.random.Generator, size: int = 2048) -> list[str]:
    syl = np.array(_SYLLABLES)
    lengths = rng.integers(1, 4, size=size)
    return ["".join(rng.choice(syl, size=k)) for k in lengths]


def _sentence_pool(rng: np.random.Generator, size: int = 4096) -> pl.Series:
    words = np.array(_word_pool(rng))
    out = []
    for _ in range(size):
        w = rng.choice(words, size=int(rng.integers(8, 16)))
        out.append(" ".join(w).capitalize() + ".")
    return pl.Series(out, dtype=pl.String)


def _text(sentences: pl.Series, rng: np.random.Generator, n: int, k: int) -> pl.Series:
    idx = rng.integers(0, len(sentences), size=(k, n))
    parts = [sentences.gather(idx[j]) for j in range(k)]
    return pl.DataFrame({f"p{j}": p for j, p in enumerate(parts)}).select(
        pl.concat_str([pl.col(f"p{j}") for j in range(k)], separator=" ")
    ).to_series()


def _sha256_series(values: pl.Series) -> pl.Series:
    return pl.Series(["sha256:" + hashlib.sha256(v.encode("utf-8")).hexdigest() for v in values], dtype=pl.String)


def synthetic_records_frame(
    n: int,
    registry: Registry,
    *,
    seed: int = 0,
    shared_question_rate: float = 0.05,
    exact_dup_rate: float = 0.02,
    near_dup_rate: float = 0.02,
    families: list[str] | None = None,
    processed_at: str = "2026-01-01T00:00:00+00:00",
    chunk_size: int = 100_000,
) -> pl.DataFrame:
    """A records frame (content_hash, source_family, record) of ``n`` synthetic conversations.

    Built in chunks of ``chunk_size`` rows (duplicates and shared questions within a chunk) to keep
    peak memory near the size of the result."""
    rng = np.random.default_rng(seed)
    sentences = _sentence_pool(rng)
    chunks = []
    for offset in range(0, n, chunk_size):
        chunks.append(_chunk(
            min(chunk_size, n - offset), offset, registry, rng, sentences, shared_question_rate=shared_question_rate,
            exact_dup_rate=exact_dup_rate, near_dup_rate=near_dup_rate, families=families, processed_at=processed_at,
        ))
    if not chunks:
        return pl.DataFrame(schema=RECORDS_FRAME_SCHEMA)
    return pl.concat(chunks, rechunk=True)


def _chunk(
    n: int, offset: int, registry: Registry, rng: np.random.Generator, sentences: pl.Series, *,
    shared_question_rate: float, exact_dup_rate: float, near_dup_rate: float, families: list[str] | None,
    processed_at: str,
) -> pl.DataFrame:
    fams = [registry[f] for f in families] if families else [f for f in registry.families if f.enabled]
    fam_idx = rng.integers(0, len(fams), size=n)
    fam_table = pl.DataFrame({
        "fam_idx": np.arange(len(fams)),
        "source_family": [f.name for f in fams],
        "license_tag": [f.license_tag for f in fams],
        "phase": [f.phase for f in fams],
        "original_format": [f.sources[0].format for f in fams],
    })
    df = pl.DataFrame({"row": np.arange(n), "fam_idx": fam_idx}).join(fam_table, on="fam_idx", maintain_order="left")
    common_questions = _text(sentences, rng, max(1, n // 200), 2)
    user1 = _text(sentences, rng, n, 2)
    shared = rng.random(n) < shared_question_rate
    user1 = pl.select(
        pl.when(pl.lit(pl.Series(shared))).then(
            pl.lit(common_questions.gather(rng.integers(0, len(common_questions), size=n)))
        ).otherwise(pl.lit(user1))
    ).to_series()
    df = df.with_columns(
        system=pl.Series(np.array(_SYSTEM_PROMPTS, dtype=object)[rng.integers(0, len(_SYSTEM_PROMPTS), size=n)], dtype=pl.String),
        user1=user1,
        assistant1=_text(sentences, rng, n, 3),
        user2=_text(sentences, rng, n, 1),
        assistant2=_text(sentences, rng, n, 2),
    )
    # Duplicates copy an earlier row's conversation (family kept, so some are cross-family).
    u = rng.random(n)
    src = (rng.random(n) * np.maximum(df.get_column("row").to_numpy(), 1)).astype(np.int64)
    exact = (u < exact_dup_rate) & (np.arange(n) > 0)
    near = (u >= exact_dup_rate) & (u < exact_dup_rate + near_dup_rate) & (np.arange(n) > 0)
    src = np.where(exact | near, src, np.arange(n))
    cols = ["system", "user1", "assistant1", "user2", "assistant2"]
    copied = df.select(cols)[src]
    df = df.with_columns(copied).with_columns(
        assistant2=pl.when(pl.lit(pl.Series(near))).then(pl.col("assistant2") + " Okay.").otherwise(pl.col("assistant2"))
    )
    is_text = pl.col("original_format") == "transcripts"
    msg = lambda role, col: pl.struct(role=pl.lit(role), content=pl.col(col))  # noqa: E731
    df = df.with_columns(
        messages=pl.when(is_text).then(
            pl.concat_list([pl.struct(role=pl.lit("assistant"), content=pl.concat_str(cols[1:], separator=" "))])
        ).when(pl.col("system") == "").then(
            pl.concat_list([msg("user", "user1"), msg("assistant", "assistant1"), msg("user", "user2"), msg("assistant", "assistant2")])
        ).otherwise(
            pl.concat_list([msg("system", "system"), msg("user", "user1"), msg("assistant", "assistant1"),
                            msg("user", "user2"), msg("assistant", "assistant2")])
        )
    )
    contents = pl.col("messages").list.eval(pl.element().struct.field("content"))
    hash_input = df.select(
        contents.list.eval(pl.element().str.strip_chars().str.to_lowercase()).list.sort().list.join(" ")
    ).to_series()
    df = df.with_columns(
        content_hash=_sha256_series(hash_input),
        total_tokens=(contents.list.eval(pl.element().str.len_chars()).list.sum() + 3) // 4,
        conversation_length=pl.col("messages").list.len(),
        source_key=pl.lit("file:///synthetic/") + pl.col("source_family") + pl.lit(".jsonl"),
        quality_score=pl.Series(np.round(rng.random(n), 3)),
        rejected=pl.when(pl.col("original_format") == "preference_pairs").then(pl.col("assistant1").str.reverse()),
    )
    metadata = pl.struct(
        source_family="source_family", source_key="source_key", content_hash="content_hash",
        license_tag="license_tag", phase="phase", original_format="original_format",
        source_location=pl.lit("line ") + (pl.col("row") + 1 + offset).cast(pl.String),
        record_type=pl.when(is_text).then(pl.lit("text")).when(pl.col("original_format") == "preference_pairs")
        .then(pl.lit("preference")).otherwise(pl.lit("conversation")),
        conversation_length="conversation_length", total_tokens=pl.col("total_tokens").cast(pl.Int64),
        quality_score="quality_score", pii_status=pl.lit("none_detected"), rejected_response="rejected",
        provenance=pl.struct(
            original_s3_key="source_key", processing_pipeline=pl.lit(PIPELINE_NAME),
            processed_at=pl.lit(processed_at), dedup_status=pl.lit("unique"),
            processing_steps=pl.lit(["ingest", "encoding_repair", "normalize", "pii_scrub"]),
        ),
    )
    record = pl.struct(messages="messages", metadata=metadata).struct.json_encode()
    # rejected_response only where it exists (a key present in some records only, like real data).
    record = record.str.replace(',"rejected_response":null', "", literal=True)
    return df.select("content_hash", "source_family", record.alias("record")).cast(RECORDS_FRAME_SCHEMA)


def exact_dedup(frame: pl.DataFrame) -> pl.DataFrame:
    """Exact dedup only (keep the first of each content hash), marking kept records' provenance;
    the bench uses it when pixel_assets.lib.dedup.dedup_records is not available."""
    kept = frame.unique(subset="content_hash", keep="first", maintain_order=True)
    return kept.with_columns(
        cluster_id=pl.col("content_hash"),
        record=pl.col("record").str.replace(r'("processing_steps":\["[^\]]*)\]', '${1},"dedup"]'),
    )
