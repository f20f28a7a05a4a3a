"""The summary table tools/gpu_check.py prints last (the device tool returns the end of the output)."""

from __future__ import annotations


def _num(v, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else str(v)


def _kernels(s: dict) -> str:
    n = len(s.get("cases", []))
    nf4 = s.get("nf4", {})
    nf4_text = f"NF4 {_num(nf4['max_rel_err'], '.1e')}" if "max_rel_err" in nf4 else "NF4 skipped"
    return (f"{n} cases, worst rel err {_num(s['worst_rel_err'], '.1e')} (tol {s['tolerance']:.0e}, "
            f"{s['dtype']}); {nf4_text}; auto -> {s['auto_backend_resolves_to']}")  # fmt: skip


def _benchmark(s: dict) -> str:
    rows = {(r["T"], r["variant"]): r for r in s["rows"]}
    T = max(s["tokens"])
    fused = rows.get((T, "triton"))
    if fused is None:
        return "no triton row"
    target = {None: "target not measured", True: "target met", False: "target NOT met"}[s.get("target_met")]
    return (f"T={T}: fused fwd+bwd {fused['fwd_bwd_ratio']:.3f}x base, {fused['fwd_bwd_vs_eager']:.3f}x eager; "
            f"{target}")  # fmt: skip


def _stage2(s: dict) -> str:
    parts = []
    mem = s.get("memory")
    if mem:
        parts.append(f"peak alloc {mem['peak_allocated_gb']:.1f} GB, reserved {mem['peak_reserved_gb']:.1f} GB "
                     f"+ {mem['outside_allocator_gb']:.1f} outside = {mem['peak_device_gb']:.1f} GB "
                     f"({'fits' if mem['fits_claim'] else 'EXCEEDS'} {mem['claim_gb']:.0f} GB; "
                     f"{mem['over_estimate']:.2f}x the {mem['estimate_gb']} GB estimate)")  # fmt: skip
    for name, v in s.get("variants", {}).items():
        if "median_step_s" in v:
            parts.append(f"{name} {v['median_step_s'] * 1e3:.0f} ms/step")
        else:
            parts.append(f"{name} {v.get('skipped') or 'error'}")
    if "peft_over_cshlora" in s:
        parts.append(f"PEFT/cshlora step time {s['peft_over_cshlora']:.2f}x")
    if "peft_over_cshlora_fused" in s:  # the long-term aim is about the fused step
        parts.append(f"PEFT/cshlora_fused {s['peft_over_cshlora_fused']:.2f}x (aim >= 1.5)")
    return "; ".join(parts)


def _serving(s: dict) -> str:
    if s.get("engine") == "vllm":
        return (
            f"vLLM vs transformers+PEFT tokens: {'equal' if not s['mismatched'] else 'DIFFER ' + str(s['mismatched'])}"
        )
    return f"{s['engine']}; routed {s['routed']}"


DESCRIBE = {"kernels": _kernels, "benchmark": _benchmark, "stage2": _stage2, "serving": _serving}


def summary(result: dict) -> str:
    lines = [f"gpu_check summary: {result['device']['name']} ({result['mode']})"]
    v = result["versions"]
    lines.append("  " + ", ".join(f"{k} {v.get(k)}" for k in ("torch", "triton", "transformers", "bitsandbytes",
                                                                "peft")))  # fmt: skip
    if result["device"].get("driver"):
        lines.append(f"  driver {result['device']['driver']}, CUDA {result['device']['cuda_runtime']}")
    lines.append(f"{'step':10s} {'status':8s} {'seconds':>8s}  figures")
    for name, s in result["steps"].items():
        if s["status"] in ("pass", "fail") and name in DESCRIBE:
            try:
                figures = DESCRIBE[name](s)
            except (KeyError, TypeError, ValueError) as e:  # a summary must never hide the JSON
                figures = f"(figures in the JSON; summary failed: {type(e).__name__} {e})"
            if s.get("failed") or s.get("problems"):
                figures += f"; FAILED: {s.get('failed') or s.get('problems')}"
        else:
            figures = s.get("reason") or s.get("error", "")
        lines.append(f"{name:10s} {s['status']:8s} {_num(s.get('seconds', 0.0), '8.1f')}  {figures}")
    bench = result["steps"].get("benchmark", {})
    if bench.get("rows"):
        lines.append("\nbenchmark rows (ms; ratios to base and to eager)")
        lines.append(f"{'T':>6} {'variant':10} {'fwd':>9} {'x base':>7} {'fwd+bwd':>9} {'x base':>7} {'x eager':>7}")
        for r in bench["rows"]:
            lines.append(f"{r['T']:6d} {r['variant']:10} {r['fwd_ms']:9.3f} {r['fwd_ratio']:7.3f} "
                         f"{r['fwd_bwd_ms']:9.3f} {r['fwd_bwd_ratio']:7.3f} {r['fwd_bwd_vs_eager']:7.3f}")  # fmt: skip
    for note in result.get("skipped", []):
        lines.append(f"skipped: {note}")
    lines.append(f"total {result['wall_s']:.1f} s")
    return "\n".join(lines)
