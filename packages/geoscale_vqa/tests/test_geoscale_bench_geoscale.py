"""GeoScale held-out split: `key/n` ids, answer kinds from the QA type, accuracy per tier and GSD decade."""

import pytest
from geoscale_bench_testutil import fixture_maker, write_predictions_file

from geoscale_vqa.benchmarks import load_benchmark, open_image, score
from geoscale_vqa.benchmarks.geoscale import gsd_decade

PREDICTIONS = {
    "synthetic-test-0/0": "Yes.",  # right
    "synthetic-test-0/1": "4",  # truth 3: wrong
    "synthetic-test-0/2": "0.52 m",  # truth 0.5 m: within 10%, right
    "synthetic-test-1/0": "urban",  # truth rural: wrong
    "synthetic-test-1/1": "2.9 km x 2.9 km",  # truth 2.88 km × 2.88 km: right
    "synthetic-test-1/2": "water, forest",  # same set: right
    "rsvqa-hr-test-5/0": "1500 m2",  # truth 1234m2: same bin, right
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return fixture_maker().make_geoscale(tmp_path_factory.mktemp("geoscale"))


def test_reads_the_test_split(corpus):
    bench = load_benchmark("geoscale", corpus)
    assert sorted(q.id for q in bench.questions) == sorted(PREDICTIONS)  # the train sample is not read
    by_id = {q.id: q for q in bench.questions}
    gsd = by_id["synthetic-test-0/2"]
    assert (gsd.answer.kind, gsd.answer.value, gsd.gsd_m) == ("length", (0.5,), 0.5)
    assert gsd.groups == {"tier": "scale", "gsd_decade": "0.1-1 m", "type": "gsd", "source": "synthetic"}
    assert by_id["synthetic-test-1/1"].answer.value == (2880.0, 2880.0)
    assert by_id["synthetic-test-1/2"].answer.value == {"forest", "water"}
    assert by_id["rsvqa-hr-test-5/0"].answer.value == ">1000"
    assert open_image(gsd.images[0]).size == (16, 16)
    assert [q.id for q in load_benchmark("geoscale", corpus, split="train").questions] == ["synthetic-train-2/0"]


def test_gsd_decade():
    assert [gsd_decade(g) for g in (0.15, 1.0, 9.99, 10.0, 1000.0, None)] == [
        "0.1-1 m",
        "1-10 m",
        "1-10 m",
        "10-100 m",
        "1000-10000 m",
        "unknown",
    ]


def test_score_end_to_end(corpus, tmp_path):
    preds = write_predictions_file(tmp_path / "preds.jsonl", PREDICTIONS)
    results = score("geoscale", corpus, preds, tmp_path / "out")
    assert results["metrics"]["overall"] == pytest.approx(5 / 7)
    tiers = {k: v["accuracy"] for k, v in results["groups"]["tier"].items()}
    assert tiers == pytest.approx({"object": 0.5, "scale": 1.0, "semantic": 0.5, "structure": 1.0})
    assert results["metrics"]["tier_mean"] == pytest.approx(0.75)
    decades = {k: (v["n"], v["accuracy"]) for k, v in results["groups"]["gsd_decade"].items()}
    assert decades == {"0.1-1 m": (4, pytest.approx(3 / 4)), "10-100 m": (3, pytest.approx(2 / 3))}
    assert len(results["data"]["files"]) == 1 and results["data"]["files"][0]["path"].endswith("test-000000.tar")
    # GeoScale-VQA has no outside scorer: the official parser is the project's judge
    official = score("geoscale", corpus, preds, tmp_path / "official", parser="official")
    assert official["metrics"] == results["metrics"] and official["parsers"]["judged_differently"] == 0


def test_missing_corpus_and_split(corpus, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_benchmark("geoscale", tmp_path / "nothing")
    with pytest.raises(ValueError, match="no 'val' shards"):
        load_benchmark("geoscale", corpus, split="val")


def test_a_real_build_scores_its_own_answers_perfectly(built_corpus):
    """Every answer format the corpus builder writes (sources, templates) is read as a ground truth, and the
    ground truth fed back as a prediction is judged right: the answer kinds and parsers agree with the builder."""
    from geoscale_vqa.benchmarks import score_predictions

    bench = load_benchmark("geoscale", built_corpus, with_images=False)
    assert len(bench) > 20
    kinds = {q.answer.kind for q in bench.questions}
    assert {"yesno", "length"} <= kinds
    results = score_predictions(bench, {q.key: q.answer_text for q in bench.questions})
    assert results["counts"]["correct"] == len(bench)
