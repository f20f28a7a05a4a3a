"""Turn one `Item` into a finished sample (image bytes + JSON record) or a list of rejects.

Runs in the build's worker processes. Everything a sample needs is computed in memory first; a sample
is returned whole or not at all. The GSD is resolved in a fixed order: the source's per-image value,
then the image's GeoTIFF tags, then the dataset constant; an image without any is rejected unless the
source makes GSD optional (LLaVA instruction data).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

from . import gsd as gsdlib
from .inputs import InputError, ReadLimits, read_bytes
from .qa.templates import template_qa
from .records import QA, SCHEMA, Item, Reject, error_text


@dataclass(frozen=True)
class SampleSettings:
    """Everything besides the item that decides a sample's bytes (all part of the build's plan)."""

    seed: int = 0
    templates: bool = True
    max_template_qa: int = 8
    template_types: tuple[str, ...] | None = None  # keep only these template QA types (None: all)
    max_side: int | None = None  # downscale larger images (area averaging) and scale the GSD with them
    teacher: object | None = None  # a `qa.teacher.TeacherConfig`
    limits: ReadLimits = ReadLimits()  # what may be read: source folder only, file size, pixel count


@dataclass
class Sample:
    key: str
    image_ext: str
    image_bytes: bytes
    record: dict

    def json_bytes(self) -> bytes:
        return json.dumps(self.record, ensure_ascii=False).encode("utf-8")


class _Skip(Exception):
    def __init__(self, reason: str, detail: str | None = None, path: str | None = None):
        super().__init__(reason)
        self.reason, self.detail, self.path = reason, detail, path


@contextlib.contextmanager
def _own_pixel_cap():
    """Our `max_pixels` instead of Pillow's global bomb check (a warning above 89 MP, an error above 179 MP)."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _open_verified(data: bytes, path: str, max_pixels: int) -> Image.Image:
    """Decode fully (a truncated or corrupt file fails here, not in a training job), after checking the
    pixel count in the header: an image over `max_pixels` is rejected before its pixels are decoded."""
    try:
        with _own_pixel_cap():
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                detail = f"{width} × {height} = {width * height:,} pixels, the limit is {max_pixels:,}"
                raise _Skip("image too large", detail, path)
            img.load()
        return img
    except _Skip:
        raise
    except Exception as err:  # PIL raises many types for corrupt data; all mean "unusable"
        raise _Skip("unreadable image", error_text(err), path) from None


def _read(paths: list[str], root: str | None, limits: ReadLimits) -> tuple[bytes, str]:
    """The bytes of the first candidate that exists, read through `inputs.read_bytes` (confined, bounded)."""
    if root is None and not limits.allow_outside_root:
        raise _Skip("path outside the source folder", "the source names no folder to read from", paths[0])
    for path in paths:
        try:
            return read_bytes(
                path, root=root, max_bytes=limits.max_file_bytes, allow_outside=limits.allow_outside_root
            ), path
        except FileNotFoundError:
            continue
        except InputError as err:
            raise _Skip(err.reason, err.detail, path) from None
    raise _Skip("missing file", None, paths[0] if len(paths) == 1 else " | ".join(paths))


def _to_8bit(img: Image.Image) -> Image.Image:
    """RGB 8-bit for anything Pillow decodes: high-bit-depth rasters get a 2-98 % percentile stretch."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, dtype=np.float64)
        lo, hi = np.percentile(a, [2, 98]) if a.size else (0.0, 1.0)
        a = np.clip((a - lo) / max(hi - lo, 1e-12) * 255.0, 0, 255)
        img = Image.fromarray(np.rint(a).astype(np.uint8), "L")
    return img if img.mode == "RGB" else img.convert("RGB")


def _load_file(image: dict, root: str | None, limits: ReadLimits):
    data, path = _read(image["path"], root, limits)
    img = _open_verified(data, path, limits.max_pixels)
    keep = img.format in ("PNG", "JPEG") and img.mode in ("RGB", "L")
    geo = gsdlib.gsd_from_geotiff(img) if img.format == "TIFF" else None
    return img, (data if keep else None), geo, {}


def _load_bands(image: dict, root: str | None, limits: ReadLimits):
    arrays, geo = [], None
    for path in image["bands"]:
        data, path = _read([path], root, limits)
        img = _open_verified(data, path, limits.max_pixels)
        if geo is None and img.format == "TIFF":
            geo = gsdlib.gsd_from_geotiff(img)
        arrays.append(np.asarray(img, dtype=np.float64))
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise _Skip("band sizes differ", str([a.shape for a in arrays]), image["bands"][0])
    rgb = np.clip(np.stack(arrays, axis=-1) / image["stretch_max"] * 255.0, 0, 255)
    return Image.fromarray(np.rint(rgb).astype(np.uint8), "RGB"), None, geo, {}


def _load_synthetic(image: dict, root: str | None, limits: ReadLimits):
    from .synthetic import make_scene, render

    spec = image["synthetic"]
    scene = make_scene(spec["seed"], spec["gsd_m"], spec["size_px"])
    return Image.fromarray(render(scene), "RGB"), None, None, scene.labels


def _resolve_gsd(item: Item, geo) -> tuple[float | None, str]:
    if item.gsd_m is not None:
        return item.gsd_m, item.gsd_origin or gsdlib.ORIGIN_METADATA
    if geo is not None:
        return geo.gsd_m, gsdlib.ORIGIN_GEOTIFF
    if item.dataset_gsd_m is not None:
        return item.dataset_gsd_m, gsdlib.ORIGIN_DATASET
    if item.gsd_required:
        raise _Skip("gsd missing", "no GSD in the source, no GeoTIFF tags, no dataset constant")
    return None, gsdlib.ORIGIN_NONE


def _encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def template_rng(seed: int, item: Item) -> random.Random:
    """Seeded by the image's identity, so template choice does not depend on worker or order."""
    return random.Random(f"{seed}|{item.source}|{item.split}|{item.image_id}")


