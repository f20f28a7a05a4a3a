"""GPU self-check in one command: kernel accuracy, kernel ratios, NF4 on CUDA, Stage-2 memory at 8B.

    tools/gpu_check.sh                      # on a GPU: every step, JSON under benchmarks/results/
    tools/gpu_check.sh --dry-run            # on a CPU: every step at tiny shapes (tests the script)
    tools/gpu_check.sh --steps stage2       # rerun one step

Steps, in order, each guarded (an exception is recorded and the next step still runs):
  kernels    (a) fused Triton kernels vs a float64 reference: bf16 outputs and every gradient, ragged
                 shapes, per-sample and per-token scales, an NF4 base        (tools/gpu_check_kernels.py)
  benchmark  (b) T in {2048, 8192}, d=4096, r=64, bf16: base, eager, PEFT, torch, fused; do_bench
                 medians, ratios to base and eager                           (tools/gpu_check_bench.py)
  stage2     (c) a Stage-2 step of Qwen3-VL at the 8B shape, NF4 LLM, CS-HLoRA on all 252
                 projections, SSE-U, gradient checkpointing, 2048 tokens: peak memory, step time vs
                 PEFT LoRA                                                   (tools/gpu_check_stage2.py)
  serving    (e) CS-HLoRA exported at two GSDs as plain LoRA adapters and served by vLLM (skipped
                 without vllm): tokens equal transformers + PEFT; in --dry-run a stub OpenAI server
                 and the serving client instead                              (tools/gpu_check_serving.py)
and (d) writes benchmarks/results/gpu_check-<device>-<date>.json (a temporary file in --dry-run)
with the device, driver, versions, every figure and each step's status, rewritten after every
step, then prints a summary.
Exit status: 0 every step passed, 1 a step failed or raised, 2 none failed but some were skipped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ("kernels", "benchmark", "stage2", "serving")
# What each step cannot run without (versions checked first, by gpu_check_env).
STEP_NEEDS = {
    "kernels": ("triton",),
    "benchmark": ("triton",),
    "stage2": ("transformers", "bitsandbytes"),
    "serving": ("transformers", "peft"),  # and vllm on a GPU, checked by the step (skipped without)
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, Triton's interpreter, fp32")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    p.add_argument("--out", type=Path, help="JSON path (default: benchmarks/results/gpu_check-<device>-<date>.json; "
                   "a temporary folder in --dry-run)")  # fmt: skip
    p.add_argument("--copy-to", type=Path, help="also copy the JSON into this folder (the device tool's $OUT)")
    args = p.parse_args(argv)
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in args.steps if s not in STEPS]
    if unknown:
        p.error(f"unknown step(s) {unknown}; choose from {', '.join(STEPS)}")
    return args


def finite_json(value):
    """JSON has no inf/nan: write them as strings, so a failed comparison still reads as one."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def run_step(name: str, device, dry_run: bool) -> dict:
    import torch

    module = {"kernels": "gpu_check_kernels", "benchmark": "gpu_check_bench", "stage2": "gpu_check_stage2",
              "serving": "gpu_check_serving"}[name]  # fmt: skip
    print(f"\n== step {name} ({'dry run, ' if dry_run else ''}{device})", flush=True)
    t0 = time.perf_counter()
    try:
        result = __import__(module).run(device, dry_run)
    except Exception as e:  # the guard: record it, go on with the next step
        result = {"status": "error", "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-4000:]}
        print(result["traceback"], file=sys.stderr, flush=True)
    result["seconds"] = time.perf_counter() - t0
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    print(f"== step {name}: {result['status']} in {result['seconds']:.1f} s", flush=True)
    return result


def default_out(device_name: str, dry_run: bool) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", device_name.lower()).strip("-")
    name = f"gpu_check-{slug}-{dt.date.today().isoformat()}.json"
    if dry_run:  # a dry run is no result: keep it out of benchmarks/results
        return Path(tempfile.gettempdir()) / f"dry-run-{name}"
    return ROOT / "benchmarks" / "results" / name


def write(result: dict, out: Path, copy_to: Path | None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(finite_json(result), indent=2) + "\n")
    if copy_to:
        copy_to.mkdir(parents=True, exist_ok=True)
        shutil.copy(out, copy_to / out.name)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        # Before any kernel is loaded: the kernels are decorated for the interpreter at load time.
        os.environ["TRITON_INTERPRET"] = "1"
    os.environ.pop("CSHLORA_BACKEND", None)  # the check picks backends itself; an override would skew it
    import torch
    from gpu_check_env import check_requirements, device_info, git_commit, usable

    if args.dry_run:
        # Tiny shapes gain nothing from threads, and on a shared CPU extra threads make steps
        # stall for milliseconds waiting on each other (seen: 100x slower steps under load).
        torch.set_num_threads(1)

    started = time.perf_counter()
    requirements, versions = check_requirements()
    on_gpu = torch.cuda.is_available() and not args.dry_run
    device = torch.device("cuda" if on_gpu else "cpu")
    info = device_info(device)
    print(f"gpu_check{' --dry-run' if args.dry_run else ''} on {info['name']}"
          + (f", driver {info['driver']}, CUDA {info['cuda_runtime']}" if on_gpu else ""))  # fmt: skip
    for r in requirements:
        state = "ok" if r["ok"] else ("MISSING" if r["found"] is None else "UNUSABLE")
        print(f"  {r['package']:13s} {str(r['found']):24.24s} need {r['need']:7s} {state}"
              + ("" if r["ok"] else f": skips {r['used_for']}"))  # fmt: skip
    skipped_notes = [f"{r['package']} {'missing' if r['found'] is None else r['found']}: skips {r['used_for']}"
                     for r in requirements if not r["ok"]]  # fmt: skip

    out = args.out or default_out(info["name"], args.dry_run)
    steps = {}
    result = {
        "check": "tools/gpu_check.py",
        "mode": "dry-run (CPU, tiny shapes, Triton interpreter)" if args.dry_run else "gpu",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "device": info,
        "versions": versions,
        "requirements": requirements,
        "source": git_commit(ROOT),
        "skipped": skipped_notes,
        "steps": steps,
        "complete": False,
    }
    for name in args.steps:
        lacking = [p for p in STEP_NEEDS[name] if not usable(requirements, p)]
        if not on_gpu and not args.dry_run:
            steps[name] = {"status": "skipped", "reason": "no CUDA GPU here (--dry-run runs the steps on a CPU)"}
        elif lacking:
            steps[name] = {"status": "skipped", "reason": f"needs {', '.join(lacking)}"}
        else:
            steps[name] = run_step(name, device, args.dry_run)
        if steps[name]["status"] == "skipped":
            print(f"\n== step {name}: skipped ({steps[name]['reason']})")
        if "note" in steps[name]:
            skipped_notes.append(f"{name}: {steps[name]['note']}")
        result["wall_s"] = time.perf_counter() - started
        # After every step: if the device call is cut off at its time limit, the steps done so far
        # are already in the file (and in --copy-to), marked "complete": false.
        write(result, out, args.copy_to)
    result["complete"] = True
    write(result, out, args.copy_to)
    from gpu_check_summary import summary

    print("\n" + summary(result))
    print(f"\nwrote {out}")
    statuses = {s["status"] for s in steps.values()}
    return 1 if statuses & {"fail", "error"} else 2 if "skipped" in statuses else 0


if __name__ == "__main__":
    sys.exit(main())
