import math
import subprocess
import sys

import pytest
import torch

from sseu import MAX_STD_LOG10, MIN_STD_LOG10, SSEUHead, SSEUPrediction


def _randomise_output(head: SSEUHead, seed: int = 0) -> None:
    # The output layer starts at zero; give it weights so the input actually matters.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        out = head.mlp[-1]
        out.weight.copy_(torch.randn(out.weight.shape, generator=g, dtype=out.weight.dtype))


def test_untrained_head_predicts_the_configured_prior_for_any_input():
    torch.manual_seed(0)
    head = SSEUHead(16, hidden=8, init_mean=0.5, init_std=0.8)
    pred = head(torch.randn(5, 7, 16) * 100)
    assert pred.mean.shape == pred.var.shape == (5,)
    torch.testing.assert_close(pred.mean, torch.full((5,), 0.5))
    torch.testing.assert_close(pred.std, torch.full((5,), 0.8))


def test_default_prior_is_ten_metres_with_one_decade_of_std():
    pred = SSEUHead(4)(torch.randn(3, 4))
    torch.testing.assert_close(pred.gsd_m(), torch.full((3,), 10.0))
    torch.testing.assert_close(pred.std, torch.ones(3))


def test_variance_stays_inside_its_bounds_for_extreme_raw_outputs():
    head = SSEUHead(2, hidden=4, input_norm=False)
    with torch.no_grad():
        # hidden units 0,1 read feature 0 and push raw up; units 2,3 read feature 1 and push it down.
        head.mlp[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]))
        head.mlp[0].bias.zero_()
        head.mlp[-1].weight.zero_()
        head.mlp[-1].weight[1].copy_(torch.tensor([1.0, 1.0, -1.0, -1.0]))
        head.mlp[-1].bias.zero_()
    x = torch.tensor([[1e4, 0.0], [0.0, 1e4], [0.0, 0.0], [1e30, 0.0]])
    std = head(x).std.detach()
    assert torch.isfinite(std).all()
    assert std[0] == pytest.approx(MAX_STD_LOG10, rel=1e-5)
    assert std[3] == pytest.approx(MAX_STD_LOG10, rel=1e-5)
    assert std[1] == pytest.approx(MIN_STD_LOG10, rel=1e-5)
    # raw = 0: sigmoid(0) = 1/2 puts log std halfway, i.e. std at the geometric middle.
    assert std[2] == pytest.approx(math.sqrt(MIN_STD_LOG10 * MAX_STD_LOG10), rel=1e-5)


def test_pooled_input_equals_a_single_token():
    torch.manual_seed(1)
    head = SSEUHead(8, hidden=16)
    _randomise_output(head)
    x = torch.randn(4, 8)
    a, b = head(x), head(x.unsqueeze(1))
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.var, b.var)


def test_mean_pooling_matches_the_mean_of_the_valid_tokens():
    torch.manual_seed(2)
    head = SSEUHead(6, hidden=16, pooling="mean", input_norm=False)
    _randomise_output(head)
    tokens = torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 0, 1, 0, 0], [0, 0, 0, 0, 1]])
    pred = head(tokens, mask)
    for i in range(3):
        pooled = tokens[i][mask[i].bool()].mean(dim=0, keepdim=True)
        ref = head(pooled)
        torch.testing.assert_close(pred.mean[i : i + 1], ref.mean)
        torch.testing.assert_close(pred.var[i : i + 1], ref.var)


@pytest.mark.parametrize("pooling", ["attention", "mean"])
def test_padding_content_never_changes_the_output(pooling):
    torch.manual_seed(3)
    head = SSEUHead(8, hidden=16, pooling=pooling)
    _randomise_output(head)
    tokens = torch.randn(2, 6, 8)
    mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 2 + [False] * 4])
    garbage = tokens.clone()
    garbage[0, 4:] = 1e6
    garbage[1, 2:] = float("nan")
    a, b = head(tokens, mask), head(garbage, mask)
    torch.testing.assert_close(a.mean, b.mean)
    torch.testing.assert_close(a.var, b.var)


def test_attention_pooling_is_permutation_invariant_and_depends_on_content():
    torch.manual_seed(4)
    head = SSEUHead(8, hidden=16)
    _randomise_output(head)
    with torch.no_grad():
        head.score.weight.normal_()
    tokens = torch.randn(2, 5, 8)
    perm = torch.tensor([3, 0, 4, 1, 2])
    a, b = head(tokens), head(tokens[:, perm])
    torch.testing.assert_close(a.mean, b.mean)
    # Attention is not the plain mean once its scores are non-trivial.
    mean_head = SSEUHead(8, hidden=16, pooling="mean")
    mean_head.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("score")})
    assert not torch.allclose(a.mean, mean_head(tokens).mean)


