"""CS-HLoRA at fixed GSDs exported as standard LoRA: plain PEFT loads each adapter and reproduces CS-HLoRA at
that GSD (a tiny Qwen2, not the project's model); the index picks the nearest grid GSD in log10."""

import json
import math

import pytest
import torch
from hf_testutil import tiny_qwen2

import cshlora

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")


def _qwen2():
    return tiny_qwen2()


IDS = torch.randint(1, 64, (2, 9), generator=torch.Generator().manual_seed(4))


@pytest.fixture(params=["continuous", "bucketed", "none"])
def adapted(request):
    model = cshlora.inject(_qwen2(), cshlora.CSHLoRAConfig(r=8, alpha=16, gate=request.param))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for _, layer in cshlora.cshlora_layers(model):
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen) * 0.3)
            if request.param == "continuous":  # thresholds spread over the grid, so the GSD matters
                layer.tau.copy_(torch.linspace(-1.5, 2.5, 8))
    return model


@pytest.mark.parametrize("gsd_m", [0.1, 1.0, 30.0])
def test_plain_peft_reproduces_cshlora_at_the_exported_gsd(adapted, gsd_m, tmp_path):
    cshlora.set_gsd(adapted, gsd_m)
    with torch.no_grad():
        expected = adapted(IDS).logits
    cshlora.export_lora(adapted, math.log10(gsd_m), tmp_path / "lora")
    loaded = peft.PeftModel.from_pretrained(_qwen2(), str(tmp_path / "lora")).eval()
    with torch.no_grad():
        got = loaded(IDS).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad(), loaded.disable_adapter():
        base = loaded(IDS).logits
    assert not torch.allclose(base, expected, atol=1e-3)  # the adapter is really applied


def test_the_exports_differ_where_the_gate_does(adapted, tmp_path):
    index = cshlora.read_export_index(cshlora.export_lora_grid(adapted, [0.1, 100.0], tmp_path))
    fine, coarse = (
        peft.PeftModel.from_pretrained(_qwen2(), str(tmp_path / e["name"])).eval() for e in index["adapters"]
    )
    with torch.no_grad():
        same = torch.allclose(fine(IDS).logits, coarse(IDS).logits, atol=1e-4)
    assert same == (adapted.cshlora_config.gate == "none")  # an ungated adapter is the same at every GSD


def test_index_ranges_and_the_nearest_adapter(adapted, tmp_path):
    path = cshlora.export_lora_grid(adapted, [10, 0.1, 1, 100], tmp_path)
    index = json.loads(path.read_text())
    names = [e["name"] for e in index["adapters"]]
    assert names == ["gsd_0.1m", "gsd_1m", "gsd_10m", "gsd_100m"]
    assert [e["from_log10_gsd"] for e in index["adapters"]] == [None, -0.5, 0.5, 1.5]
    assert [e["to_log10_gsd"] for e in index["adapters"]] == [-0.5, 0.5, 1.5, None]
    pick = lambda g: cshlora.adapter_for_gsd(index, g)  # noqa: E731
    assert pick(0.01) == "gsd_0.1m" and pick(5000) == "gsd_100m"
    assert pick(0.3) == "gsd_0.1m" and pick(0.32) == "gsd_1m"  # log10 0.3 = -0.52, 0.32 = -0.49
    assert pick(math.sqrt(10)) == "gsd_1m"  # exactly half-way in log10: the finer one
    for bad in (0, -1.0, float("nan"), "3"):
        with pytest.raises(ValueError, match="gsd_m"):
            pick(bad)
    for folder in names:
        cfg = json.loads((tmp_path / folder / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA" and cfg["r"] == 8 and cfg["lora_alpha"] == 16


def test_export_refuses_what_it_cannot_do_exactly(adapted, tmp_path):
    with pytest.raises(ValueError, match="GSD grid"):
        cshlora.export_lora_grid(adapted, [0.5, 0.0], tmp_path)
    with pytest.raises(ValueError, match="no CS-HLoRA layers|has no CS-HLoRA"):
        cshlora.export_lora(_qwen2(), 0.0, tmp_path / "x")
