"""Write small benchmark fixtures in each benchmark's published layout (docs/design.md section 3).

    uv run python tools/make_fixtures_benchmarks.py /tmp/bench-fixtures

prints, per layout, the `--bench KIND --data PATH [--images DIR]` arguments that read it. The records are
hand-written; the tests score hand-written predictions against them and compare with accuracies
computed by hand from the benchmarks' own scoring rules. No benchmark data can be downloaded here, so
these are the only copies. Layouts:

- XLRS-Bench: the project's JSONL; the hub's parquet export; the hub's `datasets.save_to_disk` folder
  (`dataset_dict.json`, `train/data-000NN-of-00002.arrow` Arrow IPC streams, `index` restarting in
  every category, answers as letter strings); VLMEvalKit's `XLRS-Bench-lite_partN.jsonl` and a TSV copy
  (options as one string, base64 images, one image given as the `index` of the row that holds it).
- OmniEarth-Bench: `prepare_data/` with `jsons/<L1>/<L2>/<L3>/<L4>.json`, `raw/` and `tasks.json`;
  `Images` relative to `prepare_data/`; two files share the L4 name "Event localization", so
  `Question_id` repeats.
- RSVQA: LR `test`, HR `test` and `test_phili`, RSVQAxBEN `test`, written as `Splits.py` writes them:
  every database image listed, id gaps filled with `{"id": n, "active": false}`.
- GeoScale-VQA: a corpus OUT folder.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

OPTIONS4 = ["(A) 2", "(B) 5", "(C) 9", "(D) 14"]
LAND_USE = ["(A) residential", "(B) farmland", "(C) industrial", "(D) forest"]
COLOURS = ["(A) white", "(B) blue", "(C) green", "(D) red"]
LAND_USE_TASK = "Land use classification/Overall Land use classification"

# XLRS-Bench lite records: (index, category, question, options, answer as in the project JSONL, images,
# answer as the hub stores it). The l2-category is the sub-task in lower case, except for 1 and 2.
XLRS_RECORDS = [
    (1, "Counting/Overall counting", "How many planes are in the image?", OPTIONS4, "B", ["x1.png"], "B"),
    (2, "Counting/Overall counting", "How many ships are in the image?", OPTIONS4, "C", ["x1.png"], "C"),
    (3, "Counting/Regional counting", "How many cars are in the top-left quarter?", OPTIONS4, "A", ["x2.png"], "A"),
    (4, LAND_USE_TASK, "Which land uses appear?", LAND_USE, "A,C", ["x2.png"], "AC"),
    (5, LAND_USE_TASK, "Which land uses appear?", LAND_USE, "B D", ["x1.png"], "BD"),
    (6, "Object properties/Object color", "What colour is the largest roof?", COLOURS, "(D) red", ["x1.png"], "D"),
    (7, "Counting/Counting with changing detection", "How many buildings were added?", OPTIONS4, "A",
     ["x1.png", "x2.png"], "A"),
    (8, "Object properties/Object color", "What colour is the boat?", COLOURS, "B", ["x2.png"], "B"),
    (9, "Counting/Regional counting", "How many trucks are in the bottom half?", OPTIONS4, "C", ["x2.png"], "C"),
]  # fmt: skip
XLRS_L2 = {1: "overall counting/planes", 2: "overall counting/ships"}
VLMEVALKIT_INSTRUCTION = {
    False: "Select the best answer for the multiple-choice question based on the image. Only respond with the "
    "letter corresponding to the correct answer (A, B, C, D).\nThe answer is:",
    True: "Select the best answer(s) for the multiple-choice question based on the image. There may be more than "
    "one correct option. Only respond with the letter(s) corresponding to the correct answer(s) (A, B, C, D), "
    "with multiple choices separated by spaces.The answer(s) is(are):",
}

CLOUD = ["(A) cumulus", "(B) stratus", "(C) cirrus", "(D) nimbus", "(E) Unable to decide"]
TREES = ["(A) pine", "(B) oak", "(C) birch", "(D) palm", "(E) unable to decide"]
SEVEN = ["(A) north", "(B) south", "(C) east", "(D) west", "(E) centre", "(F) coast", "(G) Unable to decide"]

# OmniEarth-Bench: {file under jsons/: [(Question_id, Question Type, (L1, L2, L3, L4), options, Ground Truth)]}
OMNIEARTH_FILES = {
    "Atmosphere/Weather/Cloud/Cloud_cover.json": [
        ("Cloud cover/0", "Chain-of-Thought", ("Atmosphere", "Weather", "Cloud", "Cloud cover"), CLOUD, "C"),
    ],
    "Atmosphere/Weather/Cloud/Cloud_grounding.json": [
        ("Cloud grounding/0", "Visual Grounding", ("Atmosphere", "Weather", "Cloud", "Cloud grounding"), None,
         "<1><2><3><4>"),
    ],
    "Atmosphere/Weather/Cloud/Cloud_type.json": [
        ("Cloud type/0", "Single Choice", ("Atmosphere", "Weather", "Cloud", "Cloud type"), CLOUD, "A"),
        ("Cloud type/1", "Single Choice", ("Atmosphere", "Weather", "Cloud", "Cloud type"), CLOUD, "B"),
    ],
    "Atmosphere/Weather/Rain/Rain_type.json": [
        ("Rain type/0", "Single Choice", ("Atmosphere", "Weather", "Rain", "Rain type"), CLOUD, "A"),
    ],
    "Biosphere/Vegetation/Agriculture/Crop_type.json": [
        ("Crop type/0", "Single Choice", ("Biosphere", "Vegetation", "Agriculture", "Crop type"), TREES, "D"),
    ],
    "Biosphere/Vegetation/Forest/Tree_species.json": [
        ("Tree species/0", "Multiple Choice", ("Biosphere", "Vegetation", "Forest", "Tree species"), TREES, "A,C"),
        ("Tree species/1", "Multiple Choice", ("Biosphere", "Vegetation", "Forest", "Tree species"), TREES, "AC"),
    ],
    "Cross-sphere/Hazards/Flood/Event_localization.json": [
        ("Event localization/0", "Single Choice", ("Cross-sphere", "Hazards", "Flood", "Event localization"), CLOUD,
         "B"),
    ],
    "Cross-sphere/Hazards/Storm/Event_localization.json": [
        ("Event localization/0", "Single Choice", ("Cross-sphere", "Hazards", "Storm", "Event localization"), SEVEN,
         "F"),
        ("Event localization/1", "Single Choice", ("Cross-sphere", "Hazards", "Storm", "Event localization"), SEVEN,
         "A"),
    ],
}  # fmt: skip

# RSVQA databases: images {id: split}, questions (id, image id, type, question, answer), as the generator's
# database holds them; each split file lists every image and fills question/answer id gaps (Splits.py).
RSVQA_LR = {
    "images": {0: "val", 1: "test", 2: "train", 3: "test"},
    "questions": [
        (0, 0, "presence", "Is there a road?", "yes"),
        (1, 0, "count", "How many buildings are there?", "12"),
        (2, 1, "presence", "Is there a building?", "yes"),
        (3, 1, "comp", "Are there more roads than buildings?", "no"),
        (4, 1, "rural_urban", "Is it a rural or an urban area", "urban"),
        (5, 1, "count", "How many buildings are there?", "3"),
        (6, 2, "presence", "Is there a farmland?", "no"),
        (7, 2, "count", "How many roads are there?", "2"),
        (8, 3, "count", "How many water areas are there?", "0"),
        (9, 3, "count", "How many roads are there?", "250"),
        (10, 3, "presence", "Is there a forest?", "no"),
    ],
}
RSVQA_HR = {
    "images": {0: "test", 1: "test_phili", 2: "train"},
    "questions": [
        (0, 0, "presence", "Is there a road?", "yes"),
        (1, 0, "count", "How many buildings are there?", "7"),
        (2, 1, "presence", "Is there a residential building?", "yes"),
        (3, 1, "area", "What is the area covered by commercial buildings?", "1234m2"),
        (4, 1, "area", "What is the area covered by parkings?", "0m2"),
        (5, 1, "count", "How many small buildings are there?", "12"),
        (6, 1, "count", "How many roads are there?", "4"),
        (7, 2, "presence", "Is there a water area?", "no"),
    ],
}
RSVQA_XBEN = {
    "images": {0: "train", 1: "test", 2: "test"},
    "questions": [
        (0, 0, "presence", "Are there some pastures?", "yes"),
        (1, 0, "LC", "Which land cover classes are in the image?", "Pastures"),
        (2, 1, "presence", "Are there some water bodies in the image?", "yes"),
        (3, 1, "LC", "What are all the land cover classes in the scene?", "Pastures, mixed forest and water bodies"),
        (4, 1, "presence", "Are some coniferous forests present?", "no"),
        (5, 2, "LC", "Besides pastures, what land cover classes are in the image?", "None"),
        (6, 2, "LC", "Which land cover classes are in the scene?", "Sea and ocean"),
    ],
}

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
    ),
]


def _png(seed: int, size: int = 16) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB").save(buf, format="PNG")
    return buf.getvalue()


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data, encoding="utf-8")


# -- XLRS-Bench ------------------------------------------------------------------------------------
XLRS_PIXELS = {"x1.png": 1, "x2.png": 2}


def _xlrs_record(record, *, index, answer, images) -> dict:
    number, category, question, options = record[:4]
    return {
        "index": index,
        "question": question,
        "multi-choice options": options,
        "answer": answer,
        "category": category,
        "l2-category": XLRS_L2.get(number, category.split("/")[1].lower()),
        "image": images,
    }


def hub_index(record) -> int:
    """The `index` the hub copy gives a record: its position within its category (it restarts at 0)."""
    same = [r for r in XLRS_RECORDS if r[1] == record[1]]
    return same.index(record)


def xlrs_hub_id(record) -> str:
    """The question id the reader gives a hub record: "<category>#<index>" (index repeats across categories)."""
    return f"{record[1]}#{hub_index(record)}"


def make_xlrs_jsonl(root: Path) -> Path:
    """XLRS as two JSONL files; `image` paths are relative to each file."""
    folder = root / "xlrs_jsonl"
    for name, seed in XLRS_PIXELS.items():
        _write(folder / "images" / name, _png(seed))
    for name, records in (("part-0.jsonl", XLRS_RECORDS[:4]), ("part-1.jsonl", XLRS_RECORDS[4:])):
        rows = [_xlrs_record(r, index=r[0], answer=r[4], images=[f"images/{i}" for i in r[5]]) for r in records]
        lines = [json.dumps(row) for row in rows]
        _write(folder / name, "\n".join(lines) + "\n")
    return folder


def _hub_rows() -> list[dict]:
    pixels = {name: _png(seed) for name, seed in XLRS_PIXELS.items()}
    rows = []
    for r in XLRS_RECORDS:
        images = [{"bytes": pixels[i], "path": i} for i in r[5]]
        row = _xlrs_record(r, index=hub_index(r), answer=r[6], images=images)
        row["path"] = f"{r[1].split('/')[1].replace(' ', '_')}/{r[5][0]}"
        rows.append(row)
    return rows


def make_xlrs_parquet(root: Path) -> Path:
    """XLRS as Hugging Face parquet shards: `image` a list of {"bytes", "path"} cells, two rows per row group.

    Same indices and answers as the JSONL copy (unique indices), so both read the same question ids.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / "xlrs_parquet" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    pixels = {name: _png(seed) for name, seed in XLRS_PIXELS.items()}
    rows = [
        _xlrs_record(r, index=r[0], answer=r[4], images=[{"bytes": pixels[i], "path": i} for i in r[5]])
        for r in XLRS_RECORDS
    ]
    for i, chunk in enumerate((rows[:5], rows[5:])):
        pq.write_table(pa.Table.from_pylist(chunk), folder / f"train-0000{i}-of-00002.parquet", row_group_size=2)
    return folder.parent


