"""RSVQA-LR test, RSVQA-HR test and test_phili, RSVQAxBEN test, in the split files the generators write
(placeholder records fill id gaps): ids kept, counts equal the reference loader's, both parsers.

Expected numbers are worked out by hand: strict from the project's rules (answers.py), official from
syvlo/RSVQA `VocabEncoder.encode` (LR counts binned, m2 areas binned, lower case, one final "." or "?"
dropped); OA = all questions, AA = mean over types (`train.py`).
"""

import json
import shutil

import pytest
from geoscale_bench_testutil import fixture_maker, write_predictions_file

from geoscale_vqa.benchmarks import load_benchmark, score

LR_PREDICTIONS = {
    2: "Yes.",  # presence yes. strict right; official "yes" right
    3: "No, there are fewer roads",  # comp no. strict fallback right; official tokens differ, wrong
    4: "This is not a rural area.",  # rural_urban urban. strict: "rural" negated -> unparseable; official wrong
    5: "5",  # count 3. strict bin 1-10 right; official "between 0 and 10" both, right
    8: "0",  # count 0: right in both
    9: "about 300",  # count 250. strict 300 in 101-1000, right; official ("about", "between 100 and 1000"), wrong
    10: "not yes",  # presence no. strict: "yes" negated -> unparseable; official wrong
    7: "2",  # a question of a train image: not in the test split, unknown id
}
HR_PHILI_PREDICTIONS = {
    2: "yes",  # presence: right in both
    3: "about 2000 m2",  # area 1234m2. strict >1000 right; official ("about", "2000", "m2") wrong
    4: "5m2",  # area 0m2. strict 1-10 vs 0, wrong; official "between 0m2 and 10m2" vs "0m2", wrong
    5: "12",  # count 12: right in both
    6: "about 5",  # count 4: wrong in both (HR counts are exact)
}
XBEN_PREDICTIONS = {
    2: "Yes",  # presence yes: right in both
    3: "water bodies, pastures and mixed forest",  # same set: strict right; official word order differs, wrong
    4: "There are no coniferous forests.",  # presence no: strict fallback right; official wrong
    5: "none",  # LC "None": right in both
    6: "Sea and ocean.",  # right in both
}


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    root, maker = tmp_path_factory.mktemp("rsvqa"), fixture_maker()
    return {"lr": maker.make_rsvqa_lr(root), "hr": maker.make_rsvqa_hr(root), "xben": maker.make_rsvqa_xben(root)}


def test_split_files_have_placeholders_and_read_back(fixtures):
    questions = json.loads((fixtures["lr"] / "LR_split_test_questions.json").read_text())["questions"]
    assert questions[0] == {"id": 0, "active": False} and questions[6] == {"id": 6, "active": False}
    assert [q["id"] for q in questions] == list(range(11))  # list position equals id
    images = json.loads((fixtures["lr"] / "LR_split_test_images.json").read_text())["images"]
    assert images[0] == {"id": 0, "active": False} and images[2] == {"id": 2, "active": False}

    bench = load_benchmark("rsvqa", fixtures["lr"])
    assert [q.id for q in bench.questions] == [2, 3, 4, 5, 8, 9, 10]  # = the reference loader's 4 + 3 questions
    assert bench.skipped == {} and bench.variant == "rsvqa-lr"
    assert not any("reference loader" in n for n in bench.notes)
    assert {q.gsd_m for q in bench.questions} == {10.0}
    by_id = {q.id: q for q in bench.questions}
    assert (by_id[5].answer.kind, by_id[5].answer.value) == ("count_bin", "1-10")
    assert (by_id[9].answer.kind, by_id[9].answer.value) == ("count_bin", "101-1000")
    assert (by_id[4].answer.kind, by_id[4].answer.value) == ("vocab", "urban")
    assert by_id[2].images[0].endswith("Images_LR/1.tif") and by_id[8].images[0].endswith("Images_LR/3.tif")
    assert by_id[2].prompt == "Is there a building?\nAnswer the question using a single word or phrase."


def test_hr_test_and_test_phili(fixtures):
    phili = load_benchmark("rsvqa", fixtures["hr"] / "USGS_split_test_phili_questions.json")
    assert [q.id for q in phili.questions] == [2, 3, 4, 5, 6]
    assert {q.gsd_m for q in phili.questions} == {0.15} and phili.variant == "rsvqa-hr"
    assert [(q.answer.kind, q.answer.value) for q in phili.questions] == [
        ("yesno", "yes"),
        ("area_bin", ">1000"),
        ("area_bin", "0"),
        ("count", 12),
        ("count", 4),
    ]
    assert phili.questions[0].images[0].endswith("Data/1.png")
    assert load_benchmark("rsvqa", fixtures["hr"], split="test_phili").questions == phili.questions
    test = load_benchmark("rsvqa", fixtures["hr"])  # split "test" by default
    assert [(q.id, q.answer.value) for q in test.questions] == [(0, "yes"), (1, 7)]


def test_xben_reads_its_split_files(fixtures):
    bench = load_benchmark("rsvqa", fixtures["xben"])
    assert [q.id for q in bench.questions] == [2, 3, 4, 5, 6] and bench.variant == "rsvqa-xben"
    assert {q.gsd_m for q in bench.questions} == {10.0}
    by_id = {q.id: q for q in bench.questions}
    assert (by_id[3].answer.kind, by_id[3].answer.value) == ("set", {"pastures", "mixed forest", "water bodies"})
    assert by_id[5].answer.value == {"none"} and by_id[2].answer.value == "yes"
    assert by_id[6].images[0].endswith("Images/2.tif")


