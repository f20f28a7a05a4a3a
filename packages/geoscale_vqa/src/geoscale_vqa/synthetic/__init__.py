"""The procedural scale world: scenes defined in metres, rendered at any GSD with exact area averaging.

`make_scene(seed, gsd_m, size_px)` builds a scene (land cover, roads, buildings, trees, cars of real
sizes) and its exact labels; `render(scene)` rasterises it. Small objects really vanish at coarse GSD
because every pixel is the area average of the ground it covers.
"""

from .render import render
from .world import GSD_RANGE_M, Scene, make_scene, sample_gsd

__all__ = ["GSD_RANGE_M", "Scene", "make_scene", "render", "sample_gsd"]
