"""Repeating a benchmark so that its ratio holds still.

One run of a benchmark side that lasts under a second moves by 30-50% with what else the machine
does (the dedup ratio read 8.4x, 9.4x and 12.0x in three runs on an idle machine). Every
`pixel bench` therefore sizes each side to run for seconds, runs the whole comparison several
times, and reports the median ratio with its spread (min-max); the other figures it prints come
from the run whose ratio is that median, so they agree with it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_REPEATS = 3


@dataclass(frozen=True)
class RatioSpread:
    """The ratio of several runs of one benchmark: median, min, max and each run's value."""

    median: float
    low: float
    high: float
    runs: tuple[float, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RatioSpread:
        """Back from `as_dict` (e.g. a child process's JSON)."""
        return cls(median=data["median"], low=data["low"], high=data["high"], runs=tuple(data["runs"]))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "runs": list(self.runs), "repeats": len(self.runs)}

    def text(self, digits: int = 2) -> str:
        """E.g. '9.40x median of 3 runs (8.40x-12.00x)'."""
        return (f"{self.median:.{digits}f}x median of {len(self.runs)} runs "
                f"({self.low:.{digits}f}x-{self.high:.{digits}f}x)")


def repeat_ratio(run: Callable[[], dict[str, Any]], ratio: Callable[[dict[str, Any]], float],
                 repeats: int = DEFAULT_REPEATS,
                 log: Callable[[str], Any] | None = None) -> tuple[dict[str, Any], RatioSpread]:
    """Call `run` `repeats` times; (the figures of the run whose ratio is the median, the spread).
    With an even count the median is the mean of the middle two and the run nearest to it is
    returned."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    results, ratios = [], []
    for i in range(repeats):
        results.append(run())
        ratios.append(float(ratio(results[-1])))
        if log:
            log(f"run {i + 1}/{repeats}: ratio {ratios[-1]:.3g}")
    median = statistics.median(ratios)
    nearest = min(range(repeats), key=lambda i: abs(ratios[i] - median))
    return results[nearest], RatioSpread(median=median, low=min(ratios), high=max(ratios), runs=tuple(ratios))


def seconds_per_call(call: Callable[[], Any], min_seconds: float = 2.0) -> float:
    """Mean wall time of `call`, called until the calls together took at least `min_seconds`:
    a side that takes milliseconds is timed over seconds too."""
    calls, start = 0, time.perf_counter()
    while True:
        call()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls
