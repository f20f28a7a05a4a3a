"""The training reader: decoding, QA expansion, filters, and DataLoader workers x ranks without duplicates."""

import pytest
import torch
from geoscale_testutil import read_plain
from PIL import Image

from geoscale_vqa import build, geoscale_dataset, shard_urls


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("reader") / "corpus"
    build(["synthetic=50"], out, shard_size=4)  # 40 train scenes -> 10 train shards
    return out


def test_sample_mode_matches_the_plain_reader(built_corpus):
    plain = read_plain(built_corpus)
    seen = {}
    for sample in geoscale_dataset(built_corpus, mode="sample"):
        assert isinstance(sample["image"], Image.Image) and sample["image"].mode == "RGB"
        assert sample["image"].size == (sample["width"], sample["height"])
        seen[sample["__key__"]] = sample
    assert seen.keys() == plain.keys()
    for key, sample in seen.items():
        assert sample["qa"] == plain[key]["json"]["qa"]
        assert sample["gsd_m"] == plain[key]["json"]["gsd_m"]


def test_qa_mode_yields_each_pair_with_its_gsd(built_corpus):
    pairs = list(geoscale_dataset(built_corpus, split="test", sources="rsvqa-lr", mode="qa"))
    source_pairs = [
        (p["image_id"], p["question"], p["answer"], p["tier"], p["gsd_m"]) for p in pairs if p["origin"] == "source"
    ]
    assert sorted(source_pairs) == sorted(
        [
            ("0", "Is there a building?", "yes", "object", 10.0),
            ("0", "Is it a rural or an urban area", "rural", "semantic", 10.0),
            ("1", "Are there more roads than water areas?", "no", "structure", 10.0),
        ]
    )
    assert len({p["__key__"] for p in pairs}) == len(pairs)
    assert all(p["log10_gsd"] == pytest.approx(1.0) for p in pairs)


def test_filters_by_tier_origin_source_and_split(built_corpus):
    hr = list(geoscale_dataset(built_corpus, split="test_phili", mode="qa", origins="source"))
    assert [(p["question"], p["answer"], p["tier"]) for p in hr] == [
        ("Are there more buildings than roads?", "yes", "structure")
    ]
    objects = list(geoscale_dataset(built_corpus, tiers={"object"}, sources=["rsvqa-hr"], mode="qa", origins="source"))
    assert sorted(p["question"] for p in objects) == [
        "How many small buildings are there?",
        "Is there a residential building?",
    ]
    assert list(geoscale_dataset(built_corpus, sources="mtsccd", origins="source", mode="sample")) == []


def test_conversation_mode_puts_the_image_in_the_first_turn(built_corpus):
    (conv,) = [
        c for c in geoscale_dataset(built_corpus, sources="llava", origins="source") if c["image_id"] == "imgs/a.png"
    ]
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"] * 3
    assert conv["messages"][0]["content"] == [
        {"type": "image"},
        {"type": "text", "text": "How many planes are on the apron?"},
    ]
    assert conv["messages"][1]["content"] == [{"type": "text", "text": "Three."}]
    assert conv["messages"][2]["content"] == [{"type": "text", "text": "Describe the image."}]
    assert conv["gsd_m"] == 0.5
    short = [
        c
        for c in geoscale_dataset(built_corpus, sources="llava", origins="source", max_turns=1)
        if c["image_id"] == "imgs/a.png"
    ]
    # Every QA is used: one conversation per QA, each with the image, none dropped.
    assert [len(c["messages"]) for c in short] == [2, 2, 2]
    assert [c["messages"][1]["content"][0]["text"] for c in short] == [
        m["content"][0]["text"] for m in conv["messages"][1::2]
    ]
    assert all(c["messages"][0]["content"][0] == {"type": "image"} for c in short)
    assert len({c["__key__"] for c in short}) == 3


def test_vqa_turns_carry_the_evaluation_prompt(corpus):
    """Template (VQA) questions are asked in training exactly as the GeoScale benchmark asks them."""
    from geoscale_vqa.benchmarks import load_benchmark

    bench = load_benchmark("geoscale", corpus, split="train")
    asked = {(q.id.rsplit("/", 1)[0], q.question): q.prompt for q in bench.questions}
    seen = 0
    for conv in geoscale_dataset(corpus, split="train", max_turns=1):
        (qa,) = conv["qa"]
        user_text = conv["messages"][0]["content"][-1]["text"]
        assert user_text.endswith("\nAnswer the question using a single word or phrase.")
        assert user_text == asked[(conv["__key__"].rsplit("/", 1)[0], qa["question"])]
        seen += 1
    assert seen == len(bench.questions)


def test_shard_urls_by_split(corpus):
    assert len(shard_urls(corpus, "train")) == 10
    assert len(shard_urls(corpus)) == 14  # 40 train, 5 val and 5 test scenes in shards of 4
    assert shard_urls(corpus, ["val", "test"]) == [
        str(corpus / f"{split}/{split}-00000{i}.tar") for split in ("test", "val") for i in (0, 1)
    ]


def _keys_of(ds, num_workers):
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=num_workers)
    return [s["__key__"] for s in loader]


@pytest.mark.parametrize("world_size, num_workers", [(1, 2), (2, 2), (3, 1)])
def test_ranks_and_workers_read_every_sample_once(corpus, world_size, num_workers):
    expected = sorted(s["__key__"] for s in geoscale_dataset(corpus, split="train", mode="sample"))
    assert len(expected) == 40
    keys = []
    for rank in range(world_size):
        ds = geoscale_dataset(
            corpus,
            split="train",
            mode="sample",
            rank=rank,
            world_size=world_size,
            shuffle_shards=True,
            shuffle_buffer=8,
            seed=rank,
        )
        mine = _keys_of(ds, num_workers)
        assert mine, f"rank {rank} got nothing"
        keys += mine
    assert sorted(keys) == expected


def test_rank_from_environment(corpus, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    odd = {s["__key__"] for s in geoscale_dataset(corpus, split="train", mode="sample")}
    monkeypatch.setenv("RANK", "0")
    even = {s["__key__"] for s in geoscale_dataset(corpus, split="train", mode="sample")}
    assert odd and even and not odd & even and len(odd | even) == 40


def test_bad_arguments(corpus):
    with pytest.raises(ValueError, match="mode"):
        geoscale_dataset(corpus, mode="pairs")
    with pytest.raises(ValueError, match="no shards"):
        geoscale_dataset(corpus, split="nope")
