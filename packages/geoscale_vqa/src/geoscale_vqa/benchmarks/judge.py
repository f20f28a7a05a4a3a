"""Judge one prediction against one ground truth `Answer`: parse it the way its kind needs, then compare."""

from __future__ import annotations

from dataclasses import dataclass

from . import answers as A
from .records import Answer

# A length answer ("76.8 m", "2.56 km × 2.56 km") is right within 10% per dimension: templates print three
# significant figures, and a model that reads the GSD off the image cannot be asked for more.
LENGTH_RTOL = 0.10


@dataclass(frozen=True)
class Outcome:
    status: str  # strict | fallback | invalid | unparseable | missing; "official" when a reference scorer read it
    parsed: str | None  # what was read from the prediction, as text ("A,C", "yes", "11-100")
    correct: bool


MISSING = Outcome("missing", None, False)


def _render(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, frozenset):
        return A.format_letters(value) if all(len(v) == 1 for v in value) else ", ".join(sorted(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return " × ".join(f"{v:g} m" for v in value)
    return str(value)


def parse_prediction(answer: Answer, text: str | None) -> tuple[str, object]:
    kind = answer.kind
    if kind == "choice":
        return A.extract_letters(text, answer.options)
    if kind == "yesno":
        return A.extract_yes_no(text)
    if kind == "vocab":
        return A.extract_word(text, answer.options)
    if kind == "count":
        status, value = A.extract_number(text)
        return status, (int(value) if value is not None and float(value).is_integer() else value)
    if kind in ("count_bin", "area_bin"):
        return A.extract_bin(text, area=kind == "area_bin")
    if kind == "length":
        return A.extract_lengths(text)
    if kind == "set":
        items = A.split_items(text or "")
        return ("strict", items) if items else ("unparseable", None)
    words = A.normalise_text(text or "")
    return ("strict", words) if words else ("unparseable", None)


def judge(answer: Answer, text: str | None, *, length_rtol: float = LENGTH_RTOL) -> Outcome:
    if text is None:
        return MISSING
    status, value = parse_prediction(answer, text)
    if status in ("invalid", "unparseable"):
        return Outcome(status, _render(value), False)
    if answer.kind == "length":
        correct = A.lengths_match(value, answer.value, length_rtol)
    else:
        correct = value == answer.value
    return Outcome(status, _render(value), bool(correct))
