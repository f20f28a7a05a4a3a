"""Step (a) of tools/gpu_check.py: the fused Triton kernels against a float64 torch reference.

Self-contained (the GPU machine may have no pytest); the same method as
packages/cshlora/tests/test_cshlora_triton_cuda.py. Each case builds a ``backend="triton"`` layer
with a random adapter, runs it forward and backward with a random output weighting, and compares
the output and every gradient (x, log10_gsd, var, lora_A, lora_B, tau, sharpness) with the torch
backend on a float64 copy, by max|got - ref| / max|ref|. Every buffer the kernels write starts as
NaN, so an element a kernel leaves unwritten fails the case instead of passing on stale memory; and
each case must have gone through the fused autograd function, so a silent fallback to torch fails.

On a GPU the layers are bf16 (the training dtype); in --dry-run they are fp32 through Triton's CPU
interpreter, which mishandles bf16 dots.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass

import torch
from torch import nn

from cshlora import CSHLoRAConfig, CSHLoRALinear, backends

TOLERANCE = 1e-2  # relative to each tensor's largest element; bf16 rounds to 8 bits (3.9e-3)
GRADIENTS = ("x", "log10_gsd", "var", "lora_A", "lora_B", "tau", "sharpness")


@dataclass(frozen=True)
class Case:
    name: str
    lead: tuple[int, ...]  # leading dims of x: (rows,) or (batch, tokens)
    d_in: int
    d_out: int
    r: int
    gate: str = "continuous"
    scale: str = "sample"  # one log10 GSD for all ("scalar"), per sample, or per token
    with_var: bool = True


# Ragged: no dimension is a multiple of a tile edge. Rows < 1024 take the GEMM's small tiles,
# >= 1024 the large ones, so both paths are covered; the last case is the benchmark's shape.
GPU_CASES = (
    Case("ragged, per-sample s + var", (3, 77), 200, 136, 64),
    Case("ragged, per-token s + var", (2, 301), 333, 97, 64, scale="token"),
    Case("ragged, scalar s, r=16", (517,), 96, 80, 16, scale="scalar", with_var=False),
    Case("large tiles, per-token s + var", (2, 1111), 1000, 1064, 64, scale="token"),
    Case("plain LoRA (gate none)", (3, 77), 200, 136, 64, gate="none", with_var=False),
    Case("bucketed, per-token s + var", (2, 150), 256, 320, 64, gate="bucketed", scale="token"),
    Case("d=4096, 4 x 1024 tokens", (4, 1024), 4096, 4096, 64),
)
DRY_RUN_CASES = (
    Case("ragged, per-sample s + var", (3, 11), 45, 37, 16),
    Case("ragged, per-token s + var", (2, 13), 33, 40, 8, scale="token"),
    Case("plain LoRA (gate none)", (21,), 20, 17, 8, gate="none", scale="scalar", with_var=False),
    Case("bucketed, per-token s + var", (2, 9), 24, 31, 8, gate="bucketed", scale="token"),
)


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    """max |got - ref| / max |ref|; infinite when ``got`` holds a NaN/inf (e.g. an unwritten element)."""
    if got.shape != ref.shape or not bool(torch.isfinite(got).all()):
        return float("inf")
    return ((got.double() - ref.double()).abs().max() / ref.double().abs().max().clamp_min(1e-30)).item()


def randomize_adapter(layer: CSHLoRALinear, seed: int) -> None:
    """Non-trivial adapter values (B starts at zero, tau at the tier defaults), as the tests do."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name in ("lora_A", "lora_B"):
                p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.3)
            elif name == "tau":
                p.copy_(torch.empty(p.shape, dtype=torch.float64).uniform_(-1, 2, generator=g))
            elif name == "sharpness":
                p.copy_(torch.empty(p.shape, dtype=torch.float64).uniform_(1, 6, generator=g))


@contextlib.contextmanager
def poisoned_and_counted():
    """Kernel buffers start as NaN; yields a list whose length counts fused autograd calls."""
    from cshlora.kernels import autograd as kautograd
    from cshlora.kernels import launch

    real_alloc, real_apply = launch.alloc, kautograd.CSHLoRAFunction.apply
    calls = []
    launch.alloc = lambda shape, dtype, device: torch.full(shape, float("nan"), dtype=dtype, device=device)
    kautograd.CSHLoRAFunction.apply = lambda *args: calls.append(1) or real_apply(*args)
    try:
        yield calls
    finally:
        launch.alloc, kautograd.CSHLoRAFunction.apply = real_alloc, real_apply


def outputs_and_grads(layer, x, s, var, weight) -> dict[str, torch.Tensor | None]:
    leaves = {"x": x, "log10_gsd": s, "var": var}
    leaves.update({n: p for n, p in layer.named_parameters() if p.requires_grad})
    names = [n for n in GRADIENTS if leaves.get(n) is not None]
    y = layer(x, log10_gsd=s, var=var)
    grads = torch.autograd.grad((y.double() * weight).sum(), [leaves[n] for n in names], allow_unused=True)
    return {"y": y, **dict(zip(names, grads))}


def compare(got: dict, want: dict) -> dict[str, float]:
    """Relative error of every output/gradient both sides have; inf where only one side has it."""
    errors = {}
    for name in ("y", *GRADIENTS):
        a, b = got.get(name), want.get(name)
        if a is None and b is None:
            continue
        errors[name] = float("inf") if a is None or b is None else rel_err(a, b)
    return errors


