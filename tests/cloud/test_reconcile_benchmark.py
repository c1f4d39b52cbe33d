"""How row 11's "async default ÷ sync" lines are judged (``benchmarks/reconcile.py``): on the
median of the per-round ratios of back-to-back passes, with their spread printed beside it; the
same-work comparison counts a tie (1.0 within the middle half), the as-shipped one does not."""

from __future__ import annotations

import pytest

from benchmarks.reconcile import TARGET_ASYNC_OVER_SYNC, Mode


def comparison(sync_seconds: tuple[float, ...], async_seconds: tuple[float, ...]) -> Mode:
    return Mode("async-vs-sync", 8, 1000, sync_seconds, async_seconds, 0)


def test_the_comparison_is_judged_on_the_median_of_its_per_round_ratios() -> None:
    # The median rates favour async (2.0 s against 1.9 s), but it lost two rounds of three.
    result = comparison((1.0, 2.0, 3.0), (1.1, 1.9, 3.3))
    assert result.rate / result.loop_rate > TARGET_ASYNC_OVER_SYNC
    assert result.ratios == pytest.approx((1.0 / 1.1, 2.0 / 1.9, 3.0 / 3.3))
    assert result.ratio == pytest.approx(1.0 / 1.1)
    assert not result.met
    assert comparison((1.1, 1.9, 3.3), (1.0, 2.0, 3.0)).met


def test_the_spread_shows_the_middle_half_and_the_range_of_the_rounds() -> None:
    # Per-round ratios 0.90, 0.95, 1.00, 1.05, 1.10 (sync seconds over async seconds).
    result = comparison((0.90, 0.95, 1.00, 1.05, 1.10), (1.0,) * 5)
    assert result.ratio == pytest.approx(1.0)
    assert result.quartiles == pytest.approx((0.95, 1.05))
    assert result.spread == "middle half 0.95-1.05x, range 0.90-1.10x"
    assert result.met


def test_one_round_has_no_spread_but_its_own_ratio() -> None:
    result = comparison((1.2,), (1.0,))
    assert result.quartiles == pytest.approx((1.2, 1.2))
    assert result.spread == "middle half 1.20-1.20x, range 1.20-1.20x"


def test_the_cpu_per_job_is_compared_round_by_round_beside_the_rates() -> None:
    result = Mode("async-vs-sync", 8, 1000, (1.0, 1.0, 1.0), (1.0, 1.0, 1.0), 0, (0.5, 0.6, 0.7), (0.55, 0.57, 0.7))
    assert result.cpu_per_job == pytest.approx((0.57 / 1000, 0.6 / 1000))
    assert result.cpu_ratio == pytest.approx(1.0)  # per round 1.1, 0.95, 1.0


def test_the_same_work_comparison_counts_a_tie_but_not_a_loss() -> None:
    # Per-round ratios 0.90, 0.97, 0.99, 1.02, 1.10: the median below 1.0, the middle half straddling it.
    tie = comparison((0.90, 0.97, 0.99, 1.02, 1.10), (1.0,) * 5)
    assert tie.ratio < TARGET_ASYNC_OVER_SYNC
    assert tie.is_tie
    assert tie.met
    # Per-round ratios 0.90, 0.93, 0.95, 0.97, 1.05: async slower in most rounds, beyond the noise.
    loss = comparison((0.90, 0.93, 0.95, 0.97, 1.05), (1.0,) * 5)
    assert not loss.is_tie
    assert not loss.met


def test_the_as_shipped_comparison_needs_a_median_of_at_least_one() -> None:
    ratios = (0.90, 0.97, 0.99, 1.02, 1.10)
    tie = Mode("async-vs-sync-remote", 32, 1000, ratios, (1.0,) * 5, 0)
    assert tie.is_comparison
    assert tie.is_tie
    assert not tie.met
    assert Mode("async-vs-sync-remote", 32, 1000, (1.9, 2.1, 2.0), (1.0,) * 3, 0).met
