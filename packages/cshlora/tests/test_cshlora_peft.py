"""CS-HLoRA used through PEFT: get_peft_model, training flags, save/load, merge_and_unload."""

import copy

import pytest
import torch
from cshlora_test_utils import TinyBlock, randomize_adapter

import cshlora
from cshlora import CSHLoRAConfig

peft = pytest.importorskip("peft")
from cshlora.peft import PeftCSHLoRALinear, cshlora_lora_config, from_pretrained, save_pretrained  # noqa: E402


def peft_model(seed=0, **cfg):
    torch.manual_seed(seed)
    base = TinyBlock()
    pristine = copy.deepcopy(base)
    model = peft.get_peft_model(base, cshlora_lora_config(CSHLoRAConfig(**{"r": 8, "alpha": 16, **cfg})))
    randomize_adapter(model, seed)
    return model, pristine


def test_peft_layer_matches_native_layer():
    model, pristine = peft_model()
    native = cshlora.inject(copy.deepcopy(pristine), CSHLoRAConfig(r=8, alpha=16))
    with torch.no_grad():
        for name, layer in cshlora.cshlora_layers(native):
            p = model.base_model.model.get_submodule(name)
            assert isinstance(p, PeftCSHLoRALinear)
            layer.lora_A.copy_(p.lora_A["default"].weight)
            layer.lora_B.copy_(p.lora_B["default"].weight)
            layer.tau.copy_(p.lora_tau["default"])
            layer.sharpness.copy_(p.lora_sharpness["default"])
    x = torch.randn(3, 4, 16)
    s = torch.tensor([0.0, 1.0, 2.0])
    cshlora.set_scale(model, s)
    cshlora.set_scale(native, s)
    torch.testing.assert_close(model(x), native(x))


def test_peft_trains_gate_parameters():
    model, _ = peft_model()
    kinds = {
        next(part for part in n.split(".") if part.startswith("lora_"))
        for n, p in model.named_parameters()
        if p.requires_grad
    }
    assert kinds == {"lora_A", "lora_B", "lora_tau", "lora_sharpness"}
    cshlora.set_scale(model, torch.tensor([0.5]))
    model(torch.randn(1, 16)).sum().backward()
    assert model.base_model.model.q_proj.lora_tau["default"].grad is not None


def test_peft_save_load_round_trip(tmp_path):
    model, pristine = peft_model(seed=2)
    x = torch.randn(2, 3, 16)
    cshlora.set_scale(model, torch.tensor([0.3, 1.9]))
    expected = model(x)
    out = save_pretrained(model, tmp_path / "peft")
    assert {"adapter_model.safetensors", "adapter_config.json", "cshlora_config.json"} <= {
        p.name for p in out.iterdir()
    }
    loaded = from_pretrained(pristine, out)
    cshlora.set_scale(loaded, torch.tensor([0.3, 1.9]))
    assert torch.equal(loaded(x), expected)


def test_peft_merge_and_unload_at_one_scale():
    model, _ = peft_model()
    x = torch.randn(2, 16)
    cshlora.set_scale(model, 1.2)
    expected = model(x)
    merged = model.merge_and_unload()
    assert not any(isinstance(m, PeftCSHLoRALinear) for m in merged.modules())
    torch.testing.assert_close(merged(x), expected, atol=1e-5, rtol=1e-5)


def test_peft_merge_without_one_scale_is_an_error():
    model, _ = peft_model()
    cshlora.set_scale(model, torch.tensor([0.1, 0.2]))
    with pytest.raises(ValueError, match="one deployment scale"):
        model.merge_and_unload()


def test_plain_lora_adapter_next_to_cshlora_runs_ungated():
    model, _ = peft_model()
    model.add_adapter("plain", peft.LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj"]))
    model.set_adapter("plain")
    layer = model.base_model.model.q_proj
    assert layer.gate_kind == "none"
    assert model(torch.randn(2, 16)).shape == (2, 3)  # no scale needed for ungated adapters


def test_peft_load_refuses_non_finite_weights_and_a_rank_the_file_does_not_have(tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    model, pristine = peft_model()
    out = save_pretrained(model, tmp_path / "peft")
    weights = out / "adapter_model.safetensors"
    state = load_file(str(weights))
    key = next(k for k in state if k.endswith("lora_tau"))
    save_file({**state, key: torch.full_like(state[key], float("nan"))}, str(weights))
    with pytest.raises(ValueError, match=rf"tensor {key} has 8 NaN"):
        from_pretrained(copy.deepcopy(pristine), out)
    save_file(state, str(weights))
    for name in ("adapter_config.json", "cshlora_config.json"):
        meta = json.loads((out / name).read_text())
        (meta["config"] if "config" in meta else meta)["r"] = 1_000_000
        (out / name).write_text(json.dumps(meta))
    too_big = r"lora_A.weight has shape \(8, \d+\), which does not fit the config's r=1000000"
    with pytest.raises(ValueError, match=too_big):
        from_pretrained(copy.deepcopy(pristine), out)
