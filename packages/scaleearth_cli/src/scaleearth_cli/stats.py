"""Statistics for comparing trained rows: mean with a t confidence interval over seeds, and a paired test.

The paired test asks whether row A beats row B on the *same* questions. Two things vary between runs:
the seed (initialisation, data order) and which questions happen to be in the held-out split. The
hierarchical bootstrap resamples both: in each replicate it draws each row's seeds with replacement
(seeds are independent between rows) and one shared draw of questions with replacement (the pairing),
then takes the difference of the two rows' mean accuracies. The p-value is two-sided: twice the smaller
share of replicates on either side of zero.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

# Student's t 0.975 quantile for 1..30 degrees of freedom (two-sided 95%); above 30 the normal's 1.96 is
# within 4%.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
    2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


@dataclass(frozen=True)
class MeanCI:
    mean: float
    std: float  # sample standard deviation over seeds (0 for one seed)
    half_width: float  # of the 95% t interval (nan for one seed)
    n: int


def mean_ci(values) -> MeanCI:
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("no values")
    mean = statistics.fmean(xs)
    if len(xs) == 1:
        return MeanCI(mean, 0.0, math.nan, 1)
    std = statistics.stdev(xs)
    return MeanCI(mean, std, t975(len(xs) - 1) * std / math.sqrt(len(xs)), len(xs))


@dataclass(frozen=True)
class PairedTest:
    difference: float  # mean accuracy of A minus B (fraction)
    low: float  # 95% bootstrap interval of the difference
    high: float
    p_value: float
    replicates: int

    @property
    def significant(self) -> bool:
        return self.p_value < 0.05


def paired_bootstrap(a, b, *, replicates: int = 10_000, seed: int = 0) -> PairedTest:
    """Rows ``a`` and ``b``: per-seed lists of per-question correctness (0/1), questions in the same order."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError(f"need [seeds, questions] arrays over the same questions, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    n_q = a.shape[1]
    diffs = np.empty(replicates)
    for i in range(replicates):
        q = rng.integers(0, n_q, n_q)
        sa = rng.integers(0, a.shape[0], a.shape[0])
        sb = rng.integers(0, b.shape[0], b.shape[0])
        diffs[i] = a[np.ix_(sa, q)].mean() - b[np.ix_(sb, q)].mean()
    low, high = np.quantile(diffs, [0.025, 0.975])
    p = min(1.0, 2.0 * min((diffs <= 0).mean(), (diffs >= 0).mean()))
    return PairedTest(float(a.mean() - b.mean()), float(low), float(high), float(p), replicates)
