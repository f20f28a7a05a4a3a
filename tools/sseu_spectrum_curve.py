"""How well SSE-U's spectrum input alone tells the GSD of the scale world, against the number of training scenes.

Renders fresh scenes of the synthetic world (log-uniform GSD, 0.1-100 m, 96 px), computes
``sseu.scale_spectrum`` on them (normalised as Qwen's processor does), and fits the quickstart's head
(``SSEUFitConfig`` defaults: 2 hidden layers, dropout 0.2, 3,000 steps of 256) on the spectrum alone, for
each training-set size. It also fits one head with Stage 2's budget (4,000 steps of 8) to show why SSE-U
is fitted on its own. Prints the held-out MAE in decades and writes JSON.

    uv run python tools/sseu_spectrum_curve.py --out benchmarks/results/sseu_spectrum_curve_cpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch


def scenes(n: int, offset: int, size_px: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` rendered scenes ``[n, 3, H, W]`` in [-1, 1] and their log10 GSD, from seeds ``offset``..."""
    from geoscale_vqa.synthetic.render import render
    from geoscale_vqa.synthetic.world import make_scene, sample_gsd

    images, targets = [], []
    for i in range(offset, offset + n):
        gsd = sample_gsd(np.random.default_rng(10_000_000 + i))
        images.append(render(make_scene(1_234_567 + i, gsd, size_px)))
        targets.append(math.log10(gsd))
    pixels = torch.tensor(np.stack(images), dtype=torch.float32).permute(0, 3, 1, 2) / 127.5 - 1.0
    return pixels, torch.tensor(targets, dtype=torch.float32)


def main(argv=None) -> int:
    from scaleearth_cli.sseu_fit import SSEUFitConfig
    from sseu import HeadInputs, SSEUHead, fit_head, scale_spectrum

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1600,3200,6400,20000", help="training-set sizes (scenes)")
    parser.add_argument("--val", type=int, default=2000, help="held-out scenes (default 2000)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    cfg = SSEUFitConfig()
    started = time.time()
    train_px, train_y = scenes(max(sizes), 0)
    val_px, val_y = scenes(args.val, 500_000)
    spectrum = lambda px: scale_spectrum(px, tile=cfg.spectrum_tile, bands=cfg.spectrum_bands)  # noqa: E731
    train_s, val_s = spectrum(train_px), spectrum(val_px)
    no_tokens = lambda n: torch.zeros(n, 1, 1)  # noqa: E731  (the spectrum alone: features carry nothing)
    val = HeadInputs(no_tokens(args.val), val_y, spectrum=val_s)

    def fit(n: int, steps: int, batch_size: int) -> dict:
        torch.manual_seed(cfg.seed)
        head = SSEUHead(1, hidden=cfg.hidden, depth=cfg.depth, dropout=cfg.dropout, spectrum_tile=cfg.spectrum_tile,
                        spectrum_bands=cfg.spectrum_bands)  # fmt: skip
        train = HeadInputs(no_tokens(n), train_y[:n], spectrum=train_s[:n])
        report = fit_head(head, train, val, steps=steps, batch_size=batch_size, lr=cfg.lr, beta=cfg.beta,
                          weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps, seed=cfg.seed)  # fmt: skip
        row = {"train_scenes": n, "steps": steps, "batch_size": batch_size, "val_mae_log10": report.val_mae_log10,
               "val_coverage_90": report.val_coverage_90, "train_mae_log10": report.train_mae_log10}  # fmt: skip
        print(f"{n:6d} scenes, {steps} x {batch_size}: val MAE {report.val_mae_log10:.3f} decades, "
              f"90 % coverage {report.val_coverage_90:.3f} (train MAE {report.train_mae_log10:.3f})")  # fmt: skip
        return row

    rows = [fit(n, cfg.steps, cfg.batch_size) for n in sizes]
    stage2_budget = fit(3200, 4000, 8) if 3200 <= max(sizes) else None
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
                  "val_scenes": args.val, "fit": rows, "stage2_budget": stage2_budget,
                  "seconds": time.time() - started}  # fmt: skip
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
