"""RSVQA LR test and HR test_phili: question ids kept, LR count bins, HR area bins, accuracy per type."""

import pytest
from geoscale_bench_testutil import fixture_maker, write_predictions_file

from geoscale_vqa.benchmarks import load_benchmark, score

LR_PREDICTIONS = {
    0: "Yes",  # presence, truth yes
    1: "There is no water area.",  # presence, truth no (fallback)
    2: "no",  # comp, truth yes: wrong
    3: "It is an urban area",  # rural_urban, truth urban (fallback)
    4: "five",  # count 3: same bin 1-10, right
    5: "1",  # count 0: bin 0 vs 1-10, wrong
    6: "between 101 and 1000",  # count 250: right
    8: "no",  # question 8 is skipped (broken answer link): reported as unknown
}
HR_PREDICTIONS = {
    0: "yes",  # presence: right
    1: "about 2000 m2",  # area 1234m2: both >1000, right
    2: "5m2",  # area 0m2: wrong
    3: "12",  # count: right
    4: "about 5",  # count 4: HR counts are exact, wrong
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root, maker = tmp_path_factory.mktemp("rsvqa"), fixture_maker()
    return maker.make_rsvqa_lr(root), maker.make_rsvqa_hr(root)


def test_lr_reads_back(fixtures):
    bench = load_benchmark("rsvqa", fixtures[0])
    assert [q.id for q in bench.questions] == [0, 1, 2, 3, 4, 5, 6]  # 7 inactive, 8 broken
    assert bench.skipped == {"no valid answer": 1}
    assert {q.gsd_m for q in bench.questions} == {10.0}
    by_id = {q.id: q for q in bench.questions}
    assert (by_id[4].answer.kind, by_id[4].answer.value) == ("count_bin", "1-10")
    assert (by_id[6].answer.kind, by_id[6].answer.value) == ("count_bin", "101-1000")
    assert (by_id[3].answer.kind, by_id[3].answer.value) == ("vocab", "urban")
    assert by_id[0].images[0].endswith("Images_LR/0.tif")
    assert by_id[0].prompt == "Is there a building?\nAnswer the question using a single word or phrase."


def test_hr_test_phili_from_its_questions_file(fixtures):
    bench = load_benchmark("rsvqa", fixtures[1] / "USGS_split_test_phili_questions.json")
    assert {q.gsd_m for q in bench.questions} == {0.15}
    assert [(q.answer.kind, q.answer.value) for q in bench.questions] == [
        ("yesno", "yes"),
        ("area_bin", ">1000"),
        ("area_bin", "0"),
        ("count", 12),
        ("count", 4),
    ]
    assert bench.questions[0].images[0].endswith("Data/10.png")
    assert load_benchmark("rsvqa", fixtures[1], split="test_phili").questions == bench.questions


def test_score_lr(fixtures, tmp_path):
    preds = write_predictions_file(tmp_path / "lr.jsonl", LR_PREDICTIONS)
    results = score("rsvqa", fixtures[0], preds, tmp_path / "out")
    types = {k: v["accuracy"] for k, v in results["groups"]["type"].items()}
    assert types == pytest.approx({"comp": 0.0, "count": 2 / 3, "presence": 1.0, "rural_urban": 1.0})
    assert results["metrics"]["overall"] == pytest.approx(5 / 7)
    assert results["metrics"]["average"] == pytest.approx((0 + 2 / 3 + 1 + 1) / 4)
    assert results["unknown_ids"] == ["8"] and results["counts"]["fallback"] == 2


def test_score_hr(fixtures, tmp_path):
    preds = write_predictions_file(tmp_path / "hr.jsonl", HR_PREDICTIONS)
    results = score("rsvqa", fixtures[1], preds, tmp_path / "out", split="test_phili")
    types = {k: v["accuracy"] for k, v in results["groups"]["type"].items()}
    assert types == pytest.approx({"area": 0.5, "count": 0.5, "presence": 1.0})
    assert results["metrics"]["overall"] == pytest.approx(3 / 5)
    assert results["metrics"]["average"] == pytest.approx(2 / 3)


def test_bad_layouts(fixtures, tmp_path):
    with pytest.raises(ValueError, match="expected one of LR_/USGS_split_test_questions.json, found none"):
        load_benchmark("rsvqa", tmp_path)
    with pytest.raises(ValueError, match="not an RSVQA"):
        load_benchmark("rsvqa", fixtures[0] / "LR_split_test_answers.json")
    with pytest.raises(ValueError, match="image root .*nowhere does not exist"):
        load_benchmark("rsvqa", fixtures[0], images=tmp_path / "nowhere")
