"""`scaleearth build-data`: flag validation, a real build, resume, parts and merge."""

import json

import pytest
from typer.testing import CliRunner

from scaleearth_cli.cli import app

runner = CliRunner()


def _run(*args):
    return runner.invoke(app, ["build-data", *map(str, args)])


def test_help_has_an_example():
    result = _run("--help")
    assert result.exit_code == 0
    assert "Example" in result.output and "uv run scaleearth build-data" in result.output


def test_builds_a_synthetic_corpus_with_progress_and_summary(tmp_path):
    result = _run("--source", "synthetic=12", "--out", tmp_path / "c", "--shard-size", "5", "--workers", "2")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["totals"]["samples"] == 12
    # scene i goes to test when i % 10 == 0 and to val when i % 10 == 5: 0, 10 | 5 | the other 9
    assert {k: v["samples"] for k, v in manifest["counts"]["by_split"].items()} == {"test": 2, "val": 1, "train": 9}
    assert "samples/s" in result.output and "synthetic" in result.output and "total" in result.output
    # running again without --resume refuses; with --resume nothing is rebuilt
    again = _run("--source", "synthetic=12", "--out", tmp_path / "c", "--shard-size", "5")
    assert again.exit_code == 1 and "--resume" in again.output
    resumed = _run("--source", "synthetic=12", "--out", tmp_path / "c", "--shard-size", "5", "--resume")
    assert resumed.exit_code == 0 and "0 shards built" in resumed.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source", "rsvqa=/data", "--out", "x"], "unknown source kind 'rsvqa'"),
        (["--source", "rsvqa-lr=/definitely/not/here", "--out", "x"], "does not exist"),
        (["--source", "synthetic=zero", "--out", "x"], "positive integer"),
        (["--source", "synthetic", "--out", "x"], "KIND=ARG"),
        (["--out", "x"], "at least one --source"),
        (["--source", "synthetic=3"], "--out"),
        (["--source", "synthetic=3", "--out", "x", "--part", "2/2"], "0 <= i < N"),
        (["--source", "synthetic=3", "--out", "x", "--workers", "0"], "--workers"),
        (["--merge-parts", "x", "--source", "synthetic=3"], "takes no --source"),
    ],
)
def test_bad_flags_fail_at_once_with_a_clear_message(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = _run(*args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split()).replace("│", "").replace("  ", " ") or message in result.output
    assert not (tmp_path / "x").exists()


def test_parts_then_merge(tmp_path):
    out = tmp_path / "p"
    for i in range(2):
        result = _run("--source", "synthetic=20", "--out", out, "--shard-size", "4", "--part", f"{i}/2")
        assert result.exit_code == 0, result.output
        assert "--merge-parts" in result.output
    assert not (out / "manifest.json").exists()
    merged = _run("--merge-parts", out)
    assert merged.exit_code == 0, merged.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["totals"]["samples"] == 20 and manifest["totals"]["shards"] == 4 + 1 + 1


def test_merge_reports_missing_parts(tmp_path):
    out = tmp_path / "p"
    assert _run("--source", "synthetic=20", "--out", out, "--shard-size", "4", "--part", "1/3").exit_code == 0
    result = _run("--merge-parts", out)
    assert result.exit_code == 1 and "parts [0, 2] of 3 have not finished" in " ".join(result.output.split())