def _hub_schema():
    import pyarrow as pa

    image = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    return pa.schema(
        [
            ("index", pa.int64()),
            ("question", pa.string()),
            ("multi-choice options", pa.list_(pa.string())),
            ("answer", pa.string()),
            ("category", pa.string()),
            ("l2-category", pa.string()),
            ("image", pa.list_(image)),
            ("path", pa.string()),
        ]
    )


def make_xlrs_save_to_disk(root: Path) -> Path:
    """XLRS-Bench-lite as published on the hub: a `datasets.save_to_disk` folder of Arrow IPC stream shards."""
    import pyarrow as pa

    folder = root / "XLRS-Bench-lite"
    split = folder / "train"
    split.mkdir(parents=True, exist_ok=True)
    rows, schema = _hub_rows(), _hub_schema()
    shards = [f"data-0000{i}-of-00002.arrow" for i in range(2)]
    for name, chunk in zip(shards, (rows[:5], rows[5:])):
        with pa.OSFile(str(split / name), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema), max_chunksize=2)
    _write(folder / "dataset_dict.json", json.dumps({"splits": ["train"]}))
    state = {
        "_data_files": [{"filename": name} for name in shards],
        "_fingerprint": "fixture",
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": "train",
    }
    _write(split / "state.json", json.dumps(state, indent=2))
    features = {name: {"dtype": "string", "_type": "Value"} for name in ("question", "answer", "category", "path")}
    features.update(
        {
            "index": {"dtype": "int64", "_type": "Value"},
            "l2-category": {"dtype": "string", "_type": "Value"},
            "multi-choice options": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
            "image": {"feature": {"_type": "Image"}, "_type": "Sequence"},
        }
    )
    _write(split / "dataset_info.json", json.dumps({"features": features, "splits": {"train": {"num_examples": 9}}}))
    return folder


