"""Run configuration (YAML + flags, validation) and the non-finite-step guard."""

import dataclasses
import json

import pytest
import torch
from scaleearth_train_testutil import train_config
from typer.testing import CliRunner

from scaleearth_cli.cli import app
from scaleearth_cli.config import ConfigError, load_config
from scaleearth_cli.scale import GateSource


def test_flags_override_the_file_and_defaults_fill_the_rest(tmp_path):
    (tmp_path / "run.yaml").write_text("stage: 2\nmax-steps: 7\nlr: 0.001\nadapter: bucketed\n")
    cfg = load_config(tmp_path / "run.yaml", {"lr": 0.01, "adapter": None})
    assert (cfg.max_steps, cfg.lr, cfg.adapter, cfg.r) == (7, 0.01, "bucketed", 64)
    assert cfg.resolved_quantize == "nf4" and load_config(None, {"stage": 1}).resolved_quantize == "none"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"adapter": "dora"}, "adapter"),
        ({"gate_gsd": "mixed:1.5"}, "gate_gsd: mixed:1.5 needs a finite P in"),
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
    assert GateSource.parse("mixed:0.25") == GateSource("mixed", 0.25)
    assert load_config(None, {"gate_gsd": "noisy:0.3"}).gate_gsd == "noisy:0.3"
    with pytest.raises(ConfigError, match="gate_gsd: mixed:2 needs a finite P in"):
        load_config(None, {"gate_gsd": "mixed:2"})


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


YAML_CASES = [
    ("r: abc", "r: expected an integer, got 'abc'"),
    ("r: 2.5", "r: expected an integer, got 2.5"),
    ("lr: abc", "lr: expected a number, got 'abc'"),
    ('batch_size: "2"', "batch_size: expected an integer, got '2'"),
    ("gate_gsd: 5", "gate_gsd: expected oracle, predicted, mixed:P, noisy:SIGMA, fixed:METRES or none"),
    ("resume: 5", "resume: expected 'none', 'auto' or a checkpoint folder, got 5"),
    ("r: [1, 2", "is not valid YAML: expected ',' or ']'"),
    ("sources: llava", "sources: expected a list of source names, e.g. [llava]"),
    ('progress: "no"', "progress: expected true or false, got 'no'"),
    ('bf16: "maybe"', "bf16: expected true or false, got 'maybe'"),
    ("max_turns: [4]", "max_turns: expected an integer, got [4]"),
    ("extra: 5", "unknown config keys: extra"),
    ("- r\n- 8", "must hold a mapping"),
    ("1: 2", "config keys must be names, got 1"),
    ("stage: '2'", "stage: expected an integer, got '2'"),
    ("alpha: .nan", "alpha: must be a positive number, got nan"),
]


@pytest.mark.parametrize("text, message", YAML_CASES)
def test_yaml_values_are_type_checked_with_key_value_and_expectation(tmp_path, text, message):
    (tmp_path / "run.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "run.yaml", {})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_yaml_number_spellings_that_yaml_1_1_reads_as_text_are_numbers(tmp_path):
    (tmp_path / "run.yaml").write_text("lr: 1e-4\nsseu_lr: 3E-3\nalpha: 16\nsources: [llava]\nbf16: no\n")
    cfg = load_config(tmp_path / "run.yaml", {})
    assert (cfg.lr, cfg.sseu_lr, cfg.alpha, cfg.sources, cfg.bf16) == (1e-4, 3e-3, 16, ["llava"], False)


@pytest.mark.parametrize("text, message", YAML_CASES[:4] + YAML_CASES[6:8])
def test_cli_reports_a_bad_config_file_in_one_line(tmp_path, text, message):
    (tmp_path / "run.yaml").write_text(text + "\n")
    result = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "run.yaml"), "--data", str(tmp_path),
                                      "--out", str(tmp_path / "o")])  # fmt: skip
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0]
    assert not (tmp_path / "o").exists()


