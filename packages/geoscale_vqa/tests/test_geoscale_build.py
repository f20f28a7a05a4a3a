"""The builder: manifest and rejects, identical output for any worker count, resume after kill -9, parts."""

import json
import os
import signal
import subprocess
import sys
import tarfile
import time

import pytest
from geoscale_testutil import corpus_files, read_plain

from geoscale_vqa import BuildError, build, merge_parts, parse_part
from geoscale_vqa.build import STATE_DIR


def test_manifest_counts_match_the_shards(built_corpus):
    manifest = json.loads((built_corpus / "manifest.json").read_text())
    samples = read_plain(built_corpus)
    assert manifest["schema"] == "geoscale-vqa/1"
    assert manifest["totals"]["samples"] == len(samples)
    assert manifest["totals"]["qa"] == sum(len(s["json"]["qa"]) for s in samples.values())
    assert manifest["totals"]["rejects"] == 22 == len((built_corpus / "rejects.jsonl").read_text().splitlines())
    # 3+2+1+3+1+2+3+3 fixture images and 30 synthetic scenes
    assert manifest["counts"]["by_source"]["rsvqa-lr"]["samples"] == 3
    assert sum(r["samples"] for r in manifest["counts"]["by_source"].values()) == 18 + 30
    assert manifest["counts"]["by_source"]["synthetic"]["samples"] == 30
    assert manifest["counts"]["by_split"]["test_phili"] == {
        "samples": 1,
        "qa": len(next(s["json"]["qa"] for s in samples.values() if s["json"]["split"] == "test_phili")),
    }
    assert sum(manifest["counts"]["by_tier"].values()) == manifest["totals"]["qa"]
    assert sum(manifest["counts"]["by_origin"].values()) == manifest["totals"]["qa"]
    assert manifest["counts"]["by_origin"]["source"] == 4 + 4 + 2 + 5 + 3  # LR, HR, xBEN, LLaVA, folder
    hist = manifest["gsd_histogram"]
    assert sum(hist["counts"]) + hist["below"] + hist["above"] + hist["no_gsd"] == len(samples)
    assert hist["no_gsd"] == 1  # the LLaVA image without a GSD
    for shard in manifest["shards"]:
        path = built_corpus / shard["path"]
        assert path.stat().st_size == shard["bytes"]
        assert shard["path"].startswith(shard["split"] + "/")


def test_every_sample_is_whole_and_follows_the_schema(built_corpus):
    for shard in sorted(built_corpus.glob("*/*.tar")):
        with tarfile.open(shard) as tar:
            names = tar.getnames()
            members = tar.getmembers()
        keys = [n.rsplit(".", 1)[0] for n in names]
        assert len(names) % 2 == 0 and keys[::2] == keys[1::2]  # image then json, per sample
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" and m.mode == 0o644 for m in members)
        assert all("/" not in n and ".." not in n and n.count(".") == 1 for n in names)
    for sample in read_plain(built_corpus).values():
        record = sample["json"]
        assert set(record) == {
            "schema",
            "source",
            "split",
            "image_id",
            "gsd_m",
            "log10_gsd",
            "gsd_origin",
            "width",
            "height",
            "qa",
        }
        assert record["qa"] and all(set(q) == {"question", "answer", "tier", "type", "origin"} for q in record["qa"])
        assert {q["tier"] for q in record["qa"]} <= {"object", "structure", "semantic", "scale"}


def test_output_is_identical_for_one_and_two_workers(tmp_path, all_source_specs):
    sources = all_source_specs + ["synthetic=40"]
    build(sources, tmp_path / "w1", shard_size=5, workers=1)
    build(sources, tmp_path / "w2", shard_size=5, workers=2)
    one, two = corpus_files(tmp_path / "w1"), corpus_files(tmp_path / "w2")
    assert len(one) > 5 and one.keys() == two.keys()
    assert [k for k in one if one[k] != two[k]] == []


def test_refuses_a_non_empty_out_and_a_changed_plan(tmp_path):
    build(["synthetic=6"], tmp_path / "a", shard_size=4)
    with pytest.raises(BuildError, match="--resume"):
        build(["synthetic=6"], tmp_path / "a", shard_size=4)
    with pytest.raises(BuildError, match="changed"):
        build(["synthetic=7"], tmp_path / "a", shard_size=4, resume=True)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="not empty"):
        build(["synthetic=6"], tmp_path / "b")


