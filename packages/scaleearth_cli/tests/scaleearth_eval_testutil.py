"""Helpers of the evaluation tests: benchmark fixtures in their published layouts, adapter runs without training."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# The narrow SSE-U head of the "random" run predicts this everywhere (zero output weights), so the
# deployment policy takes its estimate and every SSE-U number can be computed by hand.
HEAD_GSD_M = 3.0
HEAD_STD_LOG10 = 0.05


@cache
def fixture_maker():
    """tools/make_fixtures_benchmarks.py as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "make_fixtures_benchmarks", REPO / "tools" / "make_fixtures_benchmarks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_adapter_run(run: Path, tiny_model_dir: Path, *, lora_b_std: float, seed: int = 0) -> Path:
    """A Stage-2 run folder as `train` leaves it (final/adapter, final/sseu_head.safetensors, config.yaml).

    ``lora_b_std = 0`` is the adapter as initialised (B = 0: the gate cannot matter); > 0 a random one.
    """
    import torch

    import cshlora
    from scaleearth_cli.config import TrainConfig
    from scaleearth_cli.modeling import adapter_config, load_vlm, visual_feature_size
    from sseu import SSEUHead, save_head

    vlm, _ = load_vlm(str(tiny_model_dir))
    torch.manual_seed(seed)
    cshlora.inject(vlm, adapter_config("cshlora", r=8, alpha=16))
    with torch.no_grad():
        for _, layer in cshlora.cshlora_layers(vlm):
            layer.lora_B.normal_(0.0, lora_b_std) if lora_b_std > 0 else layer.lora_B.zero_()
    cshlora.save_adapter(vlm, run / "final" / "adapter")
    head = SSEUHead(visual_feature_size(vlm), hidden=32)
    with torch.no_grad():
        head.reset_output(math.log10(HEAD_GSD_M), HEAD_STD_LOG10)
    save_head(head, run / "final" / "sseu_head.safetensors")
    TrainConfig(stage=2, adapter="cshlora", r=8, alpha=16.0, model=str(tiny_model_dir)).save(run / "config.yaml")
    return run


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_predictions_file(path: Path, predictions: dict) -> Path:
    """{id: text} as a predictions JSONL file, written by hand (not with the code under test)."""
    path.write_text("".join(json.dumps({"id": k, "prediction": v}) + "\n" for k, v in predictions.items()))
    return path
