"""The compiled triton backend on a CUDA GPU against a float64 torch reference (skipped without a GPU).

The CPU suite (test_cshlora_triton.py) checks the kernels' arithmetic through Triton's interpreter;
this checks the compiled kernels and half-precision inputs where they really run, and that ``auto``
stays on the torch path on CUDA until a GPU check has passed (``cshlora.kernels.AUTO_ON_CUDA``).
Tolerances are relative to each tensor's largest element: bf16/fp16 outputs and dX are rounded to
8/11 bits, and fp32 adapter products on tensor cores use TF32.
"""

import copy

import pytest
import torch
from cshlora_test_utils import randomize_adapter
from torch import nn

from cshlora import CSHLoRAConfig, CSHLoRALinear

pytest.importorskip("triton")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
DEVICE = "cuda"
TOLERANCE = {torch.bfloat16: 2e-2, torch.float16: 1e-2, torch.float32: 1e-4}


@pytest.fixture(autouse=True)
def compiled_kernels(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    monkeypatch.delenv("CSHLORA_BACKEND", raising=False)
    monkeypatch.delenv("CSHLORA_TRITON_BASE", raising=False)
    old = torch.backends.cuda.matmul.allow_tf32  # (monkeypatch cannot undo attributes of this module)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 layers: kernels use IEEE fp32 dots
    yield
    torch.backends.cuda.matmul.allow_tf32 = old


def rel_err(got, ref):
    assert bool(torch.isfinite(got).all()), "non-finite values"
    return ((got.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


def outputs_and_grads(layer, x, s, var):
    leaves = [x, s, var] + [p for p in layer.parameters() if p.requires_grad]
    y = layer(x, log10_gsd=s, var=var)
    w = torch.randn(y.shape, generator=torch.Generator(device=y.device).manual_seed(0), device=y.device)
    return [y, *torch.autograd.grad((y.double() * w.double()).sum(), leaves, allow_unused=True)]


def check(layer, d_in, dtype, lead=(3, 77)):
    ref = copy.deepcopy(layer).double()
    ref.config.backend = "torch"
    g = torch.Generator(device=DEVICE).manual_seed(1)
    x = torch.randn(*lead, d_in, device=DEVICE, generator=g).to(dtype).requires_grad_(True)
    s = (torch.rand(lead[0], device=DEVICE, generator=g) * 3 - 1).requires_grad_(True)
    var = (torch.rand(lead[0], device=DEVICE, generator=g) * 0.5).requires_grad_(True)
    got = outputs_and_grads(layer, x, s, var)
    want = outputs_and_grads(ref, *(t.detach().double().requires_grad_(True) for t in (x, s, var)))
    for i, (a, b) in enumerate(zip(got, want)):
        assert (a is None) == (b is None), i
        if a is not None:
            assert rel_err(a, b) < TOLERANCE[dtype], f"output/gradient {i}"


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
@pytest.mark.parametrize("gate", ["continuous", "none", "bucketed"])
def test_cuda_matches_float64_reference(dtype, gate):
    torch.manual_seed(0)
    base = nn.Linear(200, 136).to(DEVICE, dtype).requires_grad_(False)
    layer = CSHLoRALinear(base, CSHLoRAConfig(r=64, alpha=32, gate=gate, backend="triton"))
    randomize_adapter(layer)
    assert "backend=triton" in repr(layer)
    check(layer, 200, dtype)


def test_auto_keeps_the_torch_path_on_cuda_until_a_gpu_check_passed():
    layer = CSHLoRALinear(nn.Linear(16, 8).to(DEVICE), CSHLoRAConfig(r=8, backend="auto"))
    assert "backend=auto->torch" in repr(layer)


def test_cuda_nf4_base_matches_reference_on_the_dequantised_weight():
    bnb = pytest.importorskip("bitsandbytes")
    torch.manual_seed(0)
    dense = nn.Linear(256, 192)
    q = bnb.nn.Linear4bit(256, 192, compute_dtype=torch.bfloat16, quant_type="nf4")
    q.load_state_dict(dense.state_dict())
    q = q.to(DEVICE).requires_grad_(False)  # quantises; a trainable bias would send the layer to torch
    layer = CSHLoRALinear(q, CSHLoRAConfig(r=64, alpha=32, backend="triton"))
    randomize_adapter(layer)
    # Reference: the same adapter on a dense layer holding exactly the dequantised NF4 weight.
    w = bnb.functional.dequantize_4bit(q.weight.data, q.weight.quant_state).float()
    dense_base = nn.Linear(256, 192).to(DEVICE).requires_grad_(False)
    with torch.no_grad():
        dense_base.weight.copy_(w)
        dense_base.bias.copy_(q.bias.float())
    twin = CSHLoRALinear(dense_base, CSHLoRAConfig(r=64, alpha=32, backend="torch"))
    twin.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.startswith("base_layer")}, strict=False)
    x = torch.randn(2, 50, 256, device=DEVICE, dtype=torch.bfloat16, requires_grad=True)
    s = torch.tensor([0.2, 1.9], device=DEVICE)
    y = layer(x, log10_gsd=s)
    y.float().square().sum().backward()
    x_ref = x.detach().float().requires_grad_(True)
    y_ref = twin(x_ref, log10_gsd=s)
    y_ref.square().sum().backward()
    assert rel_err(y, y_ref) < TOLERANCE[torch.bfloat16]
    assert rel_err(x.grad, x_ref.grad) < 5e-2  # bf16 compute in the base product and dY
    assert rel_err(layer.lora_A.grad, twin.lora_A.grad) < 5e-2
    assert rel_err(layer.lora_B.grad, twin.lora_B.grad) < 5e-2
