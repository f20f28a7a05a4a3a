"""The tier rule and the GSD-conditioned templates: what is asked at which GSD, and the physics answers."""

import random
import re

import pytest

from geoscale_vqa.qa import source_tier, template_qa, visible_tiers
from geoscale_vqa.qa.templates import format_length


@pytest.mark.parametrize(
    "source, qtype, question, tier",
    [
        ("rsvqa-lr", "rural_urban", "Is it a rural or an urban area", "semantic"),
        ("rsvqa-lr", "comp", "Are there more buildings than water areas?", "structure"),
        ("rsvqa-lr", "presence", "Is there a building?", "object"),
        ("rsvqa-lr", "presence", "Is there a water area?", "structure"),
        ("rsvqa-lr", "count", "How many roads are there?", "structure"),
        ("rsvqa-hr", "area", "What is the area covered by small buildings?", "structure"),
        ("rsvqa-hr", "count", "How many residential buildings are there at the top of the image?", "object"),
        ("rsvqa-xben", "yes/no", "Is there a road and rail network?", "semantic"),
        ("llava", "conversation", "What land use dominates this scene?", "semantic"),
        ("llava", "conversation", "How many ships are docked?", "object"),
        ("llava", "conversation", "Where does the river meet the bridge?", "structure"),
        ("llava", "conversation", "Anything unusual?", "semantic"),
    ],
)
def test_source_tier_rule(source, qtype, question, tier):
    assert source_tier(source, qtype, question) == tier


def test_visible_tiers_follow_gate_thresholds():
    assert visible_tiers(0.3) == ["object", "structure", "semantic"]
    assert visible_tiers(10.0) == ["structure", "semantic"]
    assert visible_tiers(250.0) == ["semantic"]
    assert visible_tiers(5000.0) == []
    with pytest.raises(ValueError):
        visible_tiers(float("nan"))


@pytest.mark.parametrize(
    "metres, text",
    [
        (0.15, "0.15 m"),
        (0.1234, "0.123 m"),
        (76.8, "76.8 m"),
        (10, "10 m"),
        (999.6, "1 km"),
        (2560, "2.56 km"),
        (123456, "123 km"),
    ],
)
def test_format_length(metres, text):
    assert format_length(metres) == text


def _all(gsd, labels=None, size=(100, 100)):
    return template_qa(gsd_m=gsd, width=size[0], height=size[1], labels=labels or {}, rng=random.Random(0), max_qa=99)


def test_scale_answers_come_from_physics():
    qa = {q.type: q for q in _all(0.5, size=(200, 100))}
    assert qa["gsd"].answer == "0.5 m" and qa["gsd"].tier == "scale"
    assert qa["footprint"].answer == "100 m × 50 m"
    n = int(re.search(r"is (\d+) pixels long", qa["object_size"].question)[1])
    assert qa["object_size"].answer == format_length(n * 0.5)


def test_resolvability_answers():
    # At 3 m a 4.5 m car spans 1.5 px (not resolvable); a 6 m tree exactly 2 px and a 24 m tennis court 8 px.
    # The 64 px image covers 192 m, so a 1.5 km airport cannot be in it and is never asked about.
    answers = {}
    for seed in range(40):
        for q in template_qa(gsd_m=3.0, width=64, height=64, labels={}, rng=random.Random(seed), max_qa=99):
            if q.type == "resolvable":
                answers[re.search(r"single (.+?) \(", q.question)[1]] = q.answer
    assert answers == {
        "car": "no",
        "tree": "yes",
        "building": "yes",
        "tennis court": "yes",
        "soccer field": "yes",
    }


def test_resolvability_never_asks_about_objects_larger_than_the_image():
    # 0.5 m x 96 px = 48 m on the ground: a tennis court (24 m) fits, a soccer field (100 m) does not.
    asked = set()
    for seed in range(40):
        for q in template_qa(gsd_m=0.5, width=96, height=96, labels={}, rng=random.Random(seed), max_qa=99):
            if q.type == "resolvable":
                asked.add(re.search(r"single (.+?) \(", q.question)[1])
    assert asked and not asked & {"soccer field", "airport"}
    assert "tennis court" in asked


