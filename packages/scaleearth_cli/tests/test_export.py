"""`scaleearth export`: a Stage-2 run as plain LoRA adapters (and merged models) that reproduce CS-HLoRA at
each grid GSD when loaded by plain PEFT / transformers."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from scaleearth_cli.cli import app

peft = pytest.importorskip("peft")


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


def test_export_cli_writes_exact_lora_adapters_and_merged_models(tmp_path, tiny_model_dir, random_run):
    import cshlora
    from scaleearth_cli.modeling import load_vlm

    out = tmp_path / "served"
    result = CliRunner().invoke(app, ["export", "--adapter", str(random_run), "--model", str(tiny_model_dir),
                                      "--gsd-grid", "30,0.3", "--out", str(out), "--merged"])  # fmt: skip
    assert result.exit_code == 0, result.output
    index = cshlora.read_export_index(out / "lora")
    assert [e["name"] for e in index["adapters"]] == ["gsd_0.3m", "gsd_30m"]
    assert (out / "sseu_head.safetensors").is_file()
    summary = json.loads((out / "export.json").read_text())
    assert summary["gsd_grid_m"] == [0.3, 30.0] and summary["kind"] == "cshlora"

    ids = torch.randint(10, 200, (2, 12), generator=torch.Generator().manual_seed(0))
    reference, _ = load_vlm(str(tiny_model_dir))
    cshlora.load_adapter(reference, random_run / "final" / "adapter")
    outputs = []
    for entry in index["adapters"]:
        cshlora.set_gsd(reference, entry["gsd_m"])
        expected = _logits(reference, ids)
        base, _ = load_vlm(str(tiny_model_dir))
        plain = peft.PeftModel.from_pretrained(base, str(out / "lora" / entry["name"])).eval()
        torch.testing.assert_close(_logits(plain, ids), expected, atol=1e-5, rtol=1e-5)
        merged, _ = load_vlm(str(out / "merged" / entry["name"]))
        torch.testing.assert_close(_logits(merged, ids), expected, atol=1e-4, rtol=1e-4)
        outputs.append(expected)
    assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)  # the two GSDs are different adapters


@pytest.mark.parametrize("grid, message", [("0.3,abc", "comma-separated"), ("0.3,-1", "> 0"), ("1,1", "twice")])
def test_export_refuses_a_bad_grid_before_loading(grid, message, tmp_path, random_run):
    result = CliRunner().invoke(app, ["export", "--adapter", str(random_run), "--model", "nowhere",
                                      "--gsd-grid", grid, "--out", str(tmp_path / "x")])  # fmt: skip
    assert result.exit_code == 2 and message in " ".join(result.output.replace("│", " ").split())
    assert not (tmp_path / "x").exists()


def test_parse_gsd_grid_sorts():
    from scaleearth_cli.export import parse_gsd_grid

    assert parse_gsd_grid("10, 0.1,1") == [0.1, 1.0, 10.0]
    assert math.isclose(parse_gsd_grid("0.15")[0], 0.15)
