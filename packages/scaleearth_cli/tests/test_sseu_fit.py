"""fit-sseu: the pixels and targets it reads are the ones the model's hook reads, and Stage 2 keeps the head."""

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from scaleearth_train_testutil import first_batches, train_config  # noqa: E402

from scaleearth_cli.modeling import ScaleEarthVLM, images_from_pixel_values, load_vlm, vision_tower  # noqa: E402


def test_images_from_pixel_values_gives_back_the_normalised_image(tiny_model_dir):
    _, processor = load_vlm(str(tiny_model_dir))
    vlm, _ = load_vlm(str(tiny_model_dir))
    rng = np.random.default_rng(0)
    from PIL import Image

    arrays = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), rng.integers(0, 256, (64, 128, 3), dtype=np.uint8)]
    ip = processor.image_processor
    inputs = ip(images=[Image.fromarray(a) for a in arrays], do_resize=False, return_tensors="pt")
    got = images_from_pixel_values(inputs["pixel_values"], inputs["image_grid_thw"], vision_tower(vlm).config)
    mean, std = torch.tensor(ip.image_mean)[:, None, None], torch.tensor(ip.image_std)[:, None, None]
    for array, image in zip(arrays, got):
        expected = (torch.tensor(array, dtype=torch.float32).permute(2, 0, 1) / 255.0 - mean) / std
        torch.testing.assert_close(image, expected, rtol=1e-5, atol=1e-5)


def test_the_hook_gives_a_pixel_reading_head_the_pixels_the_tower_read(tiny_model_dir, train_corpus):
    from sseu import SSEUHead

    vlm, processor = load_vlm(str(tiny_model_dir))
    torch.manual_seed(0)
    head = SSEUHead(64, hidden=16, depth=2, spectrum_tile=32, spectrum_bands=8)
    torch.nn.init.normal_(head.mlp[-1].weight, std=0.5)
    model = ScaleEarthVLM(vlm, head)
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic")
    out = model(batch)
    with torch.no_grad():
        feats = vlm.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"]).pooler_output
        tokens = torch.nn.utils.rnn.pad_sequence(list(feats), batch_first=True)
        images = images_from_pixel_values(batch["pixel_values"], batch["image_grid_thw"], vision_tower(vlm).config)
        independent = head(tokens, images=images)
    torch.testing.assert_close(out.prediction.mean, independent.mean)
    assert out.prediction.mean.std() > 0  # the images differ, and so do the estimates


def test_fit_sseu_targets_are_the_training_targets_and_stage2_keeps_the_fitted_head(
    tiny_model_dir, train_corpus, tmp_path
):
    from scaleearth_cli.sseu_fit import SSEUFitConfig, collect_head_inputs, fit_sseu, sseu_split_report
    from scaleearth_cli.train import SSEU_HEAD_NAME, train
    from sseu import load_head

    cfg = SSEUFitConfig(steps=30, batch_size=8, warmup_steps=10, spectrum_tile=32, spectrum_bands=8,
                        sources=("synthetic",), val_split=None)  # fmt: skip
    vlm, processor = load_vlm(str(tiny_model_dir))
    inputs = collect_head_inputs(vlm, processor, train_corpus, "train", cfg=cfg)
    (batch,) = first_batches(processor, train_corpus, 1, sources="synthetic")
    # The same images in the same order: the fit's targets are the effective GSDs training gives SSE-U.
    torch.testing.assert_close(inputs.log10_gsd[: len(batch["log10_gsd"])], batch["log10_gsd"].float())

    report = fit_sseu(tiny_model_dir, train_corpus, tmp_path / "sseu", cfg)
    assert report["train_images"] == len(inputs) and report["val_mae_log10"] is None
    fitted = load_head(tmp_path / "sseu" / SSEU_HEAD_NAME)
    assert fitted.reads_pixels

    held_out = sseu_split_report(tiny_model_dir, tmp_path / "sseu" / SSEU_HEAD_NAME, train_corpus, "test",
                                 tmp_path / "split")  # fmt: skip
    assert held_out["images"] >= 1 and np.isfinite(held_out["metrics"]["mae_log10"])

    s2 = train_config(stage=2, model=str(tiny_model_dir), data=str(train_corpus), out=str(tmp_path / "s2"),
                      quantize="none", gradient_checkpointing=False, sources=["synthetic"], max_steps=2,
                      sseu_init=str(tmp_path / "sseu" / SSEU_HEAD_NAME), sseu_freeze=True)  # fmt: skip
    train(s2)
    kept = load_head(tmp_path / "s2" / "final" / SSEU_HEAD_NAME)
    for name, value in fitted.state_dict().items():
        torch.testing.assert_close(kept.state_dict()[name], value, rtol=0, atol=0)


def test_a_frozen_head_needs_a_fitted_one():
    from scaleearth_cli.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="sseu_freeze"):
        TrainConfig(sseu_freeze=True)


def test_fit_sseu_command_fits_and_reports(tiny_model_dir, train_corpus, tmp_path):
    from typer.testing import CliRunner

    from scaleearth_cli.cli import app

    out = tmp_path / "sseu"
    args = ["fit-sseu", "--model", str(tiny_model_dir), "--data", str(train_corpus), "--out", str(out),
            "--steps", "5", "--spectrum-tile", "16", "--device", "cpu"]  # fmt: skip
    too_small = CliRunner().invoke(app, args)  # 16 px tiles cannot hold the 16 default bands
    assert too_small.exit_code == 1 and "bands are too many for 16-pixel tiles" in too_small.output
    args[args.index("--spectrum-tile") + 1] = "64"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "val MAE" in result.output and (out / "sseu_head.safetensors").exists()
    missing = CliRunner().invoke(app, [*args[:4], str(tmp_path / "nothing"), *args[5:]])
    assert missing.exit_code == 2 and "--data" in missing.output and "nothing" in missing.output
