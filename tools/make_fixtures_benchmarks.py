"""Write small benchmark fixtures in each benchmark's published layout (DESIGN.md section 3).

    uv run python tools/make_fixtures_benchmarks.py /tmp/bench-fixtures

prints, per kind, the `--bench KIND --data PATH [--images DIR]` arguments that read it. The records are
hand-written; the tests score hand-written predictions against them and compare with accuracies
computed by hand. No benchmark data can be downloaded here, so these are the only copies.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

OPTIONS4 = ["(A) 2", "(B) 5", "(C) 9", "(D) 14"]
LAND_USE = ["(A) residential", "(B) farmland", "(C) industrial", "(D) forest"]
COLOURS = ["(A) white", "(B) blue", "(C) green", "(D) red"]

# XLRS-Bench lite records: (index, category, question, options, answer, images)
XLRS_RECORDS = [
    (1, "Counting/Overall counting", "How many planes are in the image?", OPTIONS4, "B", ["x1.png"]),
    (2, "Counting/Overall counting", "How many ships are in the image?", OPTIONS4, "C", ["x1.png"]),
    (3, "Counting/Regional counting", "How many cars are in the top-left quarter?", OPTIONS4, "A", ["x2.png"]),
    (
        4,
        "Land use classification/Overall Land use classification",
        "Which land uses appear?",
        LAND_USE,
        "A,C",
        ["x2.png"],
    ),  # noqa: E501
    (
        5,
        "Land use classification/Overall Land use classification",
        "Which land uses appear?",
        LAND_USE,
        "B D",
        ["x1.png"],
    ),  # noqa: E501
    (6, "Object properties/Object color", "What colour is the largest roof?", COLOURS, "(D) red", ["x1.png"]),
    (
        7,
        "Counting/Counting with changing detection",
        "How many buildings were added?",
        OPTIONS4,
        "A",
        ["x1.png", "x2.png"],
    ),  # noqa: E501
    (8, "Object properties/Object color", "What colour is the boat?", COLOURS, "B", ["x2.png"]),
    (9, "Counting/Regional counting", "How many trucks are in the bottom half?", OPTIONS4, "C", ["x2.png"]),
]

CLOUD = ["(A) cumulus", "(B) stratus", "(C) cirrus", "(D) nimbus", "(E) Unable to decide"]
TREES = ["(A) pine", "(B) oak", "(C) birch", "(D) palm", "(E) unable to decide"]

# OmniEarth-Bench records per jsons/ file: (Question_id, type, L1..L4, options, ground truth)
OMNIEARTH_FILES = {
    "Cloud_type.json": [
        ("Cloud type/0", "Single Choice", ("Atmosphere", "Weather", "Cloud", "Cloud type"), CLOUD, "A"),
        ("Cloud type/1", "Single Choice", ("Atmosphere", "Weather", "Cloud", "Cloud type"), CLOUD, "B"),
        ("Cloud cover/0", "Chain-of-Thought", ("Atmosphere", "Weather", "Cloud", "Cloud cover"), CLOUD, "C"),
        (
            "Cloud grounding/0",
            "Visual Grounding",
            ("Atmosphere", "Weather", "Cloud", "Cloud grounding"),
            None,
            "<1><2><3><4>",
        ),  # noqa: E501
    ],
    "Tree_species.json": [
        ("Tree species/0", "Multiple Choice", ("Biosphere", "Vegetation", "Forest", "Tree species"), TREES, "A,C"),
        ("Tree species/1", "Multiple Choice", ("Biosphere", "Vegetation", "Forest", "Tree species"), TREES, "AC"),
        ("Crop type/0", "Single Choice", ("Biosphere", "Vegetation", "Agriculture", "Crop type"), TREES, "D"),
        ("Flood impact/0", "Single Choice", ("Cross-sphere", "Hazards", "Flood", "Flood impact"), CLOUD, "B"),
    ],
}

# RSVQA: (question id, image id, type, question, answer, active); answers share the question's id
RSVQA_LR_TEST = [
    (0, 0, "presence", "Is there a building?", "yes", True),
    (1, 0, "presence", "Is there a water area?", "no", True),
    (2, 0, "comp", "Are there more roads than buildings?", "yes", True),
    (3, 1, "rural_urban", "Is it a rural or an urban area", "urban", True),
    (4, 1, "count", "How many buildings are there?", "3", True),
    (5, 1, "count", "How many water areas are there?", "0", True),
    (6, 2, "count", "How many roads are there?", "250", True),
    (7, 2, "presence", "Is there a farmland?", "yes", False),  # inactive: dropped
    (8, 2, "presence", "Is there a forest?", "no", True),  # its answer points elsewhere: skipped
]
RSVQA_HR_TEST_PHILI = [
    (0, 10, "presence", "Is there a residential building?", "yes", True),
    (1, 10, "area", "What is the area covered by commercial buildings?", "1234m2", True),
    (2, 11, "area", "What is the area covered by parkings?", "0m2", True),
    (3, 11, "count", "How many small buildings are there?", "12", True),
    (4, 11, "count", "How many roads are there?", "4", True),
]

# GeoScale shards: (key, split, source, gsd_m, [(question, answer, tier, type)])
GEOSCALE_SAMPLES = [
    (
        "synthetic-test-0",
        "test",
        "synthetic",
        0.5,
        [
            ("Are there any cars in this image?", "yes", "object", "presence"),
            ("How many cars are there in this image?", "3", "object", "count"),
            ("What is the ground sampling distance of this image?", "0.5 m", "scale", "gsd"),
        ],
    ),
    (
        "synthetic-test-1",
        "test",
        "synthetic",
        30.0,
        [
            ("Is this a rural or an urban area?", "rural", "semantic", "rural_urban"),
            ("What ground area does this image cover?", "2.88 km × 2.88 km", "scale", "footprint"),
            ("Which land cover classes are present in this image?", "forest, water", "semantic", "land_cover"),
        ],
    ),
    (
        "rsvqa-hr-test-5",
        "test",
        "rsvqa-hr",
        0.15,
        [("What is the area covered by commercial buildings?", "1234m2", "structure", "area")],
    ),
    (
        "synthetic-train-2",
        "train",
        "synthetic",
        2.0,
        [("Are there any cars in this image?", "no", "object", "presence")],
    ),  # noqa: E501
]


def _png(seed: int, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data, encoding="utf-8")


def _xlrs_record(index, category, question, options, answer, images) -> dict:
    return {
        "index": index,
        "question": question,
        "multi-choice options": options,
        "answer": answer,
        "category": category,
        "l2-category": category.split("/")[1].lower(),
        "image": images,
    }


def make_xlrs_jsonl(root: Path) -> Path:
    """XLRS as two JSONL files; `image` paths are relative to each file."""
    folder = root / "xlrs_jsonl"
    for name, seed in (("x1.png", 1), ("x2.png", 2)):
        _write(folder / "images" / name, _png(seed))
    for name, records in (("part-0.jsonl", XLRS_RECORDS[:4]), ("part-1.jsonl", XLRS_RECORDS[4:])):
        lines = [json.dumps(_xlrs_record(*r[:5], [f"images/{img}" for img in r[5]])) for r in records]
        _write(folder / name, "\n".join(lines) + "\n")
    return folder


def make_xlrs_parquet(root: Path) -> Path:
    """XLRS as Hugging Face parquet shards: `image` a list of {"bytes", "path"} cells, two rows per row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / "xlrs_parquet" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    pixels = {"x1.png": _png(1), "x2.png": _png(2)}
    rows = [
        {**_xlrs_record(*r[:5], None), "image": [{"bytes": pixels[img], "path": img} for img in r[5]]}
        for r in XLRS_RECORDS
    ]
    for i, chunk in enumerate((rows[:5], rows[5:])):
        pq.write_table(pa.Table.from_pylist(chunk), folder / f"train-0000{i}-of-00002.parquet", row_group_size=2)
    return folder.parent


