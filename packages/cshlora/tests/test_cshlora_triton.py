"""The fused triton backend against the torch reference, on CPU through Triton's interpreter (fp32).

Every comparison is to an independent computation: the torch backend on a float64 copy of the layer
(or, for NF4 bases, the torch backend on the same layer). ``TRITON_INTERPRET=1`` is set by a
module fixture before any kernel is loaded; ``cshlora.kernels`` re-decorates the kernels if they
were loaded earlier in another mode, so the order tests run in does not matter.
"""

import copy
import os
import random
import subprocess
import sys
import warnings

import pytest
import torch
from cshlora_test_utils import randomize_adapter
from torch import nn

import cshlora
from cshlora import CSHLoRAConfig, CSHLoRALinear

pytest.importorskip("triton")
from cshlora import kernels  # noqa: E402  (imports no triton by itself)
from cshlora.kernels import autograd as kautograd  # noqa: E402
from cshlora.kernels import launch  # noqa: E402

TOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def triton_interpreter():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRITON_INTERPRET", "1")
        mp.delenv("CSHLORA_BACKEND", raising=False)
        mp.delenv(kautograd.BASE_ENV_VAR, raising=False)
        assert kernels.load_lowrank().INTERPRETED
        yield


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    """max |got - ref| / max |ref|: robust to individual near-zero elements."""
    assert got.shape == ref.shape, (got.shape, ref.shape)
    assert bool(torch.isfinite(got).all()), "non-finite values"
    return ((got.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-30)).item()


def make_layer(d_in, d_out, r, gate="continuous", backend="triton", bias=True, seed=0, base=None, **cfg):
    torch.manual_seed(seed)
    base = base if base is not None else nn.Linear(d_in, d_out, bias=bias)
    base.requires_grad_(False)
    layer = CSHLoRALinear(base, CSHLoRAConfig(r=r, alpha=2.0 * r, gate=gate, backend=backend, **cfg))
    randomize_adapter(layer, seed)
    return layer


def as_reference(layer: CSHLoRALinear) -> CSHLoRALinear:
    """The same layer in float64 on the torch backend."""
    ref = copy.deepcopy(layer).double()
    ref.config.backend = "torch"
    return ref


