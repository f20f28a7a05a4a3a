"""Qwen3-VL for ScaleEarth: load (optionally NF4), freeze, inject the adapter, attach SSE-U, route the GSD.

The GSD reaches the adapters like this: a forward hook on the vision tower fires once the visual
tokens exist and before any LLM layer runs; it pools each image's tokens through SSE-U, picks each
sample's gate GSD (oracle metadata, the SSE-U estimate, or a per-sample mix) and calls
``cshlora.set_scale``. The value stays set, so gradient-checkpoint recomputation sees it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

import cshlora

from .scale import GateSource

# Modules that stay out of 4-bit quantisation. The skip list is matched against full module names,
# so a bare "visual" does NOT keep the vision tower out (measured with transformers 5.24: all 12
# vision linears of the tiny model were quantised); "model.visual" does. Naming any list also
# replaces transformers' default, which keeps lm_head out: name it too.
NF4_SKIP_MODULES = ["model.visual", "visual", "lm_head"]


def _has_bnb_linear4bit(module: nn.Module) -> bool:
    return type(module).__name__ == "Linear4bit" and type(module).__module__.startswith("bitsandbytes")


def quantised_modules(model: nn.Module) -> list[str]:
    """Names of the bitsandbytes 4-bit linears in ``model``."""
    return [name for name, m in model.named_modules() if _has_bnb_linear4bit(m)]


def vision_tower(model: nn.Module) -> nn.Module:
    """The Qwen-VL vision tower (``model.visual`` in transformers >= 4.52, ``visual`` before)."""
    for path in ("model.visual", "visual"):
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    raise ValueError(f"{type(model).__name__} has no vision tower at model.visual or visual")


def images_from_pixel_values(pixel_values: torch.Tensor, grid_thw: torch.Tensor, vision_config) -> list[torch.Tensor]:
    """The processor's images back from Qwen-VL's flat patches: one ``[C, H, W]`` per image (first frame).

    Qwen2/2.5/3-VL processors store each image as rows of ``(C, temporal, patch, patch)`` values in the
    order ``(t, h / merge, w / merge, merge, merge)``; this undoes that layout (no resampling, so the
    pixels are exactly the ones the vision tower reads, resized and normalised).
    """
    p = int(vision_config.patch_size)
    tp = int(getattr(vision_config, "temporal_patch_size", 1))
    m = int(getattr(vision_config, "spatial_merge_size", 1))
    c = pixel_values.shape[-1] // (tp * p * p)
    if c * tp * p * p != pixel_values.shape[-1]:
        raise ValueError(f"pixel_values rows of {pixel_values.shape[-1]} values do not fit {tp}x{p}x{p} patches")
    sizes = grid_thw.prod(-1).tolist()
    if sum(sizes) != pixel_values.shape[0]:
        raise ValueError(f"image_grid_thw describes {sum(sizes)} patches, pixel_values has {pixel_values.shape[0]}")
    images = []
    for rows, (t, h, w) in zip(torch.split(pixel_values, sizes), grid_thw.tolist()):
        x = rows.reshape(t, h // m, w // m, m, m, c, tp, p, p)[..., 0, :, :]  # first frame of each patch
        x = x.permute(0, 5, 1, 3, 6, 2, 4, 7).reshape(t, c, h * p, w * p)
        images.append(x[0])
    return images


def merged_image_tokens(output, grid_thw: torch.Tensor, merge_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image visual tokens of a vision tower's output (after the merger: what the LLM reads), padded to
    ``[B, N, D]``, and the mask of real tokens."""
    merged = output.pooler_output if hasattr(output, "pooler_output") else output[0]
    sizes = (grid_thw.prod(-1) // merge_size**2).tolist()
    tokens = nn.utils.rnn.pad_sequence(torch.split(merged, sizes), batch_first=True)
    mask = torch.zeros(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    for i, n in enumerate(sizes):
        mask[i, :n] = True
    return tokens, mask


def load_vlm(
    model: str,
    *,
    quantize: str = "none",
    device: torch.device | str = "cpu",
    trust_remote_code: bool = False,
):
    """Load a Qwen3-VL (hub id or local folder) and its processor; NF4 quantises only the LLM.

    Weights come in bf16 on a GPU and fp32 on a CPU. Raises if quantisation touched the vision tower.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    device = torch.device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    kwargs: dict = {"dtype": dtype, "trust_remote_code": trust_remote_code}
    if quantize == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
            llm_int8_skip_modules=NF4_SKIP_MODULES,
        )
        kwargs["device_map"] = {"": device}
    elif quantize != "none":
        raise ValueError(f"quantize must be 'nf4' or 'none', got {quantize!r}")
    vlm = AutoModelForImageTextToText.from_pretrained(model, **kwargs)
    if quantize == "none":
        vlm.to(device)
    else:
        tower = vision_tower(vlm)
        leaked = [n for n, m in tower.named_modules() if _has_bnb_linear4bit(m)]
        if leaked:
            raise RuntimeError(f"NF4 quantisation reached the vision tower ({leaked[:3]}...); it must stay unquantised")
    processor = AutoProcessor.from_pretrained(model, trust_remote_code=trust_remote_code)
    return vlm, processor


def adapter_config(kind: str, *, r: int, alpha: float) -> cshlora.CSHLoRAConfig:
    """The Stage-2 adapter: CS-HLoRA or one of its baselines, all of rank ``r`` (parameter-matched).

    ``lora`` (B2) and ``gsd-token`` are plain LoRA (the latter gets the GSD as prompt text);
    ``bucketed`` (B4) splits the same ``r`` ranks into one slice per GSD bucket.
    """
    from .adapters import adapter_kind

    return cshlora.CSHLoRAConfig(r=r, alpha=alpha, gate=adapter_kind(kind).gate)


def enable_gradient_checkpointing(vlm: nn.Module) -> None:
    # Non-reentrant checkpointing needs no input that requires grad (the base is frozen);
    # transformers 5 renamed gradient_checkpointing_* to activation_checkpointing_*.
    kwargs = {"use_reentrant": False}
    if hasattr(vlm, "activation_checkpointing_enable"):
        vlm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        vlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if hasattr(vlm, "config"):
        vlm.config.use_cache = False


@dataclass
class StepOutput:
    lm_loss: torch.Tensor
    gsd_nll: torch.Tensor  # 0 when there is no SSE-U head or no sample with a known GSD
    prediction: object | None  # sseu.SSEUPrediction of the batch (None without a head)
    gate_log10_gsd: torch.Tensor | None  # what the adapters were given, [B]


class ScaleEarthVLM(nn.Module):
    """The VLM plus the SSE-U head, as one module (so DDP and checkpoints see both).

    ``forward(batch, step)`` runs the VLM with the hook described in the module docstring and
    returns the LM loss and SSE-U's loss (β-NLL on the effective GSD, MSE warm-up first).
    """

    def __init__(
        self,
        vlm: nn.Module,
        sseu_head: nn.Module | None = None,
        *,
        gate_gsd: str = "oracle",
        beta: float = 0.5,
        sseu_warmup_steps: int = 0,
        seed: int = 0,
    ):
        super().__init__()
        self.vlm = vlm
        self.sseu = sseu_head
        self.gate_gsd = GateSource.parse(gate_gsd)
        self.beta = beta
        self.sseu_warmup_steps = sseu_warmup_steps
        self.seed = seed
        self.scale_gated = any(layer.needs_scale for _, layer in cshlora.cshlora_layers(vlm))
        if self.scale_gated and sseu_head is None and self.gate_gsd.needs_estimate:
            raise ValueError(f"--gate-gsd {gate_gsd} needs an SSE-U head")
        self.merge_size = int(getattr(vision_tower(vlm), "spatial_merge_size", 2))
        self._pending: dict | None = None
        self._seen: dict | None = None
        vision_tower(vlm).register_forward_hook(self._after_vision_tower)

    # -- the hook ------------------------------------------------------------------------------
    def _after_vision_tower(self, module, args, output):
        ctx = self._pending
        if ctx is None:  # a forward outside forward()/generate(): leave the scale alone
            return None
        prediction = None
        if self.sseu is not None:
            tokens, mask = merged_image_tokens(output, ctx["image_grid_thw"], self.merge_size)
            images = None
            if self.sseu.reads_pixels:  # the head's spectrum reads the pixels the tower read
                config = vision_tower(self.vlm).config
                images = images_from_pixel_values(ctx["pixel_values"].detach(), ctx["image_grid_thw"], config)
            # SSE-U is a probe of the frozen visual features: its loss must not move the vision tower.
            prediction = self.sseu(tokens.detach().float(), mask, images=images)
        gate = var = None
        if "choose_scale" in ctx:  # inference: the caller's policy picks each sample's gate GSD
            gate, var = ctx["choose_scale"](prediction)
        elif self.scale_gated:
            gate, var = self._gate_scale(ctx["log10_gsd"], prediction, ctx["step"])
        if self.scale_gated and gate is not None:
            cshlora.set_scale(self.vlm, gate, var)
        self._seen = {"prediction": prediction, "gate": gate}
        return None

    def _gate_scale(self, oracle: torch.Tensor, prediction, step: int):
        """Per-sample gate GSD and variance, decided as at inference (``scale.GateSource.decide``).

        Draws (mixed:P, noisy:SIGMA) are seeded by step, so a resumed or re-run job makes the same ones.
        The gate reads a detached estimate: the LM loss should not pull SSE-U towards a convenient (wrong)
        scale; SSE-U learns the GSD from its own β-NLL term only.
        """
        if prediction is not None:
            from sseu import SSEUPrediction

            prediction = SSEUPrediction(prediction.mean.detach(), prediction.var.detach())
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        decided = self.gate_gsd.decide(oracle, prediction, generator=generator)
        device = oracle.device
        var = None if decided.var is None else decided.var.to(device)
        return decided.log10_gsd.to(device=device, dtype=oracle.dtype), var

    def train(self, mode: bool = True):
        super().train(mode)
        if self.sseu is not None and not any(p.requires_grad for p in self.sseu.parameters()):
            self.sseu.eval()  # a fixed head (sseu_freeze) predicts as it was fitted: no dropout
        return self

    # -- forward -------------------------------------------------------------------------------
    def forward(self, batch: dict, step: int = 0) -> StepOutput:
        device = next(p for p in self.vlm.parameters()).device
        log10_gsd = batch["log10_gsd"].to(device)
        if self.scale_gated and self.sseu is None and bool(torch.isnan(log10_gsd).any()):
            raise ValueError("a sample has no GSD and there is no SSE-U head; the scale-gated adapter needs one")
        self._pending = {"log10_gsd": log10_gsd, "image_grid_thw": batch["image_grid_thw"], "step": step,
                         "pixel_values": batch["pixel_values"]}  # fmt: skip
        self._seen = None
        try:
            inputs = {
                k: batch[k].to(device)
                for k in (
                    "input_ids",
                    "attention_mask",
                    "mm_token_type_ids",
                    "pixel_values",
                    "image_grid_thw",
                    "labels",
                )
                if k in batch
            }
            out = self.vlm(**inputs)
        finally:
            self._pending = None
        if self._seen is None:
            raise RuntimeError("the vision tower did not run: every training sample needs an image")
        prediction = self._seen["prediction"]
        gsd_nll = out.loss.new_zeros(())
        if prediction is not None:
            gsd_nll = self._sseu_loss(prediction, log10_gsd, step)
        return StepOutput(out.loss, gsd_nll, prediction, self._seen["gate"])

    @torch.no_grad()
    def generate(self, inputs: dict, choose_scale, **generate_kwargs) -> tuple[torch.Tensor, dict]:
        """``vlm.generate(**inputs)`` with each sample's gate GSD picked by ``choose_scale(prediction)``.

        ``choose_scale`` gets SSE-U's per-*image* prediction (None without a head) once the visual tokens
        exist, i.e. during prefill, and returns per-*sample* ``(log10_gsd [B], var [B] or None)``. The
        scale stays set for the decoding steps (they reuse the prefill's visual context). Returns the
        generated ids and what the hook saw (``{"prediction", "gate"}``).
        """
        device = next(p for p in self.vlm.parameters()).device
        inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        self._pending = {"image_grid_thw": inputs["image_grid_thw"], "choose_scale": choose_scale,
                         "pixel_values": inputs["pixel_values"]}  # fmt: skip
        self._seen = None
        try:
            ids = self.vlm.generate(**inputs, **generate_kwargs)
        finally:
            self._pending = None
        if self._seen is None:
            raise RuntimeError("the vision tower did not run: every question needs an image")
        return ids, self._seen

    def _sseu_loss(self, prediction, target: torch.Tensor, step: int) -> torch.Tensor:
        from sseu import SSEUPrediction, sseu_loss

        known = ~torch.isnan(target)
        if bool(known.all()):
            return sseu_loss(prediction, target, step=step, warmup_steps=self.sseu_warmup_steps, beta=self.beta)
        if not bool(known.any()):
            return prediction.mean.sum() * 0.0  # keeps the head in the graph (DDP needs every grad)
        part = SSEUPrediction(prediction.mean[known], prediction.var[known])
        return sseu_loss(part, target[known], step=step, warmup_steps=self.sseu_warmup_steps, beta=self.beta)


def visual_feature_size(vlm: nn.Module) -> int:
    """Width of the merged visual tokens (= the LLM hidden size for Qwen3-VL)."""
    cfg = vlm.config
    vision = getattr(cfg, "vision_config", None)
    if vision is not None and getattr(vision, "out_hidden_size", None):
        return int(vision.out_hidden_size)
    return int(cfg.text_config.hidden_size)


def set_stage1_trainable(vlm: nn.Module, *, unfreeze_vision: bool, unfreeze_projector: bool) -> None:
    """Stage 1 trains the LLM adapter; the vision blocks and the merger (projector) only when asked."""
    tower = vision_tower(vlm)
    for name, p in tower.named_parameters():
        is_projector = name.startswith(("merger.", "deepstack_merger_list."))
        if (is_projector and unfreeze_projector) or (not is_projector and unfreeze_vision):
            p.requires_grad_(True)
