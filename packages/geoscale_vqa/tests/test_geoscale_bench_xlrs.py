"""XLRS-Bench lite: JSONL and parquet layouts read back, prompts in the benchmark's format, end-to-end score."""

import json

import pytest
from geoscale_bench_testutil import fixture_maker, write_jsonl, write_predictions_file

from geoscale_vqa.benchmarks import load_benchmark, open_image, score

# Hand-written predictions for the 9 fixture questions (see XLRS_RECORDS) and one unknown id.
PREDICTIONS = {
    1: "The answer is (B).",  # truth B: right, by fallback
    2: "b",  # truth C: wrong
    3: "I'm not sure",  # unparseable
    4: "A C",  # truth A,C: right
    5: "B, D",  # truth "B D": right
    6: "E",  # not an option: invalid
    7: "",  # unparseable
    8: "B because A is wrong",  # truth B: right ({B}, not {A, B})
    # 9 is missing
    99: "A",  # unknown id
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root = tmp_path_factory.mktemp("xlrs")
    maker = fixture_maker()
    return maker.make_xlrs_jsonl(root), maker.make_xlrs_parquet(root)


def test_jsonl_reads_back(fixtures):
    bench = load_benchmark("xlrs", fixtures[0])
    assert [q.id for q in bench.questions] == list(range(1, 10))
    q4 = bench.questions[3]
    assert q4.answer.value == {"A", "C"} and q4.answer.options == ("A", "B", "C", "D")
    assert q4.groups == {
        "task": "Land use classification",
        "subtask": "Land use classification/Overall Land use classification",
        "l2-category": "overall land use classification",
    }
    assert q4.gsd_m is None
    assert bench.questions[5].answer.value == {"D"}  # "(D) red"
    assert [p.split("xlrs_jsonl/")[1] for p in bench.questions[6].images] == ["images/x1.png", "images/x2.png"]
    assert open_image(bench.questions[6].images[1]).size == (16, 16)


def test_prompt_follows_the_benchmark_format(fixtures):
    q1, q4 = (load_benchmark("xlrs", fixtures[0]).questions[i] for i in (0, 3))
    assert q1.prompt == (
        "How many planes are in the image?\n"
        "The choices are listed below:\n(A) 2\n(B) 5\n(C) 9\n(D) 14\n\n"
        "Select the best answer for the multiple-choice question based on the image. "
        "Only respond with the letter corresponding to the correct answer (A, B, C, D).\n"
        "The answer is:"
    )
    assert "There may be more than one correct option" in q4.prompt
    assert "with multiple choices separated by spaces." in q4.prompt


def test_parquet_reads_the_same_questions(fixtures):
    jsonl, parquet = (load_benchmark("xlrs", f) for f in fixtures)
    assert [(q.id, q.prompt, q.answer, dict(q.groups)) for q in parquet.questions] == [
        (q.id, q.prompt, q.answer, dict(q.groups)) for q in jsonl.questions
    ]
    # image bytes inline, read lazily from the right row group (two rows per group): question 7 has x1 then x2
    assert len(parquet.questions[6].images) == 2
    for lazy_q, path_q in zip(parquet.questions, jsonl.questions):
        assert [open_image(i).tobytes() for i in lazy_q.images] == [open_image(i).tobytes() for i in path_q.images]


@pytest.mark.parametrize("layout", [0, 1], ids=["jsonl", "parquet"])
def test_score_end_to_end(fixtures, tmp_path, layout):
    preds = write_predictions_file(tmp_path / "preds.jsonl", PREDICTIONS)
    results = score("xlrs", fixtures[layout], preds, tmp_path / "out")
    # by hand: right = 1, 4, 5, 8 of 9 questions
    assert results["metrics"]["micro"] == pytest.approx(4 / 9)
    # sub-tasks: overall counting 1/2, regional counting 0/2 (9 missing), overall land use 2/2,
    # object color 1/2, counting with changing detection 0/1
    assert results["metrics"]["macro"] == pytest.approx((1 / 2 + 0 + 1 + 1 / 2 + 0) / 5)
    subtasks = results["groups"]["subtask"]
    assert subtasks["Counting/Regional counting"] == {
        "n": 2,
        "correct": 0,
        "unparseable": 1,
        "missing": 1,
        "accuracy": 0.0,
    }
    assert results["groups"]["task"]["Counting"]["accuracy"] == pytest.approx(1 / 5)
    counts = results["counts"]
    assert (counts["strict"], counts["fallback"], counts["unparseable"], counts["invalid"], counts["missing"]) == (
        3,
        2,
        2,
        1,
        1,
    )
    assert results["missing_ids"] == [9] and results["unknown_ids"] == ["99"]
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == results
    rows = [json.loads(line) for line in (tmp_path / "out" / "scored.jsonl").read_text().splitlines()]
    assert rows[7]["parsed"] == "B" and rows[7]["correct"] is True and rows[7]["status"] == "fallback"


def test_missing_field_is_named(tmp_path):
    record = {"index": 1, "question": "q?", "multi-choice options": ["(A) x", "(B) y"], "category": "A/B", "image": []}
    path = write_jsonl(tmp_path / "bad" / "x.jsonl", [record])
    with pytest.raises(ValueError, match=r"x\.jsonl:1: missing field\(s\) 'answer'"):
        load_benchmark("xlrs", path.parent)


def test_malformed_json_line_is_named(tmp_path):
    path = tmp_path / "bad" / "x.jsonl"
    write_jsonl(path, [])
    path.write_text('{"index": 1}\n{not json\n')
    with pytest.raises(ValueError, match=r"x\.jsonl:1: missing field"):
        load_benchmark("xlrs", path)
    path.write_text("\n{not json\n")
    with pytest.raises(ValueError, match=r"x\.jsonl:2: malformed JSON line"):
        load_benchmark("xlrs", path)


def test_answer_outside_options_and_missing_image(tmp_path):
    record = {
        "index": 1,
        "question": "q?",
        "multi-choice options": ["(A) x", "(B) y"],
        "answer": "C",
        "category": "A/B",
        "image": ["nope.png"],
    }
    path = write_jsonl(tmp_path / "bad" / "x.jsonl", [record])
    with pytest.raises(ValueError, match="outside the options AB"):
        load_benchmark("xlrs", path, with_images=False)
    write_jsonl(path, [{**record, "answer": "B"}])
    with pytest.raises(ValueError, match="image file.* not found.*nope.png"):
        load_benchmark("xlrs", path)
    assert len(load_benchmark("xlrs", path, with_images=False)) == 1  # scoring needs no pixels
    with pytest.raises(ValueError, match="image root .*missing-root does not exist"):
        load_benchmark("xlrs", path, images=tmp_path / "missing-root")
