"""Shared fixtures for the geoscale_vqa tests: the real-format source fixtures and one built corpus."""

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE))  # for geoscale_testutil (pytest runs with --import-mode=importlib)


def _load_fixture_maker():
    spec = importlib.util.spec_from_file_location(
        "make_fixtures_geoscale", REPO / "tools" / "make_fixtures_geoscale.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fixture_maker():
    return _load_fixture_maker()


@pytest.fixture(scope="session")
def fixture_sources(tmp_path_factory, fixture_maker):
    """{kind: ARG} for every real-format fixture."""
    return fixture_maker.make_all(tmp_path_factory.mktemp("geoscale-fixtures"))


@pytest.fixture(scope="session")
def all_source_specs(fixture_sources):
    return [f"{kind}={arg}" for kind, arg in fixture_sources.items()]


@pytest.fixture(scope="session")
def built_corpus(tmp_path_factory, all_source_specs):
    """Every fixture source plus 30 synthetic scenes, built once with one worker (shards of 4 samples)."""
    from geoscale_vqa import build

    out = tmp_path_factory.mktemp("corpus") / "out"
    build(all_source_specs + ["synthetic=30"], out, shard_size=4, workers=1)
    return out
