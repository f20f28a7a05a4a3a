"""`scaleearth ablate` in a reduced form: every row trained and evaluated, the table file and the spoofing plot."""

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from scaleearth_cli.cli import app

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[3]
DEFAULT_CONFIG = REPO / "configs" / "ablate.yaml"
ROWS = [
    "Stage-1 only",
    "+ LoRA (B2)",
    "+ LoRA + GSD token",
    "+ bucketed MoE-LoRA (B4)",
    "+ CS-HLoRA, oracle GSD",
    "+ CS-HLoRA, train oracle / eval SSE-U",
    "+ CS-HLoRA, SSE-U in training and eval",
    "+ CS-HLoRA, noisy GSD σ = 0.3 dec.",
    "+ CS-HLoRA, noisy GSD σ = 1 dec.",
]


def reduced_config(tmp_path, tiny_model_dir, **changes) -> Path:
    """The default config with a tiny budget: same rows, one seed, few steps and questions."""
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
    cfg.update(out=str(tmp_path / "ablate"), device="cpu", seeds=[0], model=str(tiny_model_dir))
    cfg["synthetic"].update(scenes=40, stage1_images=8, spoof_scenes=3)
    cfg["stage1"].update(max_steps=2, full_finetune=True, merge=True, r=8, alpha=16, sources=["llava"],
                         gradient_checkpointing=False, max_length=512)  # fmt: skip
    cfg["stage2"].update(max_steps=2, quantize="none", gradient_checkpointing=False, max_length=512)
    cfg["eval"].update(limit=6)
    cfg["spoof"].update(points=3, limit=4)
    cfg.update(changes)
    path = tmp_path / "ablate.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


@pytest.mark.slow
def test_reduced_ablation_writes_a_row_per_configuration(tmp_path, tiny_model_dir):
    config = reduced_config(tmp_path, tiny_model_dir)
    result = CliRunner().invoke(app, ["ablate", "--config", str(config)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "ablate"
    table = (out / "ablation.md").read_text()
    main_table = table.split("\n\n")[-2]  # the header paragraph, the main table, the per-type table
    lines = [line for line in main_table.splitlines() if line.startswith("| ")][2:]  # after the header and the rule
    assert [line.split(" | ")[0][2:] for line in lines] == ["Blind prior (no image)", *ROWS]
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[3] == "1" and cells[4] == "6"  # one seed, six questions each
        assert re.fullmatch(r"\d+\.\d", cells[5]) and re.fullmatch(r"\d+\.\d", cells[9])  # accuracy, tier mean
        if cells[0] != "+ LoRA (B2)":
            assert re.fullmatch(r"[-+]\d+\.\d \[[-+]\d+\.\d, [-+]\d+\.\d\]", cells[7])  # paired Δ vs B2
            assert re.fullmatch(r"\d\.\d{3}( \*)?", cells[8])  # its p-value

    assert "| question type | n | prior % |" in table
    values = json.loads((out / "ablation.json").read_text())
    assert {v["row"] for v in values["rows"]} == set(ROWS) and len(values["rows"]) == len(ROWS)
    assert all(0 <= v["accuracy"] <= 1 for v in values["rows"])
    # five Stage-2 trainings per seed (B2, GSD token, B4, CS-HLoRA oracle, CS-HLoRA predicted), one Stage 1
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "bucketed-oracle-seed0", "cshlora-oracle-seed0", "cshlora-predicted-seed0", "gsd-token-oracle-seed0",
        "lora-oracle-seed0",
    ]  # fmt: skip
    assert yaml.safe_load((out / "runs" / "cshlora-predicted-seed0" / "config.yaml").read_text())["gate_gsd"] == (
        "predicted"
    )
    noisy = json.loads((out / "evals" / "cshlora-train-oracle-eval-noisy1-seed0" / "results.json").read_text())
    assert noisy["run"]["gsd_source"] == "noisy:1"
    assert (out / "spoof_b4_vs_cshlora.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(values["spoof_accuracy"]) == {"B4 (bucketed)", "CS-HLoRA"}
    assert "| + CS-HLoRA, oracle GSD |" in result.output


def test_bad_ablation_configs_fail_before_any_work(tmp_path, tiny_model_dir):
    runner = CliRunner()
    for changes, message in (
        ({"seeds": []}, "seeds"),
        ({"noise_sigmas": [0]}, "noise_sigmas"),
        ({"colour": "red"}, "unknown config keys: colour"),
        ({"data": str(tmp_path)}, "spoof_data"),
        ({"stage2": {"adapter_kind": "x"}}, "unknown config keys: adapter_kind"),
        ({"eval": {"split": "train"}}, "eval.split"),
    ):
        result = runner.invoke(app, ["ablate", "--config", str(reduced_config(tmp_path, tiny_model_dir, **changes))])
        assert result.exit_code == 2 and message in " ".join(result.output.replace("│", " ").split()), result.output
        assert not (tmp_path / "ablate").exists()
    assert "Example" in runner.invoke(app, ["ablate", "--help"]).output


def test_the_default_config_loads_with_every_row():
    from scaleearth_cli.ablate import ablation_rows, load_ablation_config

    cfg = load_ablation_config(DEFAULT_CONFIG)
    assert len(cfg.seeds) >= 5 and cfg.model == "tiny" and cfg.data is None
    assert [r.name for r in ablation_rows(cfg.noise_sigmas)] == ROWS
    quick = load_ablation_config(DEFAULT_CONFIG, quick=True)
    assert quick.seeds == [0, 1] and quick.train_config(2, data="-", out="-", model="-").max_steps == 300
    assert quick.train_config(2, data="-", out="-", model="-").r == cfg.train_config(2, data="-", out="-", model="-").r


def test_eval_result_reads_the_keys_once():
    from scaleearth_cli.results import EvalResult

    raw = {
        "counts": {"questions": 3},
        "metrics": {"overall": 2 / 3, "tier_mean": 0.5},
        "groups": {"tier": {"object": {"n": 2, "accuracy": 0.5}}, "type": {"count": {"n": 3, "accuracy": 2 / 3}}},
        "blind_prior": {"metrics": {"overall": 1 / 3, "tier_mean": 0.25}, "definition": "most frequent",
                        "groups": {"type": {"count": {"n": 3, "accuracy": 1 / 3}}}},
        "run": {"gsd": {"branches": {"metadata": 3}, "note": ""}},
        "sseu": {"metrics": {"mae_log10": 0.2, "coverage_90": 0.9}, "calibration_plot": "p.png"},
    }  # fmt: skip
    r = EvalResult.from_dict(raw)
    assert (r.questions, r.scores.accuracy, r.scores.tiers, r.scores.types) == (3, 2 / 3, {"object": 0.5},
                                                                               {"count": (3, 2 / 3)})  # fmt: skip
    assert r.prior.accuracy == 1 / 3 and r.prior_definition == "most frequent"
    assert r.sseu.mae_log10 == 0.2 and str(r.sseu.calibration_plot) == "p.png" and r.branches == {"metadata": 3}
    xlrs = EvalResult.from_dict({"counts": {"questions": 1}, "metrics": {"micro": 1.0}})
    assert xlrs.scores is None and xlrs.prior is None and xlrs.sseu is None