def test_bf16_features_are_promoted_to_the_head_precision():
    torch.manual_seed(5)
    head = SSEUHead(8, hidden=16)
    _randomise_output(head)
    x = torch.randn(3, 4, 8).to(torch.bfloat16)
    pred = head(x)
    assert pred.mean.dtype == torch.float32
    torch.testing.assert_close(pred.mean, head(x.float()).mean)


def test_head_forward_gradcheck_float64():
    torch.manual_seed(6)
    head = SSEUHead(5, hidden=7).double()
    _randomise_output(head)
    with torch.no_grad():
        head.score.weight.normal_()
    tokens = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, True, True]])

    def f(t):
        pred = head(t, mask)
        return pred.mean, pred.var

    assert torch.autograd.gradcheck(f, (tokens,), eps=1e-6, atol=1e-5)


def test_prediction_interval_uses_gaussian_quantiles():
    pred = SSEUPrediction(mean=torch.tensor([1.0, -0.5], dtype=torch.float64),
                          var=torch.tensor([0.04, 0.25], dtype=torch.float64))  # fmt: skip
    lo, hi = pred.interval(0.95)
    # 1.959963984540054 = Phi^-1(0.975), a textbook constant.
    torch.testing.assert_close(hi - pred.mean, 1.959963984540054 * pred.std)
    torch.testing.assert_close(pred.mean - lo, 1.959963984540054 * pred.std)
    torch.testing.assert_close(pred.interval_width(0.95), hi - lo)
    lo_m, hi_m = pred.interval_m(0.6827)
    torch.testing.assert_close(lo_m, 10.0 ** (pred.mean - 1.0000217 * pred.std), rtol=1e-6, atol=0)
    torch.testing.assert_close(hi_m, 10.0 ** (pred.mean + 1.0000217 * pred.std), rtol=1e-6, atol=0)
    torch.testing.assert_close(pred.gsd_m(), torch.tensor([10.0, 10**-0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="level"):
        pred.interval(1.0)


def test_prediction_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        SSEUPrediction(torch.zeros(3), torch.ones(2))


@pytest.mark.parametrize("bad, what", [(float("nan"), "NaN"), (float("inf"), "inf")])
def test_non_finite_features_raise_naming_the_problem(bad, what):
    head = SSEUHead(4, hidden=8)
    x = torch.randn(3, 2, 4)
    x[1, 0, 2] = bad
    expected = "1 NaN and 0 inf" if what == "NaN" else "0 NaN and 1 inf"
    with pytest.raises(ValueError, match=rf"features must be finite but has {expected} .*\[1, 0, 2\]"):
        head(x)


def test_empty_mask_rows_are_rejected():
    head = SSEUHead(4, hidden=8)
    mask = torch.tensor([[True, False], [False, False], [False, False]])
    with pytest.raises(ValueError, match=r"mask rows \[1, 2\] have no valid tokens"):
        head(torch.randn(3, 2, 4), mask)


@pytest.mark.parametrize(
    "features, mask, message",
    [
        (torch.randn(3, 5), None, r"features must be \[B, 4\]"),
        (torch.randn(3, 2, 2, 4), None, "features must be"),
        (torch.randn(3, 2, 4), torch.ones(3, 3, dtype=torch.bool), r"mask must be \[B, N\]"),
        (torch.randn(3, 4), torch.ones(3, 1, dtype=torch.bool), "mask is only meaningful"),
    ],
)
def test_malformed_inputs_raise(features, mask, message):
    with pytest.raises(ValueError, match=message):
        SSEUHead(4, hidden=8)(features, mask)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pooling="max"), "pooling"),
        (dict(min_std=0.0), "min_std"),
        (dict(init_std=5.0), "init_std"),
        (dict(init_mean=float("nan")), "init_mean"),
        (dict(hidden=0), "hidden"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SSEUHead(4, **kwargs)


def test_import_pulls_in_neither_matplotlib_nor_other_workspace_packages():
    code = (
        "import sys, sseu; "
        "bad = [m for m in ('matplotlib', 'cshlora', 'geoscale_vqa', 'scaleearth_cli') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
