import math
import warnings

import pytest
import torch

from sseu import (
    ImplausibleGSDWarning,
    gsd_m_from_log10,
    log10_gsd_from_metres,
    perturb_log10_gsd,
    spoof_log10_gsd,
)


def test_perturbation_is_seeded_and_has_the_requested_spread():
    base = torch.full((200_000,), 1.0, dtype=torch.float64)  # 10 m: 10 sigma from either edge
    a = perturb_log10_gsd(base, 0.3, seed=7)
    b = perturb_log10_gsd(base, 0.3, generator=torch.Generator().manual_seed(7))
    c = perturb_log10_gsd(base, 0.3, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    noise = a - base
    # Sample sd of the sd is 0.3/sqrt(2n) = 4.7e-4 and of the mean 6.7e-4: 5 sigma margins.
    assert noise.std().item() == pytest.approx(0.3, abs=0.0025)
    assert noise.mean().item() == pytest.approx(0.0, abs=0.0035)


def test_perturbation_keeps_dtype_and_zero_sigma_is_identity():
    base = torch.tensor([0.0, 1.0, 2.0])
    assert torch.equal(perturb_log10_gsd(base, 0.0, seed=0), base)
    assert perturb_log10_gsd(base, 0.1, seed=0).dtype == torch.float32


def test_spoofing_multiplies_the_gsd_by_the_factor():
    true = torch.tensor([math.log10(0.15), 1.0], dtype=torch.float64)
    spoofed = spoof_log10_gsd(true, 4.0)
    torch.testing.assert_close(10**spoofed, torch.tensor([0.6, 40.0], dtype=torch.float64))
    torch.testing.assert_close(spoof_log10_gsd(true, 1.0), true)


def test_noise_results_outside_the_plausible_range_warn_but_are_kept():
    with pytest.warns(ImplausibleGSDWarning, match="spoofed"):
        out = spoof_log10_gsd(torch.tensor([math.log10(0.15)], dtype=torch.float64), 0.01)
    assert out.item() == pytest.approx(math.log10(0.0015))


@pytest.mark.parametrize("kwargs, message", [
    (dict(sigma=-0.1), "sigma"),
    (dict(sigma=float("nan")), "sigma"),
    (dict(sigma=0.1, seed=1, generator=torch.Generator()), "seed or generator"),
])  # fmt: skip
def test_bad_perturbation_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        perturb_log10_gsd(torch.zeros(3), **kwargs)


@pytest.mark.parametrize("factor", [0.0, -2.0, float("inf"), float("nan")])
def test_bad_spoofing_factor_raises(factor):
    with pytest.raises(ValueError, match="spoofing factor must be a finite number > 0"):
        spoof_log10_gsd(torch.zeros(3), factor)


def test_non_finite_log10_gsd_is_rejected_by_noise_utilities():
    x = torch.tensor([0.0, float("nan")])
    with pytest.raises(ValueError, match="log10_gsd must be finite but has 1 NaN"):
        perturb_log10_gsd(x, 0.1, seed=0)
    with pytest.raises(ValueError, match="log10_gsd must be finite"):
        spoof_log10_gsd(x, 2.0)


def test_metres_to_log10_and_back():
    gsd = torch.tensor([0.15, 1.0, 10.0, 1000.0], dtype=torch.float64)
    log10 = log10_gsd_from_metres(gsd)
    torch.testing.assert_close(log10, torch.tensor([math.log10(0.15), 0.0, 1.0, 3.0], dtype=torch.float64))
    torch.testing.assert_close(gsd_m_from_log10(log10), gsd)
    assert log10_gsd_from_metres([0.5, 2]).dtype == torch.float64
    assert log10_gsd_from_metres(10).item() == 1.0


@pytest.mark.parametrize(
    "value, message",
    [
        (0.0, r"must be > 0 metres"),
        (-1.0, r"must be > 0 metres"),
        (float("nan"), r"gsd_m must be finite but has 1 NaN"),
        (float("inf"), r"gsd_m must be finite but has 0 NaN and 1 inf"),
    ],
)
def test_invalid_metres_are_rejected(value, message):
    with pytest.raises(ValueError, match=message):
        log10_gsd_from_metres([1.0, value])


def test_implausible_metres_warn_and_plausible_ones_do_not():
    for value in (0.001, 20_000.0):
        with pytest.warns(ImplausibleGSDWarning, match="plausible range"):
            out = log10_gsd_from_metres([value])
        assert out.item() == pytest.approx(math.log10(value))  # not clamped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log10_gsd_from_metres([0.01, 0.05, 500.0, 10_000.0])
