"""dedup_records: exact + near-duplicate removal on a records frame, strategies and accounting."""

from __future__ import annotations

import json
import random

import polars as pl
import pytest

from pixel_assets.lib.contract import approx_tokens, content_hash, records_to_frame
from pixel_assets.lib.dedup import dedup_records, mark_dedup_status

FAMILIES = ["cptsd", "addiction", "sarcasm"]


def _words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randrange(40_000)}" for _ in range(n))


def make_record(
    user: str,
    assistant: str,
    family: str = "cptsd",
    *,
    source_key: str = "file:///src/a.jsonl",
    location: str = "line 1",
    quality: float | None = None,
    system: str | None = None,
) -> dict:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user},
        {"role": "assistant", "content": assistant},
    ]
    metadata = {
        "source_family": family,
        "source_key": source_key,
        "content_hash": content_hash(messages),
        "license_tag": "internal",
        "phase": "stage6_specialized",
        "source_location": location,
        "conversation_length": len(messages),
        "total_tokens": approx_tokens(messages),
        "provenance": {
            "original_s3_key": source_key,
            "processing_pipeline": "pixel_assets",
            "processed_at": "2026-11-22T00:00:00+00:00",
            "dedup_status": "unique",
            "processing_steps": ["ingest", "encoding_repair", "normalize", "pii_scrub"],
        },
    }
    if quality is not None:
        metadata["quality_score"] = quality
    return {"messages": messages, "metadata": metadata}


def _meta(frame: pl.DataFrame, row: int) -> dict:
    return json.loads(frame["record"][row])["metadata"]


def _origins(frame: pl.DataFrame) -> list[tuple[str, str]]:
    return sorted(
        (m["source_key"], m["source_location"])
        for m in (json.loads(r)["metadata"] for r in frame["record"])
    )


def _check_accounting(frame: pl.DataFrame, result) -> None:
    # Every input record is either kept or removed, exactly once.
    assert sorted(
        _origins(result.kept) + _origins(result.removed)
    ) == _origins(frame)
    stats = result.stats
    assert stats["input"] == frame.height
    assert stats["kept"] + sum(stats["removed"].values()) == frame.height
    for fam, figures in stats["per_family"].items():
        assert figures["input"] == figures["kept"] + figures["duplicate_removed"] + figures["near_duplicate_removed"]


def test_exact_duplicates_across_families_found_and_attributed():
    rng = random.Random(1)
    text_u, text_a = _words(rng, 30), _words(rng, 120)
    records = [
        make_record(text_u, text_a, "addiction", source_key="file:///b.jsonl", location="line 3"),
        # Same content after strip/lower: same content hash.
        make_record(text_u.upper() + "  ", text_a, "cptsd", source_key="file:///a.jsonl", location="line 9"),
        make_record(_words(rng, 30), _words(rng, 120), "sarcasm"),
    ]
    frame = records_to_frame(records)
    result = dedup_records(frame, family_order=FAMILIES)
    _check_accounting(frame, result)
    assert result.kept.height == 2
    (removed,) = result.removed.iter_rows(named=True)
    # keep_first: family order puts cptsd before addiction.
    assert removed["source_family"] == "addiction"
    assert removed["reason"] == "duplicate_removed"
    assert removed["duplicate_of"] == records[1]["metadata"]["content_hash"]
    assert removed["duplicate_of_family"] == "cptsd"
    assert result.stats["removed_cross_family"] == 1
    assert result.stats["per_family"]["addiction"]["duplicate_removed"] == 1


def _three_copies(rng):
    user, assistant = _words(rng, 20), _words(rng, 150)
    return [
        make_record(user, assistant, "sarcasm", source_key="file:///s.jsonl", location="line 10", quality=0.9),
        make_record(user, assistant, "cptsd", source_key="file:///c.jsonl", location="line 2", quality=None),
        make_record(user, assistant, "cptsd", source_key="file:///c.jsonl", location="line 10", quality=0.5),
    ]


@pytest.mark.parametrize(
    "strategy, kept_location",
    [("keep_first", ("cptsd", "line 2")), ("keep_best_quality", ("sarcasm", "line 10"))],
)
def test_strategy_keeps_the_right_exact_duplicate(strategy, kept_location):
    rng = random.Random(2)
    records = _three_copies(rng)
    frame = records_to_frame(records)
    for shuffled in (frame, frame.reverse()):  # the choice must not depend on row order
        result = dedup_records(shuffled, strategy=strategy, family_order=FAMILIES)
        _check_accounting(shuffled, result)
        assert result.kept.height == 1
        meta = _meta(result.kept, 0)
        assert (meta["source_family"], meta["source_location"]) == kept_location


