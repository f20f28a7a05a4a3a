"""Read GeoScale-VQA shards for training: a webdataset pipeline that yields images with their GSD.

    ds = geoscale_dataset("corpus", split="train", mode="conversation", tiers={"object", "scale"})
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=4)

Every sample is read by exactly one reader, a (rank, DataLoader worker) pair, per epoch (ranks from the
explicit `rank`/`world_size`, else torch.distributed, else the RANK/WORLD_SIZE environment): with at
least world_size × num_workers shards, readers split the shards; with fewer (a small corpus on many
ranks), every reader streams every shard and keeps every (world_size × num_workers)-th sample, so the
readers together still see exactly the samples one process would.

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
import random
from collections.abc import Iterable
from itertools import islice
from pathlib import Path

from .benchmarks.prompts import qa_prompt

IMAGE_EXTS = ("png", "jpg", "jpeg", "tif", "tiff", "webp")
MODES = ("sample", "qa", "conversation")


def read_manifest(corpus) -> dict:
    """`corpus/manifest.json`, checked enough to use: a damaged one is a ValueError naming the file."""
    path = Path(corpus) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        shards = manifest["shards"]
        if not all(isinstance(s, dict) and isinstance(s.get("path"), str) and "split" in s for s in shards):
            raise ValueError("a malformed shard entry")
        counts = manifest["counts"]
        if not all(isinstance(counts.get(k), dict) for k in ("by_source", "by_split")):
            raise ValueError("malformed counts")
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"corpus manifest {path} is damaged ({type(err).__name__}: {err}); "
                         "rebuild it with build-data --resume (or --merge-parts)") from None  # fmt: skip
    return manifest


def shard_urls(source, split: str | Iterable[str] | None = None) -> list[str]:
    """Shard paths of a corpus: OUT (via its manifest, or its split folders), one .tar, or a list of them."""
    if isinstance(source, (list, tuple)):
        return [str(s) for s in source]
    path = Path(source)
    splits = {split} if isinstance(split, str) else set(split) if split is not None else None
    if path.is_dir():
        if (path / "manifest.json").exists():
            shards = read_manifest(path)["shards"]
            return [str(path / s["path"]) for s in shards if splits is None or s["split"] in splits]
        return sorted(str(p) for p in path.glob("*/*.tar") if splits is None or p.parent.name in splits)
    return [str(source)]  # a single shard or a brace pattern for webdataset


def corpus_problem(corpus, split: str | None = None, sources: Iterable[str] | None = None) -> tuple[str, str] | None:
    """Why a corpus folder cannot give samples of `split` from `sources`, as (what, message) with what in
    "empty", "split", "sources"; None when it can, or when it has no manifest to tell. Counts come from
    the manifest; nothing is decoded."""
    if not (Path(corpus) / "manifest.json").exists():
        return None
    counts = read_manifest(corpus)["counts"]
    have = lambda table: {k: v["samples"] for k, v in counts[table].items() if v.get("samples")}  # noqa: E731
    by_source, by_split = have("by_source"), have("by_split")
    listed = lambda table: ", ".join(f"{k} ({n})" for k, n in sorted(table.items())) or "none"  # noqa: E731
    if not by_split:
        return "empty", f"corpus {corpus} holds no samples (its rejects.jsonl says why every input was rejected)"
    if split is not None and split not in by_split:
        return "split", f"corpus {corpus} has no samples in split {split!r}; its splits: {listed(by_split)}"
    missing = sorted(set(sources or ()) - set(by_source))
    if missing:
        return "sources", (
            f"corpus {corpus} has no samples from source(s) {', '.join(missing)}; its sources: {listed(by_source)}"
        )
    return None


def _reader_slot(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(this reader's index, number of readers): one reader per (rank, DataLoader worker)."""
    from webdataset.utils import pytorch_worker_info

    r, w, worker, workers = pytorch_worker_info()
    if rank is not None:
        r, w = rank, world_size
    return r * workers + worker, w * workers


def _shard_splitter(n_shards: int, rank, world_size, shuffle: bool, seed: int):
    """Shards for this reader: its share when there are enough shards to go round, else all of them
    (in order, so every reader sees the samples in the same sequence for `_sample_splitter`)."""

    def split(urls):
        reader, readers = _reader_slot(rank, world_size)
        if n_shards < readers:
            yield from urls
            return
        mine = list(islice(urls, reader, None, readers))
        if shuffle:
            random.Random(seed).shuffle(mine)
        yield from mine

    return split


def _sample_splitter(n_shards: int, rank, world_size):
    """Every readers-th sample for this reader when the shards were too few to split."""

    def split(samples):
        reader, readers = _reader_slot(rank, world_size)
        yield from samples if n_shards >= readers else islice(samples, reader, None, readers)

    return split


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
    ds = wds.WebDataset(
        urls,
        shardshuffle=False,  # the splitter shuffles a reader's own shards, or keeps one order for all readers
        nodesplitter=_shard_splitter(len(urls), rank, world_size, shuffle_shards, seed),
        workersplitter=None,
        empty_check=False,
        seed=seed,
    )
    ds = ds.compose(_sample_splitter(len(urls), rank, world_size))
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
