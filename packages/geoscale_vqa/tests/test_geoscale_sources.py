"""Every source adapter on its real-format fixture, read back through a plain webdataset reader.

Expected QA, GSDs and rejects are written out by hand from tools/make_fixtures_geoscale.py.
"""

import io
import json
import math
import re

import numpy as np
import pytest
from geoscale_testutil import by_image, metres_per_degree, qa_tuples, read_plain
from PIL import Image

from geoscale_vqa.sources import REGISTRY, SourceError, parse_source


@pytest.fixture(scope="module")
def samples(built_corpus):
    return read_plain(built_corpus)


@pytest.fixture(scope="module")
def rejects(built_corpus):
    rows = [json.loads(line) for line in (built_corpus / "rejects.jsonl").read_text().splitlines()]
    return lambda source: sorted((r["reason"], r.get("image_id")) for r in rows if r["source"] == source)


def test_all_kinds_are_registered():
    assert set(REGISTRY) == {
        "rsvqa-lr",
        "rsvqa-hr",
        "rsvqa-xben",
        "mtsccd",
        "dota",
        "fmow",
        "llava",
        "folder",
        "synthetic",
    }


def test_rsvqa_lr(samples, rejects):
    images = by_image(samples, "rsvqa-lr")
    assert set(images) == {("test", "0"), ("test", "1"), ("train", "10")}
    assert qa_tuples(images["test", "0"]) == [
        ("Is there a building?", "yes", "object", "presence"),
        ("Is it a rural or an urban area", "rural", "semantic", "rural_urban"),
    ]
    assert qa_tuples(images["test", "1"]) == [("Are there more roads than water areas?", "no", "structure", "comp")]
    assert qa_tuples(images["train", "10"]) == [("Is there a water area?", "yes", "structure", "presence")]
    # 0.tif carries UTM tags, 1.tif does not: the tags win, the dataset constant is the fallback.
    assert (images["test", "0"]["gsd_m"], images["test", "0"]["gsd_origin"]) == (10.0, "geotiff")
    assert (images["test", "1"]["gsd_m"], images["test", "1"]["gsd_origin"]) == (10.0, "dataset")
    assert images["test", "0"]["log10_gsd"] == pytest.approx(1.0)
    assert rejects("rsvqa-lr") == sorted(
        [
            ("question img_id does not match image", "1"),
            ("answer question_id does not match question", "1"),
            ("missing file", "3"),
            ("unreadable image", "4"),
        ]
    )


def test_rsvqa_hr_both_test_splits(samples, rejects):
    images = by_image(samples, "rsvqa-hr")
    assert set(images) == {("test", "0"), ("test_phili", "5")}
    assert qa_tuples(images["test", "0"]) == [
        ("Is there a residential building?", "yes", "object", "presence"),
        ("What is the area covered by commercial buildings?", "0m2", "structure", "area"),
        ("How many small buildings are there?", "12", "object", "count"),
    ]
    assert qa_tuples(images["test_phili", "5"]) == [
        ("Are there more buildings than roads?", "yes", "structure", "comp")
    ]
    assert {(r["gsd_m"], r["gsd_origin"]) for r in images.values()} == {(0.15, "dataset")}
    assert rejects("rsvqa-hr") == []


def test_rsvqa_hr_png_bytes_are_kept_verbatim(samples, fixture_sources):
    (sample,) = [s for s in samples.values() if s["json"]["source"] == "rsvqa-hr" and s["json"]["image_id"] == "5"]
    with open(f"{fixture_sources['rsvqa-hr']}/Data/5.png", "rb") as f:
        assert sample["png"] == f.read()


def test_rsvqa_xben_rgb_from_b04_b03_b02(samples, rejects):
    images = by_image(samples, "rsvqa-xben")
    (key,) = images
    record = images[key]
    assert key == ("test", "S2A_MSIL2A_20170613T101031_0_45")
    assert qa_tuples(record) == [
        ("What are the land cover classes?", "Mixed forest, Pastures", "semantic", "LC"),
        ("Is there a water body?", "no", "semantic", "yes/no"),
    ]
    assert (record["gsd_m"], record["gsd_origin"], record["width"], record["height"]) == (10.0, "geotiff", 120, 120)
    (sample,) = [s for s in samples.values() if s["json"] is record]
    pixels = np.asarray(Image.open(io.BytesIO(sample["png"])))
    assert pixels.shape == (120, 120, 3) and (pixels == [255, 51, 0]).all()  # B04 3000, B03 600, B02 0
    assert rejects("rsvqa-xben") == [("malformed QA record", None), ("missing file", "S2B_MSIL2A_MISSING_1_1")]


