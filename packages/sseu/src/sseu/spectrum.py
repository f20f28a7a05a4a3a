"""The image's power spectrum in log-spaced bands: a parameter-free scale descriptor for SSE-U.

Ground structure has characteristic sizes in metres (crop rows, tree crowns, roads, buildings), so at GSD
``g`` a structure of wavelength ``L`` shows up at ``g / L`` cycles per pixel: changing the GSD slides the
whole spectrum along a log-frequency axis. A descriptor of log power in log-spaced frequency bands turns
that into a shift a small regressor can read. Visual tokens keep it only partly: a ViT's patch embedding
is linear (power is quadratic in the pixels), and a few merged tokens average the rest away (see
``docs/design.md`` section 6 in the ScaleEarth repository for the measurements).

The spectrum is Welch's estimate: Hann-windowed square tiles of ``tile`` pixels with half-tile overlap,
mean removed per tile, power averaged over tiles and over the frequency bins of each band. Band edges are
fixed in cycles per pixel (from ``1 / tile`` to the corner of the spectrum, ``sqrt(2) / 2``), so images of
any size ``>= tile`` give descriptors on the same axis.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Power floor before the log: far below any real image's band power (8-bit quantisation noise in
#: [-1, 1] units is about 1e-5 per bin), so it only keeps a perfectly flat image finite.
POWER_FLOOR = 1e-10


def spectrum_size(channels: int, bands: int) -> int:
    """Length of :func:`scale_spectrum`'s descriptor: ``bands`` log powers per channel, then each
    channel's mean and log standard deviation."""
    return channels * (bands + 2)


def _band_matrix(tile: int, bands: int, device, dtype) -> Tensor:
    """[tile, tile // 2 + 1, bands]: each rfft2 bin's share of each band (rows sum to 1 or 0), averaging."""
    fy = torch.fft.fftfreq(tile, device=device, dtype=dtype)
    fx = torch.fft.rfftfreq(tile, device=device, dtype=dtype)
    radius = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    edges = torch.logspace(math.log10(0.99 / tile), math.log10(math.sqrt(0.5)), bands + 1, device=device, dtype=dtype)
    index = torch.bucketize(radius, edges, right=True) - 1  # bin 0 (the mean) and the outer corner fall out
    one_hot = torch.zeros(*radius.shape, bands, device=device, dtype=dtype)
    inside = (index >= 0) & (index < bands)
    one_hot[inside, index[inside]] = 1.0
    counts = one_hot.sum(dim=(0, 1))
    if bool((counts == 0).any()):
        empty = (counts == 0).nonzero().flatten().tolist()
        raise ValueError(f"{bands} bands are too many for {tile}-pixel tiles: bands {empty} hold no frequency")
    return one_hot / counts


def check_bands(tile: int, bands: int) -> None:
    """Raise ``ValueError`` unless each of ``bands`` log-spaced bands holds a frequency of a ``tile``-px tile."""
    _band_matrix(tile, bands, "cpu", torch.float32)


def scale_spectrum(images: Tensor, *, tile: int = 64, bands: int = 16) -> Tensor:
    """Log band powers, channel means and log channel stds of ``images`` ``[B, C, H, W]`` → ``[B, C·(bands+2)]``.

    Works on any pixel normalisation (the regressor standardises its inputs). Images must be at least
    ``tile`` pixels on each side; every image of a batch has the same size (call it per image otherwise).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got shape {tuple(images.shape)}")
    if tile < 4 or bands < 1:
        raise ValueError(f"need tile >= 4 and bands >= 1, got tile={tile}, bands={bands}")
    _, _, height, width = images.shape
    if height < tile or width < tile:
        raise ValueError(f"images of {height}x{width} pixels are smaller than the {tile}-pixel spectrum tile")
    x = images.float()
    step = max(1, tile // 2)
    tiles = x.unfold(2, tile, step).unfold(3, tile, step)  # [B, C, ny, nx, tile, tile]
    tiles = tiles - tiles.mean(dim=(-1, -2), keepdim=True)
    window = torch.hann_window(tile, periodic=False, device=x.device, dtype=x.dtype)
    power = torch.fft.rfft2(tiles * (window[:, None] * window[None, :])).abs().square().mean(dim=(2, 3))
    band_power = torch.einsum("bcyx,yxk->bck", power, _band_matrix(tile, bands, x.device, x.dtype))
    log_power = torch.log(band_power + POWER_FLOOR).flatten(1)
    mean = x.mean(dim=(2, 3))
    log_std = torch.log(x.std(dim=(2, 3)) + math.sqrt(POWER_FLOOR))
    return torch.cat([log_power, mean, log_std], dim=1)
