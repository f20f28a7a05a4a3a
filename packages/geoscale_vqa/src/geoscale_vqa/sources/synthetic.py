"""`synthetic=COUNT`: scenes of the procedural scale world (see `geoscale_vqa.synthetic`).

Scene i gets its GSD log-uniform over 0.1-100 m and its layout from a seed derived from the build seed
and i, so any worker can render it. Splits are fixed by index: i % 10 == 0 -> test, == 5 -> val,
otherwise train. Pixels and labels are made by the worker (`pipeline`), where the CPU time is.
"""

from __future__ import annotations

import numpy as np

from ..gsd import ORIGIN_SYNTHETIC
from ..records import Item
from ..synthetic import sample_gsd
from .registry import Adapter, SourceError, SourceOptions, register

KIND = "synthetic"


def _count(arg: str) -> int:
    try:
        count = int(arg)
    except ValueError:
        raise SourceError(f"{KIND}: COUNT must be a positive integer, got {arg!r}") from None
    if count <= 0:
        raise SourceError(f"{KIND}: COUNT must be a positive integer, got {arg!r}")
    return count


def split_of(index: int) -> str:
    return {0: "test", 5: "val"}.get(index % 10, "train")


def _items(arg: str, options: SourceOptions):
    for i in range(_count(arg)):
        # Independent streams for the GSD and the layout, so neither predicts the other.
        gsd_seed, scene_seed = (int(s) for s in np.random.SeedSequence([options.seed, i]).generate_state(2))
        gsd_m = sample_gsd(np.random.default_rng(gsd_seed))
        yield Item(
            source=KIND,
            split=split_of(i),
            image_id=f"{i:08d}",
            image={"synthetic": {"seed": scene_seed, "gsd_m": gsd_m, "size_px": options.synthetic_size}},
            gsd_m=gsd_m,
            gsd_origin=ORIGIN_SYNTHETIC,
        )


def _validate(arg: str) -> None:
    _count(arg)


register(Adapter(KIND, "procedural scale world, COUNT scenes", _validate, _items))
