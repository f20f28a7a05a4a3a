"""Ground sampling distance: validation, parsing, GeoTIFF tags and the effective GSD after resizing.

Every GSD that enters the corpus passes through `validate_gsd`, so NaN, inf, 0, negatives and values no
pixel can have (below a micrometre, above the Earth's circumference) never reach a sample. GeoTIFF tags
are read with Pillow (no GDAL): ModelPixelScale (33550) or ModelTransformation (34264) give the pixel size
in CRS units, the GeoKeyDirectory (34735) says what those units are, and a geographic CRS (degrees) is
converted to metres at the latitude of the image centre.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

PLAUSIBLE_RANGE_M = (0.01, 10_000.0)
# Hard limits: a pixel finer than a micrometre or wider than the Earth's circumference is no ground sampling
# distance, and beyond them the arithmetic of footprints and templates overflows (1e308 m * 512 px = inf).
POSSIBLE_RANGE_M = (1e-6, 4.0e7)

# How the GSD of a sample was obtained (the `gsd_origin` field of a sample).
ORIGIN_METADATA = "metadata"  # a per-image field of the source (DOTA header, fMoW JSON, a manifest)
ORIGIN_GEOTIFF = "geotiff"  # the image's own GeoTIFF tags
ORIGIN_DATASET = "dataset"  # a dataset-level constant (RSVQA-LR 10 m, RSVQA-HR 0.15 m, ...)
ORIGIN_SYNTHETIC = "synthetic"  # rendered by the procedural scale world at exactly this GSD
ORIGIN_NONE = "none"  # only for sources where GSD is optional (LLaVA instruction data)
GSD_ORIGINS = (ORIGIN_METADATA, ORIGIN_GEOTIFF, ORIGIN_DATASET, ORIGIN_SYNTHETIC, ORIGIN_NONE)

TAG_MODEL_PIXEL_SCALE = 33550
TAG_MODEL_TIEPOINT = 33922
TAG_MODEL_TRANSFORMATION = 34264
TAG_GEO_KEY_DIRECTORY = 34735

# GeoKey ids and EPSG unit codes (GeoTIFF 1.1, sections 6.2 and 7.1).
_KEY_MODEL_TYPE = 1024  # 1 projected, 2 geographic, 3 geocentric
_KEY_GEOG_ANGULAR_UNITS = 2054
_KEY_PROJ_LINEAR_UNITS = 3076
_KEY_GEOG_TYPE = 2048
_LINEAR_UNIT_TO_M = {9001: 1.0, 9002: 0.3048, 9003: 1200.0 / 3937.0, 9036: 1000.0}
_ANGULAR_UNIT_TO_DEG = {9102: 1.0, 9101: 180.0 / math.pi, 9105: 0.9, 9104: 1.0 / 3600.0}

# WGS84 ellipsoid, for degrees -> metres on a geographic CRS.
_WGS84_A = 6_378_137.0
_WGS84_E2 = 6.69437999014e-3


class GSDError(ValueError):
    """A GSD that is missing, not a number, not finite, not positive or outside `POSSIBLE_RANGE_M`."""


class ImplausibleGSDWarning(UserWarning):
    """A GSD outside 0.01 m - 10 km: kept (never clamped) but probably a unit mistake."""


def implausible_message(what: str, count: int, example_m: float) -> str:
    """The wording shared with cshlora and sseu (tests/test_workspace.py keeps the three in step)."""
    return (
        f"{what}: {count} GSD value(s) outside the plausible range 0.01 m - 10 km (e.g. {example_m:.4g} m); "
        "used as given, check the units"
    )


def is_plausible(gsd_m: float) -> bool:
    return PLAUSIBLE_RANGE_M[0] <= gsd_m <= PLAUSIBLE_RANGE_M[1]


def validate_gsd(value, *, what: str = "GSD", warn: bool = True) -> float:
    """Return `value` as a float GSD in metres, or raise `GSDError` with a message naming `what`."""
    if value is None:
        raise GSDError(f"{what} is missing")
    if isinstance(value, bool):
        raise GSDError(f"{what} must be a number of metres, got {value!r}")
    try:
        gsd = float(value)
    except (TypeError, ValueError):
        raise GSDError(f"{what} must be a number of metres, got {value!r}") from None
    if not math.isfinite(gsd):
        raise GSDError(f"{what} must be finite, got {gsd}")
    if gsd <= 0:
        raise GSDError(f"{what} must be > 0 m, got {gsd}")
    if not POSSIBLE_RANGE_M[0] <= gsd <= POSSIBLE_RANGE_M[1]:
        raise GSDError(
            f"{what} must lie between {POSSIBLE_RANGE_M[0]:g} m and {POSSIBLE_RANGE_M[1]:g} m (the Earth's "
            f"circumference), got {gsd:g}"
        )
    if warn and not is_plausible(gsd):
        warnings.warn(implausible_message(what, 1, gsd), ImplausibleGSDWarning, stacklevel=2)
    return gsd


def log10_gsd(gsd_m: float) -> float:
    return math.log10(validate_gsd(gsd_m, warn=False))


def parse_gsd(text) -> float | None:
    """Parse a GSD field as sources write it: a number, a numeric string, or None/null/"" for missing.

    Returns None for a missing value; anything else that is not a valid GSD raises `GSDError`.
    """
    if text is None:
        return None
    if isinstance(text, str):
        stripped = text.strip()
        if stripped.lower() in {"", "none", "null"}:
            return None
        text = stripped
    return validate_gsd(text, warn=False)


def effective_gsd(source_gsd_m: float, source_width: int, model_input_width: int) -> float:
    """GSD of the pixels the model actually sees after the image is resized.

    Resizing a W-pixel-wide image to w pixels makes each pixel cover W / w times more ground.
    """
    gsd = validate_gsd(source_gsd_m, what="source GSD", warn=False)
    if source_width <= 0 or model_input_width <= 0:
        raise ValueError(f"image widths must be positive, got {source_width} and {model_input_width}")
    return gsd * source_width / model_input_width


@dataclass(frozen=True)
class GeoTiffGSD:
    gsd_m: float
    x_m: float
    y_m: float
    crs_kind: str  # "projected" or "geographic"


def _geo_keys(directory) -> dict[int, int]:
    """GeoKeyDirectory: 4 header shorts then (key id, tag location, count, value) per key.

    Only keys stored inline (tag location 0) are needed here; they are all SHORT values.
    """
    values = [int(v) for v in directory]
    if len(values) < 4:
        return {}
    count = values[3]
    keys = {}
    for i in range(count):
        entry = values[4 + 4 * i : 8 + 4 * i]
        if len(entry) < 4:
            break
        key_id, location, _, value = entry
        if location == 0:
            keys[key_id] = value
    return keys


def _metres_per_degree(latitude_deg: float) -> tuple[float, float]:
    """(east-west, north-south) metres per degree on the WGS84 ellipsoid at this latitude."""
    phi = math.radians(latitude_deg)
    s2 = math.sin(phi) ** 2
    n = _WGS84_A / math.sqrt(1 - _WGS84_E2 * s2)  # prime vertical radius
    m = _WGS84_A * (1 - _WGS84_E2) / (1 - _WGS84_E2 * s2) ** 1.5  # meridional radius
    return math.radians(1) * n * math.cos(phi), math.radians(1) * m


def gsd_from_geotiff_tags(tags: dict, width: int, height: int) -> GeoTiffGSD | None:
    """GSD from a mapping of TIFF tag id -> value; None if the tags do not define one.

    The reported `gsd_m` is the geometric mean of the x and y pixel sizes, so it preserves pixel area
    when pixels are not square.
    """
    directory = tags.get(TAG_GEO_KEY_DIRECTORY)
    if directory is None:
        return None  # pixel sizes without a CRS have unknown units: do not guess
    keys = _geo_keys(directory)
    model_type = keys.get(_KEY_MODEL_TYPE)
    scale = tags.get(TAG_MODEL_PIXEL_SCALE)
    transform = tags.get(TAG_MODEL_TRANSFORMATION)
    if scale is not None and len(scale) >= 2:
        sx, sy = abs(float(scale[0])), abs(float(scale[1]))
        tie = tags.get(TAG_MODEL_TIEPOINT)
        # Latitude of the image centre: tiepoint (I, J, K, X, Y, Z) maps pixel (I, J) to (X, Y).
        centre_y = None
        if tie is not None and len(tie) >= 6:
            centre_y = float(tie[4]) - (height / 2 - float(tie[1])) * sy
    elif transform is not None and len(transform) >= 16:
        m = [float(v) for v in transform]
        sx, sy = math.hypot(m[0], m[4]), math.hypot(m[1], m[5])
        centre_y = m[4] * width / 2 + m[5] * height / 2 + m[7]
    else:
        return None
    if not (math.isfinite(sx) and math.isfinite(sy)) or sx <= 0 or sy <= 0:
        return None
    if model_type == 2:  # geographic: pixel sizes are angles
        to_deg = _ANGULAR_UNIT_TO_DEG.get(keys.get(_KEY_GEOG_ANGULAR_UNITS, 9102))
        if to_deg is None or centre_y is None:
            return None
        lat = centre_y * to_deg
        if not -90.0 <= lat <= 90.0:
            return None
        m_x, m_y = _metres_per_degree(lat)
        x_m, y_m = sx * to_deg * m_x, sy * to_deg * m_y
        kind = "geographic"
    elif model_type == 1:  # projected: pixel sizes are in the projection's linear unit
        to_m = _LINEAR_UNIT_TO_M.get(keys.get(_KEY_PROJ_LINEAR_UNITS, 9001))
        if to_m is None:
            return None
        x_m, y_m = sx * to_m, sy * to_m
        kind = "projected"
    else:
        return None
    gsd = math.sqrt(x_m * y_m)
    if not math.isfinite(gsd) or gsd <= 0:
        return None
    return GeoTiffGSD(gsd_m=gsd, x_m=x_m, y_m=y_m, crs_kind=kind)


def gsd_from_geotiff(image_or_path) -> GeoTiffGSD | None:
    """GSD of a GeoTIFF (an open PIL image or a path); None for non-TIFFs and TIFFs without geotags."""
    from PIL import Image

    if isinstance(image_or_path, (str, Path)):
        with Image.open(image_or_path) as img:
            return gsd_from_geotiff(img)
    img = image_or_path
    tag_v2 = getattr(img, "tag_v2", None)
    if tag_v2 is None:
        return None
    wanted = (TAG_MODEL_PIXEL_SCALE, TAG_MODEL_TIEPOINT, TAG_MODEL_TRANSFORMATION, TAG_GEO_KEY_DIRECTORY)
    tags = {}
    for tag in wanted:
        if tag in tag_v2:
            value = tag_v2[tag]
            tags[tag] = value if isinstance(value, tuple) else (value,)
    return gsd_from_geotiff_tags(tags, *img.size)


def geotiff_tags(
    gsd_m: float | tuple[float, float],
    *,
    geographic: bool = False,
    origin: tuple[float, float] = (500_000.0, 4_500_000.0),
    linear_unit: int = 9001,
):
    """TIFF tags (a Pillow `ImageFileDirectory_v2`) that make an image a GeoTIFF with this pixel size.

    Used by the fixture makers and by anyone who wants to write geotagged test data without GDAL.
    `geographic=True` writes a WGS84 lat/lon GeoTIFF: `gsd_m` is then the pixel size in degrees and
    `origin` is (lon, lat) of the top-left corner.
    """
    from PIL import TiffImagePlugin, TiffTags

    sx, sy = (gsd_m, gsd_m) if isinstance(gsd_m, (int, float)) else gsd_m
    ifd = TiffImagePlugin.ImageFileDirectory_v2()
    ifd[TAG_MODEL_PIXEL_SCALE] = (float(sx), float(sy), 0.0)
    ifd.tagtype[TAG_MODEL_PIXEL_SCALE] = TiffTags.DOUBLE
    ifd[TAG_MODEL_TIEPOINT] = (0.0, 0.0, 0.0, float(origin[0]), float(origin[1]), 0.0)
    ifd.tagtype[TAG_MODEL_TIEPOINT] = TiffTags.DOUBLE
    if geographic:
        keys = [1, 1, 0, 3, _KEY_MODEL_TYPE, 0, 1, 2, 1025, 0, 1, 1, _KEY_GEOG_TYPE, 0, 1, 4326]
    else:
        keys = [
            1,
            1,
            0,
            4,
            _KEY_MODEL_TYPE,
            0,
            1,
            1,
            1025,
            0,
            1,
            1,
            3072,
            0,
            1,
            32633,
            _KEY_PROJ_LINEAR_UNITS,
            0,
            1,
            linear_unit,
        ]
    ifd[TAG_GEO_KEY_DIRECTORY] = tuple(keys)
    ifd.tagtype[TAG_GEO_KEY_DIRECTORY] = TiffTags.SHORT
    return ifd
