from importlib.metadata import version

import geoscale_vqa


def test_version_matches_distribution_metadata():
    assert geoscale_vqa.__version__ == version("geoscale-vqa")