def check_case(case: Case, dtype: torch.dtype, device: torch.device, seed: int) -> dict:
    torch.manual_seed(seed)
    base = nn.Linear(case.d_in, case.d_out).to(device, dtype).requires_grad_(False)
    layer = CSHLoRALinear(base, CSHLoRAConfig(r=case.r, alpha=32, gate=case.gate, backend="triton"))
    randomize_adapter(layer, seed)
    ref = copy.deepcopy(layer).double()
    ref.config.backend = "torch"
    g = torch.Generator(device=device).manual_seed(seed)
    s_shape = {"scalar": (), "sample": case.lead[:1], "token": case.lead}[case.scale]
    x = torch.randn(*case.lead, case.d_in, device=device, generator=g).to(dtype)
    s = torch.rand(s_shape, device=device, generator=g) * 3 - 1  # log10 GSD in [-1, 2]: 0.1 m .. 100 m
    var = torch.rand(s_shape, device=device, generator=g) * 0.5 if case.with_var else None
    weight = torch.randn(*case.lead, case.d_out, device=device, generator=g, dtype=torch.float64)
    leaf = lambda t, dt=None: None if t is None else t.detach().to(dt or t.dtype).requires_grad_(True)
    with poisoned_and_counted() as calls:
        got = outputs_and_grads(layer, leaf(x), leaf(s), leaf(var), weight)
    want = outputs_and_grads(ref, leaf(x, torch.float64), leaf(s, torch.float64), leaf(var, torch.float64), weight)
    errors = compare(got, want)
    worst = max(errors.values())
    return {**asdict(case), "errors": errors, "max_rel_err": worst, "fused_calls": len(calls),
            "ok": worst < TOLERANCE and len(calls) > 0}  # fmt: skip


def check_nf4(dtype: torch.dtype, device: torch.device, seed: int = 7) -> dict:
    """An NF4 (bitsandbytes Linear4bit) base: reference = the dequantised weight, as the base computes it."""
    try:
        import bitsandbytes as bnb
    except ImportError as e:
        return {"skipped": f"bitsandbytes is not importable ({e})"}
    torch.manual_seed(seed)
    d_in, d_out, lead = (256, 200, (2, 150)) if device.type == "cuda" else (64, 40, (3, 21))
    dense = nn.Linear(d_in, d_out)
    q = bnb.nn.Linear4bit(d_in, d_out, compute_dtype=dtype, quant_type="nf4")
    q.load_state_dict(dense.state_dict())
    q = q.to(device).requires_grad_(False)  # .to quantises; a bias that trains would send the layer to torch
    layer = CSHLoRALinear(q, CSHLoRAConfig(r=64 if device.type == "cuda" else 16, alpha=32, backend="triton"))
    randomize_adapter(layer, seed)
    # The base computes in its compute dtype: the dequantised weight and the bias rounded to it.
    w = bnb.functional.dequantize_4bit(q.weight.data, q.weight.quant_state).to(dtype)
    twin_base = nn.Linear(d_in, d_out).to(device, torch.float64).requires_grad_(False)
    with torch.no_grad():
        twin_base.weight.copy_(w.double())
        twin_base.bias.copy_(q.bias.to(dtype).double())
    ref = CSHLoRALinear(twin_base, copy.deepcopy(layer.config))
    ref.config.backend = "torch"
    adapter = {k: v.double() for k, v in layer.state_dict().items() if not k.startswith("base_layer")}
    ref.load_state_dict(adapter, strict=False)
    g = torch.Generator(device=device).manual_seed(seed)
    x = torch.randn(*lead, d_in, device=device, generator=g).to(dtype)
    s = torch.rand(lead[:1], device=device, generator=g) * 3 - 1
    var = torch.rand(lead[:1], device=device, generator=g) * 0.5
    weight = torch.randn(*lead, d_out, device=device, generator=g, dtype=torch.float64)
    leaf = lambda t, dt=None: t.detach().to(dt or t.dtype).requires_grad_(True)
    with poisoned_and_counted() as calls:
        got = outputs_and_grads(layer, leaf(x), leaf(s), leaf(var), weight)
    want = outputs_and_grads(ref, leaf(x, torch.float64), leaf(s, torch.float64), leaf(var, torch.float64), weight)
    errors = compare(got, want)
    worst = max(errors.values())
    return {"name": "NF4 base, per-sample s + var", "lead": list(lead), "d_in": d_in, "d_out": d_out,
            "errors": errors, "max_rel_err": worst, "fused_calls": len(calls),
            "ok": worst < TOLERANCE and len(calls) > 0}  # fmt: skip


def run(device: torch.device, dry_run: bool) -> dict:
    """Step (a): every case plus the NF4 base; pass when each is within TOLERANCE."""
    dtype = torch.float32 if dry_run else torch.bfloat16
    cases = DRY_RUN_CASES if dry_run else GPU_CASES
    results = [check_case(c, dtype, device, seed) for seed, c in enumerate(cases)]
    nf4 = check_nf4(dtype, device)
    probe = torch.empty(1, 4, device=device, dtype=dtype)
    out = {
        "dtype": str(dtype).removeprefix("torch."),
        "tolerance": TOLERANCE,
        "cases": results,
        "nf4": nf4,
        # The safe default, as it resolves here (torch until this step passes on a GPU).
        "auto_backend_resolves_to": backends.resolve_backend("auto", probe).name,
    }
    failed = [c["name"] for c in results if not c["ok"]] + ([nf4["name"]] if not nf4.get("ok", True) else [])
    out["status"] = "fail" if failed else "pass"
    if failed:
        out["failed"] = failed
    if "skipped" in nf4:
        out["note"] = f"NF4 base not checked: {nf4['skipped']}"
    out["worst_rel_err"] = max([c["max_rel_err"] for c in results] + [nf4.get("max_rel_err", 0.0)])
    return out
