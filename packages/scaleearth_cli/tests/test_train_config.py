"""Run configuration (YAML + flags, validation) and the non-finite-step guard."""

import json

import pytest
import torch
from scaleearth_train_testutil import train_config
from typer.testing import CliRunner

from scaleearth_cli.cli import app
from scaleearth_cli.config import ConfigError, GateGSD, load_config


def test_flags_override_the_file_and_defaults_fill_the_rest(tmp_path):
    (tmp_path / "run.yaml").write_text("stage: 2\nmax-steps: 7\nlr: 0.001\nadapter: bucketed\n")
    cfg = load_config(tmp_path / "run.yaml", {"lr": 0.01, "adapter": None})
    assert (cfg.max_steps, cfg.lr, cfg.adapter, cfg.r) == (7, 0.01, "bucketed", 64)
    assert cfg.resolved_quantize == "nf4" and load_config(None, {"stage": 1}).resolved_quantize == "none"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"adapter": "dora"}, "adapter"),
        ({"gate_gsd": "mixed:1.5"}, "mixed:P"),
        ({"gate_gsd": "guess"}, "gate_gsd"),
        ({"adapter": "gsd-token", "gate_gsd": "predicted"}, "gsd-token"),
        ({"stage": 3}, "stage"),
        ({"merge": True, "stage": 2}, "merge"),
        ({"max_steps": 0}, "max_steps"),
        ({"learning_rate": 1.0}, "unknown config keys: learning_rate"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(values, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, values)


def test_gate_gsd_parsing():
    assert GateGSD.parse("mixed:0.25") == GateGSD("mixed", 0.25)
    assert GateGSD.parse("predicted").p_predicted == 1.0


def test_cli_refuses_bad_flags_before_loading_anything(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--adapter", "x"])
    assert result.exit_code == 2 and "adapter" in result.output
    missing = runner.invoke(app, ["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    flat = " ".join(missing.output.replace("│", " ").split())
    assert missing.exit_code == 2 and "does not exist" in flat
    assert not (tmp_path / "o").exists()
    assert "Example" in runner.invoke(app, ["train", "--help"]).output


def test_non_finite_steps_are_skipped_then_training_stops(tmp_path, monkeypatch, tiny_model_dir, train_corpus):
    pytest.importorskip("transformers")
    from scaleearth_cli import modeling
    from scaleearth_cli.train import TrainingError, train

    real_forward = modeling.ScaleEarthVLM.forward
    poisoned_steps = {1, 3, 4}

    def forward(self, batch, step=0):
        out = real_forward(self, batch, step)
        if step in poisoned_steps:
            out.lm_loss = out.lm_loss * torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(modeling.ScaleEarthVLM, "forward", forward)
    common = dict(stage=2, data=str(train_corpus), model=str(tiny_model_dir), quantize="none", sources=["synthetic"])
    result = train(train_config(**common, out=str(tmp_path / "a"), max_steps=4, max_bad_steps=3))
    rows = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert result.skipped_steps == 2 and [r["skipped"] for r in rows] == [False, True, False, True]

    with pytest.raises(TrainingError, match="3 steps had a non-finite loss"):
        train(train_config(**common, out=str(tmp_path / "b"), max_steps=6, max_bad_steps=2))
