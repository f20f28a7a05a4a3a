"""tools/gpu_check.sh: its dry run on CPU (every step at tiny shapes) and the 8B shape it builds on a GPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"


@pytest.fixture
def tools_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(TOOLS))  # tools/ is not a package; its scripts import each other


def test_8b_shape_is_qwen3_vl_8b_with_252_projections(tools_on_path):
    """The config step (c) builds: built on the meta device, so nothing is allocated."""
    pytest.importorskip("transformers")
    from gpu_check_qwen import QWEN3_VL_8B, qwen3_vl_config
    from transformers import Qwen3VLForConditionalGeneration

    from cshlora.config import DEFAULT_TARGET_MODULES

    config = qwen3_vl_config(QWEN3_VL_8B)
    with torch.device("meta"):
        vlm = Qwen3VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    projections = [n for n, m in vlm.named_modules() if n.rsplit(".", 1)[-1] in DEFAULT_TARGET_MODULES]
    assert len(projections) == 252 and all(".language_model." in n for n in projections)
    llm_params = sum(vlm.get_submodule(n).weight.numel() for n in projections)
    # The arithmetic of packages/scaleearth_cli/README.md's memory estimate ("6.94 B params").
    assert llm_params == 36 * (2 * 4096**2 + 2 * 4096 * 1024 + 3 * 4096 * 12288) == 6_945_767_424
    text, vision = config.text_config, config.vision_config
    assert (text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (32, 8, 128)
    assert (text.vocab_size, vision.depth, vision.hidden_size) == (151936, 27, 1152)
    assert list(vision.deepstack_visual_indexes) == [8, 16, 24]


def test_a_dry_run_never_writes_into_benchmarks_results(tools_on_path):
    from gpu_check import default_out

    assert "benchmarks" not in default_out("CPU: Some CPU", dry_run=True).parts
    assert default_out("NVIDIA H100 80GB HBM3", dry_run=False).parent == ROOT / "benchmarks" / "results"
    assert default_out("NVIDIA H100 80GB HBM3", dry_run=False).name.startswith("gpu_check-nvidia-h100-80gb-hbm3-")


def test_a_nan_or_a_missing_gradient_fails_the_kernel_comparison(tools_on_path):
    from gpu_check_kernels import TOLERANCE, compare, rel_err

    ref = torch.randn(4, 5, dtype=torch.float64)
    unwritten = ref.clone()
    unwritten[2, 3] = float("nan")  # what a poisoned buffer holds where a kernel wrote nothing
    assert rel_err(ref.float(), ref) < 1e-6 and rel_err(unwritten, ref) == float("inf")
    errors = compare({"y": ref, "x": ref, "tau": None}, {"y": ref, "x": ref * 1.02, "tau": ref})
    assert errors["y"] == 0 and errors["x"] > TOLERANCE and errors["tau"] == float("inf")


def test_stage2_fails_on_a_variant_error_or_a_missing_projection(tools_on_path):
    from gpu_check_stage2 import _judge

    def result(nf4_linears=252, **variants):
        ok = {"losses_finite": True, "losses": [12.0], "adapted_layers": 252, "median_step_s": 1.0}
        return {"nf4_linears": nf4_linears, "variants": {"cshlora": ok, "peft_lora": ok} | variants}

    assert _judge(result(), 252, on_gpu=False)["status"] == "pass"
    assert _judge(result(cshlora_fused={"error": "OutOfMemoryError"}), 252, on_gpu=False)["status"] == "fail"
    assert _judge(result(nf4_linears=250), 252, on_gpu=False)["status"] == "fail"
    nan_loss = {"losses_finite": False, "losses": [float("nan")], "adapted_layers": 252, "median_step_s": 1.0}
    assert _judge(result(peft_lora=nan_loss), 252, on_gpu=False)["status"] == "fail"


@pytest.mark.slow
def test_dry_run_passes_every_step(tmp_path):
    pytest.importorskip("triton")
    pytest.importorskip("bitsandbytes")
    pytest.importorskip("peft")
    out = tmp_path / "gpu_check.json"
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "CSHLORA_BACKEND", "PYTHONPATH")}
    env["PYTHON"] = sys.executable
    done = subprocess.run(
        ["bash", str(TOOLS / "gpu_check.sh"), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(out.read_text())
    steps = result["steps"]
    assert list(steps) == ["kernels", "benchmark", "stage2", "serving"]
    assert {name: s["status"] for name, s in steps.items()} == dict.fromkeys(steps, "pass")
    assert result["complete"] and result["mode"].startswith("dry-run") and result["device"]["kind"] == "cpu"
    assert all(r["ok"] for r in result["requirements"]) and result["versions"]["torch"]

    kernels = steps["kernels"]
    assert kernels["auto_backend_resolves_to"] == "torch"
    for case in [*kernels["cases"], kernels["nf4"]]:  # each went through the kernels, every gradient compared
        assert case["ok"] and case["fused_calls"] > 0 and case["max_rel_err"] < 1e-4, case
    assert {"y", "x", "log10_gsd", "var", "lora_A", "lora_B", "tau", "sharpness"} <= set(kernels["nf4"]["errors"])

    variants = {r["variant"] for r in steps["benchmark"]["rows"]}
    assert variants == {"base", "eager", "peft", "torch", "triton", "triton-tb"}

    stage2 = steps["stage2"]
    assert stage2["nf4_linears"] == 14  # 2 layers x 7 projections in the tiny shape
    for name in ("cshlora", "cshlora_fused", "peft_lora"):
        v = stage2["variants"][name]
        assert v["losses_finite"] and v["adapted_layers"] == 14 and v["median_step_s"] > 0, (name, v)
    assert stage2["variants"]["cshlora_fused"]["fused_calls"] > 0

    serving = steps["serving"]
    assert serving["ok"] and serving["routed"] == {"0.2": "gsd_0.3m", "0.5": "gsd_0.3m", "20.0": "gsd_30m",
                                                   "100.0": "gsd_30m"}  # fmt: skip
    assert "gpu_check summary" in done.stdout and "benchmark rows" in done.stdout
