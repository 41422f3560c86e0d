"""The repeat-and-median helper every `pixel bench` reports through, and one bench end to end."""

from __future__ import annotations

import json
import time

import pytest

from pixel_assets.lib.benchmarking import RatioSpread, repeat_ratio, seconds_per_call


def test_the_median_run_and_the_spread_are_reported():
    ratios = iter([9.0, 30.0, 8.0, 10.0, 11.0])
    result, spread = repeat_ratio(lambda: {"speedup": next(ratios)}, lambda r: r["speedup"], repeats=5)
    assert (spread.median, spread.low, spread.high, spread.runs) == (10.0, 8.0, 30.0, (9.0, 30.0, 8.0, 10.0, 11.0))
    assert result == {"speedup": 10.0}  # the figures of the median run, not of the last or the outlier
    assert spread.text() == "10.00x median of 5 runs (8.00x-30.00x)"
    assert RatioSpread.from_dict(json.loads(json.dumps(spread.as_dict()))) == spread


def test_an_even_count_returns_the_run_nearest_the_median():
    ratios = iter([1.0, 4.0, 2.0, 10.0])
    result, spread = repeat_ratio(lambda: {"r": next(ratios)}, lambda r: r["r"], repeats=4)
    assert spread.median == 3.0 and result["r"] in (2.0, 4.0)
    with pytest.raises(ValueError, match="at least 1"):
        repeat_ratio(dict, len, repeats=0)


def test_a_fast_call_is_timed_over_the_minimum_time():
    calls = []
    per_call = seconds_per_call(lambda: calls.append(time.sleep(0.01)), min_seconds=0.2)
    assert len(calls) >= 10 and 0.01 <= per_call < 0.2


def test_pixel_bench_validate_prints_the_median_of_its_runs(capsys):
    from pixel_assets.cli import main

    assert main(["bench", "validate", "--records", "200", "--repeats", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    spread = result["speedup_spread"]
    assert spread["repeats"] == 3 and len(spread["runs"]) == 3
    assert spread["low"] <= spread["median"] <= spread["high"] and spread["median"] == sorted(spread["runs"])[1]
    assert result["speedup"] == spread["median"]  # the printed figures are the median run's
