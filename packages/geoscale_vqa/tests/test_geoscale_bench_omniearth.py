"""OmniEarth-Bench: the jsons/ folder with an image root, L4 -> L1 aggregation, clean macro, end-to-end score."""

import json

import pytest
from geoscale_bench_testutil import fixture_maker, write_predictions_file

from geoscale_vqa.benchmarks import load_benchmark, score

PREDICTIONS = {
    "Cloud type/0": "A",  # right
    "Cloud type/1": "Answer: B",  # right, by fallback
    "Cloud cover/0": "E",  # truth C; E is "Unable to decide"
    "Tree species/0": "A C",  # truth "A,C": right
    "Tree species/1": "A",  # truth "AC": a subset is wrong
    "Crop type/0": "(D) maize",  # right
    "Flood impact/0": "H",  # not an option (A-E): invalid
}


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return fixture_maker().make_omniearth(tmp_path_factory.mktemp("omniearth"))


def test_reads_back_with_image_root(fixture):
    jsons, raw = fixture
    bench = load_benchmark("omniearth", jsons, images=raw)
    assert [q.id for q in bench.questions] == list(PREDICTIONS)  # the grounding question is skipped
    assert bench.skipped == {"Visual Grounding": 1}
    tree = bench.questions[3]
    assert tree.answer.value == {"A", "C"} and tree.answer.options == tuple("ABCDE")
    assert tree.groups["L1"] == "Biosphere"
    assert tree.groups["L4"] == "Biosphere/Vegetation/Forest/Tree species"
    assert tree.groups["unable_letter"] == "E"
    assert tree.images == (str(raw / "Biosphere" / "Tree_species_0.png"),)
    assert "There may be more than one correct option" in tree.prompt
    assert tree.prompt.startswith("Question about tree species?\nThe choices are listed below:\n(A) pine\n")
    assert "(A, B, C, D, E)" in bench.questions[0].prompt and "more than one" not in bench.questions[0].prompt


def test_images_default_to_the_json_folder(fixture):
    jsons, _ = fixture
    with pytest.raises(ValueError, match="image file.* not found"):  # images live under raw/, not jsons/
        load_benchmark("omniearth", jsons)
    assert len(load_benchmark("omniearth", jsons, with_images=False)) == 7


def test_missing_image_root_is_an_error(fixture, tmp_path):
    with pytest.raises(ValueError, match="image root .*nowhere does not exist"):
        load_benchmark("omniearth", fixture[0], images=tmp_path / "nowhere")


def test_score_end_to_end(fixture, tmp_path):
    jsons, raw = fixture
    preds = write_predictions_file(tmp_path / "preds.jsonl", PREDICTIONS)
    results = score("omniearth", jsons, preds, tmp_path / "out", images=raw)
    metrics = results["metrics"]
    assert metrics["micro"] == pytest.approx(4 / 7)
    # L4 tasks: cloud type 2/2, cloud cover 0/1, tree species 1/2, crop type 1/1, flood impact 0/1
    assert metrics["macro"] == pytest.approx((1 + 0 + 0.5 + 1 + 0) / 5)
    # spheres: Atmosphere 2/3, Biosphere 2/3, Cross-sphere 0/1
    l1 = results["groups"]["L1"]
    assert {k: v["accuracy"] for k, v in l1.items()} == pytest.approx(
        {"Atmosphere": 2 / 3, "Biosphere": 2 / 3, "Cross-sphere": 0.0}
    )
    assert metrics["sphere_mean"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert l1["Atmosphere"]["unable_to_decide"] == 1 and l1["Biosphere"]["unable_to_decide"] == 0
    assert results["groups"]["L3"]["Biosphere/Vegetation/Forest"]["accuracy"] == pytest.approx(1 / 2)
    assert results["groups"]["L2"]["Biosphere/Vegetation"]["accuracy"] == pytest.approx(2 / 3)
    assert results["counts"]["invalid"] == 1 and results["counts"]["skipped"] == {"Visual Grounding": 1}
    assert results["data"]["images"] == str(raw)
    assert [f["path"].rsplit("/", 1)[1] for f in results["data"]["files"]] == ["Cloud_type.json", "Tree_species.json"]


def test_bad_records_are_named(tmp_path):
    good = {
        "Question_id": "t/0",
        "Question Type": "Single Choice",
        "Text": "q?",
        "Answer Choices": ["(A) x", "(B) unable to decide"],
        "Ground Truth": "A",
        "Images": [],
        "L1-task": "Atmosphere",
        "L2-task": "a",
        "L3-task": "b",
        "L4-task": "c",
    }
    path = tmp_path / "jsons" / "t.json"
    path.parent.mkdir()
    path.write_text(json.dumps([good, {k: v for k, v in good.items() if k != "Ground Truth"}]))
    with pytest.raises(ValueError, match=r"t\.json: record 1: missing field\(s\) 'Ground Truth'"):
        load_benchmark("omniearth", path.parent)
    path.write_text(json.dumps([good, {**good, "Question Type": "Essay"}]))
    with pytest.raises(ValueError, match="unknown Question Type 'Essay'"):
        load_benchmark("omniearth", path.parent)
    path.write_text(json.dumps([good, good]))
    with pytest.raises(ValueError, match="duplicate question id 't/0'"):
        load_benchmark("omniearth", path.parent)
    path.write_text("[{")
    with pytest.raises(ValueError, match=r"t\.json: malformed JSON"):
        load_benchmark("omniearth", path.parent)
