"""Property-based fuzzing of the two record formats users write by hand: folder manifests and RSVQA splits.

Records are generated valid, or valid with exactly one known corruption, so the test knows the answer:
every valid record must become a sample (or a QA pair), every corrupted one a reject with a reason, and
nothing may raise. Each test counts its records and insists on at least 1,000 per run.
"""

import json
import math
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from geoscale_vqa.pipeline import SampleSettings, make_sample
from geoscale_vqa.plan import make_plan
from geoscale_vqa.records import TIERS, Item
from geoscale_vqa.rsvqa_layout import LAYOUTS
from geoscale_vqa.sources import SourceSpec
from geoscale_vqa.sources.rsvqa import rsvqa_items

FUZZ = settings(max_examples=70, deadline=None, database=None, suppress_health_check=list(HealthCheck))
MIN_RECORDS = 1000

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(lambda t: t.strip())
things = st.sampled_from(["car", "building", "road", "tree", "ship", "plane", "water_body", "no-such-thing"])
labels = st.fixed_dictionaries(
    {},
    optional={
        "counts": st.dictionaries(things, st.integers(0, 60), max_size=4),
        "presence": st.dictionaries(things, st.booleans(), max_size=3),
        "boxes": st.lists(
            st.fixed_dictionaries(
                {"category": text, "width_px": st.integers(0, 10**6), "height_px": st.integers(0, 10**6)}
            ),
            max_size=3,
        ),
        "scene_class": text,
        "land_cover": st.lists(text, max_size=3),
        "rural_urban": text,
        "dominant_cover": text,
    },
)
answers = st.one_of(text, st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False))
qa_entry = st.fixed_dictionaries(
    {"question": text, "answer": answers},
    optional={"type": st.text(max_size=8), "tier": st.one_of(st.none(), st.sampled_from(TIERS), st.text(max_size=6))},
)
valid_record = st.fixed_dictionaries(
    {"image": st.just("img.png"), "gsd_m": st.floats(1e-3, 1e5)},
    optional={
        "split": st.sampled_from(["train", "val", "test"]),
        "labels": labels,
        "qa": st.lists(qa_entry, max_size=3),
    },
)


def _label(key, value):
    return lambda r: {**r, "labels": {**r.get("labels", {}), key: value}}


def _field(key, value):
    return lambda r: {**r, key: value}


def _qa(**changes):
    def mutate(r):
        entry = {"question": "How many?", "answer": "3", **changes}
        return {**r, "qa": [{k: v for k, v in entry.items() if v is not _DROP}]}

    return mutate


