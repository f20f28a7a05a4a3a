"""Write small GeoScale-VQA source fixtures in the real dataset formats (docs/design.md section 3).

    uv run python tools/make_fixtures_geoscale.py /tmp/geoscale-fixtures
    uv run python tools/make_fixtures_geoscale.py /tmp/rsvqa-big --rsvqa-lr-images 2000   # benchmark input

Every fixture mixes good records with the bad inputs a real dump contains (inactive records, ids that
do not match, missing and corrupt images, malformed JSON, missing or invalid GSDs). The QA written here
are hand-written; the tests compare the built corpus against the same literals.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from geoscale_vqa.gsd import geotiff_tags

RGB_SIZE = 32


def _pattern(seed: int, size: tuple[int, int] = (RGB_SIZE, RGB_SIZE)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8), "RGB")


def _json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _corrupt(path: Path) -> None:
    """A file with an image suffix and a truncated PNG inside: what a broken download looks like."""
    path.parent.mkdir(parents=True, exist_ok=True)
    full = Path(str(path) + ".full.png")
    _pattern(99).save(full)
    path.write_bytes(full.read_bytes()[:60])
    full.unlink()


def make_rsvqa_lr(root: Path) -> Path:
    root = root / "rsvqa_lr"
    images = root / "Images_LR"
    images.mkdir(parents=True, exist_ok=True)
    _json(
        root / "LR_split_test_images.json",
        {
            "images": [
                {"id": 0, "questions_ids": [0, 1, 2], "active": True},
                {"id": 1, "questions_ids": [3, 4, 5], "active": True},
                {"id": 2, "questions_ids": [6], "active": False},
                {"id": 3, "questions_ids": [7], "active": True},
                {"id": 4, "questions_ids": [8], "active": True},
            ]
        },
    )
    _json(
        root / "LR_split_test_questions.json",
        {
            "questions": [
                {
                    "id": 0,
                    "img_id": 0,
                    "type": "presence",
                    "question": "Is there a building?",
                    "answers_ids": [0],
                    "active": True,
                },
                {
                    "id": 1,
                    "img_id": 0,
                    "type": "rural_urban",
                    "question": "Is it a rural or an urban area",
                    "answers_ids": [1],
                    "active": True,
                },
                {
                    "id": 2,
                    "img_id": 0,
                    "type": "count",
                    "question": "How many water areas are there?",
                    "answers_ids": [2],
                    "active": False,
                },
                {
                    "id": 3,
                    "img_id": 1,
                    "type": "comp",
                    "question": "Are there more roads than water areas?",
                    "answers_ids": [3],
                    "active": True,
                },
                {
                    "id": 4,
                    "img_id": 0,
                    "type": "count",
                    "question": "How many buildings are there?",
                    "answers_ids": [4],
                    "active": True,
                },
                {
                    "id": 5,
                    "img_id": 1,
                    "type": "count",
                    "question": "How many roads are there?",
                    "answers_ids": [5],
                    "active": True,
                },
                {
                    "id": 6,
                    "img_id": 2,
                    "type": "presence",
                    "question": "Is there a road?",
                    "answers_ids": [6],
                    "active": True,
                },
                {
                    "id": 7,
                    "img_id": 3,
                    "type": "presence",
                    "question": "Is there a road?",
                    "answers_ids": [7],
                    "active": True,
                },
                {
                    "id": 8,
                    "img_id": 4,
                    "type": "presence",
                    "question": "Is there a farmland?",
                    "answers_ids": [8],
                    "active": True,
                },
            ]
        },
    )
    _json(
        root / "LR_split_test_answers.json",
        {
            "answers": [
                {"id": 0, "question_id": 0, "answer": "yes", "active": True},
                {"id": 1, "question_id": 1, "answer": "rural", "active": True},
                {"id": 2, "question_id": 2, "answer": "1", "active": True},
                {"id": 3, "question_id": 3, "answer": "no", "active": True},
                {"id": 4, "question_id": 4, "answer": "3", "active": True},
                {"id": 5, "question_id": 99, "answer": "2", "active": True},
                {"id": 6, "question_id": 6, "answer": "yes", "active": True},
                {"id": 7, "question_id": 7, "answer": "yes", "active": True},
                {"id": 8, "question_id": 8, "answer": "no", "active": True},
            ]
        },
    )
    _json(root / "LR_split_train_images.json", {"images": [{"id": 10, "questions_ids": [20], "active": True}]})
    _json(
        root / "LR_split_train_questions.json",
        {
            "questions": [
                {
                    "id": 20,
                    "img_id": 10,
                    "type": "presence",
                    "question": "Is there a water area?",
                    "answers_ids": [20],
                    "active": True,
                }
            ]
        },
    )
    _json(
        root / "LR_split_train_answers.json",
        {"answers": [{"id": 20, "question_id": 20, "answer": "yes", "active": True}]},
    )
    _pattern(0).save(images / "0.tif", tiffinfo=geotiff_tags(10.0))  # UTM, 10 m: GSD from the tags
    _pattern(1).save(images / "1.tif")  # no geotags: the dataset constant
    _corrupt(images / "4.tif")  # image 3 has no file at all
    _pattern(10).save(images / "10.tif")
    return root


def make_rsvqa_lr_bulk(root: Path, n_images: int, size: int = 256, questions_per_image: int = 100) -> Path:
    """An RSVQA-LR-sized dump for the benchmark: like the real one, 256 × 256 GeoTIFFs with ~100 questions each.

    Pixels are scale-world scenes rendered at 10 m, so they compress like real imagery, not like noise.
    """
    from geoscale_vqa.synthetic import make_scene, render

    root = root / "rsvqa_lr_bulk"
    (root / "Images_LR").mkdir(parents=True, exist_ok=True)
    things = ["building", "road", "water area", "farmland", "forest", "grass area", "residential building"]
    images, questions, answers = [], [], []
    for i in range(n_images):
        qids = []
        for k in range(questions_per_image):
            qid = len(questions)
            a, b = things[k % len(things)], things[(k // len(things) + 1 + k) % len(things)]
            qtype, text, answer = [
                ("presence", f"Is there a {a}?", "yes" if (i + k) % 3 else "no"),
                ("count", f"How many {a}s are there?", str((i * 7 + k) % 40)),
                ("comp", f"Are there more {a}s than {b}s?", "yes" if (i + k) % 2 else "no"),
                ("rural_urban", "Is it a rural or an urban area", "urban" if i % 2 else "rural"),
            ][k % 4]
            questions.append(
                {"id": qid, "img_id": i, "type": qtype, "question": text, "answers_ids": [qid], "active": True}
            )
            answers.append({"id": qid, "question_id": qid, "answer": answer, "active": True})
            qids.append(qid)
        images.append({"id": i, "questions_ids": qids, "active": True})
        pixels = render(make_scene(i, 10.0, size))
        Image.fromarray(pixels).save(root / "Images_LR" / f"{i}.tif", tiffinfo=geotiff_tags(10.0))
    _json(root / "LR_split_train_images.json", {"images": images})
    _json(root / "LR_split_train_questions.json", {"questions": questions})
    _json(root / "LR_split_train_answers.json", {"answers": answers})
    return root


def make_rsvqa_hr(root: Path) -> Path:
    root = root / "rsvqa_hr"
    (root / "Data").mkdir(parents=True, exist_ok=True)
    for split, image_id, qas in (
        (
            "test",
            0,
            [
                ("presence", "Is there a residential building?", "yes"),
                ("area", "What is the area covered by commercial buildings?", "0m2"),
                ("count", "How many small buildings are there?", "12"),
            ],
        ),
        ("test_phili", 5, [("comp", "Are there more buildings than roads?", "yes")]),
    ):
        qids = list(range(len(qas)))
        _json(
            root / f"USGS_split_{split}_images.json",
            {"images": [{"id": image_id, "questions_ids": qids, "active": True}]},
        )
        _json(
            root / f"USGS_split_{split}_questions.json",
            {
                "questions": [
                    {"id": q, "img_id": image_id, "type": t, "question": text, "answers_ids": [q], "active": True}
                    for q, (t, text, _) in zip(qids, qas)
                ]
            },
        )
        _json(
            root / f"USGS_split_{split}_answers.json",
            {"answers": [{"id": q, "question_id": q, "answer": a, "active": True} for q, (_, _, a) in zip(qids, qas)]},
        )
    _pattern(20).save(root / "Data" / "0.tif")
    _pattern(25).save(root / "Data" / "5.png")
    return root


XBEN_PATCH = "S2A_MSIL2A_20170613T101031_0_45"


def make_xben(root: Path) -> Path:
    root = root / "rsvqa_xben"
    patch = root / "BigEarthNet-v1.0" / XBEN_PATCH
    patch.mkdir(parents=True, exist_ok=True)
    # Uniform reflectances chosen so the fixed 0-3000 stretch gives exact bytes: (255, 51, 0).
    for band, value in (("B04", 3000), ("B03", 600), ("B02", 0), ("B08", 2500)):
        Image.fromarray(np.full((120, 120), value, np.uint16)).save(
            patch / f"{XBEN_PATCH}_{band}.tif", tiffinfo=geotiff_tags(10.0)
        )
    _json(
        root / "RSVQAxBEN_QA_test.json",
        {
            "0": {
                "type": "LC",
                "question": "What are the land cover classes?",
                "answer": "Mixed forest, Pastures",
                "S2_name": XBEN_PATCH,
            },
            "1": {"type": "yes/no", "question": "Is there a water body?", "answer": "no", "S2_name": XBEN_PATCH},
            "2": {
                "type": "yes/no",
                "question": "Are there some pastures?",
                "answer": "yes",
                "S2_name": "S2B_MSIL2A_MISSING_1_1",
            },
            "3": {"type": "yes/no", "question": "Is there a road?", "S2_name": XBEN_PATCH},
        },
    )
    return root


def make_mtsccd(root: Path) -> Path:
    root = root / "mtsccd"
    for rel, seed in (("train/farmland/f1.png", 30), ("test/farmland/f2.png", 32)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        _pattern(seed).save(root / rel)
    (root / "train/residential").mkdir(parents=True, exist_ok=True)
    _pattern(31).save(root / "train/residential/r1.jpg", quality=90)
    _corrupt(root / "train/residential/r2.png")
    return root


def make_dota(root: Path) -> Path:
    root = root / "dota" / "train"
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labelTxt").mkdir(parents=True, exist_ok=True)
    labels = {
        "P0001": "imagesource:GoogleEarth\ngsd:0.146343590398\n"
        "10 10 40 10 40 22 10 22 small-vehicle 0\n60 60 90 60 90 72 60 72 small-vehicle 1\n"
        "0 80 127 80 127 127 0 127 plane 0\n",
        "P0002": "imagesource:GoogleEarth\ngsd:None\n10 10 40 10 40 22 10 22 ship 0\n",
        "P0003": "imagesource:GoogleEarth\ngsd:0.5\n10 10 40 10 small-vehicle 0\n",
    }
    for stem, text in labels.items():
        (root / "labelTxt" / f"{stem}.txt").write_text(text, encoding="utf-8")
    for i, stem in enumerate(["P0001", "P0002", "P0003", "P0004"]):
        _pattern(40 + i, (128, 128)).save(root / "images" / f"{stem}.png")
    return root.parent


def make_fmow(root: Path) -> Path:
    root = root / "fmow"
    entries = {
        "train/airport/airport_0/airport_0_0_rgb": {
            "gsd": 0.5,
            "img_width": 64,
            "img_height": 48,
            "bounding_boxes": [{"category": "airport", "box": [4, 6, 40, 30], "ID": 1}],
        },
        "val/crop_field/crop_field_3/crop_field_3_1_rgb": {
            "gsd": 2.0,
            "img_width": 32,
            "img_height": 32,
            "bounding_boxes": [{"category": "crop_field", "box": [0, 0, 32, 32], "ID": 7}],
        },
        "train/port/port_1/port_1_0_rgb": {"gsd": -1.0, "bounding_boxes": []},
    }
    for stem, meta in entries.items():
        _json(root / f"{stem}.json", meta)
        _pattern(len(stem), (meta.get("img_width", 32), meta.get("img_height", 32))).save(
            root / f"{stem}.jpg", quality=90
        )
    bad = root / "train/shop/shop_2/shop_2_0_rgb.json"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text('{"gsd": 0.3, "bounding_boxes": [', encoding="utf-8")
    _pattern(5).save(bad.with_suffix(".jpg"))
    return root


def make_llava(root: Path) -> Path:
    root = root / "llava"
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    for name in ("a", "b"):
        _pattern(ord(name)).save(root / "imgs" / f"{name}.png")
    # A GeoTIFF in WGS84 lat/lon: 1e-5 degree pixels at latitude 45 degrees north.
    _pattern(7).save(
        root / "imgs" / "g.tif", tiffinfo=geotiff_tags(1e-5, geographic=True, origin=(7.0, 45.0 + RGB_SIZE / 2 * 1e-5))
    )
    turn = lambda who, text: {"from": who, "value": text}  # noqa: E731
    _json(
        root / "data.json",
        [
            {
                "id": "a1",
                "image": "imgs/a.png",
                "gsd_m": 0.5,
                "conversations": [
                    turn("human", "<image>\nHow many planes are on the apron?"),
                    turn("gpt", "Three."),
                    turn("human", "Describe the image."),
                    turn("gpt", "An airport apron with three parked planes."),
                ],
            },
            {
                "id": "b1",
                "image": "imgs/b.png",
                "conversations": [
                    turn("human", "What is in the picture?\n<image>"),
                    turn("gpt", "Farmland along a river."),
                ],
            },
            {"id": "c1", "conversations": [turn("human", "Hello"), turn("gpt", "Hi.")]},
            {"id": "d1", "image": "imgs/a.png", "conversations": [turn("human", "<image>\nOnly a question?")]},
            {
                "id": "e1",
                "image": "imgs/b.png",
                "gsd": -1,
                "conversations": [turn("human", "<image>\nQ?"), turn("gpt", "A.")],
            },
            {
                "id": "a2",
                "image": "imgs/a.png",
                "conversations": [
                    turn("human", "<image>\nIs there a runway?"),
                    turn("gpt", "Yes, along the bottom edge."),
                ],
            },
            {  # a split name that would make a folder outside OUT
                "id": "s1",
                "image": "imgs/b.png",
                "split": "../up",
                "conversations": [turn("human", "Q?"), turn("gpt", "A.")],
            },
            {
                "id": "g1",
                "image": "imgs/g.tif",
                "conversations": [turn("human", "<image>\nWhat land use is shown?"), turn("gpt", "Vineyards.")],
            },
        ],
    )
    return root / "data.json"


def make_folder(root: Path) -> Path:
    root = root / "folder"
    root.mkdir(parents=True, exist_ok=True)
    _pattern(60).save(root / "a.png")
    _pattern(61).save(root / "b.png")
    _pattern(62).save(root / "nogsd.png")
    _pattern(63).save(root / "zero.png")
    _pattern(64).save(
        root / "geo.tif",
        tiffinfo=geotiff_tags((2e-5, 1e-5), geographic=True, origin=(-3.0, 60.0 + RGB_SIZE / 2 * 1e-5)),
    )
    lines = [
        json.dumps(
            {
                "image": "a.png",
                "gsd_m": 0.3,
                "id": "tile-a",
                "split": "train",
                "labels": {"counts": {"car": 3}},
                "qa": [
                    {
                        "question": "What color is the roof of the largest building?",
                        "answer": "red",
                        "type": "attribute",
                    },
                    {"question": "Is the parking lot full?", "answer": "no", "type": "presence", "tier": "structure"},
                ],
            }
        ),
        json.dumps({"image": "geo.tif", "id": "geo", "split": "val", "labels": {"scene_class": "harbour"}}),
        '{"image": "b.png", "gsd_m": 2.0, "id": broken json',
        json.dumps({"image": "zero.png", "gsd_m": 0}),
        json.dumps({"image": "missing.png", "gsd_m": 1.0, "id": "missing"}),
        json.dumps(
            {
                "image": "b.png",
                "id": "../../evil/na.me",
                "gsd_m": 2.0,
                "qa": [{"question": "Is there a ship?", "answer": "no", "type": "presence"}],
            }
        ),
        json.dumps({"image": "nogsd.png", "id": "nogsd"}),
        json.dumps({"image": "a.png", "gsd_m": 0.3, "id": "tile-a", "split": "train"}),
        '{"image": "zero.png", "gsd_m": NaN, "id": "nan"}',
    ]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


MAKERS = {
    "rsvqa-lr": make_rsvqa_lr,
    "rsvqa-hr": make_rsvqa_hr,
    "rsvqa-xben": make_xben,
    "mtsccd": make_mtsccd,
    "dota": make_dota,
    "fmow": make_fmow,
    "llava": make_llava,
    "folder": make_folder,
}


def make_all(root: Path) -> dict[str, str]:
    """Write every fixture under `root`; returns {kind: the ARG of `--source kind=ARG`}."""
    root.mkdir(parents=True, exist_ok=True)
    return {kind: str(maker(root)) for kind, maker in MAKERS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rsvqa-lr-images", type=int, default=0, help="also write an RSVQA-LR dump of N images")
    args = parser.parse_args()
    for kind, arg in make_all(args.out).items():
        print(f"--source {kind}={arg}")
    if args.rsvqa_lr_images:
        print(f"--source rsvqa-lr={make_rsvqa_lr_bulk(args.out, args.rsvqa_lr_images)}")


if __name__ == "__main__":
    main()
