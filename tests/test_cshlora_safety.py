"""Ways a PEFT or transformers user could get wrong outputs from cshlora silently, tried on a model that is
not the project's (a tiny Qwen2 causal LM): each must load correctly or be refused with a message that
says what to call instead."""

import json

import pytest
import torch
from hf_testutil import tiny_qwen2

import cshlora

transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
from cshlora.peft import PLAIN_PEFT_GUARD, cshlora_lora_config, from_pretrained, save_pretrained  # noqa: E402


def _qwen2():
    return tiny_qwen2()


def _randomise_adapter(model):
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or "lora_tau" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


IDS = torch.randint(1, 64, (2, 7), generator=torch.Generator().manual_seed(5))


def _logits(model, log10_gsd):
    cshlora.set_scale(model, torch.tensor(log10_gsd))
    with torch.no_grad():
        return model(IDS).logits


@pytest.fixture
def saved_peft_adapter(tmp_path):
    targets = ["q_proj", "v_proj", "down_proj"]
    model = peft.get_peft_model(
        _qwen2(), cshlora_lora_config(cshlora.CSHLoRAConfig(r=4, alpha=8), target_modules=targets)
    )
    _randomise_adapter(model)
    reference = _logits(model, [-0.5, 1.5])
    save_pretrained(model, tmp_path / "adapter")
    return tmp_path / "adapter", reference, targets


def test_plain_peft_refuses_a_cshlora_adapter_and_names_the_loader(saved_peft_adapter):
    path, _, _ = saved_peft_adapter
    with pytest.raises(ValueError, match=r"cshlora\.peft\.from_pretrained"):
        peft.PeftModel.from_pretrained(_qwen2(), str(path))


def test_cshlora_loader_restores_the_targets_and_the_gates(saved_peft_adapter):
    path, reference, targets = saved_peft_adapter
    assert json.loads((path / "adapter_config.json").read_text())["target_modules"] == PLAIN_PEFT_GUARD
    loaded = from_pretrained(_qwen2(), path)
    assert set(loaded.peft_config["default"].target_modules) == set(targets)
    torch.testing.assert_close(_logits(loaded, [-0.5, 1.5]), reference)
    # and the gate is live: another scale gives other logits
    assert not torch.allclose(_logits(loaded, [1.5, -0.5]), reference)


def test_save_pretrained_of_an_injected_model_is_refused(tmp_path):
    model = cshlora.inject(_qwen2(), cshlora.CSHLoRAConfig(r=4, alpha=8))
    with pytest.raises(TypeError, match=r"cshlora\.save_adapter.*cshlora\.merge"):
        model.save_pretrained(tmp_path / "model")
    assert not (tmp_path / "model").exists()


def test_after_merge_save_pretrained_writes_a_model_transformers_loads(tmp_path):
    model = cshlora.inject(_qwen2(), cshlora.CSHLoRAConfig(r=4, alpha=8))
    _randomise_adapter(model)
    expected = _logits(model, 0.3)[:1]
    merged = cshlora.merge(model, 0.3)
    merged.save_pretrained(tmp_path / "merged")
    reloaded = transformers.Qwen2ForCausalLM.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(IDS).logits[:1], expected, atol=1e-5, rtol=1e-4)


def test_units_are_explicit(tmp_path):
    model = cshlora.inject(_qwen2(), cshlora.CSHLoRAConfig(r=4, alpha=8))
    _randomise_adapter(model)
    cshlora.set_gsd(model, torch.tensor([0.15, 10.0]))
    with torch.no_grad():
        by_metres = model(IDS).logits
    torch.testing.assert_close(_logits(model, [-0.8239087, 1.0]), by_metres)
    with pytest.raises(ValueError, match="gsd_m must be finite and > 0"):
        cshlora.set_gsd(model, [0.15, -1.0])
