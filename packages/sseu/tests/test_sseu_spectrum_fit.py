"""The spectrum descriptor against a float64 numpy reference, the pixel-reading head, and fit_head."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sseu import HeadInputs, SSEUHead, fit_head, head_predictions, load_head, save_head, scale_spectrum, spectrum_size


def _reference_spectrum(image: np.ndarray, tile: int, bands: int) -> np.ndarray:
    """Welch band powers written out with loops and numpy's FFT, float64 (the descriptor's definition)."""
    channels, height, width = image.shape
    window = np.outer(np.hanning(tile), np.hanning(tile))
    fy, fx = np.fft.fftfreq(tile)[:, None], np.fft.rfftfreq(tile)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    edges = np.geomspace(0.99 / tile, math.sqrt(0.5), bands + 1)
    out = []
    for c in range(channels):
        spectra = []
        for y in range(0, height - tile + 1, tile // 2):
            for x in range(0, width - tile + 1, tile // 2):
                patch = image[c, y : y + tile, x : x + tile]
                spectra.append(np.abs(np.fft.rfft2((patch - patch.mean()) * window)) ** 2)
        power = np.mean(spectra, axis=0)
        for k in range(bands):
            inside = (radius >= edges[k]) & (radius < edges[k + 1])
            out.append(np.log(power[inside].mean() + 1e-10))
    out += [image[c].mean() for c in range(channels)]
    out += [np.log(image[c].std(ddof=1) + 1e-5) for c in range(channels)]
    return np.array(out)


def test_spectrum_matches_a_float64_reference():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, 96, 80))
    got = scale_spectrum(torch.tensor(image, dtype=torch.float64)[None], tile=32, bands=8)[0].numpy()
    assert got.shape == (spectrum_size(3, 8),)
    np.testing.assert_allclose(got, _reference_spectrum(image, 32, 8), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("band", [3, 6, 8])
def test_a_plane_wave_puts_its_power_in_the_band_of_its_frequency(band):
    edges = np.geomspace(0.99 / 64, math.sqrt(0.5), 11)
    frequency = math.sqrt(edges[band] * edges[band + 1])  # the band's centre on the log axis
    y, x = np.mgrid[0:64, 0:64]
    wave = np.cos(2 * np.pi * frequency * (x * np.cos(0.3) + y * np.sin(0.3)))
    got = scale_spectrum(torch.tensor(wave, dtype=torch.float32)[None, None], tile=64, bands=10)[0, :10]
    assert int(got.argmax()) == band


def test_spectrum_refuses_small_images_and_empty_bands():
    with pytest.raises(ValueError, match="smaller than the 64-pixel spectrum tile"):
        scale_spectrum(torch.zeros(1, 3, 48, 96), tile=64)
    with pytest.raises(ValueError, match="hold no frequency"):
        scale_spectrum(torch.zeros(1, 3, 16, 16), tile=8, bands=40)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        scale_spectrum(torch.zeros(3, 64, 64))


def _waves(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy plane waves of random period (3-30 px) and angle; the target is log10 of the period."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:64, 0:64]
    images, targets = [], []
    for _ in range(n):
        period = 10 ** rng.uniform(math.log10(3), math.log10(30))
        angle, phase = rng.uniform(0, np.pi), rng.uniform(0, 6)
        wave = np.cos(2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + phase)
        images.append(np.stack([wave, 0.5 * wave, -wave]) + rng.normal(0, 0.3, (3, 64, 64)))
        targets.append(math.log10(period))
    return torch.tensor(np.array(images), dtype=torch.float32), torch.tensor(targets, dtype=torch.float32)


def _inputs(images, targets) -> HeadInputs:
    # Visual features that carry nothing: only the spectrum can tell the period.
    return HeadInputs(torch.zeros(len(images), 2, 4), targets, spectrum=scale_spectrum(images, tile=32, bands=12))


def test_fit_head_learns_a_scale_only_the_spectrum_shows():
    train, val = _waves(400, 0), _waves(100, 1)
    torch.manual_seed(0)
    head = SSEUHead(4, hidden=64, depth=2, spectrum_tile=32, spectrum_bands=12, init_mean=1.0)
    untrained = float((head_predictions(head, _inputs(*val)).mean - val[1]).abs().mean())
    report = fit_head(head, _inputs(*train), _inputs(*val), steps=600, batch_size=64, lr=3e-3, warmup_steps=100)
    assert untrained > 0.25  # a constant guess over one decade
    assert report.val_mae_log10 < 0.06, report
    assert report.val_coverage_90 is not None and 0.6 < report.val_coverage_90 <= 1.0
    # The head computes the same spectrum itself from the images.
    direct = head(torch.zeros(len(val[0]), 2, 4), images=val[0])
    cached = head_predictions(head, _inputs(*val))
    torch.testing.assert_close(direct.mean, cached.mean, rtol=1e-5, atol=1e-5)


def test_a_pixel_reading_head_saves_and_loads_with_its_standardiser(tmp_path):
    images, targets = _waves(20, 2)
    head = SSEUHead(4, hidden=16, depth=2, spectrum_tile=32, spectrum_bands=12)
    fit_head(head, _inputs(images, targets), steps=5, batch_size=8, warmup_steps=2)
    assert not torch.equal(head.spectrum_shift, torch.zeros_like(head.spectrum_shift))
    loaded = load_head(save_head(head, tmp_path / "head.safetensors"))
    assert loaded.reads_pixels and loaded.config == head.config
    features = torch.randn(20, 2, 4)
    torch.testing.assert_close(loaded(features, images=images).mean, head.eval()(features, images=images).mean)


def test_the_pixel_reading_head_says_what_it_needs():
    head = SSEUHead(4, hidden=8, spectrum_tile=32, spectrum_bands=12)
    with pytest.raises(ValueError, match="pass images= or spectrum="):
        head(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="smaller than the 32-pixel"):
        head(torch.zeros(1, 4), images=torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="reads no spectrum"):
        SSEUHead(4, hidden=8)(torch.zeros(1, 4), images=torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="spectrum_tile"):
        SSEUHead(4, spectrum_tile=2)
    with pytest.raises(ValueError, match="bands are too many for 16-pixel tiles"):
        SSEUHead(4, spectrum_tile=16, spectrum_bands=16)


def test_fit_head_needs_the_spectrum_for_a_pixel_reading_head():
    head = SSEUHead(4, hidden=8, spectrum_tile=32, spectrum_bands=12)
    with pytest.raises(ValueError, match="needs its spectrum"):
        fit_head(head, HeadInputs(torch.zeros(4, 4), torch.zeros(4)), steps=1)
    with pytest.raises(ValueError, match="log10_gsd has 3 rows"):
        HeadInputs(torch.zeros(4, 4), torch.zeros(3))
