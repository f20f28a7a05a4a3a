"""The predictions contract, the registry, provenance in results.json and the Rich table."""

import hashlib
import io
import json

import pytest
from geoscale_bench_testutil import write_jsonl, write_predictions_file
from rich.console import Console

import geoscale_vqa
from geoscale_vqa.benchmarks import (
    BENCHMARKS,
    load_benchmark,
    read_predictions,
    results_table,
    score,
    score_predictions,
    write_predictions,
)

RECORDS = [
    {
        "index": i,
        "question": f"Question {i}?",
        "multi-choice options": ["(A) one", "(B) two", "(C) three"],
        "answer": answer,
        "category": category,
        "image": [],
    }
    for i, answer, category in [(0, "A", "T/s1"), (1, "B", "T/s1"), (2, "C", "T/s2"), (3, "A", "U/s3")]
]


@pytest.fixture
def xlrs(tmp_path):
    return write_jsonl(tmp_path / "xlrs" / "part.jsonl", RECORDS).parent


def test_registry_kinds_and_unknown_kind(tmp_path):
    assert set(BENCHMARKS) == {"xlrs", "omniearth", "rsvqa", "geoscale"}
    with pytest.raises(ValueError, match="unknown benchmark kind 'mmbench'; expected one of xlrs, omniearth"):
        load_benchmark("mmbench", tmp_path)


def test_read_predictions_contract(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"id": 3, "prediction": "B", "gsd_m": 0.3}\n\n{"id": "t/0", "prediction": ""}\n')
    assert read_predictions(path) == {"3": "B", "t/0": ""}  # ids as strings; extra keys ignored


@pytest.mark.parametrize(
    "lines, message",
    [
        ('{"id": 1, "prediction": "A"}\n{"id": 2, "prediction": "A"\n', r"p\.jsonl:2: malformed JSON line"),
        ('{"id": 1}\n', r"p\.jsonl:1: expected \{\"id\": \.\.\., \"prediction\""),
        ('["A"]\n', r"p\.jsonl:1: expected"),
        ('{"id": 1, "prediction": null}\n', r"p\.jsonl:1: prediction must be a string"),
        ('{"id": true, "prediction": "A"}\n', r"p\.jsonl:1: question id must be an integer or a string"),
        (
            '{"id": 1, "prediction": "A"}\n{"id": "1", "prediction": "B"}\n',
            r"p\.jsonl:2: duplicate id '1' \(first on line 1\)",
        ),  # noqa: E501
    ],
)
def test_read_predictions_errors_name_the_line(tmp_path, lines, message):
    path = tmp_path / "p.jsonl"
    path.write_text(lines)
    with pytest.raises(ValueError, match=message):
        read_predictions(path)


def test_missing_predictions_file(tmp_path):
    with pytest.raises(ValueError, match="predictions file .*nope.jsonl does not exist"):
        read_predictions(tmp_path / "nope.jsonl")


def test_write_predictions_round_trip(tmp_path):
    path = write_predictions(
        tmp_path / "out" / "p.jsonl", [{"id": 1, "prediction": "A"}, {"id": "k/0", "prediction": "no"}]
    )
    assert [json.loads(line) for line in path.read_text().splitlines()] == [
        {"id": 1, "prediction": "A"},
        {"id": "k/0", "prediction": "no"},
    ]
    assert read_predictions(path) == {"1": "A", "k/0": "no"}
    with pytest.raises(ValueError, match="must be a string"):
        write_predictions(tmp_path / "bad.jsonl", [{"id": 1, "prediction": None}])


def test_results_record_provenance(xlrs, tmp_path):
    preds = write_predictions_file(tmp_path / "p.jsonl", {0: "A", 1: "C", 2: "C", 3: "A"})
    run = {"model": "tiny", "adapter": None, "gsd_source": "oracle"}
    results = score("xlrs", xlrs, preds, tmp_path / "out", run=run)
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert results["data"]["files"] == [{"path": str(xlrs / "part.jsonl"), "sha256": sha(xlrs / "part.jsonl")}]
    assert results["predictions"] == {"path": str(preds), "sha256": sha(preds)}
    assert results["code_version"] == {"geoscale_vqa": geoscale_vqa.__version__}
    assert results["run"] == run and results["benchmark"] == "xlrs"
    # s1 1/2, s2 1/1, s3 1/1: micro 3/4, macro (0.5 + 1 + 1) / 3
    metrics = results["metrics"]
    assert (metrics["micro"], metrics["macro"]) == pytest.approx((0.75, 2.5 / 3))
    # lmms-eval knows none of these sub-tasks: its 13 all count 0, and the unknown ones are named
    assert metrics["macro_lmms_eval"] == 0.0
    assert results["unknown_subtasks"]["subtasks"] == ["T/s1", "T/s2", "U/s3"]
    assert len(results["partial_run"]["subtasks_absent"]) == 13
    assert metrics["macro_vlmevalkit"] is None and "l2-category" in results["macro_vlmevalkit"]
    assert set(results["metric_definitions"]) == set(metrics)


def test_score_predictions_in_memory_matches_file_scoring(xlrs, tmp_path):
    bench = load_benchmark("xlrs", xlrs, with_images=False)
    results = score_predictions(bench, {"0": "A", "2": "the answer is C"})
    assert results["counts"]["missing"] == 2 and results["missing_ids"] == [1, 3]
    assert results["metrics"]["micro"] == pytest.approx(0.5)
    assert results["predictions"] is None


def test_results_table_renders_metrics_and_groups(xlrs, tmp_path):
    preds = write_predictions_file(tmp_path / "p.jsonl", {0: "A", 1: "B", 2: "I'm not sure", 3: "A"})
    results = score("xlrs", xlrs, preds, tmp_path / "out")
    console = Console(file=io.StringIO(), width=150)
    console.print(results_table(results))
    text = console.file.getvalue()
    assert "XLRS-Bench" in text
    assert "75.00" in text  # micro 3/4
    assert "66.67" in text  # macro: s1 2/2, s2 0/1, s3 1/1
    assert "T/s2" in text and "1 unparseable" in text


def test_unknown_parser_is_rejected(xlrs, tmp_path):
    preds = write_predictions_file(tmp_path / "p.jsonl", {0: "A"})
    with pytest.raises(ValueError, match="unknown parser 'lenient'; expected one of strict, official"):
        score("xlrs", xlrs, preds, tmp_path / "out", parser="lenient")
