"""Lazy references to images stored inside benchmark files, read only when a model needs the pixels.

A benchmark of 3,080 questions over ~8,500 px images must never hold its pixels in memory, so the
readers keep one small reference per image and `read_bytes()` fetches that image alone:

- `ParquetImage`: image k of a row of a parquet file (the Hugging Face parquet export); one row group
  is read at a time and the last one kept, so walking the rows in order reads each group once.
- `ArrowStreamImage`: image k of a row of an Arrow IPC stream shard (`datasets.save_to_disk`); the
  shard is memory-mapped, so only the pages of that image are read.
- `RecordImage`: image k of one JSONL line or TSV row holding base64 images (VLMEvalKit's copies);
  the reader noted the record's byte offset, so only that record is read and decoded.

Hugging Face `Image` cells are `{"bytes", "path"}` structs, alone or in a list (`Sequence(Image)`).
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import os
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

# A VLMEvalKit TSV row holds its images as base64 text; csv's default field limit (128 KiB) is far
# below one 8,500 px image. Rows are still read one at a time, so this bounds one field, not the file.
TSV_FIELD_LIMIT = 1 << 30


def file_stamp(path: str) -> tuple[int, int]:
    """(mtime in ns, size): part of every cache key below, so a rewritten file is read again."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise ValueError(f"{path}: cannot read the file the image is in ({err.strerror})") from None
    return st.st_mtime_ns, st.st_size


def image_cell_bytes(cell, k: int, where: str) -> bytes:
    """The bytes of image k in a Hugging Face `Image`/`Sequence(Image)` cell ({"bytes", "path"} or a list)."""
    if isinstance(cell, list):
        if not 0 <= k < len(cell):
            raise ValueError(f"{where}: no image {k} (the cell holds {len(cell)})")
        cell = cell[k]
    if isinstance(cell, dict) and cell.get("bytes"):
        return cell["bytes"]
    if isinstance(cell, (bytes, bytearray)):
        return bytes(cell)
    raise ValueError(f"{where}: image cell has no inline bytes")


# -- parquet ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParquetImage:
    """Image k of row `row` in a parquet file, read on demand so a benchmark never holds all pixels."""

    path: str
    row: int
    column: str = "image"
    k: int = 0

    def read_bytes(self) -> bytes:
        stamp = file_stamp(self.path)
        group, offset = _locate_row(self.path, self.row, stamp)
        cell = _row_group_column(self.path, group, self.column, stamp)[offset].as_py()
        return image_cell_bytes(cell, self.k, f"{self.path}: row {self.row}")


@lru_cache(maxsize=64)
def _row_group_starts(path: str, stamp: tuple[int, int]) -> tuple[int, ...]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    starts, total = [], 0
    for group in range(meta.num_row_groups):
        starts.append(total)
        total += meta.row_group(group).num_rows
    return (*starts, total)


def _locate_row(path: str, row: int, stamp: tuple[int, int]) -> tuple[int, int]:
    starts = _row_group_starts(path, stamp)
    if not 0 <= row < starts[-1]:
        raise ValueError(f"{path}: row {row} out of range ({starts[-1]} rows)")
    group = bisect_right(starts, row) - 1
    return group, row - starts[group]


