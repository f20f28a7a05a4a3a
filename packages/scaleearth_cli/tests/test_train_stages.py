"""Stage 1 then Stage 2 on the tiny model through the CLI: loss falls, outputs saved, reloaded identically."""

import json

import pytest
import torch
from scaleearth_train_testutil import first_batches
from typer.testing import CliRunner

import cshlora
from scaleearth_cli.cli import app

pytest.importorskip("transformers")


def _mean_lm_loss(model, batches):
    with torch.no_grad():
        return sum(model(b).lm_loss.item() for b in batches) / len(batches)


@pytest.mark.slow
def test_stage1_merge_then_stage2_end_to_end(tmp_path, tiny_model_dir, train_corpus):
    from scaleearth_cli.modeling import ScaleEarthVLM, load_vlm
    from sseu import load_head

    runner = CliRunner()
    s1 = runner.invoke(app, [
        "train", "--stage", "1", "--data", str(train_corpus), "--model", str(tiny_model_dir),
        "--out", str(tmp_path / "s1"), "--r", "8", "--alpha", "16", "--max-steps", "12", "--batch-size", "4",
        "--lr", "3e-3", "--log-every", "4", "--merge", "--no-progress",
    ])  # fmt: skip
    assert s1.exit_code == 0, s1.output
    merged = tmp_path / "s1" / "merged"
    assert (merged / "model.safetensors").is_file() and "merged Stage-1 model" in s1.output

    # Stage 1 learnt its instruction data: the merged model beats the base on the same batches.
    base, processor = load_vlm(str(tiny_model_dir))
    stage1, _ = load_vlm(str(merged))
    llava = first_batches(processor, train_corpus, 3, sources="llava")
    before, after = _mean_lm_loss(ScaleEarthVLM(base), llava), _mean_lm_loss(ScaleEarthVLM(stage1), llava)
    assert after < before - 0.3, (before, after)

    (tmp_path / "run.yaml").write_text(
        "stage: 2\nadapter: cshlora\nr: 8\nalpha: 16\nbatch_size: 4\nmax_steps: 2\nlr: 0.003\nsseu_lr: 0.01\n"
        "log_every: 5\nmax_turns: 2\nsources: [synthetic]\n"
    )
    s2 = runner.invoke(app, [
        "train", "--config", str(tmp_path / "run.yaml"), "--data", str(train_corpus), "--model", str(merged),
        "--out", str(tmp_path / "s2"), "--max-steps", "14", "--no-progress",
    ])  # fmt: skip
    assert s2.exit_code == 0, s2.output
    resolved = (tmp_path / "s2" / "config.yaml").read_text()
    assert "max_steps: 14" in resolved and "adapter: cshlora" in resolved  # flag beat the file, file beat defaults
    rows = [json.loads(line) for line in (tmp_path / "s2" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 15))
    assert all(r["gsd_nll"] != 0 and r["tokens_per_s"] > 0 for r in rows)

    final = tmp_path / "s2" / "final"
    # Reload: the Stage-1 model in NF4 (as trained), the saved adapter, the saved head.
    reloaded_vlm, _ = load_vlm(str(merged), quantize="nf4")
    cshlora.load_adapter(reloaded_vlm, final / "adapter")
    reloaded = ScaleEarthVLM(reloaded_vlm, load_head(final / "sseu_head.safetensors")).eval()
    fresh_vlm, _ = load_vlm(str(merged), quantize="nf4")
    cshlora.inject(fresh_vlm, cshlora.load_adapter_config(final / "adapter"))
    untrained = ScaleEarthVLM(fresh_vlm, load_head(final / "sseu_head.safetensors")).eval()

    synthetic = first_batches(processor, train_corpus, 3, sources="synthetic")
    assert _mean_lm_loss(reloaded, synthetic) < _mean_lm_loss(untrained, synthetic) - 0.05
    assert any(layer.lora_B.abs().sum() > 0 for _, layer in cshlora.cshlora_layers(reloaded_vlm))
