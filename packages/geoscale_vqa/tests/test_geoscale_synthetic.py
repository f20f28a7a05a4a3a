"""The scale world: exact area averaging, objects that vanish at coarse GSD, exact labels."""

import numpy as np
import pytest

from geoscale_vqa.synthetic import GSD_RANGE_M, Scene, make_scene, render, sample_gsd
from geoscale_vqa.synthetic.render import paint, texture
from geoscale_vqa.synthetic.world import _COVER_COLOURS, COVERS


def test_paint_is_exact_area_coverage():
    image = np.zeros((2, 3, 3))
    # A 5 m x 5 m white square at (2.5, 2.5) m on a 10 m grid covers 1/4 of pixel (0, 0).
    paint(image, np.array([[2.5, 2.5, 7.5, 7.5]]), np.array([[200.0, 100.0, 40.0]]), gsd=10.0)
    assert image[0, 0].tolist() == pytest.approx([50.0, 25.0, 10.0])
    assert image.sum() == pytest.approx(50 + 25 + 10)
    # A rectangle across a pixel border splits its area between the two pixels.
    image = np.zeros((1, 3, 3))
    paint(image, np.array([[8.0, 0.0, 14.0, 10.0]]), np.array([[100.0, 100.0, 100.0]]), gsd=10.0)
    assert image[0, :, 0].tolist() == pytest.approx([20.0, 40.0, 0.0])


def _one_car_scene(gsd):
    size = 16
    extent = size * gsd
    scene = Scene(seed=3, gsd_m=gsd, size_px=size, setting="rural")
    grass = np.array([[0.0, 0.0, extent, extent]]), np.array([[100.0, 150.0, 70.0]])
    car = np.array([[gsd * 4, gsd * 4, gsd * 4 + 4.5, gsd * 4 + 1.8]]), np.array([[235.0, 235.0, 235.0]])
    scene.layers = [grass, car]
    return scene


def test_a_car_is_plain_at_half_a_metre_and_vanishes_at_ten_metres():
    fine = render(_one_car_scene(0.5)).astype(float)
    coarse = render(_one_car_scene(10.0)).astype(float)
    grass = np.array([100.0, 150.0, 70.0])
    assert np.abs(fine[5, 5] - [235, 235, 235]).max() <= 10  # inside the car: car colour (+ sensor noise)
    # At 10 m the 8.1 m2 car is 8 % of one pixel: that pixel moves by 0.081 * (235 - 70) = 13 levels at most.
    deviation = np.abs(coarse - grass).max(axis=2)
    assert deviation.max() <= 0.081 * 165 + 10
    assert (deviation > 20).sum() == 0


def test_cover_fractions_match_the_rendered_pixels():
    for seed in range(6):
        scene = make_scene(seed, 20.0, 96)
        scene.layers = scene.layers[:1]  # land cover only
        scene.texture = None  # the patch geometry, without the ground texture on top
        pixels = render(scene).astype(float)
        nearest = np.argmin(((pixels[:, :, None, :] - _COVER_COLOURS[None, None]) ** 2).sum(-1), axis=-1)
        measured = np.bincount(nearest.ravel(), minlength=len(COVERS)) / nearest.size
        expected = np.array([scene.labels["cover_fractions"][c] for c in COVERS])
        assert np.abs(measured - expected).max() < 0.06, (seed, measured, expected)
        assert expected.sum() == pytest.approx(1.0)


def test_counts_are_objects_fully_inside_the_image():
    for seed in range(10):
        scene = make_scene(seed, 0.8, 96)
        extent = scene.extent_m
        cars = scene.layers[-1][0]
        assert scene.labels["counts"]["car"] == len(cars)
        assert ((cars[:, :2] >= 0) & (cars[:, 2:] <= extent)).all()
        lattice = scene.layers[-2][0]  # buildings and single trees
        assert ((lattice[:, :2] >= 0) & (lattice[:, 2:] <= extent)).all()
        if "tree" in scene.labels["counts"]:
            assert scene.labels["counts"]["building"] + scene.labels["counts"]["tree"] == len(lattice)


def test_no_tree_count_where_forest_is_in_view():
    for seed in range(30):
        scene = make_scene(seed, 30.0, 64)
        forest = scene.labels["cover_fractions"]["forest"] > 0
        assert ("tree" in scene.labels["counts"]) == (not forest)


def test_scenes_are_deterministic_and_gsds_span_the_range():
    a, b = render(make_scene(11, 3.0, 64)), render(make_scene(11, 3.0, 64))
    assert (a == b).all() and a.shape == (64, 64, 3) and a.dtype == np.uint8
    rng = np.random.default_rng(0)
    gsds = np.array([sample_gsd(rng) for _ in range(2000)])
    assert GSD_RANGE_M[0] <= gsds.min() and gsds.max() <= GSD_RANGE_M[1]
    # log-uniform: a quarter of the decades, a quarter of the samples
    assert np.mean(gsds < 10**-0.25) == pytest.approx(0.25, abs=0.03)


def test_ground_texture_is_the_area_average_of_its_waves():
    """Closed form (centre value x sinc x sinc) against brute-force supersampling of the continuous field."""
    ground = make_scene(4, 1.0, 8).texture
    for gsd in (0.1, 0.7, 3.0, 40.0):
        size, sub = 8, 64
        fine = (np.arange(size * sub) + 0.5) * gsd / sub
        x, y = np.meshgrid(fine, fine)
        cover = ground.cover_at(x, y)
        field = np.zeros_like(x)
        for c in np.unique(cover):
            for kx, ky, phase, amplitude in ground.waves[c]:
                wave = amplitude * np.cos(2 * np.pi * (kx * x + ky * y) + phase)
                field[cover == c] += wave[cover == c]
        reference = field.reshape(size, sub, size, sub).mean(axis=(1, 3))
        closed = texture(ground, size, gsd)
        # pixels that straddle a patch border take the texture of the cover at their centre: compare the others
        one_cover = np.array(
            [[len(np.unique(cover[i * sub : (i + 1) * sub, j * sub : (j + 1) * sub])) == 1 for j in range(size)]
             for i in range(size)]
        )  # fmt: skip
        assert one_cover.sum() >= size, gsd
        assert np.abs(closed - reference)[one_cover].max() < 0.02 * np.abs(ground.waves[..., 3]).max() + 1e-9, gsd


def test_texture_shorter_than_a_pixel_fades():
    """Crop rows (0.8 m) show at 0.1 m and are averaged away at 30 m, as a detector would."""
    ground = make_scene(9, 1.0, 8).texture
    crop = COVERS.index("cropland")
    ground.cover = np.full_like(ground.cover, crop)
    ground.waves[crop, 1, 3] = 0.0  # rows only
    amplitude = ground.waves[crop, 0, 3]
    assert texture(ground, 64, 0.1).std() > 0.5 * amplitude
    assert texture(ground, 64, 30.0).std() < 0.05 * amplitude
