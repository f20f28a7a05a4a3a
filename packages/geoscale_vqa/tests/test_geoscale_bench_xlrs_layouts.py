"""XLRS-Bench as published: the hub's save_to_disk folder and VLMEvalKit's copies, ids, both parsers, macros.

Every expected number below is computed by hand from lmms-eval's rules (tasks/xlrs/mcq_utils.py) and
VLMEvalKit's (XLRSBench.evaluate), on the 9 fixture questions of tools/make_fixtures_benchmarks.py.
"""

import json
import shutil

import pytest
from geoscale_bench_testutil import fixture_maker, write_predictions_file

from geoscale_vqa.benchmarks import load_benchmark, open_image, score

# Truth as the hub stores it: 1 B, 2 C, 3 A, 4 AC, 5 BD, 6 D, 7 A, 8 B, 9 C. Keyed by record number.
ANSWERS = {
    1: "The answer is (B).",  # strict: fallback B, right. lmms: prefix removed, "(B)" -> {B}, right
    2: "Answer: C",  # strict: fallback C, right. lmms: no prefix matches, every a-e letter -> {A, E, C}, wrong
    3: "I think it's A",  # strict: unparseable. lmms: the only a-e letter is A -> {A}, right
    4: "A C",  # both {A, C}: right
    5: "B and D",  # strict {B, D}: right. lmms: B, a, d, D -> {A, B, D}, wrong
    6: "c.",  # strict {C}: wrong. lmms: no capital A-E -> "", wrong
    7: "Option B is correct",  # strict {B}: wrong (truth A). lmms: B, c, e, c -> {B, C, E}, wrong
    8: "No, B",  # strict: unparseable. lmms: {B}, right
    # 9: no prediction
}
STRICT_RIGHT, OFFICIAL_RIGHT = {1, 2, 4, 5}, {1, 3, 4, 8}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root, maker = tmp_path_factory.mktemp("xlrs-layouts"), fixture_maker()
    return {
        "jsonl": maker.make_xlrs_jsonl(root),
        "arrow": maker.make_xlrs_save_to_disk(root),
        "vlmevalkit": maker.make_xlrs_vlmevalkit(root),
        "vlmevalkit-tsv": maker.make_xlrs_vlmevalkit_tsv(root),
    }


def _ids(layout: str) -> dict:
    """{record number: question id} in a layout: hub ids are "<category>#<index>", the others the index."""
    records = fixture_maker().XLRS_RECORDS
    if layout == "arrow":
        return {r[0]: fixture_maker().xlrs_hub_id(r) for r in records}
    return {r[0]: r[0] for r in records}


def test_save_to_disk_ids_are_category_and_index(layouts):
    bench = load_benchmark("xlrs", layouts["arrow"])
    assert [q.id for q in bench.questions] == [
        "Counting/Overall counting#0",
        "Counting/Overall counting#1",
        "Counting/Regional counting#0",
        "Land use classification/Overall Land use classification#0",
        "Land use classification/Overall Land use classification#1",
        "Object properties/Object color#0",
        "Counting/Counting with changing detection#0",
        "Object properties/Object color#1",
        "Counting/Regional counting#1",
    ]
    assert any("'<category>#<index>'" in note for note in bench.notes)
    assert [f.name for f in bench.files] == ["data-00000-of-00002.arrow", "data-00001-of-00002.arrow"]
    # the dataset_dict.json file, the split folder and the dataset folder read the same questions
    for other in (layouts["arrow"] / "dataset_dict.json", layouts["arrow"] / "train"):
        assert [q.id for q in load_benchmark("xlrs", other, with_images=False).questions] == [
            q.id for q in bench.questions
        ]


@pytest.mark.parametrize("layout", ["arrow", "vlmevalkit", "vlmevalkit-tsv"])
def test_published_layouts_read_the_same_questions_and_pixels(layouts, layout):
    reference = load_benchmark("xlrs", layouts["jsonl"]).questions
    found = load_benchmark("xlrs", layouts[layout]).questions
    assert [(q.prompt, q.answer, dict(q.groups)) for q in found] == [
        (q.prompt, q.answer, dict(q.groups)) for q in reference
    ]
    assert [q.answer_text for q in found] == ["B", "C", "A", "AC", "BD", "D", "A", "B", "C"]  # as the hub stores
    for lazy, path in zip(found, reference):
        assert [open_image(i).tobytes() for i in lazy.images] == [open_image(i).tobytes() for i in path.images]


def test_vlmevalkit_row_borrowing_an_image_by_index(layouts):
    # row 9 of the VLMEvalKit copy holds "8" instead of pixels: the image of row 8 of the same file
    questions = {q.id: q for q in load_benchmark("xlrs", layouts["vlmevalkit"]).questions}
    assert questions[9].images == questions[8].images
    lines = (layouts["vlmevalkit"] / "XLRS-Bench-lite_part1.jsonl").read_text().splitlines()
    assert json.loads(lines[3])["image"] == "8"


