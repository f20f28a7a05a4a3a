"""The predictions file: one JSON object per line, `{"id": <benchmark question id>, "prediction": "<raw text>"}`.

`id` is the benchmark's own question id (XLRS `index`, OmniEarth `Question_id`, RSVQA question `id`,
GeoScale `key/n`), an integer or a string; ids are matched as strings. Other keys on a line are kept by
writers (e.g. the GSD used) and ignored by the reader. Blank lines are skipped; anything else that is
not such an object is an error naming the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from .common import iter_jsonl
from .records import question_key


def read_predictions(path) -> dict[str, str]:
    """{question key: raw prediction text}; ValueError naming the line for malformed or duplicate lines."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"predictions file {path} does not exist")
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    for n, where, row in iter_jsonl(path):
        if not isinstance(row, dict) or "id" not in row or "prediction" not in row:
            raise ValueError(f'{where}: expected {{"id": ..., "prediction": "..."}}, got {json.dumps(row)[:120]}')
        if not isinstance(row["prediction"], str):
            raise ValueError(f"{where}: prediction must be a string, got {row['prediction']!r}")
        try:
            key = question_key(row["id"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        if key in out:
            raise ValueError(f"{where}: duplicate id {row['id']!r} (first on line {lines[key]})")
        out[key], lines[key] = row["prediction"], n
    return out


def write_predictions(path, rows: Iterable[Mapping]) -> Path:
    """Write rows `{"id", "prediction", ...}` as JSONL (written whole to a temporary name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            question_key(row["id"])
            if not isinstance(row.get("prediction"), str):
                raise ValueError(f"prediction for id {row['id']!r} must be a string")
            f.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
