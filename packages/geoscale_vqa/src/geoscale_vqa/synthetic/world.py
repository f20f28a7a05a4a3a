"""Scenes of the scale world, defined in metres with exact labels.

A scene covers `size_px × gsd_m` metres on a side. Its layers, bottom to top:

1. land cover: a grid of square patches (50 m - 2 km) of water, forest, cropland, grassland,
   built-up or bare ground, offset randomly so patches straddle the image border, each cover with
   its own ground texture of physical wavelengths (crop rows 0.8 m, tree crowns 6 m, ripples, waves;
   see `COVER_TEXTURES`), so every GSD of the range shows some structure of known size;
2. roads: horizontal and vertical bands 5-12 m wide on a grid (dense in towns, sparse in the country);
3. buildings (8-30 m, built-up patches only) and single trees (crowns 3-8 m, outside forests), one per
   cell of a lattice so they never overlap, and never on a road;
4. cars (4-5 m × 1.7-2 m) parked or driving in the lanes of the roads.

Labels are exact by construction: an object is counted when it lies fully inside the image; cover
fractions are areas of patch/image intersections. Ambiguous answers are not labelled at all
(a dominant cover must lead by 10 points, rural/urban needs a clear built-up fraction), and single
trees are only counted where no forest is in view (a forest is made of trees nobody can count).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

GSD_RANGE_M = (0.1, 100.0)
COVERS = ("water", "forest", "cropland", "grassland", "built-up", "bare ground")
_COVER_COLOURS = np.array(
    [(38, 66, 104), (34, 72, 40), (164, 150, 92), (104, 146, 70), (148, 140, 132), (176, 154, 122)], dtype=float
)
_COVER_PROBS = {
    "urban": (0.05, 0.08, 0.07, 0.15, 0.60, 0.05),
    "rural": (0.08, 0.25, 0.40, 0.20, 0.04, 0.03),
}
_ROAD_COLOUR = (86, 86, 90)
_ROOF_COLOURS = np.array([(178, 84, 62), (128, 128, 132), (196, 192, 184), (104, 76, 60), (70, 70, 76)], float)
_CAR_COLOURS = np.array([(235, 235, 235), (22, 22, 26), (170, 172, 176), (180, 30, 30), (30, 60, 160)], float)
_TREE_COLOUR = (30, 84, 36)
_BUILT_UP = COVERS.index("built-up")
_FOREST = COVERS.index("forest")
_WATER = COVERS.index("water")
# Ground texture per cover: (wavelength m, amplitude in grey levels) of plane waves. Real ground has
# structure of characteristic sizes at every scale (furrows, crowns, ripples); without it a 10 m
# crop of one field at 0.1 m looks the same as a 100 m crop at 1 m, and no model can tell the GSD.
# Wavelengths vary +-15 % between scenes and orientations and phases are random.
COVER_TEXTURES = {
    "water": ((2.5, 6.0), (40.0, 5.0)),
    "forest": ((6.0, 18.0), (6.0, 18.0)),  # two crossing waves: a lattice of crowns
    "cropland": ((0.8, 16.0), (25.0, 10.0)),  # crop rows; tracks and parcels
    "grassland": ((0.35, 10.0), (10.0, 9.0)),
    "built-up": ((1.2, 8.0), (60.0, 8.0)),
    "bare ground": ((3.0, 10.0), (150.0, 12.0)),
}
_MAX_PATCHES_PER_SIDE = 24  # bounds the work: at coarse GSD patches grow instead of multiplying
_MAX_ROADS_PER_SIDE = 30


@dataclass
class Scene:
    seed: int
    gsd_m: float
    size_px: int
    setting: str
    layers: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (rects [N,4], colours [N,3])
    labels: dict = field(default_factory=dict)
    texture: GroundTexture | None = None  # added on top of the first (land-cover) layer

    @property
    def extent_m(self) -> float:
        return self.size_px * self.gsd_m


@dataclass
class GroundTexture:
    """Plane waves cos(2 pi k.x + phase) per land cover, on the cover grid of the scene's patches."""

    cover: np.ndarray  # [n, n] cover index of each patch
    patch_m: float
    offset_m: np.ndarray  # [2] (x, y)
    waves: np.ndarray  # [n_covers, n_waves, 4]: kx, ky (cycles per metre), phase, amplitude

    def cover_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        n = self.cover.shape[0]
        i = np.floor((x + self.offset_m[0]) / self.patch_m).astype(np.int64)
        j = np.floor((y + self.offset_m[1]) / self.patch_m).astype(np.int64)
        return self.cover[np.clip(j, 0, n - 1), np.clip(i, 0, n - 1)]