def test_score_lr_both_parsers(fixtures, tmp_path):
    preds = write_predictions_file(tmp_path / "lr.jsonl", LR_PREDICTIONS)
    strict = score("rsvqa", fixtures["lr"], preds, tmp_path / "s")
    official = score("rsvqa", fixtures["lr"], preds, tmp_path / "o", parser="official")
    # strict: presence 1/2 (10 negated), comp 1/1, rural_urban 0/1, count 3/3
    types = {k: v["accuracy"] for k, v in strict["groups"]["type"].items()}
    assert types == pytest.approx({"comp": 1.0, "count": 1.0, "presence": 0.5, "rural_urban": 0.0})
    assert strict["metrics"] == pytest.approx({"overall": 5 / 7, "average": (1 + 1 + 0.5 + 0) / 4})
    assert strict["unknown_ids"] == ["7"] and strict["counts"]["unparseable"] == 2
    # official: presence 1/2, comp 0/1, rural_urban 0/1, count 2/3
    types = {k: v["accuracy"] for k, v in official["groups"]["type"].items()}
    assert types == pytest.approx({"comp": 0.0, "count": 2 / 3, "presence": 0.5, "rural_urban": 0.0})
    assert official["metrics"] == pytest.approx({"overall": 3 / 7, "average": (0 + 2 / 3 + 0.5 + 0) / 4})
    assert strict["parsers"]["judged_differently"] == 2 and strict["parsers"]["judged_differently_ids"] == [3, 9]
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "o" / "scored.jsonl").read_text().splitlines())}
    assert rows[9]["parsed"] == "about between 100 and 1000" and rows[5]["parsed"] == "between 0 and 10"


def test_score_hr_both_parsers(fixtures, tmp_path):
    preds = write_predictions_file(tmp_path / "hr.jsonl", HR_PHILI_PREDICTIONS)
    strict = score("rsvqa", fixtures["hr"], preds, tmp_path / "s", split="test_phili")
    official = score("rsvqa", fixtures["hr"], preds, tmp_path / "o", split="test_phili", parser="official")
    types = {k: v["accuracy"] for k, v in strict["groups"]["type"].items()}
    assert types == pytest.approx({"area": 0.5, "count": 0.5, "presence": 1.0})
    assert strict["metrics"] == pytest.approx({"overall": 3 / 5, "average": 2 / 3})
    types = {k: v["accuracy"] for k, v in official["groups"]["type"].items()}
    assert types == pytest.approx({"area": 0.0, "count": 0.5, "presence": 1.0})
    assert official["metrics"] == pytest.approx({"overall": 2 / 5, "average": 0.5})


def test_score_xben_both_parsers(fixtures, tmp_path):
    preds = write_predictions_file(tmp_path / "x.jsonl", XBEN_PREDICTIONS)
    strict = score("rsvqa", fixtures["xben"], preds, tmp_path / "s")
    official = score("rsvqa", fixtures["xben"], preds, tmp_path / "o", parser="official")
    assert strict["metrics"] == pytest.approx({"overall": 1.0, "average": 1.0})
    types = {k: v["accuracy"] for k, v in official["groups"]["type"].items()}
    assert types == pytest.approx({"LC": 2 / 3, "presence": 1 / 2})
    assert official["metrics"] == pytest.approx({"overall": 3 / 5, "average": (2 / 3 + 1 / 2) / 2})


def test_records_the_reference_loader_would_read_differently_are_counted(fixtures, tmp_path):
    """An inactive question, or a broken answer link, inside an active image: skipped here, and the notes
    say the reference loader (which reads every question id of every active image) has more."""
    data = shutil.copytree(fixtures["lr"], tmp_path / "lr")
    qfile, afile = data / "LR_split_test_questions.json", data / "LR_split_test_answers.json"
    questions, answers = json.loads(qfile.read_text()), json.loads(afile.read_text())
    questions["questions"][3]["active"] = False
    answers["answers"][9]["question_id"] = 99
    qfile.write_text(json.dumps(questions))
    afile.write_text(json.dumps(answers))
    bench = load_benchmark("rsvqa", data)
    assert [q.id for q in bench.questions] == [2, 4, 5, 8, 10]
    assert bench.skipped == {"no valid answer": 1}
    assert "the reference loader (VQALoader.py) reads 7 question(s) here: every question id of every active " \
           "image; 5 are scored" in bench.notes  # fmt: skip


def test_bad_layouts(fixtures, tmp_path):
    with pytest.raises(ValueError, match="expected one of LR_/USGS_/RSVQAxBEN_split_test_questions.json, found none"):
        load_benchmark("rsvqa", tmp_path)
    with pytest.raises(ValueError, match="not an RSVQA"):
        load_benchmark("rsvqa", fixtures["lr"] / "LR_split_test_answers.json")
    with pytest.raises(ValueError, match="image root .*nowhere does not exist"):
        load_benchmark("rsvqa", fixtures["lr"], images=tmp_path / "nowhere")
    data = shutil.copytree(fixtures["lr"], tmp_path / "lr")
    qfile = data / "LR_split_test_questions.json"
    questions = json.loads(qfile.read_text())
    questions["questions"][2] = {"id": 2, "active": True}  # an active record without its fields
    qfile.write_text(json.dumps(questions))
    with pytest.raises(ValueError, match=r"question 2: missing field\(s\) 'img_id', 'type', 'question'"):
        load_benchmark("rsvqa", data)
