import math

import pytest
import torch

from cshlora import bucket_gate, continuous_gate, log10_gsd


def test_continuous_gate_hand_computed():
    tau = torch.tensor([0.0, 1.0], dtype=torch.float64)
    a = torch.tensor([2.0, 4.0], dtype=torch.float64)
    s = torch.tensor([0.5], dtype=torch.float64)
    h = continuous_gate(s, tau, a)
    expected = [1 / (1 + math.exp(-2.0 * (0.0 - 0.5))), 1 / (1 + math.exp(-4.0 * (1.0 - 0.5)))]
    assert h.shape == (1, 2)
    assert h[0].tolist() == pytest.approx(expected, rel=1e-12)


def test_finer_images_open_more_ranks():
    tau = torch.tensor([math.log10(2)] * 3 + [math.log10(30)] * 3 + [3.0] * 3)
    a = torch.full((9,), 4.0)
    drone, sentinel, modis = continuous_gate(torch.log10(torch.tensor([0.1, 10.0, 1000.0])), tau, a)
    assert drone.sum() > sentinel.sum() > modis.sum()
    assert (drone > 0.9).all()  # everything visible at 10 cm
    assert (sentinel[:3] < 0.1).all() and (sentinel[3:] > 0.8).all()  # no objects at 10 m


def _expected_gate_by_quadrature(mean, var, tau, a, n=20001):
    # E[sigmoid(a (tau - s))], s ~ N(mean, var), by the trapezoid rule over +-10 sigma in float64.
    std = math.sqrt(var)
    s = torch.linspace(mean - 10 * std, mean + 10 * std, n, dtype=torch.float64)
    pdf = torch.exp(-0.5 * ((s - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
    return torch.trapezoid(torch.sigmoid(a * (tau - s)) * pdf, s).item()


@pytest.mark.parametrize("mean, var", [(0.0, 0.01), (0.3, 0.25), (1.5, 1.0), (-1.0, 4.0)])
def test_expected_gate_matches_numerical_integration(mean, var):
    tau, a = 0.5, 4.0
    probit = continuous_gate(
        torch.tensor([mean], dtype=torch.float64),
        torch.tensor([tau], dtype=torch.float64),
        torch.tensor([a], dtype=torch.float64),
        torch.tensor([var], dtype=torch.float64),
    ).item()
    # The probit approximation of the logistic-normal integral is good to ~0.02 everywhere.
    assert probit == pytest.approx(_expected_gate_by_quadrature(mean, var, tau, a), abs=0.02)


def test_uncertainty_softens_gates_and_zero_variance_is_exact():
    tau, a = torch.tensor([0.0]), torch.tensor([4.0])
    s = torch.tensor([-1.0])
    sharp = continuous_gate(s, tau, a)
    assert torch.equal(continuous_gate(s, tau, a, torch.tensor([0.0])), sharp)
    soft = continuous_gate(s, tau, a, torch.tensor([4.0]))
    assert 0.5 < soft.item() < sharp.item()


def test_bucket_gate_is_one_hot_over_slices():
    edges = torch.log10(torch.tensor([2.0, 30.0]))
    s = torch.log10(torch.tensor([0.3, 2.0, 10.0, 500.0]))
    g = bucket_gate(s, edges, [2, 3, 1])
    assert g.tolist() == [
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 1, 1, 0],  # the edge itself belongs to the coarser bucket
        [0, 0, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ]


def test_bucket_gate_with_variance_is_bucket_probability():
    edges = torch.tensor([0.0, 1.0], dtype=torch.float64)
    s = torch.tensor([0.5], dtype=torch.float64)
    var = torch.tensor([0.25], dtype=torch.float64)
    g = bucket_gate(s, edges, [1, 1, 1], var)[0]
    # P(s<0), P(0<s<1), P(s>1) for N(0.5, 0.5^2): Phi(-1), 1-2 Phi(-1), Phi(-1)
    phi = 0.5 * (1 + math.erf(-1 / math.sqrt(2)))
    assert g.tolist() == pytest.approx([phi, 1 - 2 * phi, phi], rel=1e-9)
    assert g.sum().item() == pytest.approx(1.0)


def test_log10_gsd_from_metres():
    assert log10_gsd(10.0).item() == pytest.approx(1.0)
    assert log10_gsd(torch.tensor([0.15, 1000.0])).tolist() == pytest.approx([math.log10(0.15), 3.0])


@pytest.mark.parametrize("bad", [0.0, -2.0, float("nan"), float("inf")])
def test_log10_gsd_rejects_impossible_metres(bad):
    with pytest.raises(ValueError, match="GSD must be"):
        log10_gsd(bad)


def test_implausible_gsd_warns_but_is_kept():
    with pytest.warns(UserWarning, match="plausible range"):
        s = log10_gsd(50_000.0)
    assert s.item() == pytest.approx(math.log10(50_000.0))
