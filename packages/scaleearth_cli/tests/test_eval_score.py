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
    predictions = {  # question ids of the LR test split (images 1 and 3; the others are placeholders)
        2: "Yes.",  # presence yes: right
        3: "no",  # comp no: right
        4: "I'm not sure",  # rural_urban urban: unparseable
        5: "three",  # count 3 -> bin 1-10: right
        8: "",  # count 0: unparseable
        9: "about 300",  # count 250 -> bin 101-1000; 300 is in it: right
        10: "No.",  # presence no: right
    }
    result, out = _score(tmp_path, kind, data, predictions)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    # types: presence 2/2, comp 1/1, rural_urban 0/1, count 2/3
    assert results["metrics"]["overall"] == pytest.approx(5 / 7)
    assert results["metrics"]["average"] == pytest.approx((1 + 1 + 0 + 2 / 3) / 4)
    assert results["groups"]["type"]["count"]["correct"] == 2


# The published XLRS (hub save_to_disk): truth 1 B, 2 C, 3 A, 4 AC, 5 BD, 6 D, 7 A, 8 B, 9 C, ids "<category>#<index>".
HUB_ANSWERS = {
    1: "The answer is (B).",  # strict B right; lmms-eval: prefix dropped, (B): right
    2: "Answer: C",  # strict C right; lmms-eval {A, E, C}: wrong
    3: "I think it's A",  # strict unparseable; lmms-eval {A}: right
    4: "A C",  # right in both
    5: "B and D",  # strict {B, D} right; lmms-eval {A, B, D}: wrong
    6: "c.",  # strict C wrong; lmms-eval "": wrong
    7: "Option B is correct",  # strict B wrong; lmms-eval {B, C, E} wrong
    8: "No, B",  # strict unparseable; lmms-eval {B}: right
}


@pytest.mark.parametrize("parser, right", [("strict", {1, 2, 4, 5}), ("official", {1, 3, 4, 8})])
def test_score_parser_option_on_the_published_xlrs(tmp_path, bench_fixtures, parser, right):
    from scaleearth_eval_testutil import fixture_maker

    kind, data, _ = bench_fixtures["xlrs-arrow"]
    ids = {r[0]: fixture_maker().xlrs_hub_id(r) for r in fixture_maker().XLRS_RECORDS}
    result, out = _score(tmp_path, kind, data, {ids[n]: t for n, t in HUB_ANSWERS.items()}, "--parser", parser)
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["parser"] == parser and results["counts"]["correct"] == 4
    rows = [json.loads(line) for line in (out / "scored.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows if r["correct"]} == {ids[n] for n in right}
    assert results["parsers"]["judged_differently"] == 4  # 2, 3, 5, 8
    assert results["metrics"]["macro_lmms_eval"] == pytest.approx(2 / 13)  # 2 of the 13 sub-tasks at 1.0 or
    # 4 at 0.5 (official): (1 + 1) / 13 = (4 * 0.5) / 13
    assert "4 answer(s) judged differently" in result.output and "partial run" in result.output
    result = runner.invoke(app, ["score", "--bench", kind, "--data", data, "--predictions",
                                 str(tmp_path / "preds.jsonl"), "--out", str(out), "--parser", "loose"])  # fmt: skip
    assert result.exit_code == 2 and "strict or official" in result.output


def test_score_errors_are_reported(tmp_path, bench_fixtures):
    kind, data, _ = bench_fixtures["xlrs-jsonl"]
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "prediction": "A"}\nnot json\n')
    result = runner.invoke(app, ["score", "--bench", kind, "--data", data, "--predictions",
                                 str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 1 and "bad.jsonl:2" in result.output
    result = runner.invoke(app, ["score", "--bench", "nope", "--data", data, "--predictions",
                                 str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "unknown benchmark" in result.output
