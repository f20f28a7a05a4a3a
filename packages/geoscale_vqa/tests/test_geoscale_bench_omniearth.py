"""OmniEarth-Bench as published (prepare_data/ with jsons/ and raw/): default image root, ids, L4 -> L1
aggregation, both parsers, the VLMEvalKit macros beside the count-weighted numbers.

Expected numbers are worked out by hand from OmniEarth-Bench `evaluation/task_config/mcq_utils.py`
(extraction, counts summed L4 -> L1) and VLMEvalKit `OmniEarthMCQBench.evaluate` (macros).
"""

import json
import shutil

import pytest
from geoscale_bench_testutil import fixture_maker, write_predictions_file

from geoscale_vqa.benchmarks import load_benchmark, score

CLOUD_COVER = "Atmosphere/Weather/Cloud/Cloud_cover.json#0"
CLOUD_TYPE_0, CLOUD_TYPE_1 = "Atmosphere/Weather/Cloud/Cloud_type.json#0", "Atmosphere/Weather/Cloud/Cloud_type.json#1"
RAIN = "Atmosphere/Weather/Rain/Rain_type.json#0"
CROP = "Biosphere/Vegetation/Agriculture/Crop_type.json#0"
TREE_0, TREE_1 = "Biosphere/Vegetation/Forest/Tree_species.json#0", "Biosphere/Vegetation/Forest/Tree_species.json#1"
FLOOD = "Cross-sphere/Hazards/Flood/Event_localization.json#0"
STORM_0 = "Cross-sphere/Hazards/Storm/Event_localization.json#0"
STORM_1 = "Cross-sphere/Hazards/Storm/Event_localization.json#1"

PREDICTIONS = {
    CLOUD_COVER: "The answer is C because the sky is overcast.",  # truth C. strict: C. official: {C,B,E,A} wrong
    CLOUD_TYPE_0: "A",  # truth A: right in both
    CLOUD_TYPE_1: "Option B is correct",  # truth B. strict: B. official: {B, C, E} wrong
    RAIN: "B",  # truth A: wrong in both
    CROP: "I think it's D",  # truth D. strict: unparseable. official: {D} right
    TREE_0: "A C",  # truth "A,C". strict: right. official: set("A,C") holds "," -> wrong
    TREE_1: "(A) pine and (C) birch",  # truth "AC": right in both
    FLOOD: "No, B",  # truth B. strict: unparseable. official: {B} right
    STORM_0: "F",  # truth F (7 options). strict: right. official: only A-E are read -> "" wrong
    STORM_1: "G",  # truth A; G is "Unable to decide". strict: wrong, unable counted. official: "" wrong
}


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return fixture_maker().make_omniearth(tmp_path_factory.mktemp("omniearth"))


def test_published_layout_reads_with_the_default_image_root(fixture):
    prepare_data, jsons = fixture
    bench = load_benchmark("omniearth", jsons)  # no --images: the folder above jsons/ holds raw/
    assert [q.id for q in bench.questions] == list(PREDICTIONS)  # the grounding question is skipped
    assert bench.skipped == {"Visual Grounding": 1}
    assert bench.images_root == prepare_data
    tree = bench.questions[5]
    assert tree.answer.value == {"A", "C"} and tree.answer.options == tuple("ABCDE")
    assert tree.groups["L1"] == "Biosphere"
    assert tree.groups["L4"] == "Biosphere/Vegetation/Forest/Tree species"
    assert tree.groups["unable_letter"] == "E"
    assert tree.images == (str(prepare_data / "raw" / "Biosphere" / "Tree_species_0.png"),)
    assert "There may be more than one correct option" in tree.prompt
    assert tree.prompt.startswith("Question about tree species?\nThe choices are listed below:\n(A) pine\n")
    assert "(A, B, C, D, E)" in bench.questions[1].prompt and "more than one" not in bench.questions[1].prompt
    assert bench.questions[-1].groups["unable_letter"] == "G"
    # prepare_data/ itself reads the same (its tasks.json is not a question file), as does --images
    assert [q.id for q in load_benchmark("omniearth", prepare_data).questions] == list(PREDICTIONS)
    explicit = load_benchmark("omniearth", jsons, images=prepare_data)
    assert [q.images for q in explicit.questions] == [q.images for q in bench.questions]


def test_repeated_question_ids_become_file_and_position(fixture):
    notes = load_benchmark("omniearth", fixture[1], with_images=False).notes
    assert any("Question_id repeats (e.g. 'Event localization/0')" in n for n in notes)
    assert any("1 Chain-of-Thought question(s)" in n for n in notes)
    # one L4 file alone has unique ids: they stay the benchmark's own
    single = fixture[1] / "Atmosphere" / "Weather" / "Cloud" / "Cloud_type.json"
    assert [q.id for q in load_benchmark("omniearth", single).questions] == ["Cloud type/0", "Cloud type/1"]


