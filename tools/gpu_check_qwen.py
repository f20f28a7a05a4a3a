"""A randomly initialised Qwen3-VL at the 8B shape (or a tiny one), its LLM in NF4, and a synthetic batch.

For tools/gpu_check.py step (c). No checkpoint is downloaded (the GPU machine reaches no network):
the architecture comes from Qwen/Qwen3-VL-8B-Instruct's config, written out below, and the weights
are random. The model is built in bf16 directly on the GPU, then the LLM's linear layers are
quantised to NF4 one at a time (each bf16 weight is freed as soon as its NF4 copy exists), with the
settings ``scaleearth_cli.modeling.load_vlm`` gives bitsandbytes: NF4, double quantisation, the
vision tower and ``lm_head`` left in bf16.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from scaleearth_cli.modeling import NF4_SKIP_MODULES

# Qwen/Qwen3-VL-8B-Instruct's config.json, sizes only (token ids are Qwen's).
QWEN3_VL_8B = {
    "text_config": dict(
        hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=262144,
        rms_norm_eps=1e-6, attention_bias=False,
        rope_scaling={"rope_type": "default", "mrope_section": [24, 20, 20], "mrope_interleaved": True,
                      "rope_theta": 5_000_000.0},
    ),
    "vision_config": dict(
        depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
        patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
        deepstack_visual_indexes=[8, 16, 24],
    ),
    "image_token_id": 151655, "video_token_id": 151656,
    "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "tie_word_embeddings": False,
}  # fmt: skip

# The same architecture at CPU size (for --dry-run): 2 layers of hidden 64, 4 query / 2 KV heads.
QWEN3_VL_TINY = {
    "text_config": dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, vocab_size=512, max_position_embeddings=4096,
        rms_norm_eps=1e-6, attention_bias=False,
        rope_scaling={"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True,
                      "rope_theta": 5_000_000.0},
    ),
    "vision_config": dict(
        depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=64,
        patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
        deepstack_visual_indexes=[0],
    ),
    "image_token_id": 505, "video_token_id": 506, "vision_start_token_id": 503, "vision_end_token_id": 504,
    "tie_word_embeddings": False,
}  # fmt: skip

# Every token id at or above this is a special token in both configs: random text stays below it.
FIRST_SPECIAL_ID = {151936: 151643, 512: 500}


def qwen3_vl_config(sizes: dict):
    from transformers import Qwen3VLConfig

    return Qwen3VLConfig(**{k: (dict(v) if isinstance(v, dict) else v) for k, v in sizes.items()})


def build_random_vlm(config, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """``Qwen3VLForConditionalGeneration`` with transformers' random initialisation, built on ``device``."""
    from transformers import Qwen3VLForConditionalGeneration

    with torch.device(device):  # allocate on the GPU directly: no 17 GB detour through host memory
        vlm = Qwen3VLForConditionalGeneration._from_config(config, dtype=dtype)
    where = {p.device.type for p in vlm.parameters()}
    if where != {device.type}:
        raise RuntimeError(f"the model was built on {where}, not {device.type}")
    return vlm


def _skipped(name: str) -> bool:
    return any(name == s or name.startswith(s + ".") for s in NF4_SKIP_MODULES)


def quantise_llm_nf4(vlm: nn.Module, compute_dtype: torch.dtype) -> list[str]:
    """Replace every LLM linear by a bitsandbytes NF4 ``Linear4bit``, in place; returns their names."""
    import bitsandbytes as bnb

    names = [n for n, m in vlm.named_modules() if type(m) is nn.Linear and not _skipped(n)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = vlm.get_submodule(parent_name)
        dense = getattr(parent, child)
        q = bnb.nn.Linear4bit(
            dense.in_features, dense.out_features, bias=dense.bias is not None, compute_dtype=compute_dtype,
            compress_statistics=True, quant_type="nf4", quant_storage=torch.uint8, device="meta",
        )  # fmt: skip
        weight = bnb.nn.Params4bit(
            dense.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4",
            quant_storage=torch.uint8, module=q,
        )  # fmt: skip
        q.weight = weight.to(dense.weight.device)  # .to() on an unquantised Params4bit quantises it
        if dense.bias is not None:
            q.bias = nn.Parameter(dense.bias.data, requires_grad=False)
        setattr(parent, child, q)
        del dense, weight
    # What transformers' bitsandbytes quantizer marks; PEFT reads it to pick its 4-bit LoRA layer.
    vlm.is_loaded_in_4bit = True
    return names


def synthetic_batch(config, *, batch: int, tokens: int, image_side_patches: int, device, seed: int = 0) -> dict:
    """A Stage-2 batch of ``batch`` samples, ``tokens`` in all: one image each, then random text.

    Shaped like ``scaleearth_cli.data.Collator``'s output: input_ids with the vision markers and one
    ``<|image_pad|>`` per merged visual token, pixel_values as flattened patches, image_grid_thw,
    labels (-100 on the image), one log10 GSD per sample.
    """
    vc = config.vision_config
    g = torch.Generator().manual_seed(seed)
    per_sample = tokens // batch
    merge = vc.spatial_merge_size
    n_image = (image_side_patches // merge) ** 2
    n_text = per_sample - n_image - 2
    if n_text < 1:
        raise ValueError(f"{per_sample} tokens per sample cannot hold {n_image} image tokens")
    text_top = FIRST_SPECIAL_ID[config.text_config.vocab_size]
    rows = []
    for _ in range(batch):
        text = torch.randint(0, text_top, (n_text,), generator=g)
        image = torch.full((n_image,), config.image_token_id)
        marks = torch.tensor([config.vision_start_token_id]), torch.tensor([config.vision_end_token_id])
        rows.append(torch.cat([marks[0], image, marks[1], text]))
    input_ids = torch.stack(rows)
    labels = input_ids.masked_fill(input_ids >= text_top, -100)
    patch_dim = vc.in_channels * vc.temporal_patch_size * vc.patch_size**2
    n_patches = image_side_patches**2
    out = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "pixel_values": torch.randn(batch * n_patches, patch_dim, generator=g),
        "image_grid_thw": torch.tensor([[1, image_side_patches, image_side_patches]] * batch),
        "log10_gsd": torch.linspace(-0.5, 1.5, batch),  # 0.3 m .. 30 m: the gates differ per sample
    }
    from transformers import Qwen3VLForConditionalGeneration

    # transformers >= 5.2x needs the modality of each token for M-RoPE; older versions take no such input.
    if "mm_token_type_ids" in inspect.signature(Qwen3VLForConditionalGeneration.forward).parameters:
        out["mm_token_type_ids"] = (input_ids == config.image_token_id).long()
    return {k: v.to(device) for k, v in out.items()}
