"""Real-world sizes and the resolvability rule that decides which questions an image can answer.

An object is *resolvable* when it spans at least two pixels (Nyquist: one pixel of object and one of
background are the least that can show it); telling neighbours apart for counting needs about four.
Scene-level questions derived from the surroundings (rural or urban, dominant land cover) need the
image to cover enough ground to show context. These rules, not a per-source list, decide what the
template generator may ask at a given GSD: a 4.5 m car spans 0.45 px at 10 m GSD, so no car counting.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_PIXELS_PRESENCE = 2.0
MIN_PIXELS_COUNT = 4.0
MAX_COUNT_ASKED = 50  # "how many" beyond this is not a sensible VQA question; presence is still asked
SEMANTIC_MIN_FOOTPRINT_M = 200.0


@dataclass(frozen=True)
class Thing:
    name: str  # label name as sources write it (DOTA categories, synthetic classes)
    tier: str
    size_m: float  # characteristic size: length of a vehicle, side of a building, width of a road
    noun: str
    plural: str
    min_pixels: float = MIN_PIXELS_PRESENCE  # long thin features (roads) show up at ~1 px width


THINGS: dict[str, Thing] = {
    t.name: t
    for t in [
        Thing("car", "object", 4.5, "car", "cars"),
        Thing("small-vehicle", "object", 4.5, "small vehicle", "small vehicles"),
        Thing("large-vehicle", "object", 12.0, "large vehicle", "large vehicles"),
        Thing("tree", "object", 6.0, "tree", "trees"),
        Thing("swimming-pool", "object", 10.0, "swimming pool", "swimming pools"),
        Thing("building", "object", 15.0, "building", "buildings"),
        Thing("helicopter", "object", 15.0, "helicopter", "helicopters"),
        Thing("storage-tank", "object", 20.0, "storage tank", "storage tanks"),
        Thing("plane", "object", 40.0, "plane", "planes"),
        Thing("ship", "object", 40.0, "ship", "ships"),
        Thing("container-crane", "object", 40.0, "container crane", "container cranes"),
        Thing("helipad", "structure", 20.0, "helipad", "helipads"),
        Thing("tennis-court", "structure", 24.0, "tennis court", "tennis courts"),
        Thing("basketball-court", "structure", 28.0, "basketball court", "basketball courts"),
        Thing("roundabout", "structure", 40.0, "roundabout", "roundabouts"),
        Thing("baseball-diamond", "structure", 80.0, "baseball diamond", "baseball diamonds"),
        Thing("soccer-ball-field", "structure", 100.0, "soccer field", "soccer fields"),
        Thing("bridge", "structure", 100.0, "bridge", "bridges"),
        Thing("ground-track-field", "structure", 170.0, "ground track field", "ground track fields"),
        Thing("harbor", "structure", 200.0, "harbor", "harbors"),
        Thing("airport", "structure", 1500.0, "airport", "airports"),
        Thing("road", "structure", 8.0, "road", "roads", min_pixels=1.0),
        Thing("water", "structure", 50.0, "body of water", "bodies of water"),
    ]
}

# Reference objects for "could an object like this be made out at this resolution?" questions.
RESOLVABILITY_REFERENCES = ("car", "tree", "building", "tennis-court", "soccer-ball-field", "airport")


def pixels_spanned(size_m: float, gsd_m: float) -> float:
    return size_m / gsd_m


def resolvable(size_m: float, gsd_m: float) -> bool:
    return pixels_spanned(size_m, gsd_m) >= MIN_PIXELS_PRESENCE


def can_ask_presence(thing: Thing, gsd_m: float, footprint_m: float) -> bool:
    """Presence is answerable when the thing would span enough pixels and fit inside the image."""
    return pixels_spanned(thing.size_m, gsd_m) >= thing.min_pixels and thing.size_m <= footprint_m


def can_ask_count(thing: Thing, gsd_m: float, footprint_m: float) -> bool:
    return pixels_spanned(thing.size_m, gsd_m) >= max(MIN_PIXELS_COUNT, thing.min_pixels) and (
        thing.size_m <= footprint_m
    )
