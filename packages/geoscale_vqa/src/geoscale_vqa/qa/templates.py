"""Template QA conditioned on the GSD: ask only what is visible at that GSD, answer from labels or physics.

Labels an item may carry (all exact; adapters fill what their source annotates):

- `counts`: {thing: n} for an exhaustively annotated vocabulary (a listed thing with 0 is absent).
- `presence`: {thing: bool} for things known only as present/absent (roads, water).
- `boxes`: [{"category", "width_px", "height_px"}] of annotated objects (fMoW).
- `scene_class`, `land_cover` (list), `rural_urban`, `dominant_cover`.

Things are looked up in `physics.THINGS` (real sizes); unknown names are not asked about, since their
visibility cannot be judged. Which candidates are kept is decided by a `random.Random` the caller seeds
from the build seed and the image's identity, so the output is the same in any process and order.
"""

from __future__ import annotations

import math
import random

from ..records import QA
from . import physics
from .tiers import TIER_MAX_GSD_M

TEMPLATE_TYPES = (
    "gsd", "footprint", "resolvable", "gsd_threshold", "object_size",  # scale
    "presence", "count",  # object / structure
    "scene_class", "land_cover", "rural_urban", "dominant_cover",  # semantic
)  # fmt: skip


def format_length(metres: float) -> str:
    """Three significant figures, in km from 1 km up: 0.15 m, 76.8 m, 2.56 km."""
    if float(_sig(metres)) >= 1000:
        return f"{_sig(metres / 1000)} km"
    return f"{_sig(metres)} m"


def _sig(x: float) -> str:
    if x == 0:
        return "0"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    text = f"{round(x, digits):.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _human(label: str) -> str:
    return label.replace("_", " ").replace("-", " ").strip()


def _scale_candidates(gsd_m: float, width: int, height: int, rng: random.Random) -> list[QA]:
    out = [
        QA("What is the ground sampling distance of this image?", format_length(gsd_m), "scale", "gsd", "template"),
        QA(
            "What ground area does this image cover?",
            f"{format_length(width * gsd_m)} × {format_length(height * gsd_m)}",
            "scale",
            "footprint",
            "template",
        ),
    ]
    # One reference object that is resolvable and one that is not, when both exist at this GSD.
    # An object larger than the image's footprint cannot be "made out in this image" whatever
    # the GSD, so it is never asked about.
    footprint_m = min(width, height) * gsd_m
    refs = [physics.THINGS[name] for name in physics.RESOLVABILITY_REFERENCES]
    refs = [t for t in refs if t.size_m <= footprint_m]
    for group in (
        [t for t in refs if physics.resolvable(t.size_m, gsd_m)],
        [t for t in refs if not physics.resolvable(t.size_m, gsd_m)],
    ):
        if group:
            thing = rng.choice(group)
            size = format_length(thing.size_m)
            out.append(
                QA(
                    f"Could a single {thing.noun} (about {size} across) be made out in this image?",
                    _yes_no(physics.resolvable(thing.size_m, gsd_m)),
                    "scale",
                    "resolvable",
                    "template",
                )
            )
    out += _threshold_candidates(gsd_m)
    n = rng.randint(2, max(2, min(width, height)))
    out.append(
        QA(
            f"An object in this image is {n} pixels long. How long is it on the ground?",
            format_length(n * gsd_m),
            "scale",
            "object_size",
            "template",
        )
    )
    return out


# "Is the GSD below X?" for the ladder values on either side of the image's GSD: one "yes" and one "no"
# per image, answerable from the scale alone (nothing in the pixels states it), so a blind prior gets 50%.
GSD_THRESHOLDS_M = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def _threshold_candidates(gsd_m: float) -> list[QA]:
    above = [t for t in GSD_THRESHOLDS_M if t > gsd_m]
    below = [t for t in GSD_THRESHOLDS_M if t < gsd_m]
    picked = ([min(above)] if above else []) + ([max(below)] if below else [])
    return [
        QA(
            f"Is the ground sampling distance of this image below {format_length(t)}?",
            _yes_no(gsd_m < t),
            "scale",
            "gsd_threshold",
            "template",
        )
        for t in picked
    ]


