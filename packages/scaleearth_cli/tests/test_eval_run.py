"""`scaleearth eval` end to end with the tiny model: every benchmark layout, provenance, GSD sources, resize, SSE-U."""

import json
import math
import shutil

import pytest
import torch
from scaleearth_eval_testutil import HEAD_GSD_M, HEAD_STD_LOG10, REPO, read_jsonl, sha256
from typer.testing import CliRunner

import cshlora
from scaleearth_cli.cli import app

pytest.importorskip("transformers")

LAYOUTS = [
    "xlrs-jsonl", "xlrs-parquet", "xlrs-arrow", "xlrs-vlmevalkit", "omniearth", "rsvqa-lr", "rsvqa-hr", "rsvqa-xben",
    "geoscale",
]  # fmt: skip
WITHOUT_GSD = {"xlrs", "omniearth"}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_eval_scores_each_benchmark_layout_with_a_trained_run(
    tmp_path, tiny_model_dir, trained_run, bench_fixtures, layout
):
    from geoscale_vqa.benchmarks import load_benchmark, score

    kind, data, images = bench_fixtures[layout]
    out = tmp_path / "eval"
    args = ["eval", "--bench", kind, "--data", data, "--model", str(tiny_model_dir), "--adapter", str(trained_run),
            "--out", str(out), "--batch-size", "4", "--max-new-tokens", "4", "--no-progress"]  # fmt: skip
    parser = "official" if layout == "xlrs-arrow" else "strict"  # the published XLRS, scored as lmms-eval does
    result = CliRunner().invoke(app, args + (["--images", images] if images else []) + ["--parser", parser])
    assert result.exit_code == 0, result.output
    assert "accuracy %" in result.output and "gate GSD per question" in result.output

    questions = load_benchmark(kind, data, images, with_images=False).questions
    rows = read_jsonl(out / "predictions.jsonl")
    assert [r["id"] for r in rows] == [q.id for q in questions]
    assert all(isinstance(r["prediction"], str) for r in rows)
    assert len(read_jsonl(out / "scored.jsonl")) == len(questions)

    results = json.loads((out / "results.json").read_text())
    run = results["run"]
    assert run["model"] == str(tiny_model_dir) and run["gsd_source"] == "oracle" and run["decoding"] == "greedy"
    assert run["adapter"]["path"] == str(trained_run) and run["adapter"]["kind"] == "cshlora"
    assert run["adapter"]["adapter_sha256"] == sha256(trained_run / "final" / "adapter" / "cshlora_adapter.safetensors")
    assert run["adapter"]["sseu_head_sha256"] == sha256(trained_run / "final" / "sseu_head.safetensors")
    assert results["data"]["path"] == str(load_benchmark(kind, data, images, with_images=False).path)
    assert results["data"]["files"] and all(f["sha256"] == sha256(f["path"]) for f in results["data"]["files"])
    assert results["predictions"]["sha256"] == sha256(out / "predictions.jsonl")
    assert {"scaleearth-cli", "cshlora", "sseu", "geoscale-vqa", "geoscale_vqa"} <= set(results["code_version"])
    if (REPO / ".git").exists():
        assert len(results["code_version"]["git_commit"]) == 40

    # The numbers in results.json are the library's score of the predictions file eval wrote.
    rescored = score(kind, data, out / "predictions.jsonl", tmp_path / "rescored", images=images, parser=parser)
    assert rescored["metrics"] == results["metrics"] and rescored["counts"] == results["counts"]
    assert results["parser"] == run["parser"] == parser and results["parsers"] == rescored["parsers"]
    assert run["tiling"] == "none" and all(r["views"] == [1] * len(r["source_widths"]) for r in rows)

    branches = run["gsd"]["branches"]
    if kind in WITHOUT_GSD:  # oracle falls back to the policy and says so
        assert branches["metadata"] == 0 and branches["estimate"] + branches["default"] == len(questions)
        assert f"{len(questions)} of {len(questions)} questions have no benchmark GSD" in run["gsd"]["note"]
        assert "sseu" not in results or results["sseu"] is None
    else:
        assert branches == {"metadata": len(questions), "estimate": 0, "default": 0}
        assert results["sseu"]["metrics"]["n"] >= 1 and (out / "sseu_calibration.png").is_file()


