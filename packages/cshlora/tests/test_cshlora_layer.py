import math

import pytest
import torch
from cshlora_test_utils import randomize_adapter
from torch import nn

from cshlora import CSHLoRAConfig, CSHLoRALinear


def make_layer(d_in=12, d_out=10, dtype=torch.float32, seed=0, **cfg):
    torch.manual_seed(seed)
    base = nn.Linear(d_in, d_out).to(dtype)
    layer = CSHLoRALinear(base, CSHLoRAConfig(**{"r": 8, "alpha": 16, **cfg}))
    randomize_adapter(layer, seed)
    return layer


def reference_forward(layer: CSHLoRALinear, x: torch.Tensor, s_rows: torch.Tensor) -> torch.Tensor:
    """The formula written out rank by rank in float64 (no shared code with the layer)."""
    W = layer.base_layer.weight.double()
    b = layer.base_layer.bias.double() if layer.base_layer.bias is not None else 0
    A, B = layer.lora_A.double(), layer.lora_B.double()
    tau, a = layer.tau.double(), layer.sharpness.double()
    x = x.double()
    out = x @ W.T + b
    scaling = layer.config.alpha / layer.config.r
    for k in range(layer.r):
        h = 1.0 / (1.0 + torch.exp(-a[k] * (tau[k] - s_rows.double())))  # [rows]
        out = out + scaling * (h.unsqueeze(-1) * (x @ A[k]).unsqueeze(-1)) * B[:, k]
    return out


def test_matches_the_written_out_formula():
    layer = make_layer()
    x = torch.randn(5, 12)
    s = torch.tensor([-1.0, 0.0, 0.3, 1.2, 2.5])
    y = layer(x, log10_gsd=s)
    assert torch.allclose(y.double(), reference_forward(layer, x, s), atol=1e-5, rtol=1e-5)


def test_open_gates_equal_peft_lora():
    from peft import LoraConfig
    from peft.tuners.lora.layer import Linear as PeftLinear

    torch.manual_seed(0)
    base = nn.Linear(32, 24)
    peft_layer = PeftLinear(base, "default", config=LoraConfig(r=8, lora_alpha=16), r=8, lora_alpha=16)
    nn.init.normal_(peft_layer.lora_B["default"].weight)
    ours_open = CSHLoRALinear(nn.Linear(32, 24), CSHLoRAConfig(r=8, alpha=16))
    ours_plain = CSHLoRALinear(nn.Linear(32, 24), CSHLoRAConfig(r=8, alpha=16, gate="none"))
    for layer in (ours_open, ours_plain):
        layer.base_layer.load_state_dict(base.state_dict())
        with torch.no_grad():
            layer.lora_A.copy_(peft_layer.lora_A["default"].weight)
            layer.lora_B.copy_(peft_layer.lora_B["default"].weight)
    x = torch.randn(3, 7, 32)
    expected = peft_layer(x)
    # s far below every threshold: sigmoid(4 * (tau + 40)) == 1.0 in float32
    with pytest.warns(UserWarning, match="plausible range"):
        opened = ours_open(x, log10_gsd=torch.full((3,), -40.0))
    torch.testing.assert_close(opened, expected)
    torch.testing.assert_close(ours_plain(x), expected, rtol=0, atol=0)


def test_batch_with_mixed_gsd_equals_each_sample_alone():
    layer = make_layer()
    x = torch.randn(4, 6, 12)
    s = torch.tensor([-0.8, 0.4, 1.0, 2.9])
    together = layer(x, log10_gsd=s)
    for i in range(4):
        alone = layer(x[i : i + 1], log10_gsd=s[i : i + 1])
        torch.testing.assert_close(together[i : i + 1], alone)


def test_per_token_scale_for_packed_sequences():
    layer = make_layer()
    x = torch.randn(2, 7, 12)
    s_tok = torch.tensor([[0.1] * 3 + [1.7] * 4, [2.2] * 7])
    packed = layer(x, log10_gsd=s_tok)
    torch.testing.assert_close(packed[0, :3], layer(x[:1, :3], log10_gsd=torch.tensor([0.1]))[0])
    torch.testing.assert_close(packed[0, 3:], layer(x[:1, 3:], log10_gsd=torch.tensor([1.7]))[0])
    torch.testing.assert_close(packed[1], layer(x[1:], log10_gsd=torch.tensor([2.2]))[0])


