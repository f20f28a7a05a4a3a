"""Issue 13, one test per "what broke": build-killing records, unbounded reads, silent wrong results,
shard integrity, and a small corpus on several readers."""

import json
import os
import signal

import numpy as np
import pytest
import torch
from geoscale_testutil import corpus_files
from PIL import Image

from geoscale_vqa import BuildError, build, geoscale_dataset, merge_parts
from geoscale_vqa.sources import SourceError

GOOD = {"image": "a.png", "gsd_m": 0.5, "id": "good", "labels": {"counts": {"car": 2}}}


def _png(path, size=(24, 20), value=90):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def _folder(root, records, image="a.png"):
    root.mkdir(parents=True, exist_ok=True)
    _png(root / image)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _rejects(out):
    return [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]


def _rsvqa(root, images, questions, answers):
    root.mkdir(parents=True, exist_ok=True)
    for part, records in (("images", images), ("questions", questions), ("answers", answers)):
        (root / f"LR_split_train_{part}.json").write_text(json.dumps({part: records}))
    (root / "Images_LR").mkdir(exist_ok=True)
    for image in images:
        if isinstance(image, dict) and isinstance(image.get("id"), (int, str)):
            _png(root / "Images_LR" / f"{image['id']}.tif")
    return root


def _question(qid, img_id, **extra):
    return {"id": qid, "img_id": img_id, "type": "presence", "question": f"q{qid}?", "answers_ids": [qid],
            "active": True, **extra}  # fmt: skip


def _answer(aid, **extra):
    return {"id": aid, "question_id": aid, "answer": "yes", "active": True, **extra}


def test_one_bad_record_never_stops_a_build(tmp_path):
    """Every record the issue found killing a build is a reject with its reason; the good ones are built."""
    bad_folder = [
        {**GOOD, "id": "boxes", "labels": {"boxes": 5}},
        {**GOOD, "id": "counts-x", "labels": {"counts": "x"}},
        {**GOOD, "id": "counts-abc", "labels": {"counts": {"car": "abc"}}},
        {**GOOD, "id": "presence", "labels": {"presence": "yes"}},
        {**GOOD, "id": "land-cover", "labels": {"land_cover": 5}},
        {**GOOD, "id": "scene", "labels": {"scene_class": ["a"]}},
        {**GOOD, "id": "huge-gsd", "gsd_m": 1e308},
    ]
    folder = _folder(tmp_path / "folder", [GOOD, *bad_folder])
    images = [{"id": 0, "questions_ids": [0, 1, 2, 3], "active": True}, {"id": 1, "questions_ids": 3},
              {"id": 2, "questions_ids": [4], "active": True}]  # fmt: skip
    questions = [_question(0, 0), _question(1, 0), _question(2, 0, answers_ids=5), _question(3, 0, answers_ids=[[1]]),
                 _question({"x": 1}, 2), _question(4, 2)]  # fmt: skip
    answers = [_answer(0), {k: v for k, v in _answer(1).items() if k != "answer"}, _answer(4)]
    rsvqa = _rsvqa(tmp_path / "rsvqa", images, questions, answers)

    out = tmp_path / "out"
    result = build([f"folder={folder}", f"rsvqa-lr={rsvqa}"], out, shard_size=4)
    built = {(s, i) for s, i in _kept(out)}
    assert built == {("folder", "good"), ("rsvqa-lr", "0"), ("rsvqa-lr", "2")}
    rejects = _rejects(out)
    folder_rejects = {r["image_id"]: r for r in rejects if r["source"] == "folder"}
    assert set(folder_rejects) == {r["id"] for r in bad_folder}
    assert "labels.boxes" in folder_rejects["boxes"]["detail"] and "5" in folder_rejects["boxes"]["detail"]
    assert "Earth" in folder_rejects["huge-gsd"]["detail"]
    rsvqa_details = " | ".join(f"{r['reason']}: {r.get('detail')}" for r in rejects if r["source"] == "rsvqa-lr")
    for needle in ("answer 1: answer must be", "answers_ids must be a list", "answers_ids entry must be",
                   "questions_ids must be a list", "question record 4: id must be"):  # fmt: skip
        assert needle in rsvqa_details
    assert result.manifest["totals"]["rejects"] == len(rejects)
    # Only a problem with the whole source stops the build, with one line naming the file.
    (rsvqa / "LR_split_train_answers.json").write_text('{"answers": [')
    with pytest.raises(SourceError, match=r"LR_split_train_answers.json is not valid JSON"):
        build([f"rsvqa-lr={rsvqa}"], tmp_path / "out2")


