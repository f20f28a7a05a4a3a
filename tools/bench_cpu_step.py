"""Time one CS-HLoRA training step against PEFT's LoRA on this CPU, side by side in one run.

    uv run python tools/bench_cpu_step.py [--out benchmarks/results/cshlora_cpu_train_step.json]

Runs the pytest-benchmark group in packages/cshlora/tests/test_cshlora_benchmark.py, prints the
median of each variant and its ratio to PEFT LoRA and to the frozen base, and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import runpy
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import cpu_name  # tools/ is on sys.path when a script there runs

ROOT = Path(__file__).resolve().parents[1]
BENCH_FILE = ROOT / "packages/cshlora/tests/test_cshlora_benchmark.py"
LABELS = {
    "test_bench_frozen_base_step": "frozen base linear",
    "test_bench_peft_lora_step": "PEFT LoRA",
    "test_bench_plain_lora_step": "cshlora gate=none (plain LoRA)",
    "test_bench_cshlora_step": "cshlora continuous gate",
    "test_bench_cshlora_uncertain_step": "cshlora expected gate (with var)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cshlora_cpu_train_step.json")
    parser.add_argument("--min-rounds", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.json"
        cmd = [
            sys.executable, "-m", "pytest", str(BENCH_FILE), "-q", "-p", "no:cacheprovider",
            "--benchmark-enable", "--benchmark-only", f"--benchmark-min-rounds={args.min_rounds}",
            "--benchmark-warmup=on", f"--benchmark-json={raw}",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, cwd=ROOT)
        data = json.loads(raw.read_text())

    import torch

    medians = {b["name"]: b["stats"]["median"] for b in data["benchmarks"]}
    peft, base = medians["test_bench_peft_lora_step"], medians["test_bench_frozen_base_step"]
    rows = []
    print(f"\nCPU: {cpu_name()}  torch {torch.__version__}  threads {torch.get_num_threads()}")
    print(f"{'variant':36s} {'median ms':>10s} {'vs PEFT':>8s} {'vs base':>8s}")
    for name, label in LABELS.items():
        m = medians[name]
        rows.append(
            {"variant": label, "test": name, "median_s": m, "ratio_to_peft_lora": m / peft, "ratio_to_base": m / base}
        )
        print(f"{label:36s} {m * 1e3:10.2f} {m / peft:8.3f} {m / base:8.3f}")
    consts = runpy.run_path(str(BENCH_FILE))
    shapes = {k: consts[k] for k in ("BATCH", "TOKENS", "D", "R")}
    result = {
        "benchmark": "cshlora train step (forward + backward + AdamW) on CPU, fp32",
        "device": f"CPU: {cpu_name()}",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "shapes": shapes,
        "rows": rows,
        "target": "cshlora continuous-gate step <= 1.10x PEFT LoRA step (docs/design.md section 5)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
