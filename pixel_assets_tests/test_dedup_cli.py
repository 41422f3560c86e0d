"""`pixel dedup banding` and `pixel bench dedup` (small corpus; no timing assertions)."""

from __future__ import annotations

import json

import polars as pl

from pixel_assets.cli import main
from pixel_assets.lib.dedup import recall_at
from pixel_assets.lib.dedup.bench import bench_near_dup, generate_corpus, generate_records_frame
from pixel_assets.lib.dedup.text import dedup_columns


def test_banding_command_prints_the_s_curve(capsys):
    assert main(["dedup", "banding", "--threshold", "0.8", "--num-perm", "128", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bands"] * out["rows"] <= 128
    assert out["recall_at_threshold"] >= 0.95
    assert out["recall_at_threshold"] == round(recall_at(0.8, out["bands"], out["rows"]), 4)
    curve = list(out["candidate_probability_by_jaccard"].values())
    assert curve == sorted(curve)  # the S-curve rises with Jaccard


def test_bench_dedup_json_reports_both_paths(capsys):
    assert main(["bench", "dedup", "--docs", "1500", "--repeats", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["planted_pairs"] == 150
    for path in ("project", "datasketch_baseline"):
        assert {"docs_per_s", "recall", "precision"} <= set(out[path])
    assert out["speedup"] > 0
    # Exact-Jaccard confirmation: nothing below the threshold is reported.
    assert out["project"]["precision"] == 1.0
    assert out["project"]["recall"] >= 0.95


def test_generated_corpus_has_planted_pairs_on_both_sides_of_the_threshold():
    result = bench_near_dup(1000, seed=3)
    low, high = result["planted_jaccard_min_max"]
    assert low < 0.8 < high
    assert 0 < result["true_pairs_at_threshold"] < result["planted_pairs"] * 1.5


def test_generated_records_frame_is_decodable_and_has_duplicates():
    frame = generate_records_frame(500)
    assert frame.columns == ["content_hash", "source_family", "record"]
    assert frame["content_hash"].n_unique() < frame.height
    cols = dedup_columns(frame)
    assert cols["quality_score"].null_count() == 0
    assert not cols["dedup_text"].str.contains("counsellor").any()  # system prompt left out


def test_per_row_fallback_matches_vectorized_decode():
    frame = generate_records_frame(50)
    fast = dedup_columns(frame)
    # A record whose metadata has an object where a string is expected forces the per-row path.
    odd = json.loads(frame["record"][0])
    odd["metadata"]["source_location"] = {"line": 1}
    slow = dedup_columns(pl.concat([frame, frame.head(1).with_columns(record=pl.lit(json.dumps(odd)))]))
    assert slow.head(50).equals(fast)
    assert slow["source_location"][50] is None


def test_corpus_is_seeded():
    a, pa = generate_corpus(200, seed=5)
    b, pb = generate_corpus(200, seed=5)
    assert a.equals(b) and pa == pb
