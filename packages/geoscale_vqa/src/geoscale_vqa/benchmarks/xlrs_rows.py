"""One XLRS-Bench row as every layout reader hands it over, before it becomes a `Question`.

Every layout stores the same fields (`index, question, multi-choice options, answer, category,
l2-category, image`); they differ in how options and images are written: a list of "(A) …" strings
or VLMEvalKit's single options string; image paths, inline {"bytes", "path"} cells or base64 text.
The readers (`xlrs_text`, `xlrs_arrow`) turn those into an `XLRSRow` with a list of option lines and
image references, so `xlrs` builds questions, ids and scores without knowing the layout.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

FIELDS = ("index", "question", "multi-choice options", "answer", "category")
IMAGE_FIELDS = ("image", "image_path")

_OPTION_LINE = re.compile(r"^\s*\(([A-Z])\)\s*(.*?)\s*$")


@dataclass(frozen=True)
class XLRSRow:
    index: int | str
    question: str
    options: tuple[str, ...]  # option lines, "(A) text"
    answer: str  # the ground truth as stored (the official scorer compares its characters)
    category: str  # "Task/Subtask"
    l2_category: str | None
    images: tuple  # image references; () when read without images
    where: str  # "file:line" or "file: row n", for error messages


def read_index(value, where: str) -> int | str:
    """The row's `index`: an integer (also from TSV text such as "12") or a string."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{where}: index must be an integer or a string, got {value!r}")
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return value


def options_from_text(text: str, where: str) -> tuple[str, ...]:
    """Option lines from VLMEvalKit's options string ("\\nThe choices are listed below:\\n(A) …\\nSelect …").

    The lines "(A) …", "(B) …" are taken in order; the instruction around them is dropped (the prompt is
    rebuilt in the benchmark's format, the same for every layout). A list written as text is read too.
    """
    stripped = text.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            value = ast.literal_eval(stripped)
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
    lines = [m for m in (_OPTION_LINE.match(line) for line in text.splitlines()) if m]
    letters = [m.group(1) for m in lines]
    if not lines:
        raise ValueError(f"{where}: the options string has no '(A) …' lines: {text[:120]!r}")
    expected = [chr(ord("A") + i) for i in range(len(lines))]
    if letters != expected:
        raise ValueError(f"{where}: option labels {letters} in the options string are not {', '.join(expected)}")
    return tuple(f"({m.group(1)}) {m.group(2)}" for m in lines)


def row_options(value, where: str) -> tuple[str, ...]:
    """The option lines of a row: a list of strings as stored, or VLMEvalKit's single string."""
    if isinstance(value, str):
        return options_from_text(value, where)
    if isinstance(value, (list, tuple)) and value and all(isinstance(o, str) for o in value):
        return tuple(value)
    raise ValueError(f"{where}: options must be a list of strings or VLMEvalKit's options string, got {value!r}")


def text_fields(record: dict, where: str) -> dict:
    """index, question, options, answer, category, l2-category of a record whose fields were checked."""
    l2 = record.get("l2-category")
    return {
        "index": read_index(record["index"], where),
        "question": str(record["question"]),
        "options": row_options(record["multi-choice options"], where),
        "answer": str(record["answer"]),
        "category": str(record["category"]),
        "l2_category": str(l2) if l2 not in (None, "") else None,
    }
