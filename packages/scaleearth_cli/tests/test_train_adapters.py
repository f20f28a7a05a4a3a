"""Every Stage-2 adapter choice trains, and what it saves reloads to the very same model."""

import pytest
import torch
from scaleearth_train_testutil import first_batches, train_config

import cshlora

pytest.importorskip("transformers")

GATES = {"cshlora": "continuous", "lora": "none", "gsd-token": "none", "bucketed": "bucketed"}


@pytest.mark.parametrize("adapter", list(GATES))
def test_adapter_trains_and_reloads_identically(tmp_path, tiny_model_dir, train_corpus, adapter):
    from scaleearth_cli.modeling import ScaleEarthVLM, load_vlm
    from scaleearth_cli.train import train
    from sseu import load_head

    cfg = train_config(
        stage=2, adapter=adapter, data=str(train_corpus), model=str(tiny_model_dir), out=str(tmp_path / "run"),
        quantize="none", max_steps=3, sources=["synthetic"],
    )  # fmt: skip
    result = train(cfg)
    trained = result.model.eval()
    layers = dict(cshlora.cshlora_layers(trained.vlm))
    assert {layer.gate_kind for layer in layers.values()} == {GATES[adapter]}
    assert all(layer.r == 8 for layer in layers.values())  # parameter-matched: same rank for every baseline
    assert all(layer.lora_B.abs().sum() > 0 for layer in layers.values())  # every layer learnt something

    vlm, processor = load_vlm(str(tiny_model_dir))
    cshlora.load_adapter(vlm, result.final_dir / "adapter")
    reloaded = ScaleEarthVLM(vlm, load_head(result.final_dir / "sseu_head.safetensors")).eval()
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic", gsd_in_prompt=adapter == "gsd-token")
    with torch.no_grad():
        want, got = trained(batch), reloaded(batch)
        logits_want = trained.vlm(
            **{
                k: batch[k]
                for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
            }
        ).logits
        logits_got = reloaded.vlm(
            **{
                k: batch[k]
                for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
            }
        ).logits
    assert torch.equal(want.lm_loss, got.lm_loss)
    assert torch.equal(want.prediction.mean, got.prediction.mean) and torch.equal(
        want.prediction.var, got.prediction.var
    )
    assert torch.equal(logits_want, logits_got)
