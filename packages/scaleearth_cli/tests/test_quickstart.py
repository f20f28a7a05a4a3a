"""`scaleearth quickstart` from a fresh folder: every artifact, a table with numbers, and a second run that reuses."""

import json
import math
import re

import pytest
from typer.testing import CliRunner

from scaleearth_cli.cli import app
from scaleearth_cli.recipe import STEP_MARKER

pytest.importorskip("transformers")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ARTIFACTS = [
    "stage1-instructions/data.json",
    "pretraining-captions/data.json",
    "pretraining-corpus/manifest.json",
    "pretrain/merged/model.safetensors",
    "corpus/manifest.json",
    "spoof-set/manifest.json",
    "tiny-qwen3-vl/model.safetensors",
    "stage1/metrics.jsonl",
    "stage1/merged/model.safetensors",
    "stage2/final/adapter",
    "sseu/sseu_head.safetensors",
    "sseu/sseu_fit.json",
    "stage2/final/sseu_head.safetensors",
    "sseu-test/sseu_split.json",
    "eval-oracle/results.json",
    "eval-oracle/predictions.jsonl",
    "eval-predicted/results.json",
    "spoof/spoof.csv",
    "summary.json",
]


@pytest.mark.slow
def test_quickstart_builds_everything_then_reuses_it(tmp_path):
    out = tmp_path / "qs"
    budget = ["--pretrain-steps", "3", "--stage1-steps", "3", "--stage2-steps", "3"]
    args = ["quickstart", "--out", str(out), *budget, "--scenes", "40", "--questions", "24", "--device", "cpu"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    for rel in ARTIFACTS:
        assert (out / rel).exists(), rel
    assert len((out / "stage2" / "metrics.jsonl").read_text().splitlines()) == 3  # --stage2-steps reached training

    summary = json.loads((out / "summary.json").read_text())
    assert [r["gsd_source"] for r in summary["evals"]] == ["blind prior (no image)", "oracle", "predicted"]
    assert set(summary["checks"]) == {"beats_prior_by", "types_below_prior", "top_answer_share", "spoof_peak",
                                      "sseu_mae_log10", "sseu_coverage_90"}  # fmt: skip
    assert all(row["prior"] is not None for row in summary["types"].values())
    for row in summary["evals"][1:]:
        assert row["questions"] == 24 and math.isfinite(row["accuracy"]) and 0 <= row["accuracy"] <= 1
        assert math.isfinite(row["sseu_mae_log10"])  # the Stage-2 run has an SSE-U head
    # predicted really hid the metadata from the gate; oracle used it for every question
    assert summary["evals"][1]["gate_branches"]["metadata"] == 24
    assert summary["evals"][2]["gate_branches"]["metadata"] == 0
    assert all(s["status"] == "built" for s in summary["steps"])
    for plot in summary["plots"]:
        assert open(plot, "rb").read(8) == PNG_MAGIC
    flat = "".join(first.output.split())  # Rich wraps at the terminal width
    assert "held-outsyntheticsplit" in flat and "spoof/spoof.png" in flat and "learningtargets" in flat
    # the spoofing set is one GSD: 0.5 m scenes of 96 px, seen unresized by the tiny model
    assert summary["spoof"]["true_gsd_m"] == pytest.approx(0.5)

    stamps = {rel: (out / rel).stat().st_mtime_ns for rel in ARTIFACTS if rel != "summary.json"}
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    again = json.loads((out / "summary.json").read_text())
    assert all(s["status"] == "reused" for s in again["steps"]) and len(again["steps"]) == len(summary["steps"])
    assert {rel: (out / rel).stat().st_mtime_ns for rel in stamps} == stamps  # nothing was rewritten
    assert again["evals"] == summary["evals"]

    # a changed Stage-1 budget retrains Stage 1 and everything after it, but keeps the data and the backbone
    changed = list(args)
    changed[changed.index("--stage1-steps") + 1] = "4"
    third = CliRunner().invoke(app, changed)
    assert third.exit_code == 0, third.output
    status = {s["name"]: s["status"] for s in json.loads((out / "summary.json").read_text())["steps"]}
    assert status["corpus (scale world + Stage-1 instructions)"] == status["tiny Qwen3-VL"] == "reused"
    assert status["backbone pretraining (captions, whole model)"] == "reused"
    rebuilt = ("Stage 1 (SFT, merged)", "SSE-U fit (frozen Stage-1 features, train split)",
               "Stage 2 (CS-HLoRA; SSE-U fixed)", "GSD spoofing", "SSE-U on every test image")  # fmt: skip
    assert {status[name] for name in rebuilt} == {"built"}
    assert len((out / "stage1" / "metrics.jsonl").read_text().splitlines()) == 4


def test_an_interrupted_step_is_rebuilt(tmp_path):
    from scaleearth_cli.recipe import Steps

    calls = []

    def action():
        calls.append(1)
        (tmp_path / "step" / "file").parent.mkdir(exist_ok=True)
        (tmp_path / "step" / "file").write_text("x")

    steps = Steps()
    steps.run("s", tmp_path / "step", {"a": 1}, action)
    (tmp_path / "step" / STEP_MARKER).unlink()  # as if killed before the marker was written
    (tmp_path / "step" / "stale").write_text("left over")
    steps.run("s", tmp_path / "step", {"a": 1}, action)
    steps.run("s", tmp_path / "step", {"a": 1}, action)
    assert len(calls) == 2 and not (tmp_path / "step" / "stale").exists()
    assert [r.status for r in steps.reports] == ["built", "built", "reused"]


def test_a_training_step_ignores_display_settings_but_not_training_ones(tmp_path, monkeypatch):
    """A run with progress bars reuses the same run made without them (an ablation split over processes)."""
    import scaleearth_cli.train as train_module
    from scaleearth_cli.config import TrainConfig
    from scaleearth_cli.recipe import Steps, train_step

    calls = []
    monkeypatch.setattr(train_module, "train", lambda cfg, console=None: calls.append(cfg.progress))
    steps = Steps()
    common = dict(stage=2, data="corpus", model="m", out=str(tmp_path / "run"))
    train_step(steps, "s2", TrainConfig(**common, progress=False), ["x"])
    train_step(steps, "s2", TrainConfig(**common, progress=True), ["x"])
    train_step(steps, "s2", TrainConfig(**common, progress=True, max_steps=7), ["x"])
    assert calls == [False, True] and [r.status for r in steps.reports] == ["built", "reused", "built"]


def test_a_step_made_by_other_code_is_rebuilt(tmp_path, monkeypatch):
    """An upgrade (other package sources) must not reuse a corpus or a model the old code made."""
    import scaleearth_cli.recipe as recipe

    calls = []
    steps = recipe.Steps()
    build = lambda: calls.append(1)  # noqa: E731
    steps.run("s", tmp_path / "step", {"a": 1}, build)
    steps.run("s", tmp_path / "step", {"a": 1}, build)
    monkeypatch.setattr(recipe, "code_digest", lambda: "other code")
    steps.run("s", tmp_path / "step", {"a": 1}, build)
    assert len(calls) == 2 and [r.status for r in steps.reports] == ["built", "reused", "built"]
    assert json.loads((tmp_path / "step" / STEP_MARKER).read_text())["code"] == "other code"


def test_source_digest_changes_with_any_source(tmp_path):
    from scaleearth_cli.recipe import code_digest, source_digest

    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    roots = {"pkg": tmp_path / "pkg"}
    first = source_digest(roots)
    (tmp_path / "pkg" / "sub" / "b.py").write_text("y = 3\n")
    edited = source_digest(roots)
    (tmp_path / "pkg" / "sub" / "b.py").rename(tmp_path / "pkg" / "c.py")
    moved = source_digest(roots)
    (tmp_path / "pkg" / "notes.txt").write_text("not code")
    assert len({first, edited, moved}) == 3 and source_digest(roots) == moved
    assert len(code_digest()) == 16


def test_quickstart_help_and_bad_device():
    runner = CliRunner()
    assert "Example" in runner.invoke(app, ["quickstart", "--help"]).output
    result = runner.invoke(app, ["quickstart", "--device", "tpu"])
    assert result.exit_code == 2 and "device" in result.output


@pytest.mark.slow
def test_a_reduced_quickstart_learns_more_than_its_blind_prior(tmp_path):
    """The budget CI affords (about two minutes): the trained model must beat the prior that never looks."""
    from scaleearth_cli.quickstart import QuickstartConfig, quickstart, summary
    from scaleearth_cli.recipe import SyntheticWorld

    world = SyntheticWorld(scenes=600, stage1_images=60, pretrain_images=600, spoof_scenes=8)
    cfg = QuickstartConfig(
        out=tmp_path / "qs", pretrain_steps=600, stage1_steps=50, stage2_steps=1200, device="cpu", world=world,
        questions=None, spoof_questions=40, spoof_points=5,
    )  # fmt: skip
    data = summary(quickstart(cfg))
    prior, oracle = data["evals"][0], data["evals"][1]
    assert oracle["questions"] > 300
    assert oracle["accuracy"] >= prior["accuracy"] + 0.10, data["types"]
    # the scale-only question type is answered from the gate: far above its 50 % prior
    threshold = data["types"]["gsd_threshold"]
    assert threshold["accuracy"] >= threshold["prior"] + 0.25, threshold


def test_pretraining_captions_count_what_can_be_counted_and_never_state_the_gsd():
    """Digits must be targets before Stage 2 (else counts come out as words), but never the GSD itself."""
    from geoscale_vqa.qa import physics
    from geoscale_vqa.synthetic import make_scene
    from scaleearth_cli.recipe import _caption

    seen_zero = seen_many = False
    for seed in range(40):
        scene = make_scene(seed, 0.6 if seed % 2 else 2.0, 96)
        ((question, caption),) = _caption(scene)
        assert question == "Caption this image."
        assert not re.search(r"\d\s*(m|km|cm)\b|gsd|resolution|metre|meter|pixel", caption.lower()), caption
        for name, n in scene.labels["counts"].items():
            thing = physics.THINGS[name]
            noun = thing.noun if n == 1 else thing.plural
            if physics.can_ask_count(thing, scene.gsd_m, scene.extent_m):
                assert f"{n} {noun}" in caption, (caption, name, n)
                seen_zero |= n == 0
                seen_many |= n > 1
    assert seen_zero and seen_many


def test_devices_take_cuda_n():
    import torch

    from scaleearth_cli.recipe import resolve_device

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda:1 was asked for, but torch sees no GPU"):
            resolve_device("cuda:1")
