"""`scaleearth score` through the CLI on hand-written predictions, with accuracies computed by hand."""

import json

import pytest
from scaleearth_eval_testutil import write_predictions_file
from typer.testing import CliRunner

from scaleearth_cli.cli import app

runner = CliRunner()

# XLRS fixture truth: 1 B, 2 C, 3 A, 4 A,C, 5 B D, 6 D, 7 A, 8 B, 9 C (tools/make_fixtures_benchmarks.py).
XLRS_PREDICTIONS = {
    1: "The answer is (B).",  # fallback -> B: right
    2: "c",  # strict, lower case -> C: right
    3: "B, D",  # strict {B, D} vs A: wrong
    4: "I'm not sure",  # unparseable: wrong
    5: "B, D",  # strict {B, D} = "B D": right (multi-answer, exact set)
    6: "",  # empty: unparseable, wrong
    7: "E",  # a letter outside A-D: invalid, wrong
    8: "b",  # strict -> B: right
    # 9: no prediction -> missing, wrong
}


def _score(tmp_path, kind, data, predictions, *extra):
    preds = write_predictions_file(tmp_path / "preds.jsonl", predictions)
    out = tmp_path / "scores"
    result = runner.invoke(
        app, ["score", "--bench", kind, "--data", data, "--predictions", str(preds), "--out", str(out), *extra]
    )
    return result, out


def test_score_xlrs_tricky_outputs(tmp_path, bench_fixtures):
    kind, data, _ = bench_fixtures["xlrs-jsonl"]
    result, out = _score(tmp_path, kind, data, XLRS_PREDICTIONS)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    # micro: 4 right of 9. macro over sub-tasks: overall counting 2/2, regional counting 0/2,
    # land use 1/2, object colour 1/2, counting with change detection 0/1 -> (1 + 0 + .5 + .5 + 0) / 5.
    assert results["metrics"]["micro"] == pytest.approx(4 / 9)
    assert results["metrics"]["macro"] == pytest.approx(0.4)
    counts = results["counts"]
    assert (counts["correct"], counts["strict"], counts["fallback"]) == (4, 4, 1)
    assert (counts["unparseable"], counts["invalid"], counts["missing"]) == (2, 1, 1)
    assert results["missing_ids"] == [9]
    assert "44.44" in result.output and "40.00" in result.output  # the table shows the metrics
    assert "2 unparseable" in result.output and "1 invalid letter" in result.output
    rows = [json.loads(line) for line in (out / "scored.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, True, False, False, True, False, False, True, False]


def test_score_rsvqa_normalises_words_numbers_and_bins(tmp_path, bench_fixtures):
    kind, data, _ = bench_fixtures["rsvqa-lr"]
    predictions = {
        0: "Yes.",  # presence yes: right
        1: "no",  # presence no: right
        2: "I'm not sure",  # comp yes: unparseable
        3: "Urban area",  # rural_urban urban: right (fallback)
        4: "three",  # count 3 -> bin 1-10: right
        5: "",  # count 0: unparseable
        6: "about 300",  # count 250 -> bin 101-1000; 300 is in it: right
    }
    result, out = _score(tmp_path, kind, data, predictions)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    # types: presence 2/2, comp 0/1, rural_urban 1/1, count 2/3
    assert results["metrics"]["overall"] == pytest.approx(5 / 7)
    assert results["metrics"]["average"] == pytest.approx((1 + 0 + 1 + 2 / 3) / 4)
    assert results["groups"]["type"]["count"]["correct"] == 2


def test_score_errors_are_reported(tmp_path, bench_fixtures):
    kind, data, _ = bench_fixtures["xlrs-jsonl"]
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "prediction": "A"}\nnot json\n')
    result = runner.invoke(app, ["score", "--bench", kind, "--data", data, "--predictions",
                                 str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 1 and "bad.jsonl:2" in result.output
    result = runner.invoke(app, ["score", "--bench", "nope", "--data", data, "--predictions",
                                 str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "unknown benchmark" in result.output