@pytest.mark.parametrize("layout", ["arrow", "vlmevalkit", "vlmevalkit-tsv"])
def test_both_parsers_against_hand_computed_scores(layouts, layout, tmp_path):
    ids = _ids(layout)
    preds = write_predictions_file(tmp_path / "p.jsonl", {ids[n]: text for n, text in ANSWERS.items()})
    strict = score("xlrs", layouts[layout], preds, tmp_path / "strict")
    official = score("xlrs", layouts[layout], preds, tmp_path / "official", parser="official")

    # strict: right 1, 2, 4, 5 of 9. Sub-tasks: overall counting 2/2, regional counting 0/2, land use 2/2,
    # object colour 0/2, counting with change detection 0/1.
    m = strict["metrics"]
    assert m["micro"] == pytest.approx(4 / 9)
    assert m["macro"] == pytest.approx(2 / 5)  # mean over the 5 sub-tasks present
    assert m["macro_lmms_eval"] == pytest.approx(2 / 13)  # mean over all 13, the 8 absent counting 0
    # VLMEvalKit groups by category/l2-category: planes 1/1, ships 1/1, regional 0/2, land use 2/2,
    # colour 0/2, change 0/1 -> 3 / 6
    assert m["macro_vlmevalkit"] == pytest.approx(3 / 6)
    assert strict["partial_run"]["subtasks_scored"] == 5 and len(strict["partial_run"]["subtasks_absent"]) == 8

    # official (lmms-eval): right 1, 3, 4, 8. Sub-tasks: overall counting 1/2, regional 1/2, land use 1/2,
    # colour 1/2, change 0/1.
    o = official["metrics"]
    assert o["micro"] == pytest.approx(4 / 9)
    assert {k: v["accuracy"] for k, v in official["groups"]["subtask"].items()} == pytest.approx(
        {
            "Counting/Overall counting": 0.5,
            "Counting/Regional counting": 0.5,
            "Land use classification/Overall Land use classification": 0.5,
            "Object properties/Object color": 0.5,
            "Counting/Counting with changing detection": 0.0,
        }
    )
    assert o["macro"] == pytest.approx(2 / 5) and o["macro_lmms_eval"] == pytest.approx(2 / 13)
    assert o["macro_vlmevalkit"] == pytest.approx(2.5 / 6)  # planes 1, ships 0, 0.5, 0.5, 0.5, 0
    assert official["groups"]["task"]["Counting"]["accuracy"] == pytest.approx(2 / 5)  # 1 and 3 of 1, 2, 3, 7, 9

    # both results hold both modes and how many answers they judge differently (2, 3, 5, 8)
    for results in (strict, official):
        parsers = results["parsers"]
        assert parsers["strict"]["correct"] == 4 and parsers["official"]["correct"] == 4
        assert parsers["strict"]["metrics"] == strict["metrics"]
        assert parsers["official"]["metrics"] == official["metrics"]
        assert parsers["judged_differently"] == 4
        assert parsers["judged_differently_ids"] == [ids[n] for n in (2, 3, 5, 8)]
    assert strict["parser"] == "strict" and official["parser"] == "official"
    c = official["counts"]
    assert (c["official"], c["unparseable"], c["missing"], c["strict"], c["fallback"]) == (7, 1, 1, 0, 0)
    c = strict["counts"]
    assert (c["strict"], c["fallback"], c["unparseable"], c["missing"], c["official"]) == (3, 3, 2, 1, 0)

    rows = [json.loads(line) for line in (tmp_path / "official" / "scored.jsonl").read_text().splitlines()]
    assert {r["id"] for r in rows if r["correct"]} == {ids[n] for n in OFFICIAL_RIGHT}
    assert {r["id"] for r in rows if r["strict_correct"]} == {ids[n] for n in STRICT_RIGHT}
    assert rows[1]["parsed"] == "A,C,E" and rows[1]["status"] == "official"


def test_official_compares_the_answer_characters_as_stored(layouts, tmp_path):
    """The project JSONL stores "A,C" and "(D) red": lmms-eval's set(answer) holds "," and "(" and never matches."""
    preds = write_predictions_file(tmp_path / "p.jsonl", {4: "A C", 5: "B D", 6: "D", 1: "B"})
    official = score("xlrs", layouts["jsonl"], preds, tmp_path / "o", parser="official")
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "o" / "scored.jsonl").read_text().splitlines())}
    assert [rows[i]["correct"] for i in (1, 4, 5, 6)] == [True, False, False, False]
    assert [rows[i]["strict_correct"] for i in (1, 4, 5, 6)] == [True, True, True, True]
    assert official["parsers"]["judged_differently"] == 3


