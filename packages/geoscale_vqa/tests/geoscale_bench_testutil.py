"""Helpers for the benchmark tests (imported by name; conftest puts this folder on sys.path)."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


@cache
def fixture_maker():
    """tools/make_fixtures_benchmarks.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "make_fixtures_benchmarks", REPO / "tools" / "make_fixtures_benchmarks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_predictions_file(path: Path, predictions: dict) -> Path:
    """{id: text} as a predictions JSONL file, written by hand (not with the code under test)."""
    path.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in predictions.items()))
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
