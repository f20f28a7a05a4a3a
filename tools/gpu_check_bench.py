"""Step (b) of tools/gpu_check.py: the kernel benchmark of tools/bench_cshlora_kernels.py at the target shape.

T in {2048, 8192} tokens (4 samples, one GSD each), d_in = d_out = 4096, r = 64, bf16, forward and
forward+backward of: the frozen base linear, the eager gated LoRA, PEFT's LoRA (if peft imports),
the torch backend and the fused triton backend (with the Triton GEMM and with a cuBLAS base).
Medians come from ``triton.testing.do_bench``; each row carries its ratio to the base and to eager.
The step passes when every variant ran and the fused output matches the torch path within 1e-2;
the design target (fused fwd+bwd <= 1.10x base at T=8192, and faster than eager) is reported as a
figure, met or not, since a slow kernel is a finding rather than a broken check.
"""

from __future__ import annotations

import torch

MATCH_TOLERANCE = 1e-2


def run(device: torch.device, dry_run: bool) -> dict:
    import bench_cshlora_kernels as bench  # tools/ is on sys.path

    if dry_run:  # Triton's CPU interpreter: shows the rows are produced, times nothing meaningful
        tokens, d, rank, dtype, median_ms = (64,), 64, 8, torch.float32, bench.timer(device, reps=2)
    else:
        tokens, d, rank, dtype, median_ms = (2048, 8192), 4096, 64, torch.bfloat16, bench.timer(device)
    rows = []
    for T in tokens:
        rows += bench.bench_shape(T, d, dtype, device, median_ms, run_triton=True, rank=rank, batch=4)
    variants = {r["variant"] for r in rows}
    mismatched = [
        f"T={r['T']} {r['variant']}: {r['max_rel_diff_vs_torch']:.2e}"
        for r in rows
        if r["max_rel_diff_vs_torch"] is not None and not r["max_rel_diff_vs_torch"] < MATCH_TOLERANCE
    ]
    out = {
        "timer": "time.perf_counter median (CPU interpreter)" if dry_run else "triton.testing.do_bench median",
        "dtype": str(dtype).removeprefix("torch."),
        "d": d,
        "r": rank,
        "tokens": list(tokens),
        "rows": rows,
        "peft_row": "peft" in variants,
        "target": bench.TARGET,
        "target_met": None if dry_run else bench.target_met(rows),
    }
    if "peft" not in variants:
        out["note"] = "peft is not importable: no PEFT LoRA row"
    out["status"] = "fail" if mismatched else "pass"
    if mismatched:
        out["failed"] = mismatched
    return out