def make_omniearth(root: Path) -> tuple[Path, Path]:
    """(jsons/ folder, image root): images live under raw/, as in the published archive."""
    base = root / "omniearth"
    for file, records in OMNIEARTH_FILES.items():
        out = []
        for qid, qtype, levels, options, truth in records:
            image = f"{levels[0]}/{qid.replace('/', '_').replace(' ', '_')}.png"
            _write(base / "raw" / image, _png(len(out) + 10))
            out.append(
                {
                    "Question_id": qid,
                    "Question Type": qtype,
                    "Text": f"Question about {levels[3].lower()}?",
                    "Answer Choices": options or [],
                    "Ground Truth": truth,
                    "Images": [image],
                    **{f"L{i + 1}-task": level for i, level in enumerate(levels)},
                    "Dataset": "fixture",
                }
            )
        _write(base / "jsons" / file, json.dumps(out, indent=1))
    return base / "jsons", base / "raw"


def _rsvqa(folder: Path, prefix: str, split: str, rows, image_dir: str, ext: str) -> None:
    images = sorted({r[1] for r in rows})
    _write(
        folder / f"{prefix}_split_{split}_images.json",
        json.dumps(
            {"images": [{"id": i, "questions_ids": [r[0] for r in rows if r[1] == i], "active": True} for i in images]}
        ),
    )
    questions = [
        {"id": q, "img_id": i, "type": t, "question": text, "answers_ids": [q], "active": active}
        for q, i, t, text, _, active in rows
    ]
    answers = [{"id": q, "question_id": q, "answer": a, "active": True} for q, _, _, _, a, _ in rows]
    if prefix == "LR":
        answers[8]["question_id"] = 99  # a broken link, as in real dumps
    _write(folder / f"{prefix}_split_{split}_questions.json", json.dumps({"questions": questions}))
    _write(folder / f"{prefix}_split_{split}_answers.json", json.dumps({"answers": answers}))
    for i in images:
        _write(folder / image_dir / f"{i}{ext}", _png(100 + i))