def test_mtsccd_scene_folders(samples, rejects):
    images = by_image(samples, "mtsccd")
    assert set(images) == {("train", "farmland/f1"), ("train", "residential/r1"), ("test", "farmland/f2")}
    scene = {k: [q["answer"] for q in r["qa"] if q["type"] == "scene_class"] for k, r in images.items()}
    assert scene == {
        ("train", "farmland/f1"): ["farmland"],
        ("train", "residential/r1"): ["residential"],
        ("test", "farmland/f2"): ["farmland"],
    }
    assert {(r["gsd_m"], r["gsd_origin"]) for r in images.values()} == {(1.0, "dataset")}
    assert all(q["origin"] == "template" for r in images.values() for q in r["qa"])
    assert rejects("mtsccd") == [("unreadable image", "residential/r2")]


def test_mtsccd_jpeg_stays_jpeg(samples):
    (sample,) = [s for s in samples.values() if s["json"]["image_id"] == "residential/r1"]
    assert "jpg" in sample and "png" not in sample


def test_dota_counts_become_visibility_checked_questions(samples, rejects):
    images = by_image(samples, "dota")
    assert set(images) == {("train", "P0001")}
    record = images["train", "P0001"]
    assert (record["gsd_m"], record["gsd_origin"]) == (0.146343590398, "metadata")
    # 128 px at 0.146 m = 18.7 m of ground: 4.5 m small vehicles, 12 m large vehicles, 10 m pools and
    # 15 m helicopters fit (and are askable); the 40 m plane is only partly in view and is never asked about.
    allowed = {
        ("Are there any small vehicles in this image?", "yes"),
        ("How many small vehicles are there in this image?", "2"),
        ("Are there any large vehicles in this image?", "no"),
        ("How many large vehicles are there in this image?", "0"),
        ("Are there any swimming pools in this image?", "no"),
        ("How many swimming pools are there in this image?", "0"),
        ("Are there any helicopters in this image?", "no"),
        ("How many helicopters are there in this image?", "0"),
    }
    thing_qa = {(q["question"], q["answer"]) for q in record["qa"] if q["type"] in ("presence", "count")}
    assert thing_qa and thing_qa <= allowed
    assert not any("plane" in q["question"] for q in record["qa"])
    assert rejects("dota") == [
        ("gsd missing", "P0002"),
        ("malformed label file", "P0003"),
        ("missing label file", "P0004"),
    ]


def test_fmow_per_image_gsd_and_boxes(samples, rejects):
    images = by_image(samples, "fmow")
    airport = images["train", "train/airport/airport_0/airport_0_0_rgb"]
    crop = images["val", "val/crop_field/crop_field_3/crop_field_3_1_rgb"]
    assert len(images) == 2
    assert (airport["gsd_m"], airport["gsd_origin"], airport["width"], airport["height"]) == (0.5, "metadata", 64, 48)
    assert (crop["gsd_m"], crop["gsd_origin"]) == (2.0, "metadata")
    qa = {(q["question"], q["answer"]) for q in airport["qa"]}
    assert ("The airport in this image spans 40 × 30 pixels. How large is it on the ground?", "20 m × 15 m") in qa
    assert ("What type of scene is shown in this image?", "airport") in qa
    assert ("The crop field in this image spans 32 × 32 pixels. How large is it on the ground?", "64 m × 64 m") in {
        (q["question"], q["answer"]) for q in crop["qa"]
    }
    assert rejects("fmow") == [
        ("invalid GSD", "train/port/port_1/port_1_0_rgb"),
        ("malformed JSON", "train/shop/shop_2/shop_2_0_rgb"),
    ]


