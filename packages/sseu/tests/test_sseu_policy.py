import math
import warnings

import pytest
import torch

from sseu import ImplausibleGSDWarning, SSEUPrediction, resolve_scale

Z95 = 1.959963984540054


def _pred(means, stds, **kw):
    return SSEUPrediction(torch.tensor(means, **kw), torch.tensor(stds, **kw) ** 2)


def test_metadata_branch_wins_whenever_present():
    d = resolve_scale([0.15, 30.0], _pred([2.0, 2.0], [0.01, 0.01]))
    assert d.branch == ("metadata", "metadata")
    torch.testing.assert_close(d.log10_gsd, torch.tensor([math.log10(0.15), math.log10(30.0)]))
    torch.testing.assert_close(d.var, torch.zeros(2))


def test_estimate_branch_needs_a_narrow_interval():
    # 95 % width = 2 * 1.96 * std: 0.392 decades for std 0.1, 1.96 for std 0.5.
    d = resolve_scale(None, _pred([0.3, 2.5], [0.1, 0.5]), max_interval_width=1.0)
    assert d.branch == ("estimate", "default")
    torch.testing.assert_close(d.log10_gsd, torch.tensor([0.3, 1.0]))
    torch.testing.assert_close(d.var, torch.tensor([0.01, 1.0]))


def test_default_branch_without_metadata_or_prediction():
    d = resolve_scale(None, None, batch_size=3, default_log10_gsd=0.5, default_var=0.2)
    assert d.branch == ("default",) * 3
    torch.testing.assert_close(d.log10_gsd, torch.full((3,), 0.5))
    torch.testing.assert_close(d.var, torch.full((3,), 0.2))


def test_mixed_batch_takes_each_branch_per_sample():
    meta = [None, 2.0, float("nan"), None, 0.5]
    pred = _pred([0.1, 0.2, 1.7, -0.4, 3.0], [0.05, 0.05, 0.9, 0.2, 0.05], dtype=torch.float64)
    d = resolve_scale(meta, pred, max_interval_width=1.0, default_log10_gsd=1.0, default_var=1.0,
                      metadata_var=1e-4)  # fmt: skip
    assert d.branch == ("estimate", "metadata", "default", "estimate", "metadata")
    expected = torch.tensor([0.1, math.log10(2.0), 1.0, -0.4, math.log10(0.5)], dtype=torch.float64)
    torch.testing.assert_close(d.log10_gsd, expected)
    torch.testing.assert_close(d.var, torch.tensor([0.0025, 1e-4, 1.0, 0.04, 1e-4], dtype=torch.float64))
    assert d.log10_gsd.dtype == torch.float64
    assert d.counts() == {"metadata": 2, "estimate": 2, "default": 1}
    assert d.mask("estimate").tolist() == [True, False, False, True, False]


def test_tensor_metadata_with_nan_for_missing():
    meta = torch.tensor([float("nan"), 10.0])
    d = resolve_scale(meta, _pred([0.0, 0.0], [2.0, 2.0]))
    assert d.branch == ("default", "metadata")
    torch.testing.assert_close(d.log10_gsd, torch.tensor([1.0, 1.0]))


def test_scalar_metadata_covers_the_whole_batch():
    d = resolve_scale(0.3, _pred([1.0, 2.0, 3.0], [0.1] * 3))
    assert d.branch == ("metadata",) * 3
    torch.testing.assert_close(d.log10_gsd, torch.full((3,), math.log10(0.3)))


def test_interval_threshold_is_strict_and_follows_the_level():
    std = 0.25
    width95 = 2 * Z95 * std
    pred = _pred([0.0], [std], dtype=torch.float64)
    too_wide = resolve_scale(None, pred, max_interval_width=width95 * (1 - 1e-9))
    narrow_enough = resolve_scale(None, pred, max_interval_width=width95 * (1 + 1e-9))
    assert too_wide.branch == ("default",) and narrow_enough.branch == ("estimate",)
    # At the 68 % level the same std gives a narrower interval, which now passes.
    narrower = resolve_scale(None, pred, max_interval_width=width95 * 0.9, level=0.68)
    assert narrower.branch == ("estimate",)


def test_gradient_reaches_the_head_only_where_the_estimate_is_used():
    mean = torch.tensor([0.5, 0.5, 0.5], requires_grad=True)
    var = torch.tensor([0.01, 0.01, 4.0], requires_grad=True)
    d = resolve_scale([1.0, None, None], SSEUPrediction(mean, var))
    assert d.branch == ("metadata", "estimate", "default")
    (d.log10_gsd.sum() + d.var.sum()).backward()
    assert mean.grad.tolist() == [0.0, 1.0, 0.0]
    assert var.grad.tolist() == [0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "meta, message",
    [
        ([1.0, 0.0], r"metadata_gsd_m must be > 0 metres.*1 value\(s\) <= 0"),
        ([-2.0, 1.0], r"metadata_gsd_m must be > 0 metres"),
        ([float("inf"), 1.0], r"metadata_gsd_m must be finite but has 0 NaN and 1 inf"),
        (torch.tensor([1.0, float("-inf")]), r"metadata_gsd_m must be finite"),
    ],
)
def test_invalid_metadata_raises(meta, message):
    with pytest.raises(ValueError, match=message):
        resolve_scale(meta, _pred([0.0, 0.0], [0.1, 0.1]))


def test_implausible_metadata_warns_but_is_used_unchanged():
    with pytest.warns(ImplausibleGSDWarning, match="plausible range"):
        d = resolve_scale([50_000.0, 1.0])
    torch.testing.assert_close(d.log10_gsd, torch.tensor([math.log10(50_000.0), 0.0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_scale([0.01, 10_000.0])


def test_bad_policy_arguments_raise():
    with pytest.raises(ValueError, match="batch sizes disagree"):
        resolve_scale([1.0, 2.0], _pred([0.0, 0.0, 0.0], [0.1] * 3))
    with pytest.raises(ValueError, match="batch size"):
        resolve_scale(None, None)
    with pytest.raises(ValueError, match="scalar metadata_gsd_m needs"):
        resolve_scale(1.0)
    with pytest.raises(ValueError, match="max_interval_width"):
        resolve_scale(None, _pred([0.0], [0.1]), max_interval_width=0.0)
    with pytest.raises(ValueError, match="default_var"):
        resolve_scale(None, None, batch_size=1, default_var=-1.0)
    with pytest.raises(ValueError, match="predicted mean must be finite"):
        resolve_scale(None, _pred([float("nan")], [0.1]))
    with pytest.raises(TypeError, match="metadata_gsd_m"):
        resolve_scale("10 m", batch_size=1)