def _vlmevalkit_options(options: list[str], multi: bool) -> str:
    return "\nThe choices are listed below:\n" + "\n".join(options) + "\n" + VLMEVALKIT_INSTRUCTION[multi]


def _vlmevalkit_rows() -> list[dict]:
    """VLMEvalKit's XLRS rows: unique indices 1-9, options as one string, base64 images; row 9 borrows row 8's."""
    b64 = {name: base64.b64encode(_png(seed)).decode() for name, seed in XLRS_PIXELS.items()}
    rows = []
    for r in XLRS_RECORDS:
        images = [b64[img] for img in r[5]]
        row = _xlrs_record(r, index=r[0], answer=r[6], images=images if len(images) > 1 else images[0])
        row["multi-choice options"] = _vlmevalkit_options(r[3], r[1] == LAND_USE_TASK)
        rows.append(row)
    rows[8]["image"] = "8"  # VLMEvalKit writes a repeated image as the index of the row that holds it
    return rows


def make_xlrs_vlmevalkit(root: Path) -> Path:
    """VLMEvalKit's copy: `XLRS-Bench-lite_part0.jsonl` (rows 1-5) and `_part1.jsonl` (rows 6-9)."""
    folder = root / "xlrs_vlmevalkit"
    rows = _vlmevalkit_rows()
    for i, chunk in enumerate((rows[:5], rows[5:])):
        _write(folder / f"XLRS-Bench-lite_part{i}.jsonl", "".join(json.dumps(row) + "\n" for row in chunk))
    return folder


