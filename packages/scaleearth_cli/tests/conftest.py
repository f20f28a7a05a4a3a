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


@pytest.fixture(scope="session")
def bench_fixtures(tmp_path_factory):
    """{name: (kind, data path, image root or None)}: every benchmark layout (tools/make_fixtures_benchmarks.py)."""
    from scaleearth_eval_testutil import fixture_maker

    return fixture_maker().make_all(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="session")
def untrained_run(tmp_path_factory, tiny_model_dir):
    """A CS-HLoRA run whose adapter is as initialised (lora_B = 0)."""
    from scaleearth_eval_testutil import make_adapter_run

    return make_adapter_run(tmp_path_factory.mktemp("untrained") / "run", tiny_model_dir, lora_b_std=0.0)


@pytest.fixture(scope="session")
def random_run(tmp_path_factory, tiny_model_dir):
    """A CS-HLoRA run with a random adapter (the gate changes the output) and a narrow SSE-U head."""
    from scaleearth_eval_testutil import make_adapter_run

    return make_adapter_run(tmp_path_factory.mktemp("random") / "run", tiny_model_dir, lora_b_std=0.5)


@pytest.fixture(scope="session")
def random_eval_model(tiny_model_dir, random_run):
    from scaleearth_cli.inference import load_eval_model

    return load_eval_model(str(tiny_model_dir), random_run, device="cpu")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, tiny_model_dir, train_corpus):
    """A real (short) `train --stage 2` run: eval must read what training writes."""
    from scaleearth_train_testutil import train_config

    from scaleearth_cli.train import train

    out = tmp_path_factory.mktemp("trained") / "run"
    cfg = train_config(
        stage=2, adapter="cshlora", data=str(train_corpus), model=str(tiny_model_dir), out=str(out),
        quantize="none", max_steps=2, sources=["synthetic"],
    )  # fmt: skip
    train(cfg)
    return out
