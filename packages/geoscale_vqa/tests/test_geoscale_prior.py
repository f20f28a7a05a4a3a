"""The blind prior: most frequent training answer per QA type, read from the training split only."""

import io
import json
import math

import pytest
import webdataset as wds
from PIL import Image

from geoscale_vqa.benchmarks import blind_prior, load_benchmark, most_frequent_answers


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()


def _write(out, split, samples):
    (out / split).mkdir(parents=True, exist_ok=True)
    with wds.TarWriter(str(out / split / f"{split}-000000.tar")) as sink:
        for key, qa in samples:
            record = {
                "schema": "geoscale-vqa/1", "source": "synthetic", "split": split, "image_id": key, "gsd_m": 2.0,
                "log10_gsd": math.log10(2.0), "gsd_origin": "synthetic", "width": 8, "height": 8,
                "qa": [{"question": q, "answer": a, "tier": t, "type": ty, "origin": "template"} for q, a, t, ty in qa],
            }  # fmt: skip
            sink.write({"__key__": key, "png": _png(), "json": json.dumps(record).encode()})


CARS = ("How many cars are there in this image?", "object", "count")
ROAD = ("Is there a road in this image?", "structure", "presence")
RURAL = ("Is this a rural or an urban area?", "semantic", "rural_urban")
GSD = ("What is the ground sampling distance of this image?", "scale", "gsd")


def _qa(template, answer):
    q, tier, qtype = template
    return (q, answer, tier, qtype)


@pytest.fixture
def corpus(tmp_path):
    out = tmp_path / "corpus"
    # train: counts "0" x2 vs "3" x1; presence "no" x2 vs "yes" x1; rural/urban tie 1-1 ("rural" sorts first);
    # gsd "2 m" x1.
    _write(out, "train", [
        ("tr-a", [_qa(CARS, "0"), _qa(ROAD, "no"), _qa(RURAL, "urban"), _qa(GSD, "2 m")]),
        ("tr-b", [_qa(CARS, "0"), _qa(ROAD, "no"), _qa(RURAL, "rural")]),
        ("tr-c", [_qa(CARS, "3"), _qa(ROAD, "yes")]),
    ])  # fmt: skip
    # val says the opposite everywhere: a prior that read it would change.
    _write(out, "val", [(f"va-{i}", [_qa(CARS, "7"), _qa(ROAD, "yes"), _qa(RURAL, "urban")]) for i in range(5)])
    _write(out, "test", [
        ("te-a", [_qa(CARS, "0"), _qa(ROAD, "yes"), _qa(RURAL, "rural"), _qa(GSD, "2.1 m")]),
        ("te-b", [_qa(CARS, "3"), _qa(ROAD, "no"), _qa(RURAL, "urban"), _qa(GSD, "5 m")]),
    ])  # fmt: skip
    return out


def test_most_frequent_answers_read_the_training_split_only(corpus):
    assert most_frequent_answers(corpus) == {"count": "0", "presence": "no", "rural_urban": "rural", "gsd": "2 m"}


def test_blind_prior_accuracy_by_hand(corpus):
    bench = load_benchmark("geoscale", corpus, split="test")
    prior = blind_prior(bench, corpus)
    # te-a: count 0 ok, presence no vs yes wrong, rural ok, "2 m" vs 2.1 m within 10% ok   -> 3 of 4
    # te-b: count 0 vs 3 wrong, presence no ok, rural vs urban wrong, "2 m" vs 5 m wrong   -> 1 of 4
    assert prior["metrics"]["overall"] == pytest.approx(4 / 8)
    by_type = {t: (g["correct"], g["n"]) for t, g in prior["groups"]["type"].items()}
    assert by_type == {"count": (1, 2), "presence": (1, 2), "rural_urban": (1, 2), "gsd": (1, 2)}
    assert prior["groups"]["tier"]["scale"]["accuracy"] == pytest.approx(0.5)


def test_a_type_unseen_in_training_gets_no_answer(corpus, tmp_path):
    _write(
        corpus, "test", [("te-z", [("Is the ground sampling distance below 3 m?", "yes", "scale", "gsd_threshold")])]
    )
    prior = blind_prior(load_benchmark("geoscale", corpus, split="test"), corpus)
    assert prior["metrics"]["overall"] == 0.0
    assert prior["groups"]["type"]["gsd_threshold"]["missing"] == 1


def test_needs_a_training_split(tmp_path):
    out = tmp_path / "only-test"
    _write(out, "test", [("te-a", [_qa(CARS, "0")])])
    with pytest.raises(ValueError, match="training split"):
        most_frequent_answers(out)


def test_a_rewritten_training_split_is_read_again(corpus):
    assert most_frequent_answers(corpus)["count"] == "0"
    _write(corpus, "train", [("tr-x", [_qa(CARS, "12")])])
    assert most_frequent_answers(corpus) == {"count": "12"}
