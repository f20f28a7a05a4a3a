"""Step (c) of tools/gpu_check.py: a Stage-2 training step of Qwen3-VL at the 8B shape, NF4 LLM.

One step is what ``scaleearth_cli.train`` does per optimizer step: ``ScaleEarthVLM`` forward (vision
tower, SSE-U on the visual tokens, the gate set from each sample's GSD, the LLM with adapters, with
gradient checkpointing), loss = LM loss + gsd_loss_weight * SSE-U loss, backward, gradient clipping,
AdamW. Variants, all on the same NF4 model and batch:

  cshlora        CS-HLoRA r=64 on all 7 projections of every layer, as the trainer runs it on a GPU:
                 bf16 autocast, backend "auto" (under autocast the triton backend defers to torch)
  cshlora_fused  the same adapter without autocast and with CSHLORA_BACKEND=triton, so the fused
                 kernels run (the model is bf16 already); the count of fused calls is recorded
  peft_lora      PEFT LoRA r=64 (bitsandbytes 4-bit LoRA layers) on the same projections, trainer's way

Peak ``torch.cuda.max_memory_allocated``/``max_memory_reserved`` are taken per variant from a reset
after the model is built, so they hold the model, adapter, optimizer state and the step itself.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import math
import os
import statistics
import time
import traceback

import torch
from gpu_check_qwen import (
    QWEN3_VL_8B,
    QWEN3_VL_TINY,
    build_random_vlm,
    quantise_llm_nf4,
    qwen3_vl_config,
    synthetic_batch,
)

import cshlora
from cshlora import backends
from cshlora.config import DEFAULT_TARGET_MODULES

# packages/scaleearth_cli/README.md, "Memory estimate": the claim is that one 24 GB GPU holds the
# step; the estimate (parameter counts, CUDA context included) is 15.8 GB. GB = 1e9 bytes there.
CLAIM_GB, ESTIMATE_GB = 24.0, 15.8
GB = 1e9


def gpu_shape() -> dict:
    return dict(sizes=QWEN3_VL_8B, batch=2, tokens=2048, image_side_patches=32, warmup=2, steps=5)


def dry_run_shape() -> dict:
    return dict(sizes=QWEN3_VL_TINY, batch=2, tokens=48, image_side_patches=4, warmup=1, steps=1)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _env(name: str, value: str | None):
    old = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def _count_fused_calls():
    """Counts launches of the fused autograd function (0 means every layer took the torch path)."""
    from cshlora.kernels import autograd as kautograd

    calls = [0]
    real = kautograd.CSHLoRAFunction.apply

    def counting(*args):
        calls[0] += 1
        return real(*args)

    kautograd.CSHLoRAFunction.apply = counting
    try:
        yield calls
    finally:
        kautograd.CSHLoRAFunction.apply = real


def time_steps(model, cfg, batch, device, *, autocast: bool, warmup: int, steps: int) -> dict:
    """Run warmup + steps optimizer steps; step times (s), losses and peak memory of the whole run."""
    from scaleearth_cli.train import make_optimizer

    optimizer, _ = make_optimizer(cfg, model)
    params = [p for p in model.parameters() if p.requires_grad]
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    model.train()
    _free(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, losses = [], []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        with amp:
            out = model(batch, i)
            loss = out.lm_loss + cfg.gsd_loss_weight * out.gsd_nll
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
        losses.append(float(loss.detach()))
    result = {
        "step_s": times,
        "median_step_s": statistics.median(times),
        "losses": losses,
        "losses_finite": all(math.isfinite(v) for v in losses),
        "trainable_params": sum(p.numel() for p in params),
    }
    if device.type == "cuda":
        result["peak_allocated_gb"] = torch.cuda.max_memory_allocated(device) / GB
        result["peak_reserved_gb"] = torch.cuda.max_memory_reserved(device) / GB
    del optimizer
    peak = f", peak reserved {result['peak_reserved_gb']:.1f} GB" if device.type == "cuda" else ""
    print(f"   {result['median_step_s'] * 1e3:.0f} ms/step (median of {steps}), "
          f"losses {losses[0]:.3f} .. {losses[-1]:.3f}{peak}", flush=True)  # fmt: skip
    return result


def _guarded(name: str, fn) -> dict:
    """One variant; an exception (out of memory, say) is recorded and the other variants still run."""
    print(f"   variant {name}", flush=True)
    try:
        return fn()
    except Exception as e:
        print(traceback.format_exc()[-3000:], flush=True)
        return {"error": f"{type(e).__name__}: {e}"}


def _cshlora_variants(vlm, cfg, batch, device, shape, on_gpu) -> dict:
    from scaleearth_cli.modeling import ScaleEarthVLM, adapter_config, visual_feature_size
    from sseu import SSEUHead

    torch.manual_seed(cfg.seed)
    cshlora.inject(vlm, adapter_config("cshlora", r=cfg.r, alpha=cfg.alpha))
    layers = [layer for _, layer in cshlora.cshlora_layers(vlm)]
    head = SSEUHead(visual_feature_size(vlm), hidden=cfg.sseu_hidden, check_inputs=False).to(device)
    model = ScaleEarthVLM(vlm, head, gate_gsd=cfg.gate_gsd, beta=cfg.beta, seed=cfg.seed)
    n = dict(warmup=shape["warmup"], steps=shape["steps"])
    probe = torch.empty(1, 1, device=device, dtype=torch.bfloat16 if on_gpu else torch.float32)

    def trainer_way():
        r = time_steps(model, cfg, batch, device, autocast=on_gpu, **n)
        # Under autocast the triton backend defers to torch whatever auto picks (see cshlora.kernels.autograd).
        return r | {"backend": f"auto -> {backends.resolve_backend(layers[0].backend, probe).name}",
                    "autocast": on_gpu, "adapted_layers": len(layers)}  # fmt: skip

    def fused():
        with _env("CSHLORA_BACKEND", "triton"), _count_fused_calls() as calls:
            r = time_steps(model, cfg, batch, device, autocast=False, **n)
        r |= {"backend": "triton", "autocast": False, "fused_calls": calls[0], "adapted_layers": len(layers)}
        if calls[0] == 0:
            r["error"] = "no layer ran the fused kernels (every call fell back to torch)"
        return r

    try:
        return {"cshlora": _guarded("cshlora (the trainer's way)", trainer_way),
                "cshlora_fused": _guarded("cshlora_fused (no autocast, CSHLORA_BACKEND=triton)", fused)}  # fmt: skip
    finally:
        cshlora.unload_adapter(vlm)  # the PEFT variant gets the same NF4 model back, bare


def _peft_variant(vlm, cfg, batch, device, shape, on_gpu) -> dict:
    from peft import LoraConfig, get_peft_model

    from scaleearth_cli.modeling import ScaleEarthVLM, visual_feature_size
    from sseu import SSEUHead

    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=0.0, target_modules=list(DEFAULT_TARGET_MODULES))
    peft_model = get_peft_model(vlm, lora)
    inner = peft_model.base_model.model  # the same Qwen3-VL, LoRA layers swapped in
    adapted = sum(1 for n, _ in inner.named_modules() if n.endswith(".lora_A"))
    head = SSEUHead(visual_feature_size(inner), hidden=cfg.sseu_hidden, check_inputs=False).to(device)
    model = ScaleEarthVLM(inner, head, gate_gsd=cfg.gate_gsd, beta=cfg.beta, seed=cfg.seed)
    result = time_steps(model, cfg, batch, device, autocast=on_gpu, warmup=shape["warmup"], steps=shape["steps"])
    result["adapted_layers"] = adapted
    result["lora_layer_type"] = type(inner.get_submodule(_first_target(inner))).__module__
    return result


def _first_target(model) -> str:
    return next(n for n, m in model.named_modules() if n.endswith("q_proj") and hasattr(m, "lora_A"))


def run(device: torch.device, dry_run: bool) -> dict:
    """Step (c): build, quantise, time the variants; status and figures."""
    from scaleearth_cli.config import TrainConfig
    from scaleearth_cli.modeling import enable_gradient_checkpointing

    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        return {"status": "skipped", "reason": f"bitsandbytes is not importable ({e}): no NF4 model"}
    on_gpu = device.type == "cuda"
    shape = dry_run_shape() if dry_run else gpu_shape()
    cfg = TrainConfig()  # the Stage-2 defaults: r=64, alpha=32, NF4, oracle gate GSD, loss weights
    dtype = torch.bfloat16 if on_gpu else torch.float32  # as load_vlm: bf16 on a GPU, fp32 on a CPU
    config = qwen3_vl_config(shape["sizes"])
    t0 = time.perf_counter()
    vlm = build_random_vlm(config, device, dtype)
    quantised = quantise_llm_nf4(vlm, compute_dtype=dtype)
    enable_gradient_checkpointing(vlm)
    _free(device)
    built_s = time.perf_counter() - t0
    print(f"   built and quantised {len(quantised)} linears to NF4 in {built_s:.1f} s", flush=True)
    text = config.text_config
    result = {
        "model": "Qwen3-VL, random weights, " + ("tiny CPU shape" if dry_run else "Qwen3-VL-8B-Instruct shape"),
        "layers": text.num_hidden_layers, "hidden": text.hidden_size, "mlp": text.intermediate_size,
        "heads_q_kv": [text.num_attention_heads, text.num_key_value_heads], "vocab": text.vocab_size,
        "vision_depth": config.vision_config.depth, "deepstack": list(config.vision_config.deepstack_visual_indexes),
        "tokens": shape["tokens"], "batch": shape["batch"], "r": cfg.r, "alpha": cfg.alpha,
        "gradient_checkpointing": True, "nf4_linears": len(quantised), "build_and_quantise_s": built_s,
        "warmup_steps": shape["warmup"], "timed_steps": shape["steps"],
        "params": sum(p.numel() for p in vlm.parameters()),
    }  # fmt: skip
    if on_gpu:
        result["model_allocated_gb"] = torch.cuda.memory_allocated(device) / GB
    batch = synthetic_batch(config, batch=shape["batch"], tokens=shape["tokens"],
                            image_side_patches=shape["image_side_patches"], device=device)  # fmt: skip
    variants = _cshlora_variants(vlm, cfg, batch, device, shape, on_gpu)
    _free(device)
    if importlib.util.find_spec("peft") is None:
        variants["peft_lora"] = {"skipped": "peft is not importable"}
    else:
        variants["peft_lora"] = _guarded("peft_lora", lambda: _peft_variant(vlm, cfg, batch, device, shape, on_gpu))
    result["variants"] = variants
    return _judge(result, text.num_hidden_layers * len(DEFAULT_TARGET_MODULES), on_gpu)


def _judge(result: dict, expected_layers: int, on_gpu: bool) -> dict:
    """Pass: every variant that ran stepped with finite losses, on all the projections; memory figures."""
    problems = []
    if result["nf4_linears"] != expected_layers:
        problems.append(f"{result['nf4_linears']} NF4 linears, expected {expected_layers}")
    for name, v in result["variants"].items():
        if "skipped" in v:
            continue
        if "error" in v:
            problems.append(f"{name}: {v['error']}")
        elif not v["losses_finite"]:
            problems.append(f"{name}: non-finite loss {v['losses']}")
        elif v["adapted_layers"] != expected_layers:
            problems.append(f"{name}: {v['adapted_layers']} adapted layers, expected {expected_layers}")
    v, peft = result["variants"]["cshlora"], result["variants"].get("peft_lora", {})
    if on_gpu and "peak_reserved_gb" in v:
        free, total = torch.cuda.mem_get_info()
        # What the device uses beyond PyTorch's allocator (CUDA context, library handles), read now.
        outside = (total - free) / GB - torch.cuda.memory_reserved() / GB
        need = v["peak_reserved_gb"] + outside
        result["memory"] = {
            "peak_allocated_gb": v["peak_allocated_gb"], "peak_reserved_gb": v["peak_reserved_gb"],
            "outside_allocator_gb": outside, "peak_device_gb": need,
            "claim_gb": CLAIM_GB, "fits_claim": need <= CLAIM_GB,
            "estimate_gb": ESTIMATE_GB, "over_estimate": need / ESTIMATE_GB,
        }  # fmt: skip
    for name in ("cshlora", "cshlora_fused"):
        w = result["variants"].get(name, {})
        if "median_step_s" in w and "median_step_s" in peft:
            # The long-term aim is the fused CS-HLoRA step >= 1.5x faster than PEFT + bitsandbytes QLoRA.
            result[f"peft_over_{name}"] = peft["median_step_s"] / w["median_step_s"]
    result["status"] = "fail" if problems else "pass"
    if problems:
        result["problems"] = problems
    return result