_DROP = object()
FOLDER_CORRUPTIONS = {
    "boxes: 5": _label("boxes", 5),
    "box width text": _label("boxes", [{"category": "car", "width_px": "x", "height_px": 3}]),
    "box negative": _label("boxes", [{"category": "car", "width_px": -4, "height_px": 3}]),
    "box huge": _label("boxes", [{"category": "car", "width_px": 10**400, "height_px": 3}]),
    "box no category": _label("boxes", [{"width_px": 4, "height_px": 3}]),
    'counts: "x"': _label("counts", "x"),
    'counts car "abc"': _label("counts", {"car": "abc"}),
    "negative count": _label("counts", {"car": -5}),
    "count true": _label("counts", {"car": True}),
    "count 1.5": _label("counts", {"car": 1.5}),
    'presence: "yes"': _label("presence", "yes"),
    'presence road "yes"': _label("presence", {"road": "yes"}),
    "land_cover: 5": _label("land_cover", 5),
    'land_cover: "forest"': _label("land_cover", "forest"),
    'scene_class: ["a"]': _label("scene_class", ["a"]),
    'scene_class: ""': _label("scene_class", ""),
    "rural_urban: 5": _label("rural_urban", 5),
    "unknown label": _label("colour", "red"),
    "labels: list": _field("labels", [1]),
    "gsd_m: 1e308": _field("gsd_m", 1e308),
    "gsd_m: -1": _field("gsd_m", -1),
    'gsd_m: "abc"': _field("gsd_m", "abc"),
    "gsd_m: true": _field("gsd_m", True),
    "gsd_m: [1]": _field("gsd_m", [1]),
    "gsd_m: NaN": _field("gsd_m", math.nan),
    "answer null": _qa(answer=None),
    "answer dict": _qa(answer={"x": 1}),
    "answer list": _qa(answer=["yes"]),
    "answer true": _qa(answer=True),
    'answer ""': _qa(answer=""),
    "no answer": _qa(answer=_DROP),
    "question 5": _qa(question=5),
    'question ""': _qa(question=" "),
    "type dict": _qa(type={"a": 1}),
    "tier 3": _qa(tier=3),
    'qa: "x"': _field("qa", "x"),
    "qa: [5]": _field("qa", [5]),
    "id null": _field("id", None),
    "id dict": _field("id", {"x": 1}),
    "id list": _field("id", [1]),
    "id true": _field("id", True),
    "id 1.5": _field("id", 1.5),
    'id ""': _field("id", ""),
    "split 5": _field("split", 5),
    "split null": _field("split", None),
    'split "../up"': _field("split", "../up"),
    "image ../": _field("image", "../img.png"),
    "image absolute": _field("image", "/etc/hostname"),
    "image 5": _field("image", 5),
    'image ""': _field("image", ""),
    "no image": lambda r: {k: v for k, v in r.items() if k != "image"},
}

folder_line = st.one_of(
    valid_record.map(lambda r: (True, r)),
    st.tuples(valid_record, st.sampled_from(sorted(FOLDER_CORRUPTIONS))).map(
        lambda t: (False, FOLDER_CORRUPTIONS[t[1]](t[0]))
    ),
)


def _write_image(folder: Path) -> None:
    Image.fromarray(np.full((24, 20, 3), 90, np.uint8)).save(folder / "img.png")


