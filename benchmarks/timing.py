"""Interleaved timing: every candidate runs once per round, ratios are taken per round.

The machine is shared and noisy, so a single long run of each candidate would
compare one noisy period with another. Instead each round runs every candidate
back to back (in a rotating order), and a ratio is the median over rounds of
the per-round ratios. The cost of the timing loop itself (an empty call) is
measured in every round and subtracted.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Call = Callable[[bytes, Any], object]


@dataclass(frozen=True)
class Candidate:
    """A function called as ``fn(body, headers)`` once per prepared input."""

    fn: Call
    inputs: Sequence[tuple[bytes, Any]]
    #: Called before every round, outside the timed region (a fresh store, say).
    reset: Callable[[], None] | None = None


@dataclass(frozen=True)
class Timings:
    """Seconds per call of each candidate, one entry per round."""

    per_round: Mapping[str, list[float]]

    def median(self, name: str) -> float:
        return statistics.median(self.per_round[name])

    def ratio(self, name: str, base: str) -> float:
        """The median over rounds of ``name / base``."""
        pairs = zip(self.per_round[name], self.per_round[base], strict=True)
        return statistics.median(a / b for a, b in pairs)


def _empty(body: bytes, headers: Any) -> None:
    return None


def _batch(fn: Call, inputs: Sequence[tuple[bytes, Any]]) -> float:
    start = time.perf_counter_ns()
    for body, headers in inputs:
        fn(body, headers)
    return (time.perf_counter_ns() - start) / 1e9


def interleave(candidates: Mapping[str, Candidate], *, rounds: int, warmup: int = 1) -> Timings:
    """Run every candidate over its inputs once per round; the garbage collector is paused while timing."""
    names = list(candidates)
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(warmup + rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        gc.collect()
        gc.disable()
        try:
            for name in order:
                candidate = candidates[name]
                if candidate.reset is not None:
                    candidate.reset()
                elapsed = _batch(candidate.fn, candidate.inputs)
                empty = _batch(_empty, candidate.inputs)
                if index >= warmup:
                    results[name].append(max(elapsed - empty, 1e-12) / len(candidate.inputs))
        finally:
            gc.enable()
    return Timings(results)