def test_resume_redoes_torn_and_unlogged_shards(tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    build(["synthetic=24"], ref, shard_size=4)
    build(["synthetic=24"], out, shard_size=4)
    state = out / STATE_DIR
    log = state / "part-0000-of-0001.done.jsonl"
    lines = log.read_text().splitlines()
    # As if killed: after renaming shard 3 but before logging it, in the middle of logging shard 2,
    # and while writing shard 4 (a temporary file); the manifest was never written.
    log.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])
    (out / "manifest.json").unlink()
    (out / "rejects.jsonl").unlink()
    (state / "part-0000-of-0001.json").unlink()
    victim = out / json.loads(lines[4])["name"]
    victim.rename(victim.with_name(f".{victim.name}.tmp-12345"))
    result = build(["synthetic=24"], out, shard_size=4, resume=True)
    assert (result.shards_skipped, result.shards_built) == (2, len(lines) - 2)
    assert corpus_files(out) == corpus_files(ref)
    assert not list(out.glob("*/.*tmp*"))


def test_resume_of_a_finished_build_changes_nothing(tmp_path):
    out = tmp_path / "o"
    build(["synthetic=8"], out, shard_size=4)
    before = corpus_files(out)
    result = build(["synthetic=8"], out, shard_size=4, resume=True)
    assert result.shards_built == 0 and corpus_files(out) == before


_BUILD_SCRIPT = """
import sys
from geoscale_vqa import build
r = build(["synthetic=120"], sys.argv[1], shard_size=6, workers=int(sys.argv[2]), resume=sys.argv[3] == "1")
print(r.shards_skipped, r.shards_built)
"""


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_then_resume_equals_an_uninterrupted_build(tmp_path, workers):
    ref, out = tmp_path / "ref", tmp_path / "out"
    build(["synthetic=120"], ref, shard_size=6)
    proc = subprocess.Popen([sys.executable, "-c", _BUILD_SCRIPT, str(out), str(workers), "0"], start_new_session=True)
    # Kill once two shards are complete and logged, so the resumed run must both skip and rebuild.
    log = out / STATE_DIR / "part-0000-of-0001.done.jsonl"
    deadline = time.monotonic() + 60
    while not (log.exists() and log.read_text().count("\n") >= 2):
        assert proc.poll() is None, "the build finished or died before two shards were complete"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the builder and its worker processes
    proc.wait()
    assert not (out / "manifest.json").exists()
    for shard in out.glob("*/*.tar"):  # whatever exists under a final name is complete
        with tarfile.open(shard) as tar:
            assert len(tar.getnames()) == 12
    resumed = subprocess.run(
        [sys.executable, "-c", _BUILD_SCRIPT, str(out), str(workers), "1"], check=True, capture_output=True, text=True
    )
    skipped, built = map(int, resumed.stdout.split())
    assert skipped >= 2 and built >= 1 and skipped + built == 20
    assert corpus_files(out) == corpus_files(ref)
    assert not list(out.glob("*/.*tmp*"))


def test_parts_merge_into_the_single_machine_build(tmp_path, fixture_sources):
    sources = [f"rsvqa-lr={fixture_sources['rsvqa-lr']}", "synthetic=30"]
    build(sources, tmp_path / "single", shard_size=4)
    shared = tmp_path / "parts"
    results = [build(sources, shared, shard_size=4, part=(i, 3)) for i in (2, 0)]
    assert all(r.manifest is None for r in results) and not (shared / "manifest.json").exists()
    with pytest.raises(BuildError, match=r"parts \[1\] of 3"):
        merge_parts(shared)
    build(sources, shared, shard_size=4, part=(1, 3))
    merge_parts(shared)
    assert corpus_files(shared) == corpus_files(tmp_path / "single")


def test_parts_on_separate_machines_are_disjoint(tmp_path):
    names = []
    for i in range(2):
        build(["synthetic=40"], tmp_path / f"m{i}", shard_size=4, part=(i, 2))
        names.append({p.relative_to(tmp_path / f"m{i}") for p in (tmp_path / f"m{i}").glob("*/*.tar")})
    assert names[0] and names[1] and not names[0] & names[1]
    assert len(names[0] | names[1]) == 8 + 1 + 1  # 32 train, 4 val, 4 test scenes in shards of 4


def test_parse_part():
    assert parse_part("3/8") == (3, 8)
    for bad in ("8/8", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError):
            parse_part(bad)


def test_max_side_downscales_and_scales_the_gsd(tmp_path, fixture_sources):
    build([f"rsvqa-xben={fixture_sources['rsvqa-xben']}"], tmp_path, max_side=30)
    (sample,) = read_plain(tmp_path).values()
    record = sample["json"]
    assert (record["width"], record["height"], record["gsd_m"]) == (30, 30, 40.0)  # 120 px at 10 m -> 30 px at 40 m
    assert ("What is the ground sampling distance of this image?", "40 m") in {
        (q["question"], q["answer"]) for q in record["qa"]
    }
