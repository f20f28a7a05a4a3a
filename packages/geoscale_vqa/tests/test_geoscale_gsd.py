import math
import warnings

import numpy as np
import pytest
from geoscale_testutil import metres_per_degree
from PIL import Image

from geoscale_vqa.gsd import (
    GSDError,
    ImplausibleGSDWarning,
    effective_gsd,
    geotiff_tags,
    gsd_from_geotiff,
    gsd_from_geotiff_tags,
    log10_gsd,
    parse_gsd,
    validate_gsd,
)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 0, 0.0, -0.5, None, "abc", True, [1.0]])
def test_validate_rejects_non_finite_non_positive_and_non_numbers(bad):
    with pytest.raises(GSDError):
        validate_gsd(bad)


def test_validate_accepts_numbers_and_numeric_strings():
    assert validate_gsd(0.15) == 0.15
    assert validate_gsd("10") == 10.0


@pytest.mark.parametrize("value", [0.001, 50_000.0])
def test_implausible_gsd_warns_but_is_not_clamped(value):
    with pytest.warns(ImplausibleGSDWarning):
        assert validate_gsd(value) == value


def test_plausible_gsd_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_gsd(0.01)
        validate_gsd(10_000.0)


def test_parse_gsd_reads_source_spellings():
    assert parse_gsd("0.146343590398") == pytest.approx(0.146343590398)
    assert parse_gsd(" 2 ") == 2.0
    for missing in (None, "", "None", "null", " none "):
        assert parse_gsd(missing) is None
    for invalid in ("nan", "-1", "0", "1.2.3"):
        with pytest.raises(GSDError):
            parse_gsd(invalid)


def test_effective_gsd_scales_with_resize():
    # 8500 px of XLRS at 0.3 m shown to the model as 1000 px: each pixel covers 2.55 m.
    assert effective_gsd(0.3, 8500, 1000) == pytest.approx(2.55)
    assert effective_gsd(10.0, 256, 512) == pytest.approx(5.0)
    with pytest.raises(GSDError):
        effective_gsd(float("nan"), 10, 10)
    with pytest.raises(ValueError):
        effective_gsd(1.0, 0, 10)


def test_log10_gsd():
    assert log10_gsd(100.0) == pytest.approx(2.0)
    with pytest.raises(GSDError):
        log10_gsd(-1)


def _save(tmp_path, name, tags, size=(40, 20)):
    path = tmp_path / name
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(path, tiffinfo=tags)
    return path


def test_projected_geotiff_in_metres(tmp_path):
    geo = gsd_from_geotiff(_save(tmp_path, "utm.tif", geotiff_tags(10.0)))
    assert (geo.gsd_m, geo.crs_kind) == (10.0, "projected")


def test_projected_geotiff_in_feet_is_converted(tmp_path):
    geo = gsd_from_geotiff(_save(tmp_path, "ft.tif", geotiff_tags(1.0, linear_unit=9002)))
    assert geo.gsd_m == pytest.approx(0.3048)


def test_geographic_geotiff_is_converted_at_the_image_latitude(tmp_path):
    # 40 x 20 px of 1e-4 degrees; top edge at 60.001 N, so the centre row is at 60.0 N.
    tags = geotiff_tags(1e-4, geographic=True, origin=(10.0, 60.0 + 10 * 1e-4))
    geo = gsd_from_geotiff(_save(tmp_path, "wgs84.tif", tags))
    lon_m, lat_m = metres_per_degree(60.0)
    assert geo.crs_kind == "geographic"
    assert geo.x_m == pytest.approx(1e-4 * lon_m, rel=1e-5)
    assert geo.y_m == pytest.approx(1e-4 * lat_m, rel=1e-5)
    assert geo.gsd_m == pytest.approx(math.sqrt(1e-8 * lon_m * lat_m), rel=1e-5)


def test_model_transformation_tag(tmp_path):
    keys = (1, 1, 0, 2, 1024, 0, 1, 1, 3076, 0, 1, 9001)
    # A 30 degree rotated 5 m grid: the pixel size is the length of each column of the matrix.
    c, s = 5 * math.cos(math.pi / 6), 5 * math.sin(math.pi / 6)
    tags = {34264: (c, -s, 0, 1000, s, c, 0, 2000, 0, 0, 0, 0, 0, 0, 0, 1), 34735: keys}
    assert gsd_from_geotiff_tags(tags, 10, 10).gsd_m == pytest.approx(5.0)


def test_tags_without_geokeys_or_for_plain_images_give_none(tmp_path):
    assert gsd_from_geotiff_tags({33550: (10.0, 10.0, 0.0)}, 10, 10) is None  # units unknown: no guessing
    plain = tmp_path / "plain.tif"
    Image.new("RGB", (8, 8)).save(plain)
    assert gsd_from_geotiff(plain) is None
    png = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(png)
    assert gsd_from_geotiff(png) is None