def test_scalar_scale_broadcasts_and_2d_input_is_rows():
    layer = make_layer()
    x = torch.randn(3, 12)
    torch.testing.assert_close(layer(x, log10_gsd=0.7), layer(x, log10_gsd=torch.full((3,), 0.7)))


def test_unbatched_1d_input_with_scalar_scale():
    layer = make_layer()
    x = torch.randn(12)
    torch.testing.assert_close(layer(x, log10_gsd=0.4), layer(x.unsqueeze(0), log10_gsd=0.4)[0])


def test_gradcheck_float64_all_inputs():
    layer = make_layer(d_in=5, d_out=4, dtype=torch.float64, r=4)
    assert layer.lora_A.dtype == torch.float64
    x = torch.randn(3, 2, 5, dtype=torch.float64, requires_grad=True)
    s = torch.tensor([-0.5, 0.8, 2.0], dtype=torch.float64, requires_grad=True)
    var = torch.tensor([0.0, 0.3, 1.5], dtype=torch.float64, requires_grad=True)
    params = (layer.lora_A, layer.lora_B, layer.tau, layer.sharpness)
    assert all(p.requires_grad for p in params)

    def fn(x, s, var, A, B, tau, a):
        with torch.no_grad():
            for p, v in zip(params, (A, B, tau, a)):
                p.set_(v.detach().clone())
        # route the parameters through the functional form so gradcheck perturbs them
        out = layer.base_layer(x)
        from cshlora.backends import gated_lowrank
        from cshlora.gate import continuous_gate

        gate = continuous_gate(s.reshape(3, 1), tau, a, var.reshape(3, 1))
        return out + gated_lowrank(x, A, B, layer.scaling, gate)

    inputs = (x, s, var) + tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(fn, inputs)
    # and the module itself, through its own parameters
    y = layer(x, log10_gsd=s, var=var)
    grads = torch.autograd.grad(y.sum(), (x, s, var, *params))
    ref = torch.autograd.grad(fn(*inputs).sum(), inputs)
    for g, r in zip(grads, ref):
        torch.testing.assert_close(g, r)


def test_gradcheck_module_parameters_directly():
    layer = make_layer(d_in=4, d_out=3, dtype=torch.float64, r=4)
    x = torch.randn(2, 4, dtype=torch.float64)
    s = torch.tensor([0.2, 1.4], dtype=torch.float64)
    params = [layer.lora_A, layer.lora_B, layer.tau, layer.sharpness]

    def fn(*vals):
        originals = [p.data for p in params]
        for p, v in zip(params, vals):
            p.data = v
        try:
            # d/dv through the module: functional_call keeps autograd on the substituted tensors
            return torch.func.functional_call(
                layer, {n: v for n, v in zip(("lora_A", "lora_B", "tau", "sharpness"), vals)}, (x,), {"log10_gsd": s}
            )
        finally:
            for p, o in zip(params, originals):
                p.data = o

    assert torch.autograd.gradcheck(fn, tuple(p.detach().clone().requires_grad_(True) for p in params))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_base_keeps_fp32_adapter_and_output_dtype(dtype):
    ref = make_layer()
    half = make_layer()
    half.base_layer.to(dtype)
    assert half.lora_A.dtype == torch.float32
    x = torch.randn(4, 12)
    y = half(x.to(dtype), log10_gsd=torch.tensor([0.0, 0.5, 1.0, 1.5]))
    assert y.dtype == dtype
    expected = ref(x, log10_gsd=torch.tensor([0.0, 0.5, 1.0, 1.5]))
    torch.testing.assert_close(y.float(), expected, atol=0.1, rtol=0.05)