def test_image_root_errors_name_where_they_looked(fixture, tmp_path):
    copy = shutil.copytree(fixture[0], tmp_path / "prepare_data")
    (copy / "raw" / "Biosphere" / "Crop_type_0.png").unlink()
    missing = (
        r"Crop_type\.json: record 0: image file\(s\) not found: raw/Biosphere/"
        r"Crop_type_0\.png \(looked under .*prepare_data or .*Agriculture\)"
    )
    with pytest.raises(ValueError, match=missing):
        load_benchmark("omniearth", copy / "jsons")
    with pytest.raises(ValueError, match="image root .*nowhere does not exist"):
        load_benchmark("omniearth", fixture[1], images=tmp_path / "nowhere")


def test_both_parsers_and_macros_against_hand_computed_numbers(fixture, tmp_path):
    jsons = fixture[1]
    preds = write_predictions_file(tmp_path / "preds.jsonl", PREDICTIONS)
    strict = score("omniearth", jsons, preds, tmp_path / "strict")
    official = score("omniearth", jsons, preds, tmp_path / "official", parser="official")

    # strict right: cover, type 0, type 1, tree 0, tree 1, storm 0 -> 6 of 10
    # L4: cover 1, type 1, rain 0, crop 0, tree 1, flood 0, storm 1/2
    m = strict["metrics"]
    assert m["micro"] == pytest.approx(6 / 10)
    assert m["macro"] == pytest.approx(3.5 / 7)
    l1 = strict["groups"]["L1"]
    # counts summed L4 -> L1 (OmniEarth-Bench): Atmosphere 3/4, Biosphere 2/3, Cross-sphere 1/3
    assert {k: v["accuracy"] for k, v in l1.items()} == pytest.approx(
        {"Atmosphere": 3 / 4, "Biosphere": 2 / 3, "Cross-sphere": 1 / 3}
    )
    assert m["sphere_mean"] == pytest.approx((3 / 4 + 2 / 3 + 1 / 3) / 3)
    # VLMEvalKit: sphere macro = mean of its L4 accuracies; overall macro = mean of 7 L4 + 3 sphere values
    assert {k: v["l4_mean"] for k, v in l1.items()} == pytest.approx(
        {"Atmosphere": 2 / 3, "Biosphere": 1 / 2, "Cross-sphere": 1 / 4}
    )
    assert m["overall_macro_vlmevalkit"] == pytest.approx((3.5 + 2 / 3 + 1 / 2 + 1 / 4) / 10)
    assert l1["Cross-sphere"]["unable_to_decide"] == 1 and l1["Atmosphere"]["unable_to_decide"] == 0
    assert strict["groups"]["L3"]["Biosphere/Vegetation/Forest"]["accuracy"] == 1.0
    assert strict["groups"]["L2"]["Cross-sphere/Hazards"]["accuracy"] == pytest.approx(1 / 3)

    # official right: type 0, crop, tree 1, flood -> 4 of 10
    # L4: cover 0, type 1/2, rain 0, crop 1, tree 1/2, flood 1, storm 0
    o = official["metrics"]
    assert o["micro"] == pytest.approx(4 / 10)
    assert o["macro"] == pytest.approx(3 / 7)
    ol1 = official["groups"]["L1"]
    assert {k: v["accuracy"] for k, v in ol1.items()} == pytest.approx(
        {"Atmosphere": 1 / 4, "Biosphere": 2 / 3, "Cross-sphere": 1 / 3}
    )
    assert {k: v["l4_mean"] for k, v in ol1.items()} == pytest.approx(
        {"Atmosphere": 1 / 6, "Biosphere": 3 / 4, "Cross-sphere": 1 / 2}
    )
    assert o["overall_macro_vlmevalkit"] == pytest.approx((3 + 1 / 6 + 3 / 4 + 1 / 2) / 10)
    assert ol1["Cross-sphere"]["unable_to_decide"] == 0  # "G" is read as "" by the reference
    assert official["groups"]["L4"]["Atmosphere/Weather/Cloud/Cloud type"]["accuracy"] == 0.5

    # differently judged: cover, type 1, crop, tree 0, flood, storm 0
    assert strict["parsers"]["judged_differently"] == 6
    assert strict["parsers"]["judged_differently_ids"] == [CLOUD_COVER, CLOUD_TYPE_1, CROP, TREE_0, FLOOD, STORM_0]
    assert official["parsers"]["strict"]["metrics"] == m and strict["parsers"]["official"]["metrics"] == o
    assert set(strict["metric_definitions"]) >= set(m)
    assert strict["counts"]["skipped"] == {"Visual Grounding": 1} and strict["data"]["images"] is None


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
    path.write_text(json.dumps([good, good]))  # a repeated Question_id: identified by file and position
    assert [q.id for q in load_benchmark("omniearth", path.parent).questions] == ["t.json#0", "t.json#1"]
    path.write_text("[{")
    with pytest.raises(ValueError, match=r"t\.json: malformed JSON"):
        load_benchmark("omniearth", path.parent)
