"""Batch predictions over an archive: GSD per image (manifest, GeoTIFF tags, none), resume after a kill
(same rows, none twice), and --part i/N splitting the images."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from scaleearth_cli.cli import app

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from geoscale_vqa.gsd import geotiff_tags

    root = tmp_path_factory.mktemp("archive")
    rng = np.random.default_rng(0)
    (root / "tiles" / "b").mkdir(parents=True)
    for i in range(5):
        pixels = Image.fromarray(rng.integers(0, 256, (40 + 8 * i, 48, 3), dtype=np.uint8))
        if i == 2:
            pixels.save(root / "tiles" / "b" / "tagged.tif", tiffinfo=geotiff_tags(2.0))
        else:
            pixels.save(root / "tiles" / f"t{i}.png")
    (root / "questions.txt").write_text("Is there a road?\nHow many cars are there?\n")
    manifest = [{"image": "tiles/t0.png", "id": "a", "gsd_m": 0.3}, {"image": "tiles/t1.png", "id": "b"}]
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in manifest))
    return root


def _run(em, archive, out, **kw):
    from scaleearth_cli.batch_predict import predict_archive

    return predict_archive(em, archive / "tiles", archive / "questions.txt", out, batch_size=3, max_new_tokens=3, **kw)


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_image_and_question_once_with_its_gsd_origin(random_eval_model, archive, tmp_path):
    result = _run(random_eval_model, archive, tmp_path / "p.jsonl")
    rows = _rows(result.out)
    assert result.written == 10 and len({r["id"] for r in rows}) == 10
    assert [r["id"] for r in rows[:3]] == ["b/tagged.tif/q0", "b/tagged.tif/q1", "t0.png/q0"]
    tagged = rows[0]
    assert tagged["gsd_m"] == pytest.approx(2.0) and tagged["gsd_origin"] == "GeoTIFF tags"
    assert tagged["branch"] == "metadata"
    plain = rows[2]
    assert plain["gsd_m"] is None and plain["gsd_origin"] == "none" and plain["branch"] in ("estimate", "default")


def test_a_killed_run_resumes_to_the_same_file(random_eval_model, archive, tmp_path, monkeypatch):
    reference = _rows(_run(random_eval_model, archive, tmp_path / "full.jsonl").out)
    import scaleearth_cli.batch_predict as bp

    calls = {"n": 0}
    real = bp.answer_batch

    def dies_on_third_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(bp, "answer_batch", dies_on_third_batch)
    out = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        _run(random_eval_model, archive, out)
    assert len(_rows(out)) == 6  # two batches of 3 made it
    with open(out, "a") as f:
        f.write('{"id": "t3.png/q0", "pred')  # and a torn line, as a kill mid-write leaves
    monkeypatch.setattr(bp, "answer_batch", real)
    result = _run(random_eval_model, archive, out)
    assert (result.written, result.skipped) == (4, 6)
    assert _rows(out) == reference
    again = _run(random_eval_model, archive, out)
    assert (again.written, again.skipped) == (0, 10) and _rows(out) == reference


def test_parts_split_the_images_and_together_give_everything(random_eval_model, archive, tmp_path):
    full = {r["id"]: r for r in _rows(_run(random_eval_model, archive, tmp_path / "full.jsonl").out)}
    parts = [_rows(_run(random_eval_model, archive, tmp_path / f"p{i}.jsonl", part=(i, 2)).out) for i in range(2)]
    ids = [r["id"] for rows in parts for r in rows]
    assert sorted(ids) == sorted(full) and len(ids) == len(set(ids))
    assert {r["image"] for r in parts[0]}.isdisjoint({r["image"] for r in parts[1]})


def test_manifest_gsd_and_confinement(random_eval_model, archive, tmp_path):
    from scaleearth_cli.batch_predict import list_images, predict_archive, read_questions

    result = predict_archive(random_eval_model, archive / "manifest.jsonl", archive / "questions.txt",
                             tmp_path / "m.jsonl", max_new_tokens=2)  # fmt: skip
    rows = _rows(result.out)
    assert [r["id"] for r in rows] == ["a/q0", "a/q1", "b/q0", "b/q1"]
    assert rows[0]["gsd_origin"] == "manifest" and rows[0]["gsd_m"] == 0.3 and rows[0]["branch"] == "metadata"
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"image": "../../etc/passwd"}) + "\n")
    with pytest.raises(ValueError, match="leaves"):
        list_images(bad)
    bad.write_text(json.dumps({"image": "x.png", "gsd_m": -1}) + "\n")
    with pytest.raises(ValueError, match="gsd_m"):
        list_images(bad)
    bad.write_text('{"image": "x.png"}\n{"image": \n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not JSON"):
        list_images(bad)
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Is there a road?", "id": "road"}\n{"text": "x"}\n')
    with pytest.raises(ValueError, match=r"q.jsonl:2: needs a text 'question'"):
        read_questions(questions)


def test_cli_batch_mode(tiny_model_dir, random_run, archive, tmp_path):
    args = ["predict", "--images", str(archive / "tiles"), "--questions", str(archive / "questions.txt"),
            "--out", str(tmp_path / "cli.jsonl"), "--model", str(tiny_model_dir), "--adapter", str(random_run),
            "--max-new-tokens", "2", "--part", "1/2"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "4 predictions written" in " ".join(result.output.split())
    bad = CliRunner().invoke(app, [*args[:-2], "--part", "2/2"])
    assert bad.exit_code == 2 and "part" in bad.output
    mixed = CliRunner().invoke(app, ["predict", "x.png", "--images", "d", "--questions", "q", "--out", "o",
                                     "--model", "m"])  # fmt: skip
    assert mixed.exit_code == 2
