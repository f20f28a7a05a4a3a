"""Time the CS-HLoRA layer's compute paths against the frozen base linear, in one run.

    uv run python tools/bench_cshlora_kernels.py                 # GPU: bf16, T in {2048, 8192}, d in {2048, 4096}
    uv run python tools/bench_cshlora_kernels.py --quick         # CPU: fp32, small shapes, no triton row
    uv run python tools/bench_cshlora_kernels.py --quick --cpu-triton   # + triton through its CPU interpreter

Variants, each forward and forward+backward (input requires grad, base frozen, adapter trains):
  base        the frozen base linear alone
  eager       a PEFT-style gated LoRA in plain torch ops, unfused: x@A^T, *gate, @B^T, *scaling, add
  peft        PEFT's own LoRA layer (peft.tuners.lora.Linear, ungated), when peft is installed
  torch       cshlora backend="torch" (the reference path)
  triton      cshlora backend="triton" (fused kernels; base product inside the fused GEMM)
  triton-tb   cshlora backend="triton" with CSHLORA_TRITON_BASE=torch (cuBLAS base, adapter added in place)
Prints medians and ratios to the base and to eager, and writes JSON (named after the device) under
benchmarks/results/ (tools/gpu_check.py imports bench_shape() for its benchmark step). GPU timings
use triton.testing.do_bench (median); CPU timings are time.perf_counter medians. On CPU the triton
rows run in Triton's interpreter only when --cpu-triton is given: they then measure the
interpreter, not the kernels.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import torch
from benchlib import cpu_name  # tools/ is on sys.path when a script there runs
from torch import nn

from cshlora import CSHLoRAConfig, CSHLoRALinear

ROOT = Path(__file__).resolve().parents[1]
TARGET = "triton fwd+bwd <= 1.10x base fwd+bwd at T=8192, d=4096, r=64 (bf16, GPU), and faster than eager"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, nargs="+", help="T values (default 2048 8192; --quick: 256 1024)")
    p.add_argument("--dims", type=int, nargs="+", help="d_in = d_out values (default 2048 4096; --quick: 256 512)")
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--batch", type=int, default=4, help="samples per batch: one GSD each, T/batch tokens each")
    p.add_argument("--dtype", choices=["bf16", "fp16", "fp32"], help="default bf16 on GPU, fp32 on CPU")
    p.add_argument("--quick", action="store_true", help="small shapes (for CPU)")
    p.add_argument("--cpu-triton", action="store_true", help="on CPU, also time triton in its interpreter (slow)")
    p.add_argument("--reps", type=int, default=7, help="CPU: timed samples per variant (median)")
    p.add_argument("--threads", type=int, help="CPU: torch threads (default: torch's choice)")
    p.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/cshlora_kernels_<device>.json)")
    return p.parse_args(argv)


def timer(device: torch.device, reps: int = 7):
    """``median_ms(fn)`` for this device (``reps`` timed samples on CPU)."""
    if device.type == "cuda":
        import triton.testing

        return lambda fn: float(triton.testing.do_bench(fn, return_mode="median"))

    def median_ms(fn):
        t0 = time.perf_counter()
        fn()  # warm-up (allocations, kernel rewriting under the interpreter)
        # Short calls are timed in batches of >= ~20 ms so timer resolution and jitter do not dominate.
        inner = max(1, int(0.02 / max(time.perf_counter() - t0, 1e-6)))
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append((time.perf_counter() - t0) * 1e3 / inner)
        return statistics.median(times)

    return median_ms


def build(d: int, r: int, dtype, device, backend: str) -> CSHLoRALinear:
    torch.manual_seed(0)
    base = nn.Linear(d, d, bias=False, device=device, dtype=dtype).requires_grad_(False)
    layer = CSHLoRALinear(base, CSHLoRAConfig(r=r, alpha=32, backend=backend))
    nn.init.normal_(layer.lora_B, std=0.01)  # B = 0 would let a path skip nothing but hide errors
    return layer


def eager_gated_lora(layer: CSHLoRALinear):
    """PEFT-style: fp32 adapter, input cast to it, every op a separate kernel (no cshlora code)."""
    A, B, tau, a, c = layer.lora_A, layer.lora_B, layer.tau, layer.sharpness, layer.scaling

    def forward(x, s):
        result = layer.base_layer(x)
        xa = x.to(A.dtype) @ A.t()
        gate = torch.sigmoid(a * (tau - s[:, None, None]))
        delta = (xa * gate) @ B.t()
        return (result + delta * c).to(result.dtype)

    return forward


def peft_lora(layer: CSHLoRALinear):
    """PEFT's LoRA layer (ungated) over the same frozen base, fp32 adapter as PEFT makes for half bases.

    None when peft is not installed. Its B is randomised like the others' (B = 0 hides nothing in
    PEFT's timing, but keeps every variant computing on the same kind of values).
    """
    try:
        from peft import LoraConfig
        from peft.tuners.lora.layer import Linear as PeftLinear
    except ImportError:
        return None
    r, alpha = layer.r, layer.config.alpha
    peft_layer = PeftLinear(
        layer.base_layer, "default", config=LoraConfig(r=r, lora_alpha=alpha), r=r, lora_alpha=alpha
    )
    # PEFT moves the adapter to the base's device and dtype; get_peft_model then upcasts it to fp32
    # (autocast_adapter_dtype): do the same here, leaving the shared base as it is.
    for adapter in (peft_layer.lora_A, peft_layer.lora_B):
        adapter.to(device=layer.lora_A.device, dtype=torch.float32)
    nn.init.normal_(peft_layer.lora_B["default"].weight, std=0.01)
    return peft_layer


def main() -> None:
    args = parse_args()
    if args.cpu_triton and not torch.cuda.is_available():
        # Read when the kernels are first loaded (cshlora.kernels), so setting it here is early enough.
        os.environ["TRITON_INTERPRET"] = "1"
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    on_gpu = device.type == "cuda"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[
        args.dtype or ("bf16" if on_gpu else "fp32")
    ]
    tokens = args.tokens or ([256, 1024] if args.quick else [2048, 8192])
    dims = args.dims or ([256, 512] if args.quick else [2048, 4096])
    run_triton = on_gpu or args.cpu_triton
    if not on_gpu and dtype != torch.float32 and run_triton:
        sys.exit("the triton interpreter runs fp32 only: use --dtype fp32 with --cpu-triton")
    device_name = torch.cuda.get_device_name(device) if on_gpu else f"CPU: {cpu_name()}"
    if args.threads and not on_gpu:
        torch.set_num_threads(args.threads)
    median_ms = timer(device, args.reps)
    threads = "" if on_gpu else f"  threads {torch.get_num_threads()}"
    print(f"device: {device_name}  torch {torch.__version__}  dtype {dtype}  r={args.rank}{threads}")
    if not run_triton:
        print("triton rows skipped on CPU (pass --cpu-triton to time them in Triton's interpreter)")
    elif not on_gpu:
        print("triton rows run in Triton's CPU interpreter: they time the interpreter, not the kernels")

    rows = []
    for T in tokens:
        for d in dims:
            rows += bench_shape(T, d, dtype, device, median_ms, run_triton, args.rank, args.batch)
    report(args, rows, device_name, dtype, on_gpu, run_triton)


def bench_shape(T, d, dtype, device, median_ms, run_triton, rank=64, batch=4):
    """Rows (one per variant) of medians for one shape; ratios to base and to eager."""
    assert T % batch == 0, "T must be a multiple of --batch"
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, T // batch, d, device=device, dtype=dtype, generator=g).requires_grad_(True)
    dy = torch.randn(batch, T // batch, d, device=device, dtype=dtype, generator=g)
    s = torch.linspace(-1.0, 2.5, batch, device=device)  # one log10 GSD per sample
    ref = build(d, rank, dtype, device, "torch")
    fused = build(d, rank, dtype, device, "triton")
    variants = {
        "base": lambda: ref.base_layer(x),
        "eager": (lambda f: lambda: f(x, s))(eager_gated_lora(ref)),
    }
    peft_layer = peft_lora(ref)
    if peft_layer is not None:
        variants["peft"] = lambda: peft_layer(x)
    variants["torch"] = lambda: ref(x, log10_gsd=s)
    if run_triton:
        variants["triton"] = lambda: fused(x, log10_gsd=s)
        variants["triton-tb"] = lambda: fused(x, log10_gsd=s)
    adapters = (*ref.parameters(), *fused.parameters(), *(peft_layer.parameters() if peft_layer else ()))
    params = [x] + [p for p in adapters if p.requires_grad]
    y_ref = ref(x, log10_gsd=s).detach().float()
    out = []
    for name, fwd in variants.items():
        os.environ["CSHLORA_TRITON_BASE"] = "torch" if name == "triton-tb" else "fused"

        def step(fwd=fwd):
            for p in params:
                p.grad = None
            fwd().backward(dy)

        with torch.no_grad():
            t_fwd = median_ms(fwd)
        t_step = median_ms(step)
        err = None
        if name.startswith("triton"):
            with torch.no_grad():
                err = ((fwd().float() - y_ref).abs().max() / y_ref.abs().max()).item()
        out.append(
            {"T": T, "d": d, "variant": name, "fwd_ms": t_fwd, "fwd_bwd_ms": t_step, "max_rel_diff_vs_torch": err}
        )
    os.environ.pop("CSHLORA_TRITON_BASE", None)
    base, eager = out[0], out[1]
    for row in out:
        row["fwd_ratio"] = row["fwd_ms"] / base["fwd_ms"]
        row["fwd_bwd_ratio"] = row["fwd_bwd_ms"] / base["fwd_bwd_ms"]
        row["fwd_bwd_vs_eager"] = row["fwd_bwd_ms"] / eager["fwd_bwd_ms"]
    return out


def target_met(rows) -> bool | None:
    """The design target at T=8192, d=4096 (None when those rows are missing)."""
    key = {(r["T"], r["d"], r["variant"]): r for r in rows}
    if (8192, 4096, "triton") not in key:
        return None
    fused, eager = key[(8192, 4096, "triton")], key[(8192, 4096, "eager")]
    return fused["fwd_bwd_ratio"] <= 1.10 and fused["fwd_bwd_ms"] < eager["fwd_bwd_ms"]


def report(args, rows, device_name, dtype, on_gpu, run_triton):
    head = f"{'T':>6} {'d':>5} {'variant':10} {'fwd ms':>10} {'x base':>8} {'fwd+bwd ms':>11} {'x base':>8}"
    print(f"\n{head}  rel diff vs torch")
    for r in rows:
        diff = "" if r["max_rel_diff_vs_torch"] is None else f"{r['max_rel_diff_vs_torch']:.1e}"
        print(f"{r['T']:6d} {r['d']:5d} {r['variant']:10} {r['fwd_ms']:10.3f} {r['fwd_ratio']:8.3f} "
              f"{r['fwd_bwd_ms']:11.3f} {r['fwd_bwd_ratio']:8.3f}  {diff}")  # fmt: skip
    target = None
    if on_gpu and args.rank == 64 and dtype == torch.bfloat16 and target_met(rows) is not None:
        target = target_met(rows)
        print(f"\ntarget ({TARGET}): {'met' if target else 'NOT met'}")
    else:
        print(f"\ntarget ({TARGET}): not measured here (needs a GPU, bf16, T=8192, d=4096, r=64)")
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    result = {
        "benchmark": "cshlora layer: base vs eager gated LoRA vs torch path vs fused triton, fwd and fwd+bwd",
        "device": device_name,
        "torch": torch.__version__,
        "triton": triton_version,
        "dtype": str(dtype).removeprefix("torch."),
        "rank": args.rank,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "timer": "triton.testing.do_bench median" if on_gpu else f"time.perf_counter median of {args.reps}",
        "triton_rows": "kernels" if on_gpu else ("Triton CPU interpreter" if run_triton else "skipped"),
        "rows": rows,
        "target": TARGET,
        "target_met": target,
    }
    slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-")
    path = args.out or ROOT / "benchmarks/results" / f"cshlora_kernels_{slug}{'_quick' if args.quick else ''}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
