"""Helpers shared by the training tests (imported by name: conftest puts this folder on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 30, 30), "green": (30, 180, 40), "blue": (30, 40, 200)}


def make_llava_json(root: Path, n: int = 24, size: int = 64) -> Path:
    """LLaVA-style instruction data: solid-ish colour tiles and the question of which colour dominates.

    Half the records carry a GSD (0.5 m), half none, as real instruction data mixes both.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "imgs").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    items = []
    for i in range(n):
        name = list(COLOURS)[i % len(COLOURS)]
        pixels = (np.array(COLOURS[name]) + rng.integers(-20, 20, (size, size, 3))).clip(0, 255).astype("uint8")
        Image.fromarray(pixels).save(root / "imgs" / f"{i}.png")
        record = {
            "id": f"tile{i}",
            "image": f"imgs/{i}.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhich colour dominates this tile?"},
                {"from": "gpt", "value": f"The tile is mostly {name}."},
            ],
        }
        if i % 2:
            record["gsd_m"] = 0.5
        items.append(record)
    path = root / "data.json"
    path.write_text(json.dumps(items))
    return path


def train_config(**overrides):
    """A fast CPU configuration for the tiny model (small rank, few steps, no progress bar)."""
    from scaleearth_cli.config import TrainConfig

    base = dict(
        r=8, alpha=16.0, batch_size=4, max_steps=4, lr=3e-3, sseu_lr=3e-3, log_every=1, save_every=1000,
        max_turns=2, progress=False, max_length=512,
    )  # fmt: skip
    base.update(overrides)
    return TrainConfig(**base)


def first_batches(
    processor, corpus: Path, n: int, *, sources=None, batch_size: int = 4, gsd_in_prompt=False, max_turns=None
):
    """The first ``n`` batches of the train split, built exactly as training builds them.

    ``max_turns=None`` (one conversation per image) keeps one image per batch row.
    """
    from itertools import islice

    import torch

    from geoscale_vqa import geoscale_dataset
    from scaleearth_cli.data import Collator

    ds = geoscale_dataset(corpus, split="train", sources=sources, mode="conversation", max_turns=max_turns)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=batch_size, collate_fn=Collator(processor, max_length=512, gsd_in_prompt=gsd_in_prompt)
    )
    return list(islice(loader, n))