def make_xlrs_vlmevalkit_tsv(root: Path) -> Path:
    """The same rows as VLMEvalKit TSVs (a multi-image cell written as a Python list, as VLMEvalKit does)."""
    folder = root / "xlrs_vlmevalkit_tsv"
    folder.mkdir(parents=True, exist_ok=True)
    rows = _vlmevalkit_rows()
    columns = ["index", "image", "question", "multi-choice options", "answer", "category", "l2-category"]
    for i, chunk in enumerate((rows[:5], rows[5:])):
        with open(folder / f"XLRS-Bench-lite_part{i}.tsv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t")
            writer.writerow(columns)
            for row in chunk:
                writer.writerow([repr(row[c]) if isinstance(row[c], list) else row[c] for c in columns])
    return folder


# -- OmniEarth-Bench ---------------------------------------------------------------------------------
def omniearth_id(file: str, position: int) -> str:
    """The question id the reader gives: `Question_id` repeats in the fixture, so "<file under jsons/>#<n>"."""
    return f"{file}#{position}"


def make_omniearth(root: Path) -> tuple[Path, Path]:
    """(prepare_data/, jsons/): `Images` are relative to prepare_data/ and live under raw/, as published."""
    base = root / "prepare_data"
    tasks: dict[str, list[str]] = {}
    for file, records in OMNIEARTH_FILES.items():
        out = []
        for i, (qid, qtype, levels, options, truth) in enumerate(records):
            image = f"raw/{levels[0]}/{Path(file).stem}_{i}.png"
            _write(base / image, _png(10 + len(out) + 7 * len(tasks)))
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
            tasks.setdefault(qtype, []).append(file[: -len(".json")])
        _write(base / "jsons" / file, json.dumps(out, indent=1))
    _write(base / "tasks.json", json.dumps({k: sorted(set(v)) for k, v in tasks.items()}, indent=1))
    return base, base / "jsons"


