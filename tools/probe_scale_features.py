"""How much of the GSD can be read from a model's visual features, layer by layer, against the pixels themselves.

SSE-U is a head on frozen visual features, so its error is bounded by what those features keep. This probe
fits the same small MLP (on mean and std pooled features, standardised) to log10 GSD from each vision-tower
depth (patch embedding, every block, the merged tokens SSE-U reads) and from 19 hand-made pixel statistics
(radial FFT band energies, image contrast, mean gradients), and reports the held-out MAE in decades.

    uv run python tools/probe_scale_features.py --model runs/quickstart/stage1/merged \\
        --corpus runs/quickstart/corpus --out benchmarks/results/scale_probe.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def pixel_statistics(image) -> list[float]:
    """Radial FFT band energies (16 bands) plus contrast and mean absolute gradients of the grey image."""
    a = np.asarray(image, dtype=np.float32).mean(-1)
    spectrum = np.abs(np.fft.rfft2(a - a.mean()))
    radius = np.hypot(*np.meshgrid(np.fft.rfftfreq(a.shape[1]), np.fft.fftfreq(a.shape[0])))
    bands = np.digitize(radius, np.linspace(0, 0.71, 17))
    energy = [float(np.log1p(spectrum[bands == k].mean())) if (bands == k).any() else 0.0 for k in range(1, 17)]
    return energy + [float(a.std()), float(np.abs(np.diff(a, axis=0)).mean()), float(np.abs(np.diff(a, axis=1)).mean())]


def collect(vlm, processor, corpus, split: str, limit: int, batch: int = 50):
    """{feature source: [N, 2D] mean+std pooled}, plus the log10 GSD targets."""
    from geoscale_vqa import geoscale_dataset
    from scaleearth_cli.modeling import vision_tower

    tower, caught = vision_tower(vlm), {}
    hooks = [tower.patch_embed.register_forward_hook(lambda m, a, o: caught.__setitem__("patch_embed", o))]
    for i, block in enumerate(tower.blocks):
        hooks.append(block.register_forward_hook(lambda m, a, o, i=i: caught.__setitem__(f"block{i}", o)))
    images, targets = [], []
    for sample in geoscale_dataset(corpus, split=split, sources="synthetic", mode="sample"):
        images.append(sample["image"])
        targets.append(sample["log10_gsd"])
        if len(images) >= limit:
            break
    feats: dict[str, list] = {}
    for start in range(0, len(images), batch):
        inputs = processor.image_processor(images=images[start : start + batch], return_tensors="pt")
        grid = inputs["image_grid_thw"]
        if len(set(map(tuple, grid.tolist()))) != 1:
            raise ValueError("the probe pools per image and needs every image at the same size")
        with torch.no_grad():
            out = vlm.model.get_image_features(inputs["pixel_values"], grid)
        per_image = int(grid[0].prod())
        merged = out.pooler_output
        merged = torch.cat(list(merged)) if isinstance(merged, (tuple, list)) else merged
        layers = {**{k: v if torch.is_tensor(v) else v[0] for k, v in caught.items()}, "merged": merged}
        for name, value in layers.items():
            tokens = per_image if name != "merged" else merged.shape[0] // len(grid)
            value = value.reshape(len(grid), tokens, value.shape[-1])
            feats.setdefault(name, []).append(torch.cat([value.mean(1), value.std(1)], -1))
    for h in hooks:
        h.remove()
    out = {k: torch.cat(v) for k, v in feats.items()}
    out["pixel_statistics"] = torch.tensor([pixel_statistics(im) for im in images], dtype=torch.float32)
    return out, torch.tensor(targets, dtype=torch.float32)


def probe_mae(train_x, train_y, val_x, val_y, *, steps: int = 3000, seed: int = 0) -> float:
    """Held-out MAE (decades) of a 1-hidden-layer MLP trained with L1 loss on standardised features."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mu) / sd, (val_x - mu) / sd
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(a.shape[1], 128), torch.nn.GELU(), torch.nn.Linear(128, 1))
    opt = torch.optim.AdamW(mlp.parameters(), lr=2e-3, weight_decay=1e-2)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, len(a), (128,), generator=g)
        loss = (mlp(a[idx]).squeeze(-1) - train_y[idx]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((mlp(b).squeeze(-1) - val_y).abs().mean())


def main(argv=None) -> int:
    from scaleearth_cli.modeling import load_vlm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a (merged) Qwen3-VL folder, e.g. runs/quickstart/stage1/merged")
    parser.add_argument("--corpus", required=True, help="a GeoScale-VQA corpus with synthetic train and val splits")
    parser.add_argument("--train", type=int, default=2000, help="training images (default 2000)")
    parser.add_argument("--val", type=int, default=400, help="held-out val images (default 400)")
    parser.add_argument("--out", type=Path, help="write the MAEs as JSON here")
    args = parser.parse_args(argv)
    vlm, processor = load_vlm(args.model)
    vlm.eval()
    train_x, train_y = collect(vlm, processor, args.corpus, "train", args.train)
    val_x, val_y = collect(vlm, processor, args.corpus, "val", args.val)
    results = {name: probe_mae(train_x[name], train_y, val_x[name], val_y) for name in train_x}
    for name, mae in results.items():
        print(f"{name:18s} {train_x[name].shape[1]:4d} features   val MAE {mae:.3f} decades")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        record = {"model": args.model, "corpus": args.corpus, "train": len(train_y), "val": len(val_y),
                  "val_mae_log10": results}  # fmt: skip
        args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