def make_rsvqa_lr(root: Path) -> Path:
    folder = root / "rsvqa_lr_bench"
    _rsvqa(folder, "LR", "test", RSVQA_LR_TEST, "Images_LR", ".tif")
    return folder


def make_rsvqa_hr(root: Path) -> Path:
    folder = root / "rsvqa_hr_bench"
    _rsvqa(folder, "USGS", "test_phili", RSVQA_HR_TEST_PHILI, "Data", ".png")
    return folder


def make_geoscale(root: Path) -> Path:
    """A GeoScale-VQA corpus without manifest: OUT/<split>/<split>-000000.tar, one sample per image."""
    import math

    import webdataset as wds

    out = root / "geoscale_corpus"
    for split in ("test", "train"):
        (out / split).mkdir(parents=True, exist_ok=True)
        with wds.TarWriter(str(out / split / f"{split}-000000.tar")) as sink:
            for n, (key, s, source, gsd, qa) in enumerate(GEOSCALE_SAMPLES):
                if s != split:
                    continue
                record = {
                    "schema": "geoscale-vqa/1",
                    "source": source,
                    "split": s,
                    "image_id": key,
                    "gsd_m": gsd,
                    "log10_gsd": math.log10(gsd),
                    "gsd_origin": "synthetic",
                    "width": 16,
                    "height": 16,
                    "qa": [
                        {"question": q, "answer": a, "tier": t, "type": ty, "origin": "template"} for q, a, t, ty in qa
                    ],
                }
                sink.write({"__key__": key, "png": _png(200 + n), "json": json.dumps(record).encode()})
    return out


def make_all(root: Path) -> dict[str, tuple[str, str, str | None]]:
    """{name: (bench kind, data path, image root or None)} for every fixture under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    jsons, raw = make_omniearth(root)
    return {
        "xlrs-jsonl": ("xlrs", str(make_xlrs_jsonl(root)), None),
        "xlrs-parquet": ("xlrs", str(make_xlrs_parquet(root)), None),
        "omniearth": ("omniearth", str(jsons), str(raw)),
        "rsvqa-lr": ("rsvqa", str(make_rsvqa_lr(root)), None),
        "rsvqa-hr": ("rsvqa", str(make_rsvqa_hr(root) / "USGS_split_test_phili_questions.json"), None),
        "geoscale": ("geoscale", str(make_geoscale(root)), None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    for name, (kind, data, images) in make_all(args.out).items():
        print(f"{name}: --bench {kind} --data {data}" + (f" --images {images}" if images else ""))


if __name__ == "__main__":
    main()