def run(layer, x, s=None, var=None, loss="weighted", seed=0):
    """Output and gradients of every leaf that requires grad (x, s, var, adapter parameters)."""
    leaves = [t for t in (x, s, var) if torch.is_tensor(t) and t.requires_grad]
    leaves += [p for p in layer.parameters() if p.requires_grad]
    y = layer(x, log10_gsd=s, var=var)
    if loss == "sum":  # dY arrives expanded (all strides 0)
        objective = y.sum()
    elif loss == "transposed":  # dY arrives transposed
        w = torch.randn(y.shape[::-1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        objective = (y.transpose(0, -1) * w.to(y.dtype)).sum()
    else:
        w = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        objective = (y * w.to(y.dtype)).sum()
    grads = torch.autograd.grad(objective, leaves, allow_unused=True)
    return y, grads


def leaf64(t):
    if not torch.is_tensor(t):
        return t
    return t.detach().double().requires_grad_(t.requires_grad)


def make_x(lead, d_in, layout, rng_seed):
    g = torch.Generator().manual_seed(rng_seed)
    if layout == "stride_k":  # every other column: a strided view, no copy
        return torch.randn(*lead, 2 * d_in, generator=g)[..., ::2]
    if layout == "padded_rows":  # rows longer than d_in
        return torch.randn(*lead, d_in + 7, generator=g)[..., :d_in]
    if layout == "transposed":  # 2-D: column-major view; 3-D: [T, B] swapped (reshape copies)
        if len(lead) == 1:
            return torch.randn(d_in, lead[0], generator=g).t()
        return torch.randn(lead[1], lead[0], d_in, generator=g).transpose(0, 1)
    return torch.randn(*lead, d_in, generator=g)


def random_case(seed, ranks=(8, 16)):
    rnd = random.Random(seed)
    three_d = rnd.random() < 0.6
    lead = (rnd.randint(1, 3), rnd.randint(5, 27)) if three_d else (rnd.randint(20, 70),)
    return dict(
        lead=lead,
        d_in=rnd.choice([20, 33, 45, 64]),
        d_out=rnd.choice([17, 31, 40, 66]),
        r=rnd.choice(ranks),
        gate=rnd.choice(["continuous", "continuous", "none", "bucketed"]),
        s_kind=rnd.choice(["scalar", "sample", "token"] if three_d else ["scalar", "sample"]),
        with_var=rnd.random() < 0.5,
        layout=rnd.choice(["contiguous", "stride_k", "padded_rows", "transposed"]),
        x_grad=rnd.random() < 0.8,
        bias=rnd.random() < 0.7,
        learn_tau=rnd.random() < 0.8,
        loss=rnd.choice(["weighted", "weighted", "sum", "transposed"]),
    )


def check_against_float64(case, seed=0):
    layer = make_layer(case["d_in"], case["d_out"], case["r"], case["gate"], bias=case["bias"], seed=seed,
                       learn_tau=case["learn_tau"])  # fmt: skip
    ref = as_reference(layer)
    lead = case["lead"]
    x = make_x(lead, case["d_in"], case["layout"], seed).requires_grad_(case["x_grad"])
    g = torch.Generator().manual_seed(seed + 1)
    s_shape = {"scalar": (), "sample": lead[:1], "token": lead}[case["s_kind"]]
    s = (torch.rand(s_shape, generator=g) * 3.0 - 1.0).requires_grad_(True)  # log10 GSD in [-1, 2]
    var = (torch.rand(s_shape, generator=g) * 0.5).requires_grad_(True) if case["with_var"] else None
    y, grads = run(layer, x, s, var, case["loss"], seed)
    y_ref, grads_ref = run(ref, leaf64(x), leaf64(s), leaf64(var), case["loss"], seed)
    assert y.dtype == torch.float32
    assert rel_err(y, y_ref) < TOL
    for i, (got, want) in enumerate(zip(grads, grads_ref)):
        assert (got is None) == (want is None), f"gradient {i}: {got is None} vs {want is None}"
        if got is not None:
            assert rel_err(got, want) < TOL, f"gradient {i} of {case}"


@pytest.mark.parametrize("seed", range(16))
def test_random_shapes_match_float64_reference(seed):
    check_against_float64(random_case(seed), seed)


@pytest.mark.slow
@pytest.mark.parametrize("r", [8, 16, 32, 64, 128])
def test_every_rank_with_per_token_scale_and_variance(r):
    case = dict(lead=(2, 19), d_in=70, d_out=45, r=r, gate="continuous", s_kind="token", with_var=True,
                layout="stride_k", x_grad=True, bias=True, learn_tau=True, loss="weighted")  # fmt: skip
    check_against_float64(case, seed=r)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 110))
def test_more_random_shapes(seed):
    check_against_float64(random_case(seed, ranks=(8, 16, 32, 64, 128)), seed)


def test_mixed_gsd_batch_rows_gated_independently():
    """Ragged per-sample s: each sample of the batch equals that sample run alone (and the reference)."""
    layer = make_layer(33, 29, 16)
    x = torch.randn(4, 9, 33)
    s = torch.tensor([-0.9, 0.3, 1.4, 2.6])
    together = layer(x, log10_gsd=s)
    for i in range(4):
        alone = as_reference(layer)(x[i : i + 1].double(), log10_gsd=s[i : i + 1].double())
        assert rel_err(together[i : i + 1], alone) < TOL


def test_gate_kinds_and_variance_explicitly():
    for gate in ("continuous", "none", "bucketed"):
        for with_var in (False, True):
            case = dict(lead=(3, 11), d_in=40, d_out=36, r=8, gate=gate, s_kind="token", with_var=with_var,
                        layout="contiguous", x_grad=True, bias=True, learn_tau=True, loss="weighted")  # fmt: skip
            check_against_float64(case)


def test_base_product_through_torch_matches(monkeypatch):
    monkeypatch.setenv(kautograd.BASE_ENV_VAR, "torch")
    case = dict(lead=(2, 13), d_in=45, d_out=37, r=16, gate="continuous", s_kind="sample", with_var=True,
                layout="transposed", x_grad=True, bias=True, learn_tau=True, loss="weighted")  # fmt: skip
    check_against_float64(case)


