"""`scaleearth spoof`: CSV + PNG with the true GSD; flat for an adapter with lora_B = 0, not for a random one."""

import csv
import json
import math

import pytest
from scaleearth_eval_testutil import read_jsonl
from typer.testing import CliRunner

from scaleearth_cli.cli import app

pytest.importorskip("transformers")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_untrained_adapter_gives_a_flat_curve(tmp_path, tiny_model_dir, untrained_run, bench_fixtures):
    _, data, _ = bench_fixtures["rsvqa-hr"]
    out = tmp_path / "spoof"
    result = CliRunner().invoke(app, [
        "spoof", "--data", data, "--model", str(tiny_model_dir), "--adapter", str(untrained_run), "--out", str(out),
        "--gsd-range", "0.03:30", "--points", "4", "--max-new-tokens", "6", "--no-progress",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    with open(out / "spoof.csv") as f:
        rows = list(csv.DictReader(f))
    gsds = [float(r["gsd_m"]) for r in rows]
    assert gsds == pytest.approx([0.03, 0.3, 3.0, 30.0])  # log-spaced, ends included
    assert len({r["accuracy"] for r in rows}) == 1 and {r["questions"] for r in rows} == {"5"}
    # Flat because nothing but the gate varies, and with B = 0 the gate multiplies zero: every answer
    # is the same text at every GSD.
    answers = {}
    for row in read_jsonl(out / "spoof_predictions.jsonl"):
        answers.setdefault(row["id"], set()).add(row["prediction"])
    assert len(answers) == 5 and all(len(texts) == 1 for texts in answers.values())
    assert (out / "spoof.png").read_bytes()[:8] == PNG_MAGIC
    summary = json.loads((out / "spoof.json").read_text())
    # RSVQA-HR is 0.15 m; the fixture's 16 px tiles are shown to the model at 32 px: 0.075 m per model pixel.
    assert summary["dataset_gsd_m"] == 0.15 and summary["true_gsd_m"] == pytest.approx(0.075)
    assert summary["true_gsd_is_median"] is False
    assert "true GSD 0.075 m" in result.output or "true GSD 0.075" in result.output


def test_random_adapter_answers_change_with_the_spoofed_gsd(tmp_path, random_eval_model, bench_fixtures):
    from scaleearth_cli.spoof import spoof

    _, data, _ = bench_fixtures["geoscale"]
    result = spoof(random_eval_model, "geoscale", data, tmp_path, gsd_range=(0.03, 30.0), points=4, max_new_tokens=6)
    texts = [result.predictions[g] for g in sorted(result.predictions)]
    changed = [k for k in texts[0] if len({t[k] for t in texts}) > 1]
    assert changed, "no answer depends on the GSD fed to the gate: the sweep would be flat for any adapter"
    # GeoScale test samples are 0.5 m, 30 m and 0.15 m (3, 3 and 1 questions), shown at twice their width:
    # effective 0.25, 15 and 0.075 m; the median over the 7 questions is 0.25 m, marked as a median.
    assert result.true_gsd_varies and result.true_gsd_m == pytest.approx(0.25)
    assert [r["questions"] for r in result.rows] == [7] * 4
    assert [r["log10_gsd"] for r in result.rows] == pytest.approx([math.log10(0.03) + i for i in range(4)])


def test_spoof_rejects_benchmarks_without_gsd_and_bad_ranges(tmp_path, bench_fixtures):
    _, data, _ = bench_fixtures["xlrs-jsonl"]
    base = ["spoof", "--data", data, "--model", "m", "--adapter", str(tmp_path), "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*base, "--bench", "xlrs"])
    assert result.exit_code == 2 and "true GSD" in result.output
    result = CliRunner().invoke(app, [*base, "--bench", "rsvqa", "--gsd-range", "30:0.03"])
    assert result.exit_code == 2 and "LOW:HIGH" in result.output