def test_adapter_kinds_are_one_table():
    from scaleearth_cli.adapters import ADAPTER_KINDS, adapter_kind, kind_of_gate
    from scaleearth_cli.modeling import adapter_config

    assert list(ADAPTER_KINDS) == ["cshlora", "lora", "gsd-token", "bucketed"]
    for name, kind in ADAPTER_KINDS.items():
        assert adapter_config(name, r=8, alpha=16).gate == kind.gate
        assert kind_of_gate(kind.gate).name == ("lora" if kind.gsd_in_prompt else name)
        load_config(None, {"adapter": name})  # the config accepts every kind
    assert [k.name for k in ADAPTER_KINDS.values() if k.gsd_in_prompt] == ["gsd-token"]
    with pytest.raises(ValueError, match="adapter must be one of cshlora, lora, gsd-token, bucketed"):
        adapter_kind("dora")


def _cli_config(monkeypatch, tmp_path, *args):
    """The TrainConfig `scaleearth train ARGS` would run with (training itself replaced by a recorder)."""
    import scaleearth_cli.cli as cli
    import scaleearth_cli.train as train_module

    seen = {}

    class Done:
        steps, skipped_steps, final_dir, merged_dir = 0, 0, tmp_path, None

    monkeypatch.setattr(cli, "_check_corpus", lambda cfg: None)
    monkeypatch.setattr(train_module, "train", lambda cfg, console=None: seen.setdefault("cfg", cfg) and Done())
    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), *args])
    return result, seen.get("cfg")


def test_every_key_is_settable_as_key_value_and_flags_win(monkeypatch, tmp_path):
    result, cfg = _cli_config(monkeypatch, tmp_path, "beta=0.3", "sseu_lr=1e-3", "bf16=false", "weight-decay=0.01",
                              "--lora-rank", "16", "--alpha", "8", "lr=0.5", "--lr", "0.01")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (cfg.beta, cfg.sseu_lr, cfg.bf16, cfg.weight_decay) == (0.3, 1e-3, False, 0.01)
    assert (cfg.r, cfg.alpha, cfg.lr) == (16, 8.0, 0.01)  # --lora-rank, the --alpha alias, the flag over KEY=VALUE
    _, cfg = _cli_config(monkeypatch, tmp_path, "--r", "4", "--lora-alpha", "2", "device=cuda:1")
    assert (cfg.r, cfg.alpha, cfg.device) == (4, 2.0, "cuda:1")


@pytest.mark.parametrize(
    "args, message",
    [(["beta"], "KEY=VALUE"), (["colour=red"], "unknown config keys: colour"), (["device=cuda:x"], "cuda:N"),
     (["beta=abc"], "beta: expected a number")],
)  # fmt: skip
def test_bad_key_values_are_one_line_and_exit_2(monkeypatch, tmp_path, args, message):
    result, cfg = _cli_config(monkeypatch, tmp_path, *args)
    assert result.exit_code == 2 and cfg is None
    assert message in " ".join(result.output.split())


def test_help_lists_every_key_with_its_default():
    from scaleearth_cli.config import TrainConfig

    text = " ".join(CliRunner().invoke(app, ["train", "--help"]).output.replace("│", " ").split())
    for f in dataclasses.fields(TrainConfig):
        assert f"{f.name}=" in text.replace(" ", "") or f"{f.name}=" in text, f.name
    assert "--lora-rank" in text and "--lora-alpha" in text


def test_every_train_flag_is_a_config_key():
    """The flags are TrainConfig keys of the same name, so nothing copies them field by field."""
    import inspect

    from scaleearth_cli.cli import train
    from scaleearth_cli.config import TrainConfig

    names = set(inspect.signature(train).parameters) - {"config", "settings"}
    assert names <= {f.name for f in dataclasses.fields(TrainConfig)}, names - {
        f.name for f in dataclasses.fields(TrainConfig)
    }
