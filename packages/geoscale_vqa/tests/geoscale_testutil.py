"""Helpers for the geoscale_vqa tests (imported by name; conftest puts this folder on sys.path)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import webdataset as wds


def read_plain(out: Path) -> dict[str, dict]:
    """Every sample of a corpus through a plain webdataset reader: {__key__: {"json": ..., ext: bytes}}."""
    urls = sorted(str(p) for p in Path(out).glob("*/*.tar"))
    samples = {}
    for raw in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        assert raw["__key__"] not in samples, f"duplicate sample {raw['__key__']}"
        samples[raw["__key__"]] = {
            **{k: v for k, v in raw.items() if not k.startswith("__")},
            "json": json.loads(raw["json"]),
        }
    return samples


def by_image(samples: dict, source: str) -> dict[tuple[str, str], dict]:
    """{(split, image_id): record} of one source."""
    return {
        (s["json"]["split"], s["json"]["image_id"]): s["json"]
        for s in samples.values()
        if s["json"]["source"] == source
    }


def qa_tuples(record: dict, origin: str = "source") -> list[tuple]:
    return [(q["question"], q["answer"], q["tier"], q["type"]) for q in record["qa"] if q["origin"] == origin]


def metres_per_degree(lat_deg: float) -> tuple[float, float]:
    """(lon, lat) metres per degree from the classic series expansion (independent of the code under test)."""
    phi = math.radians(lat_deg)
    lat_m = 111132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)
    lon_m = 111412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
    return lon_m, lat_m


def corpus_files(out: Path) -> dict[str, bytes]:
    """The visible output of a build (shards, manifest, rejects), for byte-for-byte comparisons."""
    out = Path(out)
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".geoscale" not in p.parts
    }
