import math

import pytest
import torch
import torch.nn.functional as F

from sseu import SSEUPrediction, beta_nll_loss, gaussian_nll_loss, sseu_loss


def _data(n=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(n, generator=g, dtype=dtype)
    var = torch.rand(n, generator=g, dtype=dtype) * 0.5 + 0.05
    target = torch.randn(n, generator=g, dtype=dtype)
    return mean, var, target


def test_gaussian_nll_matches_torch_reference():
    mean, var, target = _data()
    ours = gaussian_nll_loss(SSEUPrediction(mean, var), target)
    ref = F.gaussian_nll_loss(mean, target, var, full=False, eps=0.0)
    torch.testing.assert_close(ours, ref)


def test_gaussian_nll_by_hand():
    pred = SSEUPrediction(torch.tensor([0.0, 1.0], dtype=torch.float64),
                          torch.tensor([0.25, 1.0], dtype=torch.float64))  # fmt: skip
    target = torch.tensor([0.5, 3.0], dtype=torch.float64)
    # 0.5*(log .25 + .25/.25) and 0.5*(log 1 + 4/1)
    expected = [0.5 * (math.log(0.25) + 1.0), 0.5 * 4.0]
    per = gaussian_nll_loss(pred, target, reduction="none")
    assert per.tolist() == pytest.approx(expected, rel=1e-12)
    assert float(gaussian_nll_loss(pred, target, reduction="sum")) == pytest.approx(sum(expected))


def test_beta_nll_value_is_nll_times_var_to_the_beta():
    mean, var, target = _data()
    pred = SSEUPrediction(mean, var)
    nll = gaussian_nll_loss(pred, target, reduction="none")
    for beta in (0.0, 0.5, 1.0):
        got = beta_nll_loss(pred, target, beta=beta, reduction="none")
        torch.testing.assert_close(got, nll * var**beta)


def test_nll_gradcheck_wrt_mean_and_var():
    mean, var, target = _data()
    mean.requires_grad_(True)
    var.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda m, v: gaussian_nll_loss(SSEUPrediction(m, v), target, reduction="none"), (mean, var)
    )
    assert torch.autograd.gradcheck(lambda m, v: beta_nll_loss(SSEUPrediction(m, v), target, beta=0.0), (mean, var))


@pytest.mark.parametrize("beta", [0.25, 0.5, 1.0])
def test_beta_nll_gradcheck_wrt_mean(beta):
    mean, var, target = _data(seed=1)
    mean.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda m: beta_nll_loss(SSEUPrediction(m, var), target, beta=beta, reduction="none"), (mean,)
    )


@pytest.mark.parametrize("beta", [0.25, 0.5, 1.0])
def test_beta_nll_gradients_follow_the_stop_gradient_closed_form(beta):
    # The var**beta factor is a stop-gradient, so finite differences of the loss value (what
    # gradcheck compares against) are *not* the intended var-gradient; check the closed form:
    # d/dmean = var**beta * (mean - t) / var,  d/dvar = var**beta * 0.5 * (1/var - r**2/var**2).
    mean, var, target = _data(seed=2)
    mean.requires_grad_(True)
    var.requires_grad_(True)
    beta_nll_loss(SSEUPrediction(mean, var), target, beta=beta, reduction="sum").backward()
    m, v, r = mean.detach(), var.detach(), (target - mean.detach())
    torch.testing.assert_close(mean.grad, v**beta * (m - target) / v)
    torch.testing.assert_close(var.grad, v**beta * 0.5 * (1.0 / v - r**2 / v**2))
    full_derivative = v**beta * 0.5 * (1 / v - r**2 / v**2) + beta * v ** (beta - 1) * 0.5 * (v.log() + r**2 / v)
    assert not torch.allclose(var.grad, full_derivative)


def test_warmup_trains_mean_by_mse_and_var_on_a_detached_mean():
    mean, var, target = _data(seed=3)
    mean.requires_grad_(True)
    var.requires_grad_(True)
    sseu_loss(SSEUPrediction(mean, var), target, step=4, warmup_steps=5, reduction="sum").backward()
    r = target - mean.detach()
    torch.testing.assert_close(mean.grad, -2.0 * r)
    torch.testing.assert_close(var.grad, 0.5 * (1.0 / var.detach() - r**2 / var.detach() ** 2))


def test_warmup_loss_gradcheck_wrt_var():
    # Only var: the warm-up reads a detached mean in its NLL term on purpose, so finite differences
    # in the mean are not its gradient (the closed-form test above covers the mean).
    mean, var, target = _data(seed=4)
    var.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda v: sseu_loss(SSEUPrediction(mean, v), target, step=0, warmup_steps=1), (var,)
    )


def test_after_warmup_the_loss_is_beta_nll():
    mean, var, target = _data(seed=5)
    pred = SSEUPrediction(mean, var)
    torch.testing.assert_close(
        sseu_loss(pred, target, step=10, warmup_steps=10, beta=0.3), beta_nll_loss(pred, target, beta=0.3)
    )


@pytest.mark.parametrize("bad, what", [(float("nan"), "NaN"), (float("inf"), "inf")])
def test_non_finite_targets_raise_naming_the_problem(bad, what):
    mean, var, target = _data()
    target[2] = bad
    for loss in (gaussian_nll_loss, beta_nll_loss):
        with pytest.raises(ValueError, match=rf"target must be finite but has .*1 {what}"):
            loss(SSEUPrediction(mean, var), target)


def test_non_finite_predictions_and_bad_shapes_raise():
    mean, var, target = _data()
    mean[0] = float("nan")
    with pytest.raises(ValueError, match="predicted mean must be finite but has 1 NaN"):
        beta_nll_loss(SSEUPrediction(mean, var), target)
    mean, var, target = _data()
    with pytest.raises(ValueError, match="target .* must be a tensor of shape"):
        beta_nll_loss(SSEUPrediction(mean, var), target[:3])
    with pytest.raises(ValueError, match="beta"):
        beta_nll_loss(SSEUPrediction(mean, var), target, beta=1.5)
    with pytest.raises(ValueError, match="reduction"):
        gaussian_nll_loss(SSEUPrediction(mean, var), target, reduction="avg")
    with pytest.raises(ValueError, match="var must be > 0"):
        gaussian_nll_loss(SSEUPrediction(mean, torch.zeros_like(var)), target)