def test_nf4_base_matches_torch_backend():
    bnb = pytest.importorskip("bitsandbytes")
    torch.manual_seed(0)
    dense = nn.Linear(64, 40)
    q = bnb.nn.Linear4bit(64, 40, compute_dtype=torch.float32, quant_type="nf4")
    q.load_state_dict(dense.state_dict())
    q = q.to("cpu")  # quantises
    layer = make_layer(64, 40, 16, base=q, seed=3)
    ref = copy.deepcopy(layer)
    ref.config.backend = "torch"
    assert type(layer.base_layer).__name__ == "Linear4bit"
    for base_mode in ("fused", "torch"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(kautograd.BASE_ENV_VAR, base_mode)
            x = torch.randn(3, 21, 64, requires_grad=True)
            s = torch.tensor([0.1, 1.2, 2.0], requires_grad=True)
            var = torch.tensor([0.0, 0.3, 0.8], requires_grad=True)
            y, grads = run(layer, x, s, var)
            y_ref, grads_ref = run(ref, leaf64(x).float(), leaf64(s).float(), leaf64(var).float())
            assert rel_err(y, y_ref) < TOL
            for got, want in zip(grads, grads_ref):
                assert rel_err(got, want) < TOL


def nan_alloc(shape, dtype, device):
    return torch.full(shape, float("nan"), dtype=dtype, device=device)


def test_every_buffer_is_written_end_to_end(monkeypatch):
    """All kernel outputs and partials start as NaN; any element left unwritten would surface."""
    monkeypatch.setattr(launch, "alloc", nan_alloc)
    for gate in ("continuous", "bucketed", "none"):
        case = dict(lead=(2, 23), d_in=45, d_out=37, r=8, gate=gate, s_kind="token", with_var=True,
                    layout="contiguous", x_grad=True, bias=True, learn_tau=True, loss="weighted")  # fmt: skip
        check_against_float64(case)


def test_launchers_fill_preallocated_nan_buffers():
    torch.manual_seed(0)
    M, K, N, R, c = 37, 45, 29, 8, 0.5
    x, A, B = torch.randn(M, K), torch.randn(R, K), torch.randn(N, R)
    W, bias = torch.randn(N, K), torch.randn(N)
    s, var = torch.rand(M) * 3 - 1, torch.rand(M) * 0.5
    tau, a = torch.rand(R) * 3 - 1, torch.rand(R) * 5 + 1
    nan = lambda *shape: torch.full(shape, float("nan"))
    gate64 = cshlora.continuous_gate(s.double(), tau.double(), a.double(), var.double())
    xa_ref = x.double() @ A.double().T
    u_ref = c * gate64 * xa_ref

    xa, u = launch.shrink(x, A, c, 1, s=s, var=var, tau=tau, sharp=a, xa=nan(M, R), u=nan(M, R))
    assert rel_err(xa, xa_ref) < TOL and rel_err(u, u_ref) < TOL

    y = launch.matmul_lowrank(x, W.t(), u, B.t(), bias=bias, c=torch.ones(M, N), out=nan(M, N))
    assert rel_err(y, x.double() @ W.double().T + bias.double() + u_ref @ B.double().T + 1) < TOL

    dy = torch.randn(M, N)
    parts = {"dxa": nan(M, R), "ds": nan(M), "dvar": nan(M), "dtau": nan(2, R), "dsharp": nan(2, R)}
    rows = launch.bwd_rows(dy, B, xa, c, 1, s=s, var=var, tau=tau, sharp=a, out=parts)
    assert rel_err(rows["dxa"], c * gate64 * (dy.double() @ B.double())) < TOL
    for name in ("ds", "dvar", "dtau", "dsharp"):
        assert bool(torch.isfinite(rows[name]).all()), name

    for transpose_out in (False, True):
        splits = launch.triton_cdiv(M, launch.INTERPRET_BLOCK)
        shape = (splits, K, R) if transpose_out else (splits, R, K)
        got = launch.lowrank_t(u, x, transpose_out=transpose_out, partials=torch.full(shape, float("nan")))
        want = u_ref.T @ x.double()
        assert rel_err(got, want.T if transpose_out else want) < TOL


def test_dropout_in_training_falls_back_to_torch(monkeypatch):
    layer = make_layer(24, 20, 8, dropout=0.3)
    ref = copy.deepcopy(layer)
    ref.config.backend = "torch"
    x, s = torch.randn(2, 5, 24), torch.tensor([0.2, 1.5])
    called = []
    real_apply = kautograd.CSHLoRAFunction.apply
    monkeypatch.setattr(kautograd.CSHLoRAFunction, "apply", lambda *a: called.append(1) or real_apply(*a))
    torch.manual_seed(7)
    y = layer.train()(x, log10_gsd=s)
    torch.manual_seed(7)
    torch.testing.assert_close(y, ref.train()(x, log10_gsd=s), rtol=0, atol=0)  # same dropout mask
    assert not called, "dropout in training must take the torch path"
    y_eval = layer.eval()(x, log10_gsd=s)  # dropout is the identity in eval: fused path
    assert called
    assert rel_err(y_eval, as_reference(layer).eval()(x.double(), log10_gsd=s.double())) < TOL


def test_auto_picks_torch_on_cpu_even_under_the_interpreter():
    auto = make_layer(16, 8, 8, backend="auto")
    assert "backend=auto->torch" in repr(auto)
    assert "backend=triton" in repr(make_layer(16, 8, 8, backend="triton"))
    x = torch.randn(4, 16)
    from cshlora import backends

    assert backends.resolve_backend("auto", x).name == "torch"
    assert backends.resolve_backend("triton", x).name == "triton"
    with pytest.raises(ValueError, match="is not available for"):
        backends.resolve_backend("triton", x.double())  # the interpreter path is fp32 only


def test_auto_stays_on_torch_for_cuda_inputs_until_the_gpu_check_passed(monkeypatch):
    """The safe default: auto resolves CUDA inputs to torch while AUTO_ON_CUDA is False."""
    from types import SimpleNamespace

    from cshlora import backends

    cuda_bf16 = SimpleNamespace(device=torch.device("cuda", 0), dtype=torch.bfloat16)  # no GPU needed
    assert backends.resolve_backend("auto", cuda_bf16).name == "torch"
    assert backends.resolve_backend("triton", cuda_bf16).name == "triton"  # still there when asked for
    monkeypatch.setenv("CSHLORA_BACKEND", "triton")  # the environment override still wins
    assert backends.resolve_backend(CSHLoRAConfig(backend="auto").resolved_backend(), cuda_bf16).name == "triton"
    monkeypatch.delenv("CSHLORA_BACKEND")
    monkeypatch.setattr(kernels, "AUTO_ON_CUDA", True)  # what switching auto back will do
    assert backends.resolve_backend("auto", cuda_bf16).name == "triton"


def test_explicit_triton_on_cpu_without_interpreter_is_refused(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    layer = make_layer(16, 8, 8, backend="triton")
    assert "triton(unavailable)" in repr(layer)
    with pytest.raises(ValueError, match="is not available for"):
        layer(torch.randn(2, 16), log10_gsd=0.5)


def test_kernels_follow_the_interpreter_setting(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    assert not kernels.load_lowrank().INTERPRETED  # re-decorated for compilation (nothing launched)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert kernels.load_lowrank().INTERPRETED


def test_import_needs_no_triton():
    """Without triton (macOS) cshlora imports, lists no triton backend, and runs on torch."""
    code = (
        "import sys; sys.modules['triton'] = None\n"  # makes triton unimportable
        "import torch, cshlora\n"
        "assert cshlora.available_backends() == ['torch'], cshlora.available_backends()\n"
        "l = cshlora.CSHLoRALinear(torch.nn.Linear(4, 3), cshlora.CSHLoRAConfig(r=4, backend='auto'))\n"
        "assert 'auto->torch' in repr(l); l(torch.randn(2, 4), log10_gsd=0.5)\n"
        "import importlib; sys.modules.pop('triton')\n"
        "importlib.reload(cshlora.backends)\n"
        "assert 'triton' not in sys.modules, 'registering the backend must not import triton'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_double_backward_is_a_clear_error():
    layer = make_layer(20, 7, 8)
    x = torch.randn(3, 20, requires_grad=True)
    (gx,) = torch.autograd.grad(layer(x, log10_gsd=0.7).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gx.sum().backward()
