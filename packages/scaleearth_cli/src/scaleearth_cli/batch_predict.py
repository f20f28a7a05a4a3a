"""``scaleearth predict --images ... --questions ... --out predictions.jsonl``: an archive of tiles, batched.

Inputs:

- ``images``: a folder (every .tif/.tiff/.png/.jpg/.jpeg below it, sorted by relative path) or a
  ``manifest.jsonl`` with one ``{"image": path relative to the manifest, "id"?: str, "gsd_m"?: metres}``
  per line. Paths must stay inside the folder (or the manifest's folder).
- ``questions``: a text file with one question per line, or a JSONL of ``{"question": ..., "id"?: ...}``;
  every question is asked about every image. A row's id is ``<image id>/<question id>``.

Each image's GSD: the manifest's ``gsd_m``, else its GeoTIFF tags, else none (the deployment policy then
uses SSE-U's estimate when its interval is narrow, or the neutral default); each row says which.

Resume: rows are appended per batch (flushed and fsynced); a rerun reads the file, drops a torn last line,
skips every id already there and appends the rest, so a killed run finishes with each row exactly once,
in the order an uninterrupted run writes them. ``part=(i, N)`` keeps the images whose index is i mod N
(the same convention as ``build-data --part``): N machines, or a Slurm array, each with its own ``--out``;
concatenating the N files gives every row once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .inference import EvalModel, ImageCache, Item, answer_batch
from .scale import GateSource

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ArchiveImage:
    id: str
    path: Path
    gsd_m: float | None  # from the manifest (None: read the GeoTIFF tags at prediction time)


def _inside(root: Path, relative: str, where: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise ValueError(f"{where}: image path {relative!r} leaves {root}")
    return path


def list_images(images) -> list[ArchiveImage]:
    """The archive's images in a fixed order (see the module docstring)."""
    from geoscale_vqa.gsd import validate_gsd

    images = Path(images)
    if images.is_dir():
        found = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        root = images.resolve()
        return [ArchiveImage(p.relative_to(images).as_posix(), _inside(root, str(p.relative_to(images)), str(images)),
                             None) for p in found]  # fmt: skip
    if not images.is_file():
        raise ValueError(f"--images {images} is neither a folder nor a manifest file")
    out, seen = [], set()
    for where, record in _jsonl_records(images.read_text(encoding="utf-8").splitlines(), images, "image"):
        image_id = str(record.get("id", record["image"]))
        if image_id in seen:
            raise ValueError(f"{where}: id {image_id!r} appears twice")
        seen.add(image_id)
        gsd = record.get("gsd_m")
        gsd = None if gsd is None else validate_gsd(gsd, what=f"{where} gsd_m")
        out.append(ArchiveImage(image_id, _inside(images.parent, record["image"], where), gsd))
    return out


def _jsonl_records(lines, path, needs: str) -> Iterator[tuple[str, dict]]:
    """(``file:line``, record) of each non-blank JSON line; each must be an object with a text ``needs``."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            record = json.loads(line)
        except ValueError as err:
            raise ValueError(f"{where}: not JSON ({err})") from None
        if not isinstance(record, dict) or not isinstance(record.get(needs), str):
            raise ValueError(f"{where}: needs a text {needs!r}")
        yield where, record


def read_questions(path) -> list[tuple[str, str]]:
    """[(question id, question)] from a text file (one per line, ids q0, q1, ...) or a JSONL file."""
    path = Path(path)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"--questions {path} holds no question")
    if not lines[0].lstrip().startswith("{"):
        return [(f"q{i}", line.strip()) for i, line in enumerate(lines)]
    out = [
        (str(record.get("id", f"q{n}")), record["question"])
        for n, (_, record) in enumerate(_jsonl_records(lines, path, "question"))
    ]
    if len({qid for qid, _ in out}) != len(out):
        raise ValueError(f"{path}: question ids must be unique")
    return out


def done_ids(out: Path) -> list[str]:
    """Ids already written to ``out``; a torn last line (a run killed mid-write) is cut off the file."""
    if not out.is_file():
        return []
    data = out.read_bytes()
    keep = data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        with open(out, "r+b") as f:
            f.truncate(len(keep))
    ids = []
    for line in keep.decode("utf-8").splitlines():
        ids.append(json.loads(line)["id"])
    return ids


@dataclass
class ArchiveResult:
    out: Path
    written: int
    skipped: int  # already in the file from an earlier run


def _work(images: list[ArchiveImage], questions, part: tuple[int, int]) -> Iterator[tuple[str, ArchiveImage, str]]:
    i, n = part
    for index, image in enumerate(images):
        if index % n == i:
            for qid, question in questions:
                yield f"{image.id}/{qid}", image, question


def predict_archive(
    em: EvalModel,
    images,
    questions,
    out,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    part: tuple[int, int] = (0, 1),
    console=None,
) -> ArchiveResult:
    from geoscale_vqa.progress import progress_bar

    from .predict import metadata_gsd

    archive, asked = list_images(images), read_questions(questions)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set(done_ids(out))
    todo = [w for w in _work(archive, asked, part) if w[0] not in done]
    skipped = sum(1 for w in _work(archive, asked, part) if w[0] in done)
    cache, origins = ImageCache(), {}
    progress = progress_bar(console, "predict") if console is not None else None
    task = progress.add_task("predict", total=len(todo)) if progress else None
    written = 0
    if progress:
        progress.start()
    try:
        with open(out, "a", encoding="utf-8") as f:
            for start in range(0, len(todo), batch_size):
                chunk = todo[start : start + batch_size]
                items = []
                for _, image, question in chunk:
                    if image.id not in origins:
                        origins[image.id] = (
                            (image.gsd_m, "manifest") if image.gsd_m is not None else metadata_gsd(image.path, None)
                        )
                    size, pixels = cache.open(str(image.path), em.processor)
                    items.append(Item(prompt=question, images=[pixels], source_widths=[size[0]],
                                      gsd_m=origins[image.id][0]))  # fmt: skip
                answers = answer_batch(em, items, GateSource("oracle"), max_new_tokens=max_new_tokens)
                for (row_id, image, question), answer in zip(chunk, answers):
                    gsd, origin = origins[image.id]
                    row = {
                        "id": row_id, "image": image.id, "question": question, "prediction": answer.text,
                        "gsd_m": gsd, "gsd_origin": origin if gsd is not None else "none",
                        "gate_gsd_m": answer.gate_gsd_m, "branch": answer.branch,
                        "effective_gsd_m": answer.effective_gsd_m,
                        "sseu_gsd_m": None if answer.sseu_mean is None else 10.0**answer.sseu_mean,
                    }  # fmt: skip
                    f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
                written += len(chunk)
                if progress:
                    progress.advance(task, len(chunk))
    finally:
        if progress:
            progress.stop()
    return ArchiveResult(out, written, skipped)