def _thing_candidates(labels: dict, gsd_m: float, footprint_m: float, rng: random.Random) -> list[QA]:
    positives, negatives, counts_qa = [], [], []
    for name, count in sorted((labels.get("counts") or {}).items()):
        thing = physics.THINGS.get(name)
        if thing is None or thing.tier not in TIER_MAX_GSD_M:
            continue
        if physics.can_ask_presence(thing, gsd_m, footprint_m):
            qa = QA(
                f"Are there any {thing.plural} in this image?", _yes_no(count > 0), thing.tier, "presence", "template"
            )
            (positives if count > 0 else negatives).append(qa)
        if physics.can_ask_count(thing, gsd_m, footprint_m) and count <= physics.MAX_COUNT_ASKED:
            counts_qa.append(
                QA(f"How many {thing.plural} are there in this image?", str(count), thing.tier, "count", "template")
            )
    for name, present in sorted((labels.get("presence") or {}).items()):
        thing = physics.THINGS.get(name)
        if thing is not None and physics.can_ask_presence(thing, gsd_m, footprint_m):
            qa = QA(
                f"Is there a {thing.noun} in this image?", _yes_no(bool(present)), thing.tier, "presence", "template"
            )
            (positives if present else negatives).append(qa)
    # Exhaustive vocabularies (DOTA has 18 classes) would otherwise drown the corpus in "no".
    negatives = rng.sample(negatives, min(len(negatives), max(1, len(positives))))
    return positives + negatives + counts_qa


def _box_candidates(labels: dict, gsd_m: float) -> list[QA]:
    out = []
    for box in labels.get("boxes") or []:
        w, h = int(box["width_px"]), int(box["height_px"])
        if w > 0 and h > 0:
            what = _human(box["category"])
            out.append(
                QA(
                    f"The {what} in this image spans {w} × {h} pixels. How large is it on the ground?",
                    f"{format_length(w * gsd_m)} × {format_length(h * gsd_m)}",
                    "scale",
                    "object_size",
                    "template",
                )
            )
    return out


def _semantic_candidates(labels: dict, gsd_m: float, footprint_m: float) -> list[QA]:
    if gsd_m > TIER_MAX_GSD_M["semantic"]:
        return []
    out = []
    if labels.get("scene_class"):
        out.append(
            QA(
                "What type of scene is shown in this image?",
                _human(labels["scene_class"]),
                "semantic",
                "scene_class",
                "template",
            )
        )
    if labels.get("land_cover"):
        out.append(
            QA(
                "Which land cover classes are present in this image?",
                ", ".join(labels["land_cover"]),
                "semantic",
                "land_cover",
                "template",
            )
        )
    # Context-derived answers need the image to show enough ground around the pixels.
    if footprint_m >= physics.SEMANTIC_MIN_FOOTPRINT_M:
        if labels.get("rural_urban"):
            out.append(
                QA("Is this a rural or an urban area?", labels["rural_urban"], "semantic", "rural_urban", "template")
            )
        if labels.get("dominant_cover"):
            out.append(
                QA(
                    "What is the dominant land cover in this image?",
                    labels["dominant_cover"],
                    "semantic",
                    "dominant_cover",
                    "template",
                )
            )
    return out


def template_qa(
    *,
    gsd_m: float | None,
    width: int,
    height: int,
    labels: dict,
    rng: random.Random,
    max_qa: int = 8,
    types: frozenset[str] | None = None,
) -> list[QA]:
    """Up to `max_qa` template QA for one image, all answerable at `gsd_m` (None: no GSD, no templates).

    `types` keeps only those QA types (e.g. without the numeric `object_size` for a tiny model).
    """
    if gsd_m is None or max_qa <= 0:
        return []
    footprint_m = min(width, height) * gsd_m
    candidates = _scale_candidates(gsd_m, width, height, rng)
    candidates += _thing_candidates(labels, gsd_m, footprint_m, rng)
    candidates += _box_candidates(labels, gsd_m)
    candidates += _semantic_candidates(labels, gsd_m, footprint_m)
    if types is not None:
        candidates = [c for c in candidates if c.type in types]
    if len(candidates) <= max_qa:
        return candidates
    keep = sorted(rng.sample(range(len(candidates)), max_qa))
    return [candidates[i] for i in keep]
