"""The GSD's road into the model: processor resize -> effective GSD -> set_scale / SSE-U target; NF4 scope."""

import math

import pytest
import torch

import cshlora

pytest.importorskip("transformers")

from scaleearth_train_testutil import first_batches  # noqa: E402

from scaleearth_cli.modeling import (  # noqa: E402
    ScaleEarthVLM,
    adapter_config,
    enable_gradient_checkpointing,
    load_vlm,
    quantised_modules,
    visual_feature_size,
)


def _stage2(tiny_model_dir, *, adapter="cshlora", gate_gsd="oracle", quantize="none"):
    from sseu import SSEUHead

    vlm, processor = load_vlm(str(tiny_model_dir), quantize=quantize)
    torch.manual_seed(0)
    cshlora.inject(vlm, adapter_config(adapter, r=8, alpha=16))
    for _, layer in cshlora.cshlora_layers(vlm):
        torch.nn.init.normal_(layer.lora_B, std=0.05)  # a non-trivial adapter, so the gate matters
    head = SSEUHead(visual_feature_size(vlm), hidden=32)
    torch.nn.init.normal_(head.mlp[-1].weight, std=0.5)  # a head whose estimate differs per image
    return ScaleEarthVLM(vlm, head, gate_gsd=gate_gsd, seed=3), processor


def test_nf4_quantises_the_llm_projections_and_nothing_of_the_vision_tower(tiny_model_dir):
    pytest.importorskip("bitsandbytes")
    vlm, _ = load_vlm(str(tiny_model_dir), quantize="nf4")
    names = quantised_modules(vlm)
    layers = vlm.config.text_config.num_hidden_layers
    assert len(names) == 7 * layers
    assert all(n.startswith("model.language_model.layers.") for n in names)
    assert type(vlm.lm_head).__name__ == "Linear"
    assert not any("Linear4bit" in type(m).__name__ for m in vlm.model.visual.modules())


def test_effective_gsd_comes_from_the_processor_resize(tiny_model_dir, train_corpus):
    _, processor = load_vlm(str(tiny_model_dir))
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic")
    from geoscale_vqa import geoscale_dataset

    items = [s for _, s in zip(range(4), geoscale_dataset(train_corpus, split="train", sources="synthetic"))]
    assert batch["keys"] == [s["__key__"] for s in items]
    for i, item in enumerate(items):
        resized = int(batch["image_grid_thw"][i, 2]) * 16
        assert resized != item["width"]  # 96 px scenes are shrunk to 64 px by max_pixels = 64 * 64
        expected = math.log10(item["gsd_m"] * item["width"] / resized)
        assert batch["log10_gsd"][i].item() == pytest.approx(expected, abs=1e-6)
        assert batch["log10_gsd"][i].item() != pytest.approx(item["log10_gsd"], abs=1e-3)


def test_labels_cover_exactly_the_assistant_replies(tiny_model_dir, train_corpus):
    _, processor = load_vlm(str(tiny_model_dir))
    (batch,) = first_batches(processor, train_corpus, 1, sources="llava", batch_size=2)
    tok = processor.tokenizer
    from geoscale_vqa import geoscale_dataset

    items = [s for _, s in zip(range(2), geoscale_dataset(train_corpus, split="train", sources="llava"))]
    for row, item in enumerate(items):
        labelled = batch["labels"][row][batch["labels"][row] != -100]
        replies = [m["content"][0]["text"] for m in item["messages"] if m["role"] == "assistant"]
        assert tok.decode(labelled) == "".join(r + "<|im_end|>" for r in replies)


def test_training_and_evaluation_prompts_differ_only_by_the_answer(tiny_model_dir, train_corpus):
    """A Stage-2 training conversation is the evaluation's chat text for the same QA plus the answer."""
    from geoscale_vqa import geoscale_dataset
    from geoscale_vqa.benchmarks import load_benchmark
    from scaleearth_cli.inference import Item, chat_text

    _, processor = load_vlm(str(tiny_model_dir))
    bench = load_benchmark("geoscale", train_corpus, split="train")
    asked = {(q.id.rsplit("/", 1)[0], q.question): q for q in bench.questions}
    checked = 0
    for conv in geoscale_dataset(train_corpus, split="train", sources="synthetic", max_turns=1):
        (qa,) = conv["qa"]
        question = asked[(conv["__key__"].rsplit("/", 1)[0], qa["question"])]
        trained = processor.apply_chat_template(conv["messages"], tokenize=False)
        evaluated = chat_text(processor, Item(prompt=question.prompt, images=[None], source_widths=[96]))
        assert trained == evaluated + qa["answer"] + "<|im_end|>\n"
        assert "Answer the question using a single word or phrase." in evaluated
        checked += 1
    assert checked > 20