def test_tau_and_sharpness_can_be_frozen():
    layer = CSHLoRALinear(nn.Linear(4, 4), CSHLoRAConfig(r=4, learn_tau=False, learn_sharpness=False))
    assert not layer.tau.requires_grad and not layer.sharpness.requires_grad
    assert layer.lora_A.requires_grad and layer.lora_B.requires_grad


def test_lora_b_starts_at_zero_so_adapter_starts_as_base():
    base = nn.Linear(8, 6)
    layer = CSHLoRALinear(base, CSHLoRAConfig(r=8))
    x = torch.randn(3, 8)
    assert torch.equal(layer(x, log10_gsd=0.0), base(x))


def test_bucketed_baseline_is_parameter_matched_and_opens_one_slice():
    torch.manual_seed(0)
    lora = CSHLoRALinear(nn.Linear(12, 10), CSHLoRAConfig(r=9, gate="none"))
    moe = CSHLoRALinear(nn.Linear(12, 10), CSHLoRAConfig(r=9, gate="bucketed", bucket_edges_m=(2.0, 30.0)))
    assert moe.lora_A.numel() + moe.lora_B.numel() == lora.lora_A.numel() + lora.lora_B.numel()
    randomize_adapter(moe)
    x = torch.randn(3, 12)
    s = torch.log10(torch.tensor([0.5, 10.0, 300.0]))
    y = moe(x, log10_gsd=s)
    base = moe.base_layer(x)
    for row, sl in enumerate((slice(0, 3), slice(3, 6), slice(6, 9))):
        A, B = moe.lora_A[sl], moe.lora_B[:, sl]
        expected = base[row] + moe.scaling * (B @ (A @ x[row]))
        torch.testing.assert_close(y[row], expected)


def test_default_scale_when_configured():
    layer = make_layer(default_log10_gsd=1.0)
    x = torch.randn(2, 12)
    torch.testing.assert_close(layer(x), layer(x, log10_gsd=1.0))


@pytest.mark.parametrize(
    "s, message",
    [
        (torch.tensor([float("nan"), 0.0]), "must be finite"),
        (torch.tensor([0.0, float("inf")]), "must be finite"),
        (torch.tensor([0.0, 1.0, 2.0]), "leading dimensions"),
        (torch.zeros(2, 3), "leading dimensions"),
    ],
)
def test_bad_scale_names_the_problem(s, message):
    layer = make_layer()
    with pytest.raises(ValueError, match=message):
        layer(torch.randn(2, 5, 12), log10_gsd=s)


def test_negative_variance_rejected():
    with pytest.raises(ValueError, match="var must be finite and >= 0"):
        make_layer()(torch.randn(2, 12), log10_gsd=torch.zeros(2), var=torch.tensor([0.1, -0.1]))


def test_forward_without_a_scale_is_an_error():
    with pytest.raises(ValueError, match="no scale set"):
        make_layer()(torch.randn(2, 12))


def test_wraps_only_linear():
    with pytest.raises(TypeError, match="nn.Linear"):
        CSHLoRALinear(nn.Conv2d(3, 3, 1), CSHLoRAConfig())


def test_unavailable_backend_is_a_clear_error(monkeypatch):
    layer = make_layer(backend="triton")
    with pytest.raises(ValueError, match="backend 'triton' is not available"):
        layer(torch.randn(2, 12), log10_gsd=0.0)
    monkeypatch.setenv("CSHLORA_BACKEND", "torch")
    assert layer(torch.randn(2, 12), log10_gsd=0.0).shape == (2, 10)


def test_repr_shows_gate_and_chosen_backend():
    text = repr(make_layer())
    assert "gate=continuous" in text and "backend=auto->torch" in text


def test_dropout_only_in_training():
    layer = make_layer(dropout=0.5)
    x = torch.randn(64, 12)
    layer.eval()
    torch.testing.assert_close(layer(x, log10_gsd=0.0), layer(x, log10_gsd=0.0))
    layer.train()
    assert not torch.equal(layer(x, log10_gsd=0.0), layer(x, log10_gsd=0.0))
    assert math.isclose(layer.dropout.p, 0.5)
