"""CS-HLoRA injected into a tiny, locally created Qwen3-VL (the paper's backbone family)."""

import pytest
import torch

import cshlora

transformers = pytest.importorskip("transformers")
from transformers import AutoModelForImageTextToText, Qwen3VLConfig, Qwen3VLForConditionalGeneration  # noqa: E402

LLM_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def tiny_qwen3vl() -> Qwen3VLForConditionalGeneration:
    torch.manual_seed(0)
    config = Qwen3VLConfig(
        text_config=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, vocab_size=512,
            rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3]},
        ),
        vision_config=dict(
            depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
            patch_size=16, spatial_merge_size=2, temporal_patch_size=2, deepstack_visual_indexes=[0],
        ),
    )  # fmt: skip
    return Qwen3VLForConditionalGeneration(config).eval()


def lm_loss(model, ids):
    return model(input_ids=ids, labels=ids).loss


def test_default_targets_are_every_llm_projection_and_nothing_in_the_vision_tower():
    model = cshlora.inject(tiny_qwen3vl(), cshlora.CSHLoRAConfig(r=8))
    wrapped = [name for name, _ in cshlora.cshlora_layers(model)]
    assert len(wrapped) == 2 * len(LLM_TARGETS)
    assert all(name.startswith("model.language_model.layers.") for name in wrapped)
    assert {name.rsplit(".", 1)[1] for name in wrapped} == set(LLM_TARGETS)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n or n.endswith((".tau", ".sharpness")) for n in trainable)


def test_per_sample_scale_through_the_real_model_with_gradient_checkpointing():
    model = cshlora.inject(tiny_qwen3vl(), cshlora.CSHLoRAConfig(r=8))
    for _, layer in cshlora.cshlora_layers(model):
        torch.nn.init.normal_(layer.lora_B, std=0.05)
    ids = torch.randint(0, 512, (2, 12))
    s = torch.tensor([-0.8, 1.0])  # 16 cm aerial next to 10 m Sentinel-2 in one batch

    cshlora.set_scale(model, s)
    batch_logits = model(input_ids=ids).logits
    for i in range(2):
        cshlora.set_scale(model, s[i : i + 1])
        torch.testing.assert_close(
            model(input_ids=ids[i : i + 1]).logits, batch_logits[i : i + 1], atol=1e-5, rtol=1e-4
        )

    def grads(checkpointing):
        model.train()
        # transformers 5 renamed gradient_checkpointing_* to activation_checkpointing_*.
        if checkpointing:
            if hasattr(model, "activation_checkpointing_enable"):
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            getattr(model, "activation_checkpointing_disable", model.gradient_checkpointing_disable)()
        model.zero_grad()
        cshlora.set_scale(model, s)
        lm_loss(model, ids).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain, recomputed = grads(False), grads(True)
    assert any(g.abs().sum() > 0 for n, g in plain.items() if n.endswith(".tau"))
    for name in plain:
        torch.testing.assert_close(recomputed[name], plain[name], msg=name)


def test_from_pretrained_then_adapter_round_trip(tmp_path):
    tiny_qwen3vl().save_pretrained(tmp_path / "base")
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "base").eval()
    cshlora.inject(model, cshlora.CSHLoRAConfig(r=8))
    for _, layer in cshlora.cshlora_layers(model):
        torch.nn.init.normal_(layer.lora_B, std=0.05)
    ids = torch.randint(0, 512, (2, 10))
    cshlora.set_scale(model, torch.tensor([0.2, 2.0]))
    expected = model(input_ids=ids).logits
    cshlora.save_adapter(model, tmp_path / "adapter")

    fresh = AutoModelForImageTextToText.from_pretrained(tmp_path / "base").eval()
    cshlora.load_adapter(fresh, tmp_path / "adapter")
    cshlora.set_scale(fresh, torch.tensor([0.2, 2.0]))
    assert torch.equal(fresh(input_ids=ids).logits, expected)


@pytest.mark.slow
def test_nf4_quantised_qwen3vl_llm_is_wrapped(tmp_path):
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig

    tiny_qwen3vl().save_pretrained(tmp_path / "base")
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "base", quantization_config=quant)
    cshlora.inject(model, cshlora.CSHLoRAConfig(r=8))
    layers = dict(cshlora.cshlora_layers(model))
    assert all(type(layer.base_layer).__name__ == "Linear4bit" for layer in layers.values())
    ids = torch.randint(0, 512, (2, 8))
    cshlora.set_scale(model, torch.tensor([0.0, 1.0]))
    loss = lm_loss(model, ids)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(layer.lora_A.grad is not None for layer in layers.values())
