"""XLRS layouts read with pyarrow: the Hugging Face `datasets.save_to_disk` folder and the parquet export.

**save_to_disk** (XLRS-Bench-lite as published on the hub): `dataset_dict.json` (`{"splits": [...]}`)
and one folder per split holding `state.json` (its `_data_files` list the shards in order) and the
shards `data-000NN-of-000MM.arrow`, Arrow IPC *stream* files. A shard is memory-mapped: the text
columns are read, the `image` column (a list of HF `Image` structs, {bytes, path}) is only measured
(images per row) and each image is read later by `ArrowStreamImage`, so 8,500 px images are never
all in memory. `--data` may name the dataset folder, one split folder or one shard.

**parquet** (the hub's parquet export, `data/train-000NN-of-000MM.parquet`): the same columns; image
counts are taken one row group at a time and images read by `ParquetImage`.
"""

from __future__ import annotations

import json
from pathlib import Path

from .image_refs import ArrowStreamImage, ParquetImage, read_arrow_shard
from .xlrs_rows import FIELDS, XLRSRow, text_fields

DATASET_DICT = "dataset_dict.json"
SPLIT_STATE = "state.json"
MAX_METADATA_BYTES = 4 << 20  # dataset_dict.json / state.json are a few hundred bytes


def _small_json(path: Path):
    if path.stat().st_size > MAX_METADATA_BYTES:
        raise ValueError(f"{path}: larger than {MAX_METADATA_BYTES} bytes; not a datasets metadata file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: malformed JSON ({err})") from None


def _split_shards(folder: Path) -> list[Path]:
    """The shards of one split folder, in `state.json` order (else sorted `data-*.arrow`)."""
    state = folder / SPLIT_STATE
    if state.is_file():
        files = _small_json(state).get("_data_files")
        if not isinstance(files, list) or not all(isinstance(f, dict) and "filename" in f for f in files):
            raise ValueError(f"{state}: expected '_data_files': [{{'filename': ...}}, ...]")
        shards = [folder / f["filename"] for f in files]
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            raise ValueError(f"{state} lists shard(s) that are not there: {', '.join(missing[:3])}")
        return shards
    return sorted(folder.glob("data-*.arrow"))


def save_to_disk_shards(path: Path) -> list[Path]:
    """Every shard of a save_to_disk dataset folder (all its splits, in `dataset_dict.json` order)."""
    splits = _small_json(path / DATASET_DICT).get("splits")
    if not isinstance(splits, list) or not splits or not all(isinstance(s, str) for s in splits):
        raise ValueError(f"{path / DATASET_DICT}: expected {{'splits': ['train', ...]}}")
    shards = []
    for split in splits:
        folder = path / split
        if not folder.is_dir():
            raise ValueError(f"{path / DATASET_DICT} lists split {split!r}, but {folder} is not a folder")
        found = _split_shards(folder)
        if not found:
            raise ValueError(f"{folder}: no data-*.arrow shards")
        shards += found
    return shards


def split_folder_shards(path: Path) -> list[Path]:
    """The shards of a folder that is one split (holds `state.json` or `data-*.arrow`), else []."""
    return _split_shards(path) if (path / SPLIT_STATE).is_file() or any(path.glob("data-*.arrow")) else []


def _check_columns(names, path: Path) -> None:
    missing = [f for f in (*FIELDS, "image") if f not in names]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(repr(f) for f in missing)}")


def _image_counts(column) -> list[int]:
    """Images per row of an `image` column (a list of images, or one image per row), without the bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return [n or 0 for n in pc.list_value_length(column).to_pylist()]
    return [1 if valid else 0 for valid in pc.is_valid(column).to_pylist()]


def _rows(records: list[dict], counts: list[int], path: Path, make_ref) -> list[XLRSRow]:
    rows = []
    for i, record in enumerate(records):
        where = f"{path}: row {i}"
        images = tuple(make_ref(i, k) for k in range(counts[i]))
        rows.append(XLRSRow(images=images, where=where, **text_fields(record, where)))
    return rows


def read_arrow(path: Path, with_images: bool) -> list[XLRSRow]:
    table = read_arrow_shard(str(path))
    _check_columns(table.column_names, path)
    text = [c for c in (*FIELDS, "l2-category") if c in table.column_names]
    records = table.select(text).to_pylist()
    counts = _image_counts(table.column("image")) if with_images else [0] * len(records)
    return _rows(records, counts, path, lambda row, k: ArrowStreamImage(str(path), row, "image", k))


def read_parquet(path: Path, with_images: bool) -> list[XLRSRow]:
    import pyarrow.parquet as pq

    file = pq.ParquetFile(path)
    names = file.schema_arrow.names
    _check_columns(names, path)
    text = [c for c in (*FIELDS, "l2-category") if c in names]
    records = file.read(columns=text).to_pylist()
    counts = [0] * len(records)
    if with_images:
        counts = []
        for group in range(file.num_row_groups):  # one row group's images in memory at a time
            counts += _image_counts(file.read_row_group(group, columns=["image"]).column(0))
    return _rows(records, counts, path, lambda row, k: ParquetImage(str(path), row, "image", k))