def _scale_seen_by_first_projection(model):
    name, layer = next(iter(cshlora.cshlora_layers(model.vlm)))
    seen = {}

    def record(mod, args):
        seen.setdefault("s", mod._scale.clone())  # returns None: the hook must not replace the input

    return seen, layer.register_forward_pre_hook(record)


def test_oracle_gate_gets_each_samples_effective_gsd_before_the_llm_runs(tiny_model_dir, train_corpus):
    model, processor = _stage2(tiny_model_dir)
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic")
    seen, handle = _scale_seen_by_first_projection(model)
    out = model(batch)
    handle.remove()
    assert torch.equal(seen["s"], batch["log10_gsd"])
    assert len(set(batch["log10_gsd"].tolist())) > 1  # per sample, not one value for the batch
    assert out.gsd_nll.isfinite() and out.gsd_nll > 0


def _policy(prediction):
    """The deployment policy by hand: the estimate where its 95 % interval is under 1 decade, else 10 m."""
    width = 2 * 1.959964 * prediction.var.sqrt()
    return torch.where(width < 1.0, prediction.mean, torch.ones_like(prediction.mean))


def test_predicted_gate_is_the_deployment_policy_on_the_sseu_estimate(tiny_model_dir, train_corpus):
    model, processor = _stage2(tiny_model_dir, gate_gsd="predicted")
    with torch.no_grad():  # some estimates narrow, some wide: both branches of the policy are exercised
        model.sseu.mlp[-1].bias[1] = -2.5
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic")
    with torch.no_grad():
        feats = model.vlm.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"]).pooler_output
        independent = model.sseu(torch.nn.utils.rnn.pad_sequence(list(feats), batch_first=True))
    seen, handle = _scale_seen_by_first_projection(model)
    out = model(batch)
    handle.remove()
    torch.testing.assert_close(seen["s"], _policy(independent))
    torch.testing.assert_close(out.prediction.var, independent.var)
    assert not torch.allclose(seen["s"], batch["log10_gsd"], atol=1e-3)


def test_mixed_gate_mixes_per_sample_and_repeats_per_step(tiny_model_dir, train_corpus):
    model, processor = _stage2(tiny_model_dir, gate_gsd="mixed:0.5")
    batches = first_batches(processor, train_corpus, 2, sources="synthetic")
    draws = []
    for step in range(6):
        for batch in batches:
            out = model(batch, step)
            from_oracle = torch.isclose(out.gate_log10_gsd, batch["log10_gsd"])
            from_policy = torch.isclose(out.gate_log10_gsd, _policy(out.prediction))
            assert bool((from_oracle | from_policy).all())
            draws.append(from_policy & ~from_oracle)
    picked = torch.cat(draws).float().mean().item()
    assert 0.2 < picked < 0.8
    again = model(batches[0], 0).gate_log10_gsd
    torch.testing.assert_close(again, model(batches[0], 0).gate_log10_gsd)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model_dir, train_corpus):
    model, processor = _stage2(tiny_model_dir)
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic")
    model.train()

    def grads():
        model.zero_grad()
        out = model(batch)
        (out.lm_loss + 0.1 * out.gsd_nll).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    plain = grads()
    enable_gradient_checkpointing(model.vlm)
    assert model.vlm.model.language_model.gradient_checkpointing
    recomputed = grads()
    assert any(n.endswith(".tau") and g.abs().sum() > 0 for n, g in plain.items())
    for name, g in plain.items():
        torch.testing.assert_close(recomputed[name], g, msg=name)


def test_gsd_token_writes_the_effective_gsd_into_the_prompt(tiny_model_dir, train_corpus):
    from scaleearth_cli.scale import format_gsd

    _, processor = load_vlm(str(tiny_model_dir))
    (plain,) = first_batches(processor, train_corpus, 1, sources="synthetic")
    (with_gsd,) = first_batches(processor, train_corpus, 1, sources="synthetic", gsd_in_prompt=True)
    tok = processor.tokenizer
    for row in range(4):
        text = tok.decode(with_gsd["input_ids"][row])
        gsd = 10 ** with_gsd["log10_gsd"][row].item()
        assert f"Ground sampling distance: {format_gsd(gsd)} m per pixel." in text
        assert "Ground sampling distance" not in tok.decode(plain["input_ids"][row])
    assert torch.equal(plain["log10_gsd"], with_gsd["log10_gsd"])
