"""The ablation's statistics against hand-computed values and known distributions."""

import math

import numpy as np
import pytest

from scaleearth_cli.stats import mean_ci, paired_bootstrap, t975


def test_t_quantiles_match_tables():
    # Student's t, two-sided 95%: textbook values
    assert t975(1) == pytest.approx(12.706, abs=1e-3)
    assert t975(4) == pytest.approx(2.776, abs=1e-3)
    assert t975(10) == pytest.approx(2.228, abs=1e-3)
    assert t975(100) == pytest.approx(1.96, abs=1e-2)
    with pytest.raises(ValueError):
        t975(0)


def test_mean_ci_by_hand():
    ci = mean_ci([0.50, 0.52, 0.54, 0.56, 0.58])  # mean 0.54, sample std sqrt(0.001) = 0.0316
    assert ci.mean == pytest.approx(0.54)
    assert ci.std == pytest.approx(math.sqrt(0.001))
    assert ci.half_width == pytest.approx(2.776 * math.sqrt(0.001) / math.sqrt(5), rel=1e-3)
    one = mean_ci([0.3])
    assert (one.mean, one.std, one.n) == (0.3, 0.0, 1) and math.isnan(one.half_width)


def test_identical_rows_do_not_differ():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2, (5, 300))
    test = paired_bootstrap(a, a.copy(), replicates=500)
    assert test.difference == 0.0 and test.p_value > 0.5 and not test.significant


def test_a_clear_difference_is_significant_and_its_interval_covers_it():
    rng = np.random.default_rng(1)
    base = rng.random((5, 800)) < 0.5
    better = base | (rng.random((5, 800)) < 0.2)  # about +10 points on the same questions
    test = paired_bootstrap(better, base, replicates=2000)
    assert test.significant and test.p_value < 0.01
    assert test.low < test.difference < test.high and test.low > 0


def test_the_interval_matches_the_normal_approximation_for_one_seed():
    # One seed per row: only questions are resampled, so the interval is that of a paired mean difference.
    rng = np.random.default_rng(2)
    a = (rng.random((1, 4000)) < 0.6).astype(float)
    b = (rng.random((1, 4000)) < 0.55).astype(float)
    test = paired_bootstrap(a, b, replicates=4000)
    d = a[0] - b[0]
    se = d.std(ddof=1) / math.sqrt(len(d))
    assert test.high - test.low == pytest.approx(2 * 1.96 * se, rel=0.1)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same questions"):
        paired_bootstrap(np.zeros((2, 10)), np.zeros((2, 11)))
