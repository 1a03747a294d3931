from __future__ import annotations

import numpy as np
import pytest

from apps.tracing.sketch import ALPHA, Merged, Sketch, merge_all

QS = (0.50, 0.95, 0.99)


def _sketch_of(values, errors=0) -> Sketch:
    sketch = Sketch()
    for i, v in enumerate(values):
        sketch.add(float(v), error=i < errors)
    return sketch


def _assert_within_one_percent(estimates, exact):
    for q, est, ref in zip(QS, estimates, exact, strict=True):
        assert abs(est - ref) / ref <= ALPHA, (q, est, ref)


def test_percentiles_of_lognormal_latencies_are_within_one_percent_of_numpy():
    values = np.random.default_rng(7).lognormal(mean=3.0, sigma=1.2, size=200_000)
    merged = merge_all([_sketch_of(values)])
    _assert_within_one_percent(merged.quantiles(QS), np.percentile(values, [50, 95, 99]))


def test_percentiles_of_bimodal_latencies_are_within_one_percent_of_numpy():
    rng = np.random.default_rng(11)
    # A cache-hit mode around 2 ms (70%) and a cache-miss mode around 300 ms (30%).
    values = np.concatenate(
        [rng.lognormal(np.log(2.0), 0.3, 140_000), rng.lognormal(np.log(300.0), 0.5, 60_000)]
    )
    rng.shuffle(values)
    merged = merge_all([_sketch_of(values)])
    _assert_within_one_percent(merged.quantiles(QS), np.percentile(values, [50, 95, 99]))


def test_merging_per_minute_sketches_equals_one_sketch_of_the_whole_window():
    rng = np.random.default_rng(3)
    minutes = [rng.lognormal(2.0 + i / 30, 0.8, 2_000) for i in range(60)]
    window = np.concatenate(minutes)
    merged = merge_all(_sketch_of(m) for m in minutes)
    whole = merge_all([_sketch_of(window)])
    assert merged.count == whole.count == len(window)
    assert merged.quantiles(QS) == whole.quantiles(QS)
    assert merged.max_ms == pytest.approx(window.max())
    _assert_within_one_percent(merged.quantiles(QS), np.percentile(window, [50, 95, 99]))


def test_stored_bins_round_trip_and_merge_in_any_order():
    rng = np.random.default_rng(5)
    a, b = _sketch_of(rng.lognormal(0, 2, 5000)), _sketch_of(rng.lognormal(5, 0.1, 5000))
    forward, backward = Merged(), Merged()
    for target, order in ((forward, (a, b)), (backward, (b, a))):
        for sketch in order:
            stored = Merged()
            stored.add_sketch(sketch)
            target.add_row(stored.row())
    assert forward.encode_bins() == backward.encode_bins()
    assert forward.quantiles(QS) == backward.quantiles(QS)


def test_zero_durations_and_an_empty_sketch_are_answered():
    merged = merge_all([_sketch_of([0.0] * 90 + [10.0] * 10, errors=3)])
    assert merged.quantiles((0.5, 0.99)) == [0.0, pytest.approx(10.0, rel=ALPHA)]
    assert merged.error_count == 3
    assert Merged().quantiles((0.5,)) == [None]