@pytest.mark.parametrize("strategy", ["keep_first", "keep_longest", "keep_best_quality"])
def test_test_only_copy_is_kept_whatever_the_strategy(strategy):
    """A crisis conversation duplicated in a training family: removing the crisis copy would let
    the split stage put the other copy in train, so the test-only copy must be the one kept."""
    rng = random.Random(8)
    user, assistant = _words(rng, 20), _words(rng, 150)
    records = [
        make_record(user, assistant + " more words here", "edge_case_resulting_chats", quality=0.99),
        make_record(user, assistant, "edge_case_crisis", source_key="file:///z.jsonl", quality=0.1),  # near dup
        make_record(user, assistant + " more words here", "edge_case_crisis", source_key="file:///z.jsonl",
                    location="line 2", quality=0.1),  # exact dup of the first
    ]
    frame = records_to_frame(records)
    order = ["edge_case_resulting_chats", "edge_case_crisis"]  # as in the registry
    result = dedup_records(frame, strategy=strategy, family_order=order)
    _check_accounting(frame, result)
    assert [_meta(result.kept, 0)["source_family"]] == ["edge_case_crisis"]
    assert result.removed.get_column("duplicate_of_family").to_list() == ["edge_case_crisis"] * 2
    # Without the protection the strategy alone decides (the training family's copy wins here).
    unprotected = dedup_records(frame, strategy=strategy, family_order=order, protected_families=[])
    assert _meta(unprotected.kept, 0)["source_family"] == "edge_case_resulting_chats"


def test_keep_first_orders_locations_numerically():
    rng = random.Random(3)
    user, assistant = _words(rng, 20), _words(rng, 150)
    records = [
        make_record(user, assistant, location=f"line {n}") for n in (10, 9, 100)
    ]
    result = dedup_records(records_to_frame(records), family_order=FAMILIES)
    assert _meta(result.kept, 0)["source_location"] == "line 9"


def test_keep_best_quality_missing_score_is_lowest_and_ties_are_deterministic():
    rng = random.Random(4)
    user, assistant = _words(rng, 20), _words(rng, 150)
    records = [
        make_record(user, assistant, "sarcasm", location="line 1"),
        make_record(user, assistant, "addiction", location="line 5", quality=0.1),
        make_record(user, assistant, "cptsd", location="line 7", quality=0.1),
    ]
    frame = records_to_frame(records)
    result = dedup_records(frame, strategy="keep_best_quality", family_order=FAMILIES)
    assert _meta(result.kept, 0)["source_family"] == "cptsd"  # tie on 0.1 -> family order


def test_keep_longest_keeps_the_longest_near_duplicate():
    rng = random.Random(5)
    user = _words(rng, 20)
    words = _words(rng, 200).split()
    short = " ".join(words[:-3])  # 3 words shorter: a near duplicate
    records = [
        make_record(user, short, "cptsd", location="line 1"),
        make_record(user, " ".join(words), "sarcasm", location="line 1"),
    ]
    frame = records_to_frame(records)
    result = dedup_records(frame, strategy="keep_longest", family_order=FAMILIES)
    assert result.kept.height == 1
    assert _meta(result.kept, 0)["source_family"] == "sarcasm"
    (removed,) = result.removed.iter_rows(named=True)
    assert removed["reason"] == "near_duplicate_removed"
    assert removed["duplicate_of"] == records[1]["metadata"]["content_hash"]
    first = dedup_records(frame, strategy="keep_first", family_order=FAMILIES)
    assert _meta(first.kept, 0)["source_family"] == "cptsd"


def test_near_duplicates_removed_unrelated_kept_and_statuses_set():
    rng = random.Random(6)
    records, planted = [], 0
    for i in range(60):
        user, words = _words(rng, 15), _words(rng, 160).split()
        records.append(make_record(user, " ".join(words), FAMILIES[i % 3], location=f"line {i}"))
        if i % 10 == 0:
            for p in (30, 90):
                words[p] = "changed"
            records.append(make_record(user, " ".join(words), FAMILIES[(i + 1) % 3], location=f"line {i + 1000}"))
            planted += 1
    frame = records_to_frame(records)
    result = dedup_records(frame, family_order=FAMILIES)
    _check_accounting(frame, result)
    assert result.removed.height == planted
    assert set(result.removed["reason"]) == {"near_duplicate_removed"}
    assert result.kept.height == 60
    for raw in result.kept["record"]:
        prov = json.loads(raw)["metadata"]["provenance"]
        assert prov["dedup_status"] == "unique"
        assert prov["processing_steps"][-1] == "dedup"
        assert prov["processing_steps"].count("dedup") == 1
    for raw in result.removed["record"]:
        prov = json.loads(raw)["metadata"]["provenance"]
        assert prov["dedup_status"] == "near_duplicate_removed"
        assert prov["processing_steps"][-2:] == ["pii_scrub", "dedup"]
    # cluster_id: the smallest content hash of each kept record's cluster.
    by_hash = {r["metadata"]["content_hash"]: r for r in records}
    for row in result.kept.iter_rows(named=True):
        members = [row["content_hash"]] + result.removed.filter(
            pl.col("duplicate_of") == row["content_hash"]
        )["content_hash"].to_list()
        assert row["cluster_id"] == min(members)
        assert set(members) <= set(by_hash)
    near = result.stats["near_duplicates"]
    assert near["recall_at_threshold"] >= 0.95
    assert near["bands"] * near["rows"] <= near["num_perm"]