# -- RSVQA -----------------------------------------------------------------------------------------
def _filled(records: list[dict]) -> list[dict]:
    """Records in id order with `{"id": n, "active": false}` before each run of ids, as Splits.py writes them."""
    out, next_id = [], 0
    for record in records:
        out += [{"id": n, "active": False} for n in range(next_id, record["id"])]
        out.append(record)
        next_id = record["id"] + 1
    return out


def write_rsvqa_split(folder: Path, prefix: str, split: str, database: dict, image_dir: str, ext: str) -> None:
    """The three split files of one split, and the images of its active images."""
    images, questions, answers = [], [], []
    for image_id, image_split in sorted(database["images"].items()):
        qids = [q[0] for q in database["questions"] if q[1] == image_id]
        if image_split != split:
            images.append({"id": image_id, "active": False})
            continue
        images.append({"id": image_id, "original_name": f"{image_id}{ext}", "questions_ids": qids, "active": True})
        _write(folder / image_dir / f"{image_id}{ext}", _png(100 + image_id))
        for qid, _, qtype, text, answer in (q for q in database["questions"] if q[0] in qids):
            questions.append(
                {"id": qid, "img_id": image_id, "type": qtype, "question": text, "answers_ids": [qid], "active": True}
            )
            answers.append({"id": qid, "question_id": qid, "answer": answer, "active": True})
    _write(folder / f"{prefix}_split_{split}_images.json", json.dumps({"images": images}))
    _write(folder / f"{prefix}_split_{split}_questions.json", json.dumps({"questions": _filled(questions)}))
    _write(folder / f"{prefix}_split_{split}_answers.json", json.dumps({"answers": _filled(answers)}))


def make_rsvqa_lr(root: Path) -> Path:
    folder = root / "rsvqa_lr_bench"
    write_rsvqa_split(folder, "LR", "test", RSVQA_LR, "Images_LR", ".tif")
    return folder


def make_rsvqa_hr(root: Path) -> Path:
    folder = root / "rsvqa_hr_bench"
    for split in ("test", "test_phili"):
        write_rsvqa_split(folder, "USGS", split, RSVQA_HR, "Data", ".png")
    return folder


def make_rsvqa_xben(root: Path) -> Path:
    folder = root / "rsvqa_xben_bench"
    write_rsvqa_split(folder, "RSVQAxBEN", "test", RSVQA_XBEN, "Images", ".tif")
    return folder


# -- GeoScale-VQA ----------------------------------------------------------------------------------
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
    prepare_data, _ = make_omniearth(root)
    hr = make_rsvqa_hr(root)
    return {
        "xlrs-jsonl": ("xlrs", str(make_xlrs_jsonl(root)), None),
        "xlrs-parquet": ("xlrs", str(make_xlrs_parquet(root)), None),
        "xlrs-arrow": ("xlrs", str(make_xlrs_save_to_disk(root)), None),
        "xlrs-vlmevalkit": ("xlrs", str(make_xlrs_vlmevalkit(root)), None),
        "xlrs-vlmevalkit-tsv": ("xlrs", str(make_xlrs_vlmevalkit_tsv(root)), None),
        "omniearth": ("omniearth", str(prepare_data / "jsons"), None),
        "rsvqa-lr": ("rsvqa", str(make_rsvqa_lr(root)), None),
        "rsvqa-hr": ("rsvqa", str(hr / "USGS_split_test_phili_questions.json"), None),
        "rsvqa-hr-test": ("rsvqa", str(hr), None),
        "rsvqa-xben": ("rsvqa", str(make_rsvqa_xben(root)), None),
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
