"""`scaleearth make-tiny-model`: a real Qwen3-VL checkpoint layout that loads through from_pretrained."""

import pytest
from typer.testing import CliRunner

from scaleearth_cli.cli import app

transformers = pytest.importorskip("transformers")


def test_cli_writes_a_model_that_loads_like_the_real_one(tmp_path):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    result = CliRunner().invoke(app, ["make-tiny-model", "--out", str(tmp_path / "m"), "--layers", "1"])
    assert result.exit_code == 0, result.output
    files = {p.name for p in (tmp_path / "m").iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)

    model = AutoModelForImageTextToText.from_pretrained(tmp_path / "m")
    processor = AutoProcessor.from_pretrained(tmp_path / "m")
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert model.config.text_config.num_hidden_layers == 1
    tok = processor.tokenizer
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                    "<|image_pad|>", "<|video_pad|>"):  # fmt: skip
        ids = tok(special, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tok.convert_ids_to_tokens(ids) == [special]
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")

    # 96 x 70 px -> multiples of 32 (patch 16 x merge 2), one <|image_pad|> per merged 2x2 patch group
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many cars?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n")
    batch = processor(text=[text], images=[Image.new("RGB", (96, 70))], return_tensors="pt")
    t, h, w = batch["image_grid_thw"][0].tolist()
    assert (h * 16) % 32 == 0 and (w * 16) % 32 == 0
    assert int((batch["input_ids"] == model.config.image_token_id).sum()) == t * h * w // 4
    out = model(**batch, labels=batch["input_ids"])
    assert out.logits.shape[-1] == model.config.text_config.vocab_size and out.loss.isfinite()


def test_same_seed_same_weights(tmp_path):
    from safetensors.torch import load_file

    from scaleearth_cli.tiny import make_tiny_model

    a = load_file(make_tiny_model(tmp_path / "a", num_layers=1) / "model.safetensors")
    b = load_file(make_tiny_model(tmp_path / "b", num_layers=1) / "model.safetensors")
    c = load_file(make_tiny_model(tmp_path / "c", num_layers=1, seed=1) / "model.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert any(not (a[k] == c[k]).all() for k in a)


def test_help_has_an_example():
    result = CliRunner().invoke(app, ["make-tiny-model", "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "uv run scaleearth make-tiny-model" in result.output