def _lr_copy_with_a_huge_image(bench_fixtures, tmp_path):
    """The RSVQA-LR fixture with image 1 replaced by a 1200 x 900 px GeoTIFF-sized tile (XLRS-like, scaled down)."""
    from PIL import Image

    data = tmp_path / "lr"
    shutil.copytree(bench_fixtures["rsvqa-lr"][1], data)
    Image.new("RGB", (1200, 900), (90, 120, 60)).save(data / "Images_LR" / "1.tif")
    return data


def test_oracle_gate_gets_the_effective_gsd_of_the_resized_image(tmp_path, random_eval_model, bench_fixtures):
    from scaleearth_cli.evaluate import evaluate

    data = _lr_copy_with_a_huge_image(bench_fixtures, tmp_path)
    _, first = next(iter(cshlora.cshlora_layers(random_eval_model.model.vlm)))
    seen = []
    handle = first.register_forward_pre_hook(lambda mod, args: seen.append(mod._scale.clone()))
    try:
        results = evaluate(random_eval_model, "rsvqa", data, tmp_path / "out", batch_size=8, max_new_tokens=2)
    finally:
        handle.remove()
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "out" / "predictions.jsonl")}
    # Qwen's smart_resize with the tiny budget (32x32..64x64 px, multiples of 32): 1200 x 900 -> 64 x 32
    # (scale sqrt(1200*900/4096) = 16.2, floor(1200/16.2/32)*32 = 64); the 16 px tiles go up to 32 px.
    for qid in (2, 3, 4, 5):  # questions about image 1
        assert rows[qid]["source_widths"] == [1200] and rows[qid]["input_widths"] == [64]
        assert rows[qid]["gate_gsd_m"] == pytest.approx(10.0 * 1200 / 64, rel=1e-5)
    for qid in (8, 9, 10):  # image 3
        assert rows[qid]["input_widths"] == [32] and rows[qid]["gate_gsd_m"] == pytest.approx(5.0, rel=1e-5)
    resize = results["run"]["resize"]
    assert resize["source_width_px"] == [16, 1200] and resize["downscaled"] == 4 and resize["upscaled"] == 3
    # What the LLM's projections actually received during prefill (one call per layer, per step).
    expected = torch.tensor([math.log10(rows[q]["gate_gsd_m"]) for q in sorted(rows)])
    torch.testing.assert_close(seen[0].float(), expected.float())


def test_tiling_gives_the_gate_the_effective_gsd_of_each_tile(tmp_path, random_eval_model, bench_fixtures):
    from scaleearth_cli.evaluate import evaluate

    data = _lr_copy_with_a_huge_image(bench_fixtures, tmp_path)
    _, first = next(iter(cshlora.cshlora_layers(random_eval_model.model.vlm)))
    seen = []
    handle = first.register_forward_pre_hook(lambda mod, args: seen.append(mod._scale.clone()))
    try:
        results = evaluate(random_eval_model, "rsvqa", data, tmp_path / "out", batch_size=8, max_new_tokens=2,
                           tiling="grid:2")  # fmt: skip
    finally:
        handle.remove()
    rows = {r["id"]: r for r in read_jsonl(tmp_path / "out" / "predictions.jsonl")}
    # Image 1 (1200 x 900 px, over the 64 x 64 px budget) becomes 4 tiles of 600 x 450 px; smart_resize maps
    # each to 64 x 32 px (scale sqrt(600*450/4096) = 8.12; floor(600/8.12/32)*32 = 64). Effective GSD of each
    # tile: 10 m * 600 / 64 = 93.75 m, where the whole image downscaled would be 10 * 1200 / 64 = 187.5 m.
    tile_gsd = 10.0 * 600 / 64
    for qid in (2, 3, 4, 5):
        row = rows[qid]
        assert row["views"] == [4] and row["source_widths"] == [600] * 4 and row["input_widths"] == [64] * 4
        assert row["resize"] == ["downscaled"] * 4
        assert row["view_effective_gsd_m"] == pytest.approx([tile_gsd] * 4)
        assert row["effective_gsd_m"] == pytest.approx(tile_gsd) and row["gate_gsd_m"] == pytest.approx(tile_gsd)
    for qid in (8, 9, 10):  # image 3 is within the budget: never tiled, 16 px -> 32 px, 5 m
        assert rows[qid]["views"] == [1] and rows[qid]["resize"] == ["upscaled"]
        assert rows[qid]["gate_gsd_m"] == pytest.approx(5.0, rel=1e-5)
    run = results["run"]
    assert run["tiling"] == "grid:2"
    assert (run["resize"]["question_images"], run["resize"]["tiled_images"], run["resize"]["views"]) == (7, 4, 19)
    expected = torch.tensor([math.log10(rows[q]["gate_gsd_m"]) for q in sorted(rows)])
    torch.testing.assert_close(seen[0].float(), expected.float())


