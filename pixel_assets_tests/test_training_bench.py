"""`pixel bench train`: both paths on the same records; padding accounting; the 1B shape."""

from __future__ import annotations

import json

import pytest
import trl  # noqa: F401  a hard dependency: a broken install fails here instead of skipping


def bench_train_json(capsys, *argv: str) -> dict:
    from pixel_assets.cli import main

    assert main(["bench", "train", "--batch-size", "4", "--max-turns", "3", "--max-length", "512", "--cpu",
                 "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_train_json_compares_both_paths_on_the_same_tokens(capsys):
    result = bench_train_json(capsys, "--records", "12", "--repeats", "1")  # repeating: test_benchmarking.py
    base, proj = result["baseline"], result["project"]
    assert base["real_tokens"] == proj["real_tokens"] > 0  # the same records, nothing truncated or dropped
    assert proj["pad_tokens"] == 0 and proj["padding_fraction"] == 0.0  # packed, padding-free
    assert base["pad_tokens"] > 0 and base["computed_tokens"] == base["real_tokens"] + base["pad_tokens"]
    assert proj["steps"] < base["steps"]  # packing: fewer, fuller sequences
    assert "mfu" not in base  # CPU: no MFU
    assert result["ratio_spread"]["runs"] == [result["ratio"]]
    # The options change what runs: half the records, fewer real tokens and steps on both paths.
    half = bench_train_json(capsys, "--records", "6", "--repeats", "1")
    assert 0 < half["project"]["real_tokens"] < proj["real_tokens"]
    assert half["baseline"]["steps"] < base["steps"] and half["ratio_spread"]["repeats"] == 1


def test_one_b_shape_and_flops_count():
    from pixel_assets.lib.training.bench import flops_per_token, one_b_config_params

    params = one_b_config_params()
    assert 0.9e9 < params < 1.3e9
    # A frozen model costs 4N per token, trainable weights 2N more each, attention grows with length.
    assert flops_per_token(100, 0, 1, 8, 0) == 400
    assert flops_per_token(100, 10, 1, 8, 0) == 420
    assert flops_per_token(100, 0, 2, 8, 10) == 400 + 12 * 2 * 8 * 10


def test_one_b_needs_a_gpu():
    from pixel_assets.lib.training.bench import bench_train

    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        bench_train(model_size="1b", force_cpu=True)