def test_shared_system_prompt_does_not_merge_records():
    rng = random.Random(7)
    system = _words(rng, 500)
    records = [make_record(_words(rng, 10), _words(rng, 20), system=system, location=f"line {i}") for i in range(30)]
    result = dedup_records(records_to_frame(records), family_order=FAMILIES)
    assert result.removed.height == 0
    assert result.kept["cluster_id"].n_unique() == 30


def test_transitive_near_duplicates_become_one_cluster():
    rng = random.Random(8)
    user, words = _words(rng, 10), _words(rng, 180).split()
    b = list(words)
    for p in (20, 60, 100):
        b[p] = "bee"
    c = list(b)
    for p in (120, 150, 170):
        c[p] = "sea"
    records = [make_record(user, " ".join(w), location=f"line {i}") for i, w in enumerate([words, b, c])]
    result = dedup_records(records_to_frame(records), family_order=FAMILIES)
    assert result.kept.height == 1
    assert result.removed.height == 2
    assert set(result.removed["duplicate_of"]) == {result.kept["content_hash"][0]}


def test_extra_columns_are_preserved_and_order_kept():
    rng = random.Random(9)
    records = [make_record(_words(rng, 10), _words(rng, 100), location=f"line {i}") for i in range(5)]
    records.append(dict(records[2]))
    frame = records_to_frame(records).with_columns(extra=pl.Series(range(6)))
    result = dedup_records(frame, family_order=FAMILIES)
    assert result.kept["extra"].to_list() == [0, 1, 2, 3, 4]
    assert "cluster_id" in result.kept.columns


def test_exact_only_when_threshold_is_none():
    rng = random.Random(10)
    user, words = _words(rng, 10), _words(rng, 160).split()
    b = list(words)
    b[50] = "x"
    records = [make_record(user, " ".join(words)), make_record(user, " ".join(b))]
    assert dedup_records(records_to_frame(records), threshold=None).removed.height == 0
    assert dedup_records(records_to_frame(records)).removed.height == 1


def test_bad_input_raises_clear_errors():
    rng = random.Random(11)
    frame = records_to_frame([make_record(_words(rng, 10), _words(rng, 10))])
    with pytest.raises(ValueError, match="strategy"):
        dedup_records(frame, strategy="keep_random")
    with pytest.raises(ValueError, match="lacks column"):
        dedup_records(frame.drop("record"))
    bad = pl.concat([frame, frame.with_columns(record=pl.lit("{not json"))])
    with pytest.raises(ValueError, match=r"row indices: \[1\]"):
        dedup_records(bad)


def test_mark_dedup_status_fast_and_slow_paths_agree():
    rng = random.Random(12)
    record = make_record(_words(rng, 5), _words(rng, 5))
    compact = json.dumps(record, separators=(",", ":"))
    spaced = json.dumps(record)  # not the compact form: goes through json
    empty_steps = json.loads(compact)
    empty_steps["metadata"]["provenance"]["processing_steps"] = []
    out = mark_dedup_status(pl.Series([compact, spaced, json.dumps(empty_steps, separators=(",", ":"))]), "unique")
    parsed = [json.loads(x) for x in out]
    assert parsed[0] == parsed[1]
    assert parsed[0]["metadata"]["provenance"]["processing_steps"][-1] == "dedup"
    assert parsed[2]["metadata"]["provenance"]["processing_steps"] == ["dedup"]


def test_chunked_decode_and_marking_match_one_pass(monkeypatch):
    from pixel_assets.lib.dedup import records as records_module
    from pixel_assets.lib.dedup import text as text_module

    rng = random.Random(13)
    recs = [make_record(_words(rng, 10), _words(rng, 80), location=f"line {i}") for i in range(25)]
    recs += [dict(recs[3]), dict(recs[20])]
    frame = records_to_frame(recs)
    whole = dedup_records(frame, family_order=FAMILIES)
    monkeypatch.setattr(text_module, "DECODE_CHUNK", 4)
    monkeypatch.setattr(records_module, "MARK_CHUNK", 3)
    chunked = dedup_records(frame, family_order=FAMILIES)
    assert chunked.kept.equals(whole.kept)
    assert chunked.removed.equals(whole.removed)
    bad = pl.concat([frame, frame.head(1).with_columns(record=pl.lit("[1, 2]"))])
    with pytest.raises(ValueError, match=r"row indices: \[27\]"):
        dedup_records(bad)


def test_vectorized_dedup_text_matches_per_record_function():
    from pixel_assets.lib.dedup import dedup_text, dedup_texts

    rng = random.Random(14)
    records = [
        make_record("  Hello,\n\tWORLD  " + _words(rng, 3), "Fine\u00a0 thanks " + _words(rng, 4), system="SYS prompt"),
        make_record("Ünïcode  Straße", "ok"),
    ]
    records[1]["messages"].insert(0, {"role": "assistant", "content": "first"})
    frame = records_to_frame(records)
    assert dedup_texts(frame).to_list() == [dedup_text(r) for r in records]
    assert "sys" not in dedup_texts(frame)[0]