def _kept(out):
    return {(s["json"]["source"], s["json"]["image_id"]) for s in _samples(out)}


def _samples(out):
    from geoscale_testutil import read_plain

    return read_plain(out).values()


def _no_hang(seconds):
    def fail(*_):
        raise TimeoutError("the build hung")

    signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)


def test_reads_stay_in_the_source_folder_regular_and_bounded(tmp_path):
    outside = _png(tmp_path / "outside.png")
    root = tmp_path / "src"
    _png(root / "big.png", size=(1200, 1000))
    os.symlink(outside, root / "link.png")
    os.symlink("/dev/zero", root / "zero.png")
    os.mkfifo(root / "fifo.png")
    with open(root / "huge.png", "wb") as f:
        f.truncate(3 * 2**30)  # sparse: 3 GB that take no disk
    records = {"dotdot": "../outside.png", "absolute": str(outside), "link": "link.png", "zero": "zero.png",
               "fifo": "fifo.png", "huge": "huge.png", "big": "big.png", "ok": "a.png"}  # fmt: skip
    _folder(root, [{"image": image, "id": name, "gsd_m": 1.0} for name, image in records.items()])

    _no_hang(60)
    try:
        build([f"folder={root}"], tmp_path / "out", max_pixels=1_000_000)
    finally:
        signal.alarm(0)
    reasons = {r["image_id"]: r["reason"] for r in _rejects(tmp_path / "out")}
    assert reasons == {
        "dotdot": "path outside the source folder",  # caught in the manifest already
        "absolute": "path outside the source folder",
        "link": "path outside the source folder",
        "zero": "path outside the source folder",
        "fifo": "not a regular file",
        "huge": "file too large",
        "big": "image too large",
    }
    assert _kept(tmp_path / "out") == {("folder", "ok")}

    # The explicit flag reads outside paths, but still never a device, and the pixel cap is configurable.
    build([f"folder={root}"], tmp_path / "out2", allow_outside_root=True, max_pixels=2_000_000)
    reasons = {r["image_id"]: r["reason"] for r in _rejects(tmp_path / "out2")}
    assert reasons == {"zero": "not a regular file", "fifo": "not a regular file", "huge": "file too large"}
    assert {i for _, i in _kept(tmp_path / "out2")} == {"dotdot", "absolute", "link", "big", "ok"}


def test_no_silent_wrong_results(tmp_path):
    folder = _folder(
        tmp_path / "folder",
        [
            GOOD,
            {**GOOD, "id": "null-answer", "qa": [{"question": "Q?", "answer": None}]},
            {**GOOD, "id": "dict-answer", "qa": [{"question": "Q?", "answer": {"x": 1}}]},
            {**GOOD, "id": "negative", "labels": {"counts": {"car": -5}}},
            {**GOOD, "id": None},
            {**GOOD, "id": None, "image": "a.png"},
            {**GOOD, "id": "garbage", "image": "garbage.png"},
        ],
    )
    (folder / "garbage.png").write_bytes(b"not an image at all")
    images = [{"id": 0, "questions_ids": [0, 1], "active": True}, {"id": 1, "questions_ids": [2], "active": "false"}]
    questions = [_question(0, 0), _question(0, 0, question="impostor?"), _question(1, 0, active="false"),
                 _question(2, 1)]  # fmt: skip
    rsvqa = _rsvqa(tmp_path / "rsvqa", images, questions, [_answer(0), _answer(1), _answer(2)])

    sources = [f"folder={folder}", f"rsvqa-lr={rsvqa}"]
    build(sources, tmp_path / "a")
    samples = {(s["json"]["source"], s["json"]["image_id"]): s["json"] for s in _samples(tmp_path / "a")}
    assert set(samples) == {("folder", "good"), ("rsvqa-lr", "0")}
    answers = [q["answer"] for s in samples.values() for q in s["qa"]]
    assert not {"None", "{'x': 1}", "-5"} & set(answers)
    assert [(q["question"], q["answer"]) for q in samples["rsvqa-lr", "0"]["qa"] if q["origin"] == "source"] == [
        ("q0?", "yes")  # the duplicate did not replace it; the question with active "false" is not active
    ]
    rejects = _rejects(tmp_path / "a")
    reasons = sorted(r["reason"] for r in rejects)
    assert reasons.count("duplicate image id") == 0  # two null ids are two invalid ids, not a duplicate
    assert "duplicate question id" in reasons
    details = " ".join(r.get("detail") or "" for r in rejects)
    assert "active must be true or false" in details and "id must be" in details and "answer must be" in details
    assert "count" in details or "labels.counts.car" in details
    build(sources, tmp_path / "b")
    assert (tmp_path / "a" / "rejects.jsonl").read_bytes() == (tmp_path / "b" / "rejects.jsonl").read_bytes()
    assert " at 0x" not in (tmp_path / "a" / "rejects.jsonl").read_text()