def test_llava_conversations(samples, rejects):
    images = by_image(samples, "llava")
    assert set(images) == {("train", "imgs/a.png"), ("train", "imgs/b.png"), ("train", "imgs/g.tif")}
    a = images["train", "imgs/a.png"]
    assert [(q["question"], q["answer"], q["tier"]) for q in a["qa"] if q["origin"] == "source"] == [
        ("How many planes are on the apron?", "Three.", "object"),
        ("Describe the image.", "An airport apron with three parked planes.", "semantic"),
        ("Is there a runway?", "Yes, along the bottom edge.", "structure"),
    ]
    assert (a["gsd_m"], a["gsd_origin"]) == (0.5, "metadata")
    b = images["train", "imgs/b.png"]
    assert qa_tuples(b) == [("What is in the picture?", "Farmland along a river.", "semantic", "conversation")]
    assert (b["gsd_m"], b["log10_gsd"], b["gsd_origin"]) == (None, None, "none")
    assert [q["origin"] for q in b["qa"]] == ["source"]  # no GSD, so no scale templates
    g = images["train", "imgs/g.tif"]
    lon_m, lat_m = metres_per_degree(45.0)
    assert g["gsd_origin"] == "geotiff"
    assert g["gsd_m"] == pytest.approx(1e-5 * math.sqrt(lon_m * lat_m), rel=1e-5)
    assert rejects("llava") == [
        ("invalid GSD", "imgs/b.png"),
        ("invalid split name", "imgs/b.png"),  # "../up" would be a folder outside OUT
        ("malformed conversations", "imgs/a.png"),
        ("no image (text-only record)", None),
    ]


def test_folder_manifest(samples, rejects):
    images = by_image(samples, "folder")
    assert set(images) == {("train", "tile-a"), ("val", "geo"), ("train", "../../evil/na.me")}
    tile = images["train", "tile-a"]
    assert qa_tuples(tile) == [
        ("What color is the roof of the largest building?", "red", "object", "attribute"),
        ("Is the parking lot full?", "no", "structure", "presence"),
    ]
    assert (tile["gsd_m"], tile["gsd_origin"]) == (0.3, "metadata")
    # 3 cars of 4.5 m at 0.3 m span 15 px: presence and count are both askable.
    template = {(q["question"], q["answer"]) for q in tile["qa"] if q["origin"] == "template"}
    assert template & {("Are there any cars in this image?", "yes"), ("How many cars are there in this image?", "3")}
    geo = images["val", "geo"]
    lon_m, lat_m = metres_per_degree(60.0)
    assert geo["gsd_origin"] == "geotiff"
    assert geo["gsd_m"] == pytest.approx(math.sqrt(2e-5 * lon_m * 1e-5 * lat_m), rel=1e-5)
    assert ("What type of scene is shown in this image?", "harbour") in {
        (q["question"], q["answer"]) for q in geo["qa"]
    }
    assert rejects("folder") == sorted(
        [
            ("malformed JSON", None),
            ("invalid GSD", "zero.png"),
            ("missing file", "missing"),
            ("gsd missing", "nogsd"),
            ("duplicate image id", "tile-a"),
            ("invalid GSD", "nan"),
        ]
    )


def test_keys_are_sanitised(samples):
    for key in samples:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", key), key
    (evil,) = [k for k, s in samples.items() if s["json"]["image_id"] == "../../evil/na.me"]
    assert evil.startswith("folder-train-evil_na_me-")


def test_unknown_kind_and_missing_paths_fail_at_once(tmp_path):
    with pytest.raises(SourceError, match="unknown source kind 'rsvqa'.*rsvqa-lr"):
        parse_source("rsvqa=/data")
    with pytest.raises(SourceError, match="does not exist"):
        parse_source(f"rsvqa-lr={tmp_path}/nowhere")
    with pytest.raises(SourceError, match="LR_split_"):
        parse_source(f"rsvqa-lr={tmp_path}")
    with pytest.raises(SourceError, match="KIND=ARG"):
        parse_source("synthetic")
    for bad in ("synthetic=0", "synthetic=-3", "synthetic=many"):
        with pytest.raises(SourceError, match="positive integer"):
            parse_source(bad)
    with pytest.raises(SourceError, match="no manifest.jsonl"):
        parse_source(f"folder={tmp_path}")