def make_sample(item: Item, settings: SampleSettings, teacher=None) -> tuple[Sample | None, list[Reject]]:
    """The sample for `item` (or None) and the rejects met on the way (bad QA, malformed teacher output).

    Never raises for one item (img2dataset's rule: a sample fails, the build goes on): an error nobody
    foresaw becomes an "unexpected error" reject naming the exception.
    """
    try:
        return _make_sample(item, settings, teacher)
    except Exception as err:
        detail = error_text(err)
        return None, [Reject(item.source, "unexpected error", split=item.split, image_id=item.image_id, detail=detail)]


def _make_sample(item: Item, settings: SampleSettings, teacher=None) -> tuple[Sample | None, list[Reject]]:
    where = {"split": item.split, "image_id": item.image_id}
    try:
        kind = "synthetic" if "synthetic" in item.image else "bands" if "bands" in item.image else "path"
        loader = {"path": _load_file, "bands": _load_bands, "synthetic": _load_synthetic}[kind]
        img, original, geo, scene_labels = loader(item.image, item.root, settings.limits)
        gsd_m, gsd_origin = _resolve_gsd(item, geo)
        if gsd_m is not None:
            gsd_m = gsdlib.validate_gsd(gsd_m, what="GSD", warn=False)
        width, height = img.size
        if settings.max_side and max(width, height) > settings.max_side:
            factor = settings.max_side / max(width, height)
            new_size = (max(1, round(width * factor)), max(1, round(height * factor)))
            img = _to_8bit(img).resize(new_size, Image.Resampling.BOX)  # BOX = area averaging
            gsd_m = gsdlib.effective_gsd(gsd_m, width, new_size[0]) if gsd_m is not None else None
            width, height, original = *new_size, None
        rgb = _to_8bit(img)  # what the corpus stores and the teacher sees
        if original is not None:
            ext, image_bytes = ("jpg" if img.format == "JPEG" else "png"), original
        else:
            ext, image_bytes = "png", _encode_png(rgb)
    except _Skip as skip:
        return None, [Reject(item.source, skip.reason, path=skip.path, detail=skip.detail, **where)]
    except gsdlib.GSDError as err:
        return None, [Reject(item.source, "invalid GSD", detail=str(err), **where)]

    qa: list[QA] = list(item.qa)
    rejects: list[Reject] = []
    if settings.templates:
        labels = {**item.labels, **scene_labels}
        qa += template_qa(
            gsd_m=gsd_m,
            width=width,
            height=height,
            labels=labels,
            rng=template_rng(settings.seed, item),
            max_qa=settings.max_template_qa,
            types=None if settings.template_types is None else frozenset(settings.template_types),
        )
    if teacher is not None and gsd_m is not None:
        try:
            teacher_qa, failures = teacher.generate_qa(rgb, gsd_m)
        except Exception as err:  # one image the model cannot take must not stop the build
            teacher_qa, failures = [], [f"teacher error: {type(err).__name__}: {err}"]
        qa += teacher_qa
        rejects += [Reject(item.source, "malformed teacher output", detail=f, **where) for f in failures]
    if not qa:
        return None, rejects + [Reject(item.source, "no QA", detail="no source QA and nothing to ask", **where)]
    record = {
        "schema": SCHEMA,
        "source": item.source,
        "split": item.split,
        "image_id": item.image_id,
        "gsd_m": gsd_m,
        "log10_gsd": math.log10(gsd_m) if gsd_m is not None else None,
        "gsd_origin": gsd_origin,
        "width": width,
        "height": height,
        "qa": [q.to_json() for q in qa],
    }
    return Sample(item.key, ext, image_bytes, record), rejects