@lru_cache(maxsize=1)
def _row_group_column(path: str, group: int, column: str, stamp: tuple[int, int]):
    """One row group's image column, kept while a runner walks its rows in order (a group is read once)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read_row_group(group, columns=[column]).column(0)


# -- Arrow IPC stream (datasets.save_to_disk) ----------------------------------------------------
@dataclass(frozen=True)
class ArrowStreamImage:
    """Image k of row `row` of a memory-mapped Arrow IPC stream shard (`data-000NN-of-000MM.arrow`)."""

    path: str
    row: int
    column: str = "image"
    k: int = 0

    def read_bytes(self) -> bytes:
        table = read_arrow_shard(self.path)
        if not 0 <= self.row < table.num_rows:
            raise ValueError(f"{self.path}: row {self.row} out of range ({table.num_rows} rows)")
        cell = table.column(self.column)[self.row].as_py()
        return image_cell_bytes(cell, self.k, f"{self.path}: row {self.row}")


def read_arrow_shard(path: str):
    """The shard as a pyarrow Table over a memory map: no column is copied into memory until it is used.

    `datasets` writes Arrow IPC *stream* files; the IPC *file* format is accepted too.
    """
    return _arrow_shard(path, file_stamp(path))


@lru_cache(maxsize=8)
def _arrow_shard(path: str, stamp: tuple[int, int]):
    import pyarrow as pa

    source = pa.memory_map(path)
    try:
        return pa.ipc.open_stream(source).read_all()
    except pa.ArrowInvalid:
        source.seek(0)
        try:
            return pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            raise ValueError(f"{path}: not an Arrow IPC stream or file") from None


# -- base64 images inside JSONL lines or TSV rows (VLMEvalKit) -------------------------------------
@dataclass(frozen=True)
class RecordImage:
    """Image k of the record starting at byte `offset` of a JSONL or TSV file, base64 in field `column`."""

    path: str
    offset: int
    fmt: str  # "jsonl" | "tsv"
    k: int = 0
    column: str = "image"

    def read_bytes(self) -> bytes:
        where = f"{self.path}: record at byte {self.offset}"
        record = read_record(self.path, self.offset, self.fmt, file_stamp(self.path))
        images = base64_images(record.get(self.column), where)
        if not 0 <= self.k < len(images):
            raise ValueError(f"{where}: no image {self.k} (the record holds {len(images)})")
        try:
            return base64.b64decode(_padded(images[self.k]), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{where}: image {self.k} is not valid base64") from None


def _padded(text: str) -> str:
    text = "".join(text.split())
    return text + "=" * (-len(text) % 4)


def base64_images(value, where: str) -> list[str]:
    """The base64 strings of a VLMEvalKit `image` field: one string, a list, or a list written as text."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        import ast

        try:
            value = ast.literal_eval(value)  # VLMEvalKit's TSVs write image lists with Python's repr
        except (ValueError, SyntaxError):
            raise ValueError(f"{where}: image field looks like a list but cannot be read as one") from None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: image must be base64 text or a list of it, got {type(value).__name__}")
    return value


@lru_cache(maxsize=2)
def read_record(path: str, offset: int, fmt: str, stamp: tuple[int, int]) -> dict:
    """The one record (a dict) starting at `offset`; the last two are kept for multi-image questions."""
    with open(path, "rb") as f:
        f.seek(offset)
        if fmt == "jsonl":
            line = f.readline()
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}: record at byte {offset} is not JSON ({err.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}: record at byte {offset} is not a JSON object")
            return record
        if fmt == "tsv":
            header = tsv_header(path, stamp)
            row = next(csv.reader(_text_lines(f), delimiter="\t"), None)
            if row is None or len(row) != len(header):
                raise ValueError(f"{path}: record at byte {offset} does not have the header's {len(header)} fields")
            return dict(zip(header, row))
    raise ValueError(f"unknown record format {fmt!r}")


def _text_lines(f):
    for line in iter(f.readline, b""):
        yield line.decode("utf-8")


@lru_cache(maxsize=16)
def tsv_header(path: str, stamp: tuple[int, int]) -> tuple[str, ...]:
    csv.field_size_limit(TSV_FIELD_LIMIT)
    with open(path, "rb") as f:
        header = next(csv.reader(_text_lines(f), delimiter="\t"), None)
    if not header:
        raise ValueError(f"{path}: empty TSV file")
    return tuple(header)


def iter_tsv_rows(path: str):
    """(byte offset of the row, 1-based row number, {column: text}) for every data row of a TSV file.

    Rows may span lines (quoted fields with newlines, as VLMEvalKit's option strings have); the offset
    is where the row's first line starts, so `RecordImage` can read that row again on its own.
    """
    csv.field_size_limit(TSV_FIELD_LIMIT)
    header = tsv_header(path, file_stamp(path))
    with open(path, "rb") as f:
        position = [0]

        def lines():
            for line in iter(f.readline, b""):
                position[0] += len(line)
                yield line.decode("utf-8")

        reader = csv.reader(lines(), delimiter="\t")
        next(reader)
        n = 0
        while True:
            start = position[0]
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise ValueError(f"{path}: row {n + 1}: malformed TSV ({err})") from None
            n += 1
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}: row {n}: {len(row)} fields, the header has {len(header)}")
            yield start, n, dict(zip(header, row))
