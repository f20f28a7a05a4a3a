"""Read GeoScale-VQA shards for training: a webdataset pipeline that yields images with their GSD.

    ds = geoscale_dataset("corpus", split="train", mode="conversation", tiers={"object", "scale"})
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4)

Shards are split first across ranks (explicit `rank`/`world_size`, else torch.distributed, else the
RANK/WORLD_SIZE environment) and then across DataLoader workers, so each sample is read by exactly one
(rank, worker) pair per epoch. That needs at least world_size × num_workers shards to keep everyone
busy; with fewer, some readers get nothing (never duplicates).

Modes: "sample" yields one dict per image with its (filtered) `qa` list; "qa" one dict per QA pair;
"conversation" one dict per conversation of at most `max_turns` QA (every QA is used; the image in the
first user turn; each question worded as evaluation asks it, see `to_conversations`), ready for a
processor's chat template. Every mode carries `gsd_m`, `log10_gsd` (None where the corpus
has no GSD, i.e. LLaVA data without one), `gsd_origin`, `width` and `height`: compute the effective GSD
with `geoscale_vqa.effective_gsd(gsd_m, width, resized_width)` where the processor resizes.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from .benchmarks.prompts import qa_prompt

IMAGE_EXTS = ("png", "jpg", "jpeg", "tif", "tiff", "webp")
MODES = ("sample", "qa", "conversation")


def shard_urls(source, split: str | Iterable[str] | None = None) -> list[str]:
    """Shard paths of a corpus: OUT (via its manifest, or its split folders), one .tar, or a list of them."""
    if isinstance(source, (list, tuple)):
        return [str(s) for s in source]
    path = Path(source)
    splits = {split} if isinstance(split, str) else set(split) if split is not None else None
    if path.is_dir():
        manifest = path / "manifest.json"
        if manifest.exists():
            shards = json.loads(manifest.read_text(encoding="utf-8"))["shards"]
            return [str(path / s["path"]) for s in shards if splits is None or s["split"] in splits]
        return sorted(str(p) for p in path.glob("*/*.tar") if splits is None or p.parent.name in splits)
    return [str(source)]  # a single shard or a brace pattern for webdataset


def _node_splitter(rank: int | None, world_size: int | None):
    def split_by_rank(src):
        r, w = rank, world_size
        if r is None or w is None:
            from webdataset.utils import pytorch_worker_info

            r, w, _, _ = pytorch_worker_info()
        yield from islice(src, r, None, w) if w > 1 else src

    return split_by_rank


def decode_sample(raw: dict) -> dict:
    """A raw webdataset sample (bytes per extension) -> metadata dict with `image` as RGB PIL image."""
    from PIL import Image

    record = json.loads(raw["json"])
    ext = next((e for e in IMAGE_EXTS if e in raw), None)
    if ext is None:
        raise ValueError(f"sample {raw.get('__key__')} has no image")
    image = Image.open(io.BytesIO(raw[ext]))
    image = image.convert("RGB") if image.mode != "RGB" else image
    return {"__key__": raw["__key__"], "__url__": raw.get("__url__"), "image": image, **record}


def _keep_qa(sample: dict, tiers, origins) -> dict:
    qa = [
        q for q in sample["qa"] if (tiers is None or q["tier"] in tiers) and (origins is None or q["origin"] in origins)
    ]
    return {**sample, "qa": qa}


def _meta(sample: dict) -> dict:
    return {k: v for k, v in sample.items() if k not in ("qa", "schema")}


def expand_qa(samples):
    """One dict per QA pair, with the image and GSD of its sample."""
    for sample in samples:
        meta = _meta(sample)
        for i, qa in enumerate(sample["qa"]):
            yield {**meta, "__key__": f"{sample['__key__']}/{i}", **qa}


def to_conversations(sample: dict, max_turns: int | None = None):
    """Chat conversations of a sample: its QA in order, ``max_turns`` per conversation (None: all in one).

    Every QA is used: a sample with more QA than ``max_turns`` gives several conversations, each with
    the image in its first user turn and key ``<sample key>/c<n>``. Each question is worded by
    ``qa_prompt``, exactly as evaluation asks it (short-answer instruction for VQA, none for free-form
    instruction turns), so training and test prompts differ only in the answer.
    """
    qa = sample["qa"]
    size = max_turns or max(1, len(qa))
    meta = _meta(sample)
    for n, start in enumerate(range(0, len(qa), size)):
        chunk = qa[start : start + size]
        messages = []
        for i, pair in enumerate(chunk):
            content = [{"type": "image"}] if i == 0 else []
            text = qa_prompt(pair["question"], pair["type"])
            messages.append({"role": "user", "content": content + [{"type": "text", "text": text}]})
            messages.append({"role": "assistant", "content": [{"type": "text", "text": pair["answer"]}]})
        key = sample["__key__"] if size >= len(qa) else f"{sample['__key__']}/c{n}"
        yield {**meta, "__key__": key, "qa": chunk, "messages": messages}


def _conversations(samples, max_turns):
    for sample in samples:
        yield from to_conversations(sample, max_turns)


def geoscale_dataset(
    source,
    *,
    split=None,
    tiers=None,
    sources=None,
    origins=None,
    mode: str = "conversation",
    max_turns: int | None = None,
    shuffle_shards: bool = False,
    shuffle_buffer: int = 0,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
):
    """A `webdataset.WebDataset` pipeline over a GeoScale-VQA corpus (an IterableDataset for DataLoader).

    `source` is OUT, a shard path or a list of them; `split`, `sources`, `tiers`, `origins` filter
    (a name or a collection of names); `mode` is "sample", "qa" or "conversation" (see module doc).
    """
    import webdataset as wds

    if (rank is None) != (world_size is None):
        raise ValueError("give both rank and world_size, or neither (then torch.distributed or RANK/WORLD_SIZE)")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    as_set = lambda v: None if v is None else {v} if isinstance(v, str) else set(v)  # noqa: E731
    splits, tiers, sources, origins = as_set(split), as_set(tiers), as_set(sources), as_set(origins)
    urls = shard_urls(source, splits)
    if not urls:
        raise ValueError(f"no shards found in {source} for split {split!r}")
    if world_size is not None and len(urls) < world_size:
        warnings.warn(f"{len(urls)} shards for {world_size} ranks: some ranks will read nothing", stacklevel=2)
    ds = wds.WebDataset(
        urls,
        shardshuffle=100 if shuffle_shards else False,
        nodesplitter=_node_splitter(rank, world_size),
        workersplitter=wds.split_by_worker,
        empty_check=False,
        seed=seed,
    )
    ds = ds.map(decode_sample)
    ds = ds.select(lambda s: (splits is None or s["split"] in splits) and (sources is None or s["source"] in sources))
    ds = ds.map(lambda s: _keep_qa(s, tiers, origins)).select(lambda s: len(s["qa"]) > 0)
    if mode == "qa":
        ds = ds.compose(expand_qa)
    elif mode == "conversation":
        ds = ds.compose(lambda samples: _conversations(samples, max_turns))
    if shuffle_buffer:  # after the expansion, so the QA of one image do not arrive together
        ds = ds.shuffle(shuffle_buffer, seed=seed)
    return ds
