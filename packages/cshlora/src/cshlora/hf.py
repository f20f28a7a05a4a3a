"""Train CS-HLoRA where models are already trained: Hugging Face ``Trainer`` and TRL's ``SFTTrainer``.

Two small pieces, both working with gradient accumulation and gradient checkpointing:

- :class:`GSDCollator` wraps the collator you use: it takes each example's GSD (``gsd_m`` in metres, or
  ``log10_gsd``) out of the features, lets the wrapped collator batch the rest, and adds ``log10_gsd`` [B].
- :func:`scale_from_batch` puts a forward pre-hook on the model: every forward (each micro-batch of an
  accumulation, each evaluation batch) takes ``log10_gsd`` out of its keyword arguments and calls
  :func:`cshlora.set_scale` before any layer runs. The scale stays set until the next forward, so the
  recomputation of a checkpointed segment during backward sees the same per-sample scale.

::

    model = cshlora.inject(model, cshlora.CSHLoRAConfig(r=16, alpha=32))  # or through cshlora.peft
    cshlora.hf.scale_from_batch(model)
    trainer = Trainer(model=model, train_dataset=ds,  # examples with a "gsd_m" field
                      args=TrainingArguments(..., remove_unused_columns=False),
                      data_collator=cshlora.hf.GSDCollator(DataCollatorWithPadding(tokenizer)))

``remove_unused_columns=False`` matters: otherwise Trainer drops ``gsd_m`` before any collator sees it
(it keeps only the model's forward arguments); :class:`GSDCollator` says so when the GSD is missing.
Imports nothing from transformers: any collator and any ``nn.Module`` called with keyword arguments work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .model import scale_conditioned_layers, set_scale

SCALE_KWARG = "log10_gsd"


class GSDCollator:
    """``collator`` plus ``log10_gsd`` [B] read from each example's ``gsd_m`` (metres) or ``log10_gsd``.

    Every example needs one (a GSD is finite and > 0 metres); a missing or bad value is a ``ValueError``
    naming the example, never a silent default.
    """

    def __init__(self, collator: Callable[[list[dict]], dict]):
        self.collator = collator

    def __call__(self, features: list[dict[str, Any]]) -> dict:
        scales, rest = [], []
        for i, feature in enumerate(features):
            feature = dict(feature)
            gsd_m, log10_gsd = feature.pop("gsd_m", None), feature.pop(SCALE_KWARG, None)
            scales.append(_log10(i, gsd_m, log10_gsd))
            rest.append(feature)
        batch = self.collator(rest)
        batch[SCALE_KWARG] = torch.tensor(scales, dtype=torch.float32)
        return batch


def _log10(i: int, gsd_m, log10_gsd) -> float:
    if gsd_m is None and log10_gsd is None:
        raise ValueError(
            f"example {i} of the batch has no 'gsd_m' (or 'log10_gsd'); with Trainer, set "
            "TrainingArguments(remove_unused_columns=False) so the column reaches the collator"
        )
    if gsd_m is not None:
        value = float(gsd_m)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"example {i}: gsd_m must be a finite number > 0 metres per pixel, got {gsd_m!r}")
        return math.log10(value)
    value = float(log10_gsd)
    if not math.isfinite(value):
        raise ValueError(f"example {i}: log10_gsd must be finite, got {log10_gsd!r}")
    return value


def scale_from_batch(model: nn.Module, *, required: bool = True) -> torch.utils.hooks.RemovableHandle:
    """Make ``model(..., log10_gsd=...)`` set the scale of its CS-HLoRA layers before the forward runs.

    ``required``: a forward without ``log10_gsd`` raises (a forgotten collator would otherwise train with
    the scale of the previous batch). Returns the hook handle (``.remove()`` undoes it).
    """
    if not scale_conditioned_layers(model):
        raise ValueError("the model has no CS-HLoRA layers (call cshlora.inject or use cshlora.peft first)")

    def take_scale(module, args, kwargs):
        scale = kwargs.pop(SCALE_KWARG, None)
        if scale is None:
            if required:
                raise ValueError(
                    f"forward got no {SCALE_KWARG}=...: wrap the data collator in cshlora.hf.GSDCollator "
                    "(or pass required=False to keep the last scale)"
                )
            return args, kwargs
        set_scale(model, scale.detach() if torch.is_tensor(scale) else scale)
        return args, kwargs

    return model.register_forward_pre_hook(take_scale, with_kwargs=True)
