"""Typed checks of the fields a source record may carry: ids, splits, flags, QA text, labels.

Every adapter passes untrusted values through these before they reach an `Item`, so nothing is stored
as a stringified None or dict, no count is negative, and a malformed record becomes a reject naming the
field instead of an exception somewhere in the build. Each check returns the clean value or raises
`FieldError` whose message names the field, the value and what was expected.
"""

from __future__ import annotations

import json
import math

from ..records import TIERS

MAX_COUNT = 10**9  # more objects than this in one image is a data error, not a count
MAX_BOX_PX = 10**6  # a box side in pixels (no image is a million pixels wide)
LABEL_KEYS = ("counts", "presence", "scene_class", "land_cover", "rural_urban", "dominant_cover", "boxes")
_BOX_KEYS = {"category", "width_px", "height_px"}


class FieldError(ValueError):
    """A field of a source record with the wrong type or an impossible value."""


def show(value, limit: int = 80) -> str:
    """A value as JSON (what the user wrote), shortened: deterministic, never an object repr."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=lambda v: f"<{type(v).__name__}>")
    except (TypeError, ValueError):  # NaN is fine for json.dumps; only exotic keys land here
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(what: str, value, expected: str) -> FieldError:
    return FieldError(f"{what} must be {expected}, got {show(value)}")


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def record_id(value, what: str = "id") -> str | int:
    """An id as sources write them: a non-empty string or an integer (not null, a float, a list, ...)."""
    if is_int(value) or (isinstance(value, str) and value.strip()):
        return value
    raise _error(what, value, "a non-empty string or an integer")


def same_id(a, b) -> bool:
    """Ids link only with the same type: 1 is not "1", and true is not 1."""
    return type(a) is type(b) and a == b


def id_list(value, what: str) -> list:
    """A list of ids (RSVQA's `questions_ids`, `answers_ids`)."""
    if not isinstance(value, list):
        raise _error(what, value, "a list of ids")
    return [record_id(v, f"{what} entry") for v in value]


def flag(value, what: str = "active") -> bool:
    """A JSON boolean: "false", 0 or null are not silently read as true or false."""
    if not isinstance(value, bool):
        raise _error(what, value, "true or false")
    return value


def split_name(value) -> str:
    if not isinstance(value, str) or not value:
        raise _error("split", value, "a non-empty string")
    return value


def text(value, what: str) -> str:
    """Non-empty text (a question, a scene class)."""
    if not isinstance(value, str) or not value.strip():
        raise _error(what, value, "non-empty text")
    return value


def answer_text(value, what: str = "answer") -> str:
    """An answer: non-empty text, or a finite number written as text ("3", "2.5")."""
    if isinstance(value, str) and value.strip():
        return value
    if is_int(value) or (isinstance(value, float) and math.isfinite(value)):
        return str(value)
    raise _error(what, value, "non-empty text or a finite number")


def optional_text(value, what: str) -> str:
    """A type or category name that may be absent (empty string), but is never a number or a dict."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _error(what, value, "text")
    return value


def tier(value, what: str = "tier") -> str | None:
    """A QA tier: absent, or text (a name outside TIERS gets the documented rule, as before)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _error(what, value, f"one of {', '.join(TIERS)}")
    return value if value in TIERS else None


def _count(value, what: str) -> int:
    if not is_int(value) or not 0 <= value <= MAX_COUNT:
        raise _error(what, value, f"an integer from 0 to {MAX_COUNT}")
    return value


def _box(value, n: int) -> dict:
    if not isinstance(value, dict) or set(value) != _BOX_KEYS:
        raise _error(f"labels.boxes[{n}]", value, "an object with category, width_px and height_px")
    for side in ("width_px", "height_px"):
        if not is_int(value[side]) or not 0 <= value[side] <= MAX_BOX_PX:
            raise _error(f"labels.boxes[{n}].{side}", value[side], f"an integer from 0 to {MAX_BOX_PX}")
    return {**value, "category": text(value["category"], f"labels.boxes[{n}].category")}


def _mapping(value, what: str, check) -> dict:
    if not isinstance(value, dict):
        raise _error(what, value, "an object of name: value")
    return {text(k, f"{what} key"): check(v, f"{what}.{k}") for k, v in value.items()}


def labels(value) -> dict:
    """The exact annotations `qa.templates` turns into QA (see its module doc), type-checked."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _error("labels", value, "an object")
    unknown = sorted(set(value) - set(LABEL_KEYS))
    if unknown:
        raise FieldError(f"labels has unknown keys {', '.join(unknown)}; known: {', '.join(LABEL_KEYS)}")
    out = {}
    for key, raw in value.items():
        if raw is None:
            continue
        if key == "counts":
            out[key] = _mapping(raw, "labels.counts", _count)
        elif key == "presence":
            out[key] = _mapping(raw, "labels.presence", flag)
        elif key == "boxes":
            if not isinstance(raw, list):
                raise _error("labels.boxes", raw, "a list of boxes")
            out[key] = [_box(box, n) for n, box in enumerate(raw)]
        elif key == "land_cover":
            if not isinstance(raw, list):
                raise _error("labels.land_cover", raw, "a list of class names")
            out[key] = [text(c, "labels.land_cover entry") for c in raw]
        else:  # scene_class, rural_urban, dominant_cover
            out[key] = text(raw, f"labels.{key}")
    return out