def _texture_waves(rng) -> np.ndarray:
    waves = np.zeros((len(COVERS), 2, 4))
    for c, name in enumerate(COVERS):
        for w, (wavelength, amplitude) in enumerate(COVER_TEXTURES[name]):
            wavelength *= rng.uniform(0.85, 1.15)
            angle = rng.uniform(0, np.pi)
            if name == "forest" and w == 1:
                angle = waves[c, 0, 2] + np.pi / 2  # crossing the first wave: crowns, not stripes
            waves[c, w] = (np.cos(angle) / wavelength, np.sin(angle) / wavelength, angle, amplitude)
        waves[c, :, 2] = rng.uniform(0, 2 * np.pi, size=2)  # the angle was kept there only for the forest
    return waves


def sample_gsd(rng: np.random.Generator) -> float:
    lo, hi = GSD_RANGE_M
    return float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))


def _patches(rng, extent, setting):
    patch = 10 ** rng.uniform(math.log10(50), math.log10(2000))
    patch = max(patch, extent / (_MAX_PATCHES_PER_SIDE - 1))
    offset = rng.uniform(0, patch, size=2)
    n = int(math.ceil((extent + offset.max()) / patch)) + 1
    cover = rng.choice(len(COVERS), size=(n, n), p=_COVER_PROBS[setting])
    ys, xs = np.mgrid[0:n, 0:n]
    x0 = xs.ravel() * patch - offset[0]
    y0 = ys.ravel() * patch - offset[1]
    rects = np.stack([x0, y0, x0 + patch, y0 + patch], axis=1)
    rects = np.clip(rects, 0.0, extent)
    area = (rects[:, 2] - rects[:, 0]) * (rects[:, 3] - rects[:, 1])
    keep = area > 0
    ids = cover.ravel()
    colours = _COVER_COLOURS[ids] + rng.uniform(-10, 10, size=(len(ids), 3))
    fractions = np.bincount(ids[keep], weights=area[keep], minlength=len(COVERS)) / extent**2
    texture = GroundTexture(cover=cover, patch_m=patch, offset_m=offset, waves=_texture_waves(rng))
    return rects[keep], colours[keep], fractions, texture


def _roads(rng, extent, setting):
    """Horizontal and vertical road bands [(lo, hi)] in metres, clipped to the image."""
    spacing = rng.uniform(80, 250) if setting == "urban" else rng.uniform(400, 3000)
    spacing = max(spacing, extent / _MAX_ROADS_PER_SIDE)
    keep_p = 0.8 if setting == "urban" else 0.5
    bands = []
    for _axis in range(2):
        centres = np.arange(rng.uniform(0, spacing), extent + spacing, spacing)
        centres = centres[rng.random(len(centres)) < keep_p]
        widths = rng.uniform(5, 12, size=len(centres))
        lo, hi = np.clip(centres - widths / 2, 0, extent), np.clip(centres + widths / 2, 0, extent)
        ok = hi > lo
        bands.append((lo[ok], hi[ok], widths[ok]))
    return bands


def _hits_band(lo, hi, band_lo, band_hi):
    """Does interval [lo, hi) of each object overlap any band? ([N] bool)"""
    if len(band_lo) == 0 or len(lo) == 0:
        return np.zeros(len(lo), dtype=bool)
    return ((lo[:, None] < band_hi[None, :]) & (hi[:, None] > band_lo[None, :])).any(axis=1)


def _inside(rects, extent):
    return (rects[:, 0] >= 0) & (rects[:, 1] >= 0) & (rects[:, 2] <= extent) & (rects[:, 3] <= extent)


def _lattice_objects(rng, extent, setting, cover_at, roads):
    """Buildings and trees, at most one per lattice cell, so they never overlap each other."""
    pitch = rng.uniform(24, 40) if setting == "urban" else rng.uniform(30, 60)
    offset = rng.uniform(0, pitch, size=2)
    gx = np.arange(-offset[0], extent, pitch)
    gy = np.arange(-offset[1], extent, pitch)
    x0, y0 = (a.ravel() for a in np.meshgrid(gx, gy))
    cover = cover_at(x0 + pitch / 2, y0 + pitch / 2)
    u = rng.random(len(x0))
    is_building = (cover == _BUILT_UP) & (u < 0.7)
    tree_p = np.select(
        [cover == COVERS.index("grassland"), cover == _BUILT_UP, cover == COVERS.index("cropland")],
        [0.3, 0.25, 0.03],
        0.0,
    )
    is_tree = ~is_building & (rng.random(len(x0)) < tree_p)
    size = np.where(is_building, rng.uniform(8, np.minimum(30, pitch - 4), len(x0)), rng.uniform(3, 8, len(x0)))
    aspect = np.where(is_building, rng.uniform(0.6, 1.0, len(x0)), 1.0)
    w, h = size, size * aspect
    cx = x0 + rng.uniform(w / 2 + 1, pitch - w / 2 - 1)
    cy = y0 + rng.uniform(h / 2 + 1, pitch - h / 2 - 1)
    rects = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    (hlo, hhi, _), (vlo, vhi, _) = roads
    on_road = _hits_band(rects[:, 1], rects[:, 3], hlo, hhi) | _hits_band(rects[:, 0], rects[:, 2], vlo, vhi)
    keep = (is_building | is_tree) & ~on_road & _inside(rects, extent)
    rects, is_building = rects[keep], is_building[keep]
    n = len(rects)
    colours = np.where(
        is_building[:, None],
        _ROOF_COLOURS[rng.integers(0, len(_ROOF_COLOURS), n)],
        np.array(_TREE_COLOUR, float) + rng.uniform(-8, 8, (n, 3)),
    )
    return rects, colours, int(is_building.sum()), int((~is_building).sum())


