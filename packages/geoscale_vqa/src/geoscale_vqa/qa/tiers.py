"""Which scale tier a question belongs to.

Tiers name the kind of evidence a question needs, matching CS-HLoRA's rank tiers:

- object: individual things a few metres across (cars, buildings, trees, ships, planes).
- structure: layouts and extended features (roads, water bodies, fields, courts, bridges,
  comparisons between quantities, areas covered, spatial relations).
- semantic: what the whole scene is (land cover / land use, scene class, rural or urban).
- scale: the image's own geometry (GSD, ground footprint, resolvability, sizes from pixels);
  only templates produce these.

The rule for source QA (documented in the README, tested on every source's question types):

1. A source question type with a fixed meaning decides alone: RSVQA `rural_urban`, xBEN `LC` and
   every other RSVQA-xBEN question (they are all about CORINE land cover) -> semantic; RSVQA `comp`
   and `area` -> structure.
2. Otherwise the question text decides, first match wins: semantic phrases (land cover/use, scene,
   rural, urban, what kind of area, describe the image) -> semantic; an object noun -> object;
   a structure noun -> structure.
3. Nothing matched -> semantic (a whole-image question).
"""

from __future__ import annotations

import math
import re

# Finest GSD at which a tier's evidence is still visible: the gate thresholds tau of CS-HLoRA
# (object ~ log10(2 m), structure ~ log10(30 m), semantic ~ log10(1000 m)).
TIER_MAX_GSD_M = {"object": 2.0, "structure": 30.0, "semantic": 1000.0}

_TYPE_TIERS = {
    ("rsvqa-lr", "rural_urban"): "semantic",
    ("rsvqa-lr", "comp"): "structure",
    ("rsvqa-hr", "comp"): "structure",
    ("rsvqa-hr", "area"): "structure",
}
_SEMANTIC_SOURCES = {"rsvqa-xben"}

_SEMANTIC = re.compile(
    r"\b(land[ -]?cover|land[ -]?use|scene|rural|urban|kind of (area|place|region)|"
    r"type of (area|place|region|scene|land)|describe (the|this) (image|picture|scene)|"
    r"what (is|does) (the|this) (image|picture) (show|depict))",
    re.I,
)
_OBJECT = re.compile(
    r"\b(cars?|vehicles?|trucks?|bus(es)?|ships?|boats?|vessels?|(air)?planes?|aircrafts?|helicopters?|"
    r"buildings?|houses?|trees?|(swimming[ -])?pools?|storage[ -]tanks?|tanks?|containers?|cranes?|"
    r"persons?|people|towers?|wind ?turbines?|small-vehicles?|large-vehicles?)\b",
    re.I,
)
_STRUCTURE = re.compile(
    r"\b(roads?|streets?|highways?|rail(way)?s?|rivers?|water|lakes?|ponds?|sea|coast|fields?|farmlands?|"
    r"crops?|bridges?|harbou?rs?|ports?|runways?|airports?|parking|courts?|stadiums?|tracks?|"
    r"roundabouts?|forests?|woods?|grass(land)?|residential|commercial|industrial|areas?|"
    r"left of|right of|next to|between|near|top|bottom)\b",
    re.I,
)


def text_tier(question: str) -> str:
    """Rules 2 and 3: the tier a free-text question belongs to."""
    if _SEMANTIC.search(question):
        return "semantic"
    if _OBJECT.search(question):
        return "object"
    if _STRUCTURE.search(question):
        return "structure"
    return "semantic"


def source_tier(source: str, qtype: str, question: str) -> str:
    """The tier of a source QA pair (see the module docstring for the rule)."""
    if source in _SEMANTIC_SOURCES:
        return "semantic"
    fixed = _TYPE_TIERS.get((source, qtype))
    if fixed is not None:
        return fixed
    return text_tier(question)


def visible_tiers(gsd_m: float) -> list[str]:
    """Tiers whose evidence is visible at this GSD (finer GSD opens more tiers, as in the gate)."""
    if not math.isfinite(gsd_m) or gsd_m <= 0:
        raise ValueError(f"GSD must be finite and > 0, got {gsd_m}")
    return [tier for tier, limit in TIER_MAX_GSD_M.items() if gsd_m <= limit]