def test_repeated_category_and_index_is_named(tmp_path):
    record = {"index": 0, "question": "q?", "multi-choice options": ["(A) x", "(B) y"], "answer": "A",
              "category": "Counting/Overall counting", "image": []}  # fmt: skip
    other = {**record, "category": "Counting/Regional counting"}
    path = tmp_path / "x" / "a.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(r) + "\n" for r in (record, other, record)))
    with pytest.raises(ValueError, match=r"a\.jsonl:3: category 'Counting/Overall counting' has index 0 twice "
                                         r"\(first at .*a\.jsonl:1\)"):  # fmt: skip
        load_benchmark("xlrs", path.parent, with_images=False)


def test_bad_published_files_are_named(layouts, tmp_path):
    arrow = shutil.copytree(layouts["arrow"], tmp_path / "hub")
    (arrow / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(ValueError, match=r"lists split 'test', but .*hub/test is not a folder"):
        load_benchmark("xlrs", arrow)
    (arrow / "dataset_dict.json").write_text(json.dumps({"splits": ["train"]}))
    (arrow / "train" / "data-00001-of-00002.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(ValueError, match=r"data-00001-of-00002\.arrow: not an Arrow IPC stream or file"):
        load_benchmark("xlrs", arrow)

    vlm = shutil.copytree(layouts["vlmevalkit"], tmp_path / "vlm")
    part = vlm / "XLRS-Bench-lite_part0.jsonl"
    rows = [json.loads(line) for line in part.read_text().splitlines()]
    rows[1]["multi-choice options"] = "\nThe choices are listed below:\nA lake\nSelect the best answer."
    part.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"part0\.jsonl:2: the options string has no '\(A\) …' lines"):
        load_benchmark("xlrs", vlm)
    rows[1]["multi-choice options"] = "\n(A) x\n(C) y\n"
    part.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"part0\.jsonl:2: option labels \['A', 'C'\] .* are not A, B"):
        load_benchmark("xlrs", vlm)
    rows[1]["multi-choice options"] = "\n(A) x\n(B) y\n(C) z\n(D) w\n"
    rows[1]["image"] = "77"
    part.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"part0\.jsonl:2: image refers to index '77', but .* has no row with it"):
        load_benchmark("xlrs", vlm)
    rows[1]["image"] = "!" * 100  # not base64: found when the pixels are read
    part.write_text("".join(json.dumps(r) + "\n" for r in rows))
    question = load_benchmark("xlrs", vlm).questions[1]
    with pytest.raises(ValueError, match=r"part0\.jsonl: record at byte \d+: image 0 is not valid base64"):
        open_image(question.images[0])


def test_several_layouts_in_one_folder_is_an_error(layouts, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(layouts["jsonl"], mixed / "a")
    shutil.copytree(layouts["arrow"] / "train", mixed / "b")
    with pytest.raises(ValueError, match=r"holds several layouts \(\.arrow, \.jsonl\); point the data path at one"):
        load_benchmark("xlrs", mixed)
    with pytest.raises(ValueError, match="no XLRS data in .*empty: expected dataset_dict.json"):
        load_benchmark("xlrs", (tmp_path / "empty").mkdir() or tmp_path / "empty")


def test_vlmevalkit_local_tsv_next_to_its_jsonl_is_not_read_twice(layouts, tmp_path):
    folder = shutil.copytree(layouts["vlmevalkit"], tmp_path / "LMUData")
    (folder / "XLRS-Bench-lite_part0_local.tsv").write_text("index\timage_path\n1\tnowhere.jpg\n")
    assert len(load_benchmark("xlrs", folder, with_images=False)) == 9


def test_a_rewritten_file_is_read_again(layouts, tmp_path):
    """The lazy image readers cache the last records and shards; the cache key holds the file's mtime and size."""
    import os

    folder = shutil.copytree(layouts["vlmevalkit"], tmp_path / "vlm")
    part = folder / "XLRS-Bench-lite_part0.jsonl"
    before = open_image(load_benchmark("xlrs", folder).questions[0].images[0]).tobytes()
    rows = [json.loads(line) for line in part.read_text().splitlines()]
    rows[0]["image"] = rows[2]["image"]  # row 1 now shows x2.png, as row 3 does
    part.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.utime(part, ns=(os.stat(part).st_atime_ns, os.stat(part).st_mtime_ns + 10**9))
    questions = load_benchmark("xlrs", folder).questions
    after = open_image(questions[0].images[0]).tobytes()
    assert after != before and after == open_image(questions[2].images[0]).tobytes()