def _cars(rng, extent, setting, roads):
    occupancy = 0.15 if setting == "urban" else 0.01
    (hlo, hhi, _), (vlo, vhi, _) = roads
    rects = []
    for horizontal, (lo, hi) in ((True, (hlo, hhi)), (False, (vlo, vhi))):
        cross_lo, cross_hi = (vlo, vhi) if horizontal else (hlo, hhi)
        slots = np.arange(0.0, extent, 8.0)  # one car per 8 m slot: no two cars overlap
        for band_lo, band_hi in zip(lo, hi):
            if band_hi - band_lo < 4.0:
                continue
            taken = slots[rng.random(len(slots)) < occupancy]
            length = rng.uniform(4.0, 5.0, len(taken))
            width = rng.uniform(1.7, 2.0, len(taken))
            lane_centre = np.where(
                rng.random(len(taken)) < 0.5, band_lo + (band_hi - band_lo) / 4, band_hi - (band_hi - band_lo) / 4
            )
            along0 = taken + rng.uniform(0, 8.0 - length)
            across0 = lane_centre - width / 2
            if horizontal:
                r = np.stack([along0, across0, along0 + length, across0 + width], axis=1)
                clear = ~_hits_band(r[:, 0], r[:, 2], cross_lo, cross_hi)
            else:
                r = np.stack([across0, along0, across0 + width, along0 + length], axis=1)
                clear = ~_hits_band(r[:, 1], r[:, 3], cross_lo, cross_hi)
            # inside the road band and the image, and not on a crossing (cars there could collide)
            r = r[clear & _inside(r, extent) & (across0 >= band_lo) & (across0 + width <= band_hi)]
            rects.append(r)
    rects = np.concatenate(rects) if rects else np.zeros((0, 4))
    colours = _CAR_COLOURS[rng.integers(0, len(_CAR_COLOURS), len(rects))]
    return rects, colours


def _road_layers(extent, roads):
    (hlo, hhi, _), (vlo, vhi, _) = roads
    horizontal = np.stack([np.zeros_like(hlo), hlo, np.full_like(hlo, extent), hhi], axis=1)
    vertical = np.stack([vlo, np.zeros_like(vlo), vhi, np.full_like(vlo, extent)], axis=1)
    colour = np.array(_ROAD_COLOUR, float)
    return [(horizontal, np.tile(colour, (len(hlo), 1))), (vertical, np.tile(colour, (len(vlo), 1)))]


def _semantic_labels(fractions) -> dict:
    labels = {}
    order = np.argsort(-fractions, kind="stable")
    top, second = fractions[order[0]], fractions[order[1]]
    if top >= 0.4 and top - second >= 0.1:
        labels["dominant_cover"] = COVERS[order[0]]
    built = fractions[_BUILT_UP]
    if built >= 0.4:
        labels["rural_urban"] = "urban"
    elif built <= 0.1:
        labels["rural_urban"] = "rural"
    return labels


def make_scene(seed: int, gsd_m: float, size_px: int = 96) -> Scene:
    """A scene of `size_px` × `size_px` pixels at `gsd_m` metres per pixel, fully determined by `seed`."""
    rng = np.random.default_rng(seed)
    extent = size_px * gsd_m
    setting = "urban" if rng.random() < 0.5 else "rural"
    patch_rects, patch_colours, fractions, texture = _patches(rng, extent, setting)
    roads = _roads(rng, extent, setting)
    lattice_rects, lattice_colours, n_buildings, n_trees = _lattice_objects(
        rng, extent, setting, texture.cover_at, roads
    )
    car_rects, car_colours = _cars(rng, extent, setting, roads)

    scene = Scene(seed=seed, gsd_m=gsd_m, size_px=size_px, setting=setting, texture=texture)
    scene.layers = [
        (patch_rects, patch_colours),
        *_road_layers(extent, roads),
        (lattice_rects, lattice_colours),
        (car_rects, car_colours),
    ]
    counts = {"car": len(car_rects), "building": n_buildings}
    if fractions[_FOREST] == 0:
        counts["tree"] = n_trees
    water = fractions[_WATER]
    scene.labels = {
        "counts": counts,
        "presence": {"road": bool(len(roads[0][0]) + len(roads[1][0]))},
        "cover_fractions": {name: float(f) for name, f in zip(COVERS, fractions)},
        **_semantic_labels(fractions),
    }
    # Water presence is only labelled when clear-cut: none at all, or at least 1 % of the image.
    if water == 0 or water >= 0.01:
        scene.labels["presence"]["water"] = bool(water > 0)
    return scene
