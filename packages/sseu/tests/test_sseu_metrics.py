import math
import struct

import pytest
import torch

from sseu import (
    SSEUPrediction,
    calibration_summary,
    interval_coverage,
    mae_log10,
    mae_m,
    mean_gaussian_nll,
    median_relative_error_m,
    plot_calibration,
    sseu_metrics,
)

# Four samples worked out by hand: std = 0.1, 0.2, 0.5, 1.0; errors 0.05, 0.3, 0, 1.5 decades,
# so |z| = 0.5, 1.5, 0, 1.5.
HAND_PRED = SSEUPrediction(mean=torch.tensor([0.0, 1.0, 2.0, -1.0]),
                           var=torch.tensor([0.01, 0.04, 0.25, 1.0]))  # fmt: skip
HAND_TARGET = torch.tensor([0.05, 1.3, 2.0, 0.5])


def test_metrics_match_hand_computed_values():
    assert mae_log10(HAND_PRED, HAND_TARGET) == pytest.approx(1.85 / 4, abs=1e-7)
    assert mae_log10(HAND_PRED.mean, HAND_TARGET) == pytest.approx(0.4625, abs=1e-7)
    # |z| <= 0.9945 for samples 0 and 2; every |z| <= 1.96.
    assert interval_coverage(HAND_PRED, HAND_TARGET, 0.68) == 0.5
    assert interval_coverage(HAND_PRED, HAND_TARGET, 0.95) == 1.0
    # 1.5 sits between the 0.8 (z=1.2816) and 0.9 (z=1.6449) half-widths.
    assert interval_coverage(HAND_PRED, HAND_TARGET, 0.8) == 0.5
    assert interval_coverage(HAND_PRED, HAND_TARGET, 0.9) == 1.0
    # Relative errors in metres: |10**-0.05 - 1|, |10**-0.3 - 1|, 0, |10**-1.5 - 1|;
    # the median of four is the average of the middle two.
    rel = sorted([1 - 10**-0.05, 1 - 10**-0.3, 0.0, 1 - 10**-1.5])
    assert median_relative_error_m(HAND_PRED, HAND_TARGET) == pytest.approx((rel[1] + rel[2]) / 2, rel=1e-6)
    assert median_relative_error_m(HAND_PRED, HAND_TARGET) == pytest.approx(0.303781, abs=1e-6)
    abs_m = [abs(1 - 10**0.05), abs(10 - 10**1.3), 0.0, abs(0.1 - 10**0.5)]
    assert mae_m(HAND_PRED, HAND_TARGET) == pytest.approx(sum(abs_m) / 4, rel=1e-5)
    nll = [0.5 * (math.log(2 * math.pi) + math.log(v) + z * z)
           for v, z in zip([0.01, 0.04, 0.25, 1.0], [0.5, 1.5, 0.0, 1.5], strict=True)]  # fmt: skip
    assert mean_gaussian_nll(HAND_PRED, HAND_TARGET) == pytest.approx(sum(nll) / 4, rel=1e-5)


def test_calibration_summary_by_hand():
    cal = calibration_summary(HAND_PRED, HAND_TARGET, levels=(0.68, 0.95))
    assert cal.observed == (0.5, 1.0)
    assert cal.ece == pytest.approx((0.18 + 0.05) / 2)
    assert cal.max_gap == pytest.approx(0.18)
    assert cal.mean_z2 == pytest.approx((0.25 + 2.25 + 0 + 2.25) / 4, rel=1e-6)
    assert cal.mean_std == pytest.approx(1.8 / 4, rel=1e-6)
    assert cal.n == 4


def test_calibration_summary_recognises_calibrated_and_overconfident_heads():
    g = torch.Generator().manual_seed(0)
    n = 20_000
    mean = torch.rand(n, generator=g, dtype=torch.float64) * 2  # 1 m to 100 m
    std = torch.rand(n, generator=g, dtype=torch.float64) * 0.5 + 0.05
    target = mean + std * torch.randn(n, generator=g, dtype=torch.float64)
    levels = (0.2, 0.5, 0.68, 0.9, 0.95)
    good = calibration_summary(SSEUPrediction(mean, std**2), target, levels)
    for lv, obs in zip(levels, good.observed, strict=True):
        assert obs == pytest.approx(lv, abs=0.015)  # binomial sd <= 0.0036
    assert good.mean_z2 == pytest.approx(1.0, abs=0.05)
    # Claiming half the true std: P(|Z| <= q/2) = erf(q / (2 sqrt 2)) for the true N(0, 1) errors.
    bad = calibration_summary(SSEUPrediction(mean, (std / 2) ** 2), target, levels)
    for lv, obs in zip(levels, bad.observed, strict=True):
        q = math.sqrt(2) * torch.special.erfinv(torch.tensor(lv, dtype=torch.float64)).item()
        assert obs == pytest.approx(math.erf(q / 2 / math.sqrt(2)), abs=0.015)
    assert bad.mean_z2 == pytest.approx(4.0, abs=0.2)
    assert bad.ece > 0.15 > good.ece


def test_sseu_metrics_report_is_flat_floats():
    report = sseu_metrics(HAND_PRED, HAND_TARGET)
    assert set(report) >= {"mae_log10", "median_rel_error_m", "coverage_68", "coverage_95", "ece", "nll"}
    assert all(isinstance(v, float) for v in report.values())
    assert report["coverage_68"] == 0.5 and report["mae_log10"] == pytest.approx(0.4625)


@pytest.mark.parametrize("bad, what", [(float("nan"), "NaN"), (float("-inf"), "inf")])
def test_non_finite_targets_raise(bad, what):
    target = HAND_TARGET.clone()
    target[1] = bad
    with pytest.raises(ValueError, match=rf"target must be finite.*1 {what}"):
        mae_log10(HAND_PRED, target)


def test_bad_metric_inputs_raise():
    with pytest.raises(ValueError, match="shape"):
        mae_log10(HAND_PRED, HAND_TARGET[:2])
    with pytest.raises(ValueError, match="empty"):
        mae_log10(torch.zeros(0), torch.zeros(0))
    with pytest.raises(ValueError, match="level"):
        interval_coverage(HAND_PRED, HAND_TARGET, 95)
    with pytest.raises(TypeError, match="needs an SSEUPrediction"):
        interval_coverage(HAND_PRED.mean, HAND_TARGET, 0.95)


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_calibration_plot_writes_a_png_of_the_requested_size(tmp_path):
    g = torch.Generator().manual_seed(1)
    mean = 1.0 + 0.5 * torch.randn(500, generator=g)
    var = torch.rand(500, generator=g) * 0.2 + 0.01
    target = mean + var.sqrt() * torch.randn(500, generator=g)
    path = plot_calibration(SSEUPrediction(mean, var), target, tmp_path / "sub" / "cal.png",
                            title="SSE-U test", dpi=50)  # fmt: skip
    assert path == tmp_path / "sub" / "cal.png"
    assert _png_size(path) == (450, 200)  # 9 x 4 inches at 50 dpi
    assert path.stat().st_size > 5_000  # two panels with text, not an empty canvas


def test_calibration_plot_rejects_bad_targets(tmp_path):
    target = HAND_TARGET.clone()
    target[0] = float("nan")
    with pytest.raises(ValueError, match="target must be finite"):
        plot_calibration(HAND_PRED, target, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
