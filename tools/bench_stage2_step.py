"""Stage-2 training step time: CS-HLoRA vs plain LoRA (B2) on the same Qwen3-VL, same batches.

    uv run python tools/bench_stage2_step.py                      # tiny model on this machine's CPU
    uv run python tools/bench_stage2_step.py --hidden-size 1024 --layers 8 --device cuda   # a larger config

One step = ScaleEarthVLM forward (vision tower, SSE-U, gate, LLM with adapters) + backward + AdamW,
on batches prepared beforehand (data loading is not timed). Writes
benchmarks/results/stage2_step_<device>.json with the device named.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch
from benchlib import cpu_name  # tools/ is on sys.path when a script there runs

ROOT = Path(__file__).resolve().parents[1]


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU: {cpu_name()}"


def time_steps(adapter: str, model_dir: Path, corpus: Path, args, device: torch.device) -> list[float]:
    from scaleearth_cli.config import TrainConfig
    from scaleearth_cli.data import Collator
    from scaleearth_cli.train import build_model, make_optimizer

    cfg = TrainConfig(
        stage=2, adapter=adapter, data=str(corpus), model=str(model_dir), out="unused", r=args.r, alpha=32.0,
        quantize=args.quantize, gradient_checkpointing=args.gradient_checkpointing, sources=["synthetic"],
        max_turns=4, batch_size=args.batch_size,
    )  # fmt: skip
    model, processor = build_model(cfg, device)
    model.train()
    optimizer, _ = make_optimizer(cfg, model)
    from geoscale_vqa import geoscale_dataset

    loader = torch.utils.data.DataLoader(
        geoscale_dataset(corpus, split="train", sources="synthetic", max_turns=4),
        batch_size=args.batch_size, collate_fn=Collator(processor, max_length=4096),
    )  # fmt: skip
    batches = [b for _, b in zip(range(4), loader)]
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    times = []
    for i in range(args.warmup + args.steps):
        batch = batches[i % len(batches)]
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with autocast:
            out = model(batch, i)
            loss = out.lm_loss + 0.1 * out.gsd_nll
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--r", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--quantize", default="none", choices=["none", "nf4"])
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the adapters this many times")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from geoscale_vqa import build
    from scaleearth_cli.tiny import make_tiny_model

    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_tiny_model(Path(tmp) / "model", hidden_size=args.hidden_size, num_layers=args.layers,
                                    max_pixels=256 * 256 if args.hidden_size > 64 else 64 * 64)  # fmt: skip
        corpus = Path(tmp) / "corpus"
        build(["synthetic=40"], corpus, shard_size=8, synthetic_size=256 if args.hidden_size > 64 else 96)
        samples: dict[str, list[float]] = {"cshlora": [], "lora": []}
        for _ in range(args.rounds):  # alternate, so drift in machine load hits both alike
            for adapter in samples:
                samples[adapter] += time_steps(adapter, model_dir, corpus, args, device)
    med = {k: statistics.median(v) for k, v in samples.items()}
    ratio = med["cshlora"] / med["lora"]
    name = device_name(device)
    print(f"device: {name}  torch {torch.__version__}  threads {torch.get_num_threads()}")
    for k, v in med.items():
        print(f"  {k:8s} median step {v * 1e3:8.2f} ms  ({len(samples[k])} steps)")
    print(f"  cshlora / lora step-time ratio: {ratio:.3f}")
    result = {
        "benchmark": "stage2_step",
        "device": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "median_step_s": med,
        "cshlora_over_lora": ratio,
        "steps_per_adapter": {k: len(v) for k, v in samples.items()},
    }
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    out = args.out or ROOT / "benchmarks" / "results" / f"stage2_step_{slug}_h{args.hidden_size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