@pytest.mark.parametrize("bad", ["grid", "grid:1", "grid:9", "tiles:2", "grid:x"])
def test_bad_tiling_is_rejected(bad, tmp_path, bench_fixtures):
    from scaleearth_cli.inference import Tiling

    with pytest.raises(ValueError, match="tiling must be none | grid:N"):
        Tiling.parse(bad)
    kind, data, _ = bench_fixtures["rsvqa-lr"]
    result = CliRunner().invoke(app, ["eval", "--bench", kind, "--data", data, "--model", "m", "--out", str(tmp_path),
                                      "--tiling", bad])  # fmt: skip
    assert result.exit_code == 2 and "tiling" in result.output
    assert str(Tiling.parse("grid:3")) == "grid:3" and str(Tiling.parse("none")) == "none"


def _eval_rows(em, bench_fixtures, tmp_path, layout, source, **kw):
    from scaleearth_cli.evaluate import evaluate

    kind, data, images = bench_fixtures[layout]
    out = tmp_path / f"{layout}-{source.replace(':', '_')}-{kw.get('seed', 0)}"
    results = evaluate(em, kind, data, out, gsd_source=source, images=images, max_new_tokens=2, **kw)
    return results, read_jsonl(out / "predictions.jsonl")


def test_gsd_sources_drive_the_gate_as_documented(tmp_path, random_eval_model, bench_fixtures):
    from sseu import perturb_log10_gsd

    em, lr = random_eval_model, "rsvqa-lr"
    _, oracle = _eval_rows(em, bench_fixtures, tmp_path, lr, "oracle")
    assert {r["branch"] for r in oracle} == {"metadata"} and all(r["gate_gsd_m"] == pytest.approx(5.0) for r in oracle)

    results, none = _eval_rows(em, bench_fixtures, tmp_path, lr, "none")
    assert {r["branch"] for r in none} == {"default"} and all(r["gate_gsd_m"] == pytest.approx(10.0) for r in none)
    assert results["run"]["gsd_source"] == "none"

    results, fixed = _eval_rows(em, bench_fixtures, tmp_path, lr, "fixed:2", limit=4)
    assert {r["branch"] for r in fixed} == {"metadata"} and all(r["gate_gsd_m"] == pytest.approx(2.0) for r in fixed)
    assert len(fixed) == 4 and results["counts"]["questions"] == 4 and results["counts"]["missing"] == 0
    assert "limited to the first 4 of 7 questions" in results["notes"] and results["run"]["limit"] == 4

    _, predicted = _eval_rows(em, bench_fixtures, tmp_path, lr, "predicted")
    assert {r["branch"] for r in predicted} == {"estimate"}
    assert all(r["gate_gsd_m"] == pytest.approx(HEAD_GSD_M, rel=1e-5) for r in predicted)

    # noisy: oracle + one N(0, 0.3²) draw per question, from the seed, whatever the batch size.
    _, noisy = _eval_rows(em, bench_fixtures, tmp_path, lr, "noisy:0.3", seed=7, batch_size=3)
    _, again = _eval_rows(em, bench_fixtures, tmp_path / "again", lr, "noisy:0.3", seed=7, batch_size=5)
    noise = perturb_log10_gsd(torch.zeros(len(noisy), dtype=torch.float64), 0.3, seed=7).tolist()
    got = [math.log10(r["gate_gsd_m"] / r["effective_gsd_m"]) for r in noisy]
    assert got == pytest.approx(noise, abs=1e-5)
    assert [r["gate_gsd_m"] for r in again] == [r["gate_gsd_m"] for r in noisy]

    # XLRS carries no GSD: oracle falls back to the SSE-U estimate (narrow head -> "estimate").
    results, xlrs = _eval_rows(em, bench_fixtures, tmp_path, "xlrs-jsonl", "oracle")
    assert results["run"]["gsd"]["branches"] == {"metadata": 0, "estimate": len(xlrs), "default": 0}
    assert all(r["effective_gsd_m"] is None and r["gate_gsd_m"] == pytest.approx(HEAD_GSD_M, rel=1e-5) for r in xlrs)