def _flip_byte(path, offset=700):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_shards_and_inputs_are_verified_on_resume_and_merge(tmp_path):
    root = _folder(tmp_path / "folder", [{"image": f"{i}.png", "id": str(i), "gsd_m": 0.5} for i in range(6)])
    for i in range(6):
        _png(root / f"{i}.png", value=10 * i)
    sources = [f"folder={root}", "synthetic=10"]
    out = tmp_path / "out"
    build(sources, out, shard_size=4)
    pristine = corpus_files(out)

    # One byte changed, same size: --resume notices by sha256, says so and rebuilds the shard.
    shard = out / "train" / "train-000000.tar"
    _flip_byte(shard)
    result = build(sources, out, shard_size=4, resume=True)
    assert "sha256" in result.shards_redone["train/train-000000.tar"] and result.shards_built == 1
    assert corpus_files(out) == pristine

    # An image rewritten in place (same size, mtime put back): the content hash of the fingerprint sees it.
    image = root / "3.png"
    stat, before = image.stat(), image.read_bytes()
    for value in range(31, 256):  # another colour whose PNG has the very same length
        _png(image, value=value)
        if image.stat().st_size == stat.st_size:
            break
    assert image.stat().st_size == stat.st_size and image.read_bytes() != before
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = build(sources, out, shard_size=4, resume=True)
    assert list(result.shards_redone.values()) == ["its input files changed (size, mtime or content)"]
    assert corpus_files(out) != pristine

    # A part build: --merge-parts refuses a shard whose bytes no longer match the part's record.
    parts = tmp_path / "parts"
    for i in range(2):
        build(["synthetic=30"], parts, shard_size=4, part=(i, 2))
    _flip_byte(parts / "train" / "train-000000.tar")  # job 1 (test-000000 is job 0): part 1
    with pytest.raises(BuildError, match="does not match its recorded sha256"):
        merge_parts(parts)
    build(["synthetic=30"], parts, shard_size=4, part=(1, 2), resume=True)
    assert merge_parts(parts)["totals"]["samples"] == 30


def test_damaged_build_state_is_never_trusted(tmp_path):
    out = tmp_path / "out"
    build(["synthetic=12"], out, shard_size=4)
    pristine = corpus_files(out)
    state = out / ".geoscale"
    (state / "part-0000-of-0001.plan.json").write_text("{not json")
    (state / "part-0000-of-0001.done.jsonl").write_text('5\n["x"]\n{"name": "train/train-000000.tar"}\n{"na')
    result = build(["synthetic=12"], out, shard_size=4, resume=True)
    assert result.shards_skipped == 0 and result.shards_built == len(result.manifest["shards"]) == 5
    assert corpus_files(out) == pristine
    (state / "part-0000-of-0001.json").write_text('{"parts": 1}')
    with pytest.raises(BuildError, match="part-0000-of-0001.json is damaged"):
        merge_parts(out)
    (out / "manifest.json").write_text("[]")
    with pytest.raises(ValueError, match="manifest.json is damaged"):
        geoscale_dataset(out)


@pytest.fixture(scope="module")
def one_shard(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "corpus"
    build(["synthetic=10"], out, shard_size=100)  # 8 train scenes in one shard
    return out


@pytest.mark.parametrize("world_size, num_workers", [(2, 1), (2, 2), (3, 2)])
def test_fewer_shards_than_readers_split_by_sample(one_shard, world_size, num_workers):
    single = sorted(s["__key__"] for s in geoscale_dataset(one_shard, split="train", mode="sample"))
    assert len(single) == 8
    seen = []
    for rank in range(world_size):
        ds = geoscale_dataset(one_shard, split="train", mode="sample", rank=rank, world_size=world_size)
        loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=num_workers)
        mine = [s["__key__"] for s in loader]
        assert mine, f"rank {rank} got no samples"
        seen += mine
    assert sorted(seen) == single  # every sample once, none twice, as a single process sees them