def test_folder_manifest_fuzz():
    counted = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "src"
        root.mkdir()
        _write_image(root)

        @FUZZ
        @given(st.lists(folder_line, min_size=16, max_size=30))
        def check(lines):
            valid_ids, rows = [], []
            for n, (valid, record) in enumerate(lines):
                if "id" not in record:
                    record = {**record, "id": n if n % 2 else f"r{n}"}
                if valid:
                    valid_ids.append(str(record["id"]))
                rows.append(json.dumps(record))
            (root / "manifest.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
            counted.append(len(lines))

            sample_settings = SampleSettings(seed=1)
            plan = make_plan([SourceSpec("folder", str(root))], shard_size=1000, settings=sample_settings)
            items = [item for job in plan.jobs for item in job.items]
            assert sorted(i.image_id for i in items) == sorted(valid_ids)
            assert len(plan.rejects) == len(lines) - len(valid_ids)
            assert all(r.reason and r.reason != "unexpected error" for r in plan.rejects)
            for item in items:
                sample, rejects = make_sample(item, sample_settings)
                assert rejects == [] and sample is not None, (item, rejects)
                assert all(isinstance(q["answer"], str) and q["answer"].strip() for q in sample.record["qa"])

        check()
    assert sum(counted) >= MIN_RECORDS


# ------------------------------------------------------------------------------------------------ RSVQA

QUESTION_CORRUPTIONS = {
    "answers_ids: 5": {"answers_ids": 5},
    "answers_ids: [[1]]": {"answers_ids": [[1]]},
    'answers_ids: "0"': {"answers_ids": "0"},
    "answers_ids: null": {"answers_ids": None},
    "question null": {"question": None},
    "question 5": {"question": 5},
    'question ""': {"question": ""},
    'active "false"': {"active": "false"},
    "active 0": {"active": 0},
    "type dict": {"type": {}},
    "img_id elsewhere": {"img_id": 10**6},
    "img_id text": {"img_id": "text"},
    "id dict": {"id": {"x": 1}},
    "id null": {"id": None},
    "id true": {"id": True},
    "id 1.5": {"id": 1.5},
}
ANSWER_CORRUPTIONS = {
    "no answer": {"answer": _DROP},
    "answer null": {"answer": None},
    "answer dict": {"answer": {"x": 1}},
    "answer list": {"answer": ["yes"]},
    "answer true": {"answer": True},
    'answer ""': {"answer": ""},
    "question_id elsewhere": {"question_id": 10**6},
    'active "false"': {"active": "false"},
    "id dict": {"id": {"x": 1}},
    "id null": {"id": None},
}
IMAGE_CORRUPTIONS = {
    "questions_ids: 3": {"questions_ids": 3},
    "questions_ids: [[1]]": {"questions_ids": [[1]]},
    'questions_ids: "x"': {"questions_ids": "x"},
    "questions_ids: null": {"questions_ids": None},
    'active "false"': {"active": "false"},
    "id dict": {"id": {"x": 1}},
    "id null": {"id": None},
    "id 1.5": {"id": 1.5},
}


def _apply(record: dict, change: dict) -> dict:
    out = {**record, **change}
    return {k: v for k, v in out.items() if v is not _DROP}


@st.composite
def rsvqa_split(draw):
    """(images, questions, answers, expected QA, records that must be rejected)."""
    images, questions, answers, expected, invalid = [], [], [], set(), 0
    qid = aid = 0
    for i in range(draw(st.integers(2, 8))):
        image = {"id": i if i % 2 else f"img{i}", "questions_ids": [], "active": True}
        bad_image = draw(st.integers(0, 7)) == 0
        kept = set()
        for _ in range(draw(st.integers(1, 3))):
            question = {"id": qid, "img_id": image["id"], "type": "presence", "question": f"q{qid}",
                        "answers_ids": [aid], "active": True}  # fmt: skip
            answer = {"id": aid, "question_id": qid, "answer": f"a{aid}", "active": True}
            target = draw(st.sampled_from(["valid", "valid", "valid", "question", "answer", "duplicate"]))
            if target == "question":
                question = _apply(question, QUESTION_CORRUPTIONS[draw(st.sampled_from(sorted(QUESTION_CORRUPTIONS)))])
            elif target == "answer":
                answer = _apply(answer, ANSWER_CORRUPTIONS[draw(st.sampled_from(sorted(ANSWER_CORRUPTIONS)))])
            questions.append(question)
            answers.append(answer)
            image["questions_ids"].append(qid)
            if target == "duplicate":  # a later record reusing the id: rejected, the first one stays
                questions.append({**question, "question": "an impostor"})
                invalid += 1
            if target in ("question", "answer"):
                invalid += 0 if bad_image else 1
            else:
                kept.add((str(image["id"]), f"q{qid}", f"a{aid}"))
            qid, aid = qid + 1, aid + 1
        if bad_image:
            image = _apply(image, IMAGE_CORRUPTIONS[draw(st.sampled_from(sorted(IMAGE_CORRUPTIONS)))])
            invalid += 1
        else:
            expected |= kept
        images.append(image)
    return images, questions, answers, expected, invalid


def test_rsvqa_records_fuzz():
    counted = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)

        @FUZZ
        @given(rsvqa_split())
        def check(split):
            images, questions, answers, expected, invalid = split
            for part, records in (("images", images), ("questions", questions), ("answers", answers)):
                (root / f"LR_split_train_{part}.json").write_text(json.dumps({part: records}), encoding="utf-8")
            counted.append(len(images) + len(questions) + len(answers))
            entries = list(rsvqa_items(root, layout=LAYOUTS["LR"], splits=("train",)))
            items = [e for e in entries if isinstance(e, Item)]
            rejects = [e for e in entries if not isinstance(e, Item)]
            kept = {(item.image_id, q.question, q.answer) for item in items for q in item.qa}
            assert kept == expected
            assert len(rejects) >= invalid
            assert all(r.reason and r.detail for r in rejects)

        check()
    assert sum(counted) >= MIN_RECORDS