def test_no_car_counting_at_10_m_but_at_half_a_metre():
    labels = {"counts": {"car": 7}}
    coarse = {q.type for q in _all(10.0, labels) if "car" in q.question and q.type in ("count", "presence")}
    assert coarse == set()
    fine = {(q.type, q.answer) for q in _all(0.5, labels) if "cars" in q.question}
    assert fine == {("presence", "yes"), ("count", "7")}
    # 2 m: a car spans 2.25 px, enough to see it, not to count it.
    assert {q.type for q in _all(2.0, labels) if "cars" in q.question} == {"presence"}


def test_objects_larger_than_the_footprint_are_not_asked_about():
    # 50 px at 0.2 m = 10 m of ground: a 40 m plane cannot be in view.
    assert not any("plane" in q.question for q in _all(0.2, {"counts": {"plane": 1}}, size=(50, 50)))
    assert any("plane" in q.question for q in _all(2.0, {"counts": {"plane": 1}}, size=(50, 50)))


def test_context_questions_need_enough_ground():
    labels = {"rural_urban": "urban", "dominant_cover": "built-up", "scene_class": "parking_lot"}
    small = {q.type for q in _all(1.0, labels)}  # 100 m of ground
    large = {q.type for q in _all(5.0, labels)}  # 500 m of ground
    assert "scene_class" in small and not {"rural_urban", "dominant_cover"} & small
    assert {"rural_urban", "dominant_cover", "scene_class"} <= large
    assert not {"rural_urban", "scene_class"} & {q.type for q in _all(2000.0, labels)}  # semantic tier closed


def test_negative_presence_is_capped_by_positives():
    counts = {"small-vehicle": 3, "large-vehicle": 0, "ship": 0, "swimming-pool": 0, "helicopter": 0}
    presence = [q for q in _all(0.5, {"counts": counts}, size=(400, 400)) if q.type == "presence"]
    assert sorted(q.answer for q in presence) == ["no", "yes"]


def test_selection_is_deterministic_and_bounded():
    labels = {"counts": {"car": 2, "building": 5, "tree": 1}, "presence": {"road": True}}
    a = template_qa(gsd_m=0.3, width=128, height=128, labels=labels, rng=random.Random("x"), max_qa=4)
    b = template_qa(gsd_m=0.3, width=128, height=128, labels=labels, rng=random.Random("x"), max_qa=4)
    assert a == b and len(a) == 4
    assert template_qa(gsd_m=None, width=1, height=1, labels=labels, rng=random.Random(0)) == []


def _thresholds(gsd):
    qa = template_qa(gsd_m=gsd, width=96, height=96, labels={}, rng=random.Random(0), max_qa=99)
    return {q.question: q.answer for q in qa if q.type == "gsd_threshold"}


def test_gsd_threshold_asks_the_ladder_values_on_either_side():
    # 2.2 m lies between the ladder's 1 m and 3 m: "below 3 m?" yes, "below 1 m?" no (asked by hand)
    assert _thresholds(2.2) == {
        "Is the ground sampling distance of this image below 3 m?": "yes",
        "Is the ground sampling distance of this image below 1 m?": "no",
    }
    assert _thresholds(0.05) == {
        "Is the ground sampling distance of this image below 0.1 m?": "yes",
        "Is the ground sampling distance of this image below 0.03 m?": "no",
    }
    # exactly on a ladder value: not below it, below the next one up
    assert _thresholds(10.0) == {
        "Is the ground sampling distance of this image below 30 m?": "yes",
        "Is the ground sampling distance of this image below 3 m?": "no",
    }


def test_template_types_keep_only_the_named_types():
    labels = {"counts": {"car": 3}, "rural_urban": "urban"}
    kept = template_qa(
        gsd_m=0.5, width=96, height=96, labels=labels, rng=random.Random(0), max_qa=99,
        types=frozenset({"count", "gsd_threshold"}),
    )  # fmt: skip
    assert {q.type for q in kept} == {"count", "gsd_threshold"}
    assert [q.answer for q in kept if q.type == "count"] == ["3"]


def test_build_refuses_unknown_template_types(tmp_path):
    from geoscale_vqa import build

    with pytest.raises(ValueError, match="unknown template QA type"):
        build(["synthetic=2"], tmp_path / "out", template_types=["gsd", "colour"])
