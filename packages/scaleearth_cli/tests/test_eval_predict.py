"""`scaleearth predict`: the GSD from --gsd, else the GeoTIFF tags, else SSE-U with its interval."""

import numpy as np
import pytest
from PIL import Image
from scaleearth_eval_testutil import HEAD_GSD_M
from typer.testing import CliRunner

from scaleearth_cli.cli import app

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from geoscale_vqa.gsd import geotiff_tags

    root = tmp_path_factory.mktemp("predict")
    pixels = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8))
    pixels.save(root / "plain.png")
    pixels.save(root / "tagged.tif", tiffinfo=geotiff_tags(2.0))
    return root


def _predict(tiny_model_dir, run, image, *extra):
    args = ["predict", str(image), "Is there a road?", "--model", str(tiny_model_dir), "--adapter", str(run),
            "--max-new-tokens", "4", *extra]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # Rich wraps long lines


def test_gsd_flag_is_used_as_metadata(tiny_model_dir, random_run, images):
    out = _predict(tiny_model_dir, random_run, images / "plain.png", "--gsd", "0.5")
    assert "answer: " in out
    # 48 px -> 64 px (the tiny processor's budget): the gate sees 0.5 * 48 / 64 = 0.375 m per model pixel.
    assert "GSD: 0.5 m from --gsd (metadata)" in out and "0.375 m per model pixel (48 -> 64 px)" in out


def test_geotiff_tags_give_the_gsd(tiny_model_dir, random_run, images):
    out = _predict(tiny_model_dir, random_run, images / "tagged.tif")
    assert "GSD: 2 m from GeoTIFF tags (metadata)" in out and "1.5 m per model pixel" in out
    out = _predict(tiny_model_dir, random_run, images / "tagged.tif", "--gsd", "0.5")  # the flag beats the tags
    assert "from --gsd" in out


def test_without_metadata_sseu_estimates_with_an_interval(tiny_model_dir, random_run, images):
    out = _predict(tiny_model_dir, random_run, images / "plain.png")
    # The random run's head says 3 m with std 0.05 decades: 95 % interval 3 * 10**(±1.96 * 0.05).
    lo, hi = HEAD_GSD_M * 10 ** (-1.96 * 0.05), HEAD_GSD_M * 10 ** (1.96 * 0.05)
    assert f"SSE-U estimate {HEAD_GSD_M:.4g} m" in out and f"95 % interval {lo:.4g}-{hi:.4g} m" in out
    assert "the gate used the estimate" in out


def test_without_metadata_or_head_the_default_is_used(tiny_model_dir, untrained_run, images, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(untrained_run / "final" / "adapter", run / "adapter")  # an adapter folder, no SSE-U head
    out = _predict(tiny_model_dir, run / "adapter", images / "plain.png")
    assert "GSD: unknown (no metadata, no SSE-U head); the gate used the default 10 m" in out
