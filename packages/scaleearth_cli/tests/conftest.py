"""Shared fixtures of the scaleearth CLI tests: one tiny Qwen3-VL and one small corpus per session."""

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # for scaleearth_train_testutil (pytest runs with --import-mode=importlib)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from scaleearth_cli.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen3-vl")


@pytest.fixture(scope="session")
def train_corpus(tmp_path_factory):
    """24 LLaVA-style colour tiles (Stage 1) and 24 synthetic scale-world scenes (Stage 2), 4 per shard."""
    from scaleearth_train_testutil import make_llava_json

    from geoscale_vqa import build

    root = tmp_path_factory.mktemp("train-corpus")
    llava = make_llava_json(root / "llava")
    build([f"llava={llava}", "synthetic=24"], root / "corpus", shard_size=4, workers=1)
    return root / "corpus"
