"""Benchmark the GeoScale-VQA builder: samples/s and QA/s per core, bytes per QA pair.

    uv run python tools/geoscale_bench_build.py                       # synthetic 2000 + RSVQA-LR-sized dump
    uv run python tools/geoscale_bench_build.py --synthetic 500 --rsvqa-images 200 --workers 1 2 --json out.json

Two inputs: the synthetic scale world (rendering dominates) and an RSVQA-LR-format dump with the real
dataset's shape (772 GeoTIFFs of 256 × 256, ~100 questions each; decoding, verifying and re-encoding the
TIFF as PNG dominate). Each is built from scratch for every worker count; the time includes planning
and writing the manifest. Not a test: numbers depend on the machine and on whatever else is running.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from geoscale_vqa import build


def _machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def _fixture_maker():
    path = Path(__file__).with_name("make_fixtures_geoscale.py")
    spec = importlib.util.spec_from_file_location("make_fixtures_geoscale", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _measure(name: str, source: str, workers: int, scratch: Path, shard_size: int) -> dict:
    out = scratch / f"{name}-w{workers}"
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = build([source], out, workers=workers, shard_size=shard_size)
    seconds = time.perf_counter() - start
    totals = result.manifest["totals"]
    row = {
        "input": name,
        "workers": workers,
        "seconds": round(seconds, 2),
        "samples": totals["samples"],
        "qa": totals["qa"],
        "samples_per_s": round(totals["samples"] / seconds, 1),
        "qa_per_s": round(totals["qa"] / seconds, 1),
        "samples_per_s_per_core": round(totals["samples"] / seconds / workers, 1),
        "qa_per_s_per_core": round(totals["qa"] / seconds / workers, 1),
        "bytes_per_qa": round(totals["bytes"] / totals["qa"], 1),
        "bytes_per_sample": round(totals["bytes"] / totals["samples"], 1),
    }
    shutil.rmtree(out, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthetic", type=int, default=2000, help="synthetic scenes")
    parser.add_argument("--rsvqa-images", type=int, default=772, help="images in the RSVQA-LR-format dump")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shard-size", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    rows = []
    with tempfile.TemporaryDirectory(prefix="geoscale-bench-") as tmp:
        scratch = Path(tmp)
        console.print(f"writing an RSVQA-LR-format dump of {args.rsvqa_images} images ...")
        rsvqa = _fixture_maker().make_rsvqa_lr_bulk(scratch, args.rsvqa_images)
        inputs = [("synthetic", f"synthetic={args.synthetic}"), ("rsvqa-lr format", f"rsvqa-lr={rsvqa}")]
        for name, source in inputs:
            for workers in args.workers:
                rows.append(_measure(name.split()[0], source, workers, scratch, args.shard_size))
                console.print(rows[-1])

    table = Table(title="GeoScale-VQA build throughput")
    columns = ["input", "workers", "samples", "qa", "seconds", "samples_per_s", "samples_per_s_per_core",
               "qa_per_s", "qa_per_s_per_core", "bytes_per_qa"]  # fmt: skip
    for column in columns:
        table.add_column(column.replace("_per_", "/").replace("_", " "), justify="right")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)
    machine = _machine()
    console.print(f"machine: {machine}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