def test_sseu_report_against_hand_computed_errors(tmp_path, random_eval_model, bench_fixtures):
    results, rows = _eval_rows(random_eval_model, bench_fixtures, tmp_path, "rsvqa-lr", "oracle")
    report = results["sseu"]
    # Two distinct images (1, 3), each 16 px -> 32 px: true effective GSD 5 m; the head says 3 m ± 0.05 dec.
    assert report["images"] == 2
    metrics = report["metrics"]
    assert metrics["mae_log10"] == pytest.approx(math.log10(5.0 / HEAD_GSD_M), rel=1e-4)
    assert metrics["mae_m"] == pytest.approx(2.0, rel=1e-4)
    assert metrics["coverage_95"] == 0.0  # 0.22 decades off, the 95 % half-width is 1.96 * 0.05 = 0.098
    assert metrics["mean_std_log10"] == pytest.approx(HEAD_STD_LOG10, rel=1e-3)
    assert report["policy_without_metadata"] == {"metadata": 0.0, "estimate": 1.0, "default": 0.0}
    png = tmp_path / "rsvqa-lr-oracle-0" / "sseu_calibration.png"
    assert report["calibration_plot"] == str(png) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("bad", ["bogus", "noisy:-1", "fixed:0", "fixed:abc", "noisy"])
def test_bad_gsd_source_is_rejected(bad, tmp_path, bench_fixtures):
    from scaleearth_cli.scale import GateSource

    with pytest.raises(ValueError):
        GateSource.parse(bad)
    kind, data, _ = bench_fixtures["rsvqa-lr"]
    result = CliRunner().invoke(app, ["eval", "--bench", kind, "--data", data, "--model", "m", "--out", str(tmp_path),
                                      "--gsd-source", bad])  # fmt: skip
    assert result.exit_code == 2 and "gsd-source" in result.output


def test_predicted_needs_an_sseu_head(tmp_path, tiny_model_dir, bench_fixtures):
    kind, data, _ = bench_fixtures["rsvqa-lr"]
    args = ["eval", "--bench", kind, "--data", data, "--model", str(tiny_model_dir), "--out", str(tmp_path),
            "--gsd-source", "predicted", "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "needs an adapter run with an SSE-U head" in result.output


@pytest.mark.parametrize("command", ["eval", "score", "spoof", "predict"])
def test_every_eval_command_help_has_an_example(command):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and f"uv run scaleearth {command}" in result.output


class _RecordingProcessor:
    """The real processor, remembering the chat texts it is given."""

    def __init__(self, processor):
        self.processor, self.texts = processor, []

    def __call__(self, *, text, **kwargs):
        self.texts += text
        return self.processor(text=text, **kwargs)

    def __getattr__(self, name):
        return getattr(self.processor, name)


def test_gsd_token_adapter_reads_the_effective_gsd_as_text(tmp_path, random_eval_model, random_run, bench_fixtures):
    import dataclasses

    from scaleearth_cli.inference import AdapterRun

    (tmp_path / "run").mkdir()
    shutil.copytree(random_run / "final", tmp_path / "run" / "final")
    (tmp_path / "run" / "config.yaml").write_text("adapter: gsd-token\nstage: 2\n")
    found = AdapterRun.find(tmp_path / "run")
    assert found.kind == "gsd-token" and found.adapter_dir == tmp_path / "run" / "final" / "adapter"

    spy = _RecordingProcessor(random_eval_model.processor)
    em = dataclasses.replace(random_eval_model, adapter=found, processor=spy)
    _eval_rows(em, bench_fixtures, tmp_path, "rsvqa-lr", "oracle")
    assert spy.texts and all("Ground sampling distance: 5 m per pixel.\n" in t for t in spy.texts)
    spy.texts.clear()
    _eval_rows(em, bench_fixtures, tmp_path, "rsvqa-lr", "none")
    assert spy.texts and not any("Ground sampling distance" in t for t in spy.texts)
    with pytest.raises(ValueError, match="gsd-token"):
        _eval_rows(em, bench_fixtures, tmp_path, "rsvqa-lr", "predicted")
