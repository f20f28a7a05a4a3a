"""Gate kinds as objects: what a rank gate is, in one place per kind (the way peft's ``LoraVariant`` works).

A gate kind says which per-rank state an adapter carries (trainable parameters such as ``tau`` and
``sharpness``, or fixed buffers such as bucket edges), how to compute ``h(s)`` ``[*S, r]`` from that state,
and how the fused Triton kernels take it (:attr:`RankGate.kernel_mode`). The native layer
(:class:`cshlora.CSHLoRALinear`), the PEFT layer (``cshlora.peft``) and the kernels' autograd dispatch on the
object, never on its name:

==============  ====================================================  ===============================
kind            h(s)                                                   kernels
==============  ====================================================  ===============================
``continuous``  ``sigmoid(a_k (tau_k - s))`` (expected under a var)   computed in-kernel from s, var
``bucketed``    one-hot rank slice of the GSD bucket (B4 baseline)    a precomputed [M, r] table
``none``        no gate: plain LoRA (B2)                              no gate
==============  ====================================================  ===============================

A new kind is one class registered with :func:`register_gate`; ``CSHLoRAConfig(gate=...)`` accepts the
registered names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import torch

from .gate import bucket_gate, continuous_gate

if TYPE_CHECKING:
    from .config import CSHLoRAConfig

# How the fused kernels take the gate (cshlora.kernels.lowrank's GATE constants).
KERNEL_NONE, KERNEL_CONTINUOUS, KERNEL_TABLE = 0, 1, 2


class RankGate:
    """The protocol; subclasses set ``name``, ``kernel_mode`` and implement the methods they need."""

    name: ClassVar[str]
    kernel_mode: ClassVar[int] = KERNEL_TABLE
    #: Per-rank parameters, in the order the kernels take them; saved with the adapter.
    param_names: ClassVar[tuple[str, ...]] = ()

    @property
    def is_open(self) -> bool:
        """True for the kind without a gate (every rank always on): scales are then not needed."""
        return False

    def init_params(self, config: CSHLoRAConfig, device, dtype) -> dict[str, torch.nn.Parameter]:
        """The trainable per-rank state of one adapter (names from :attr:`param_names`)."""
        return {}

    def init_buffers(self, config: CSHLoRAConfig, device, dtype) -> dict[str, torch.Tensor]:
        """Fixed per-adapter state derived from the config (not saved: the config rebuilds it)."""
        return {}

    def values(self, s: torch.Tensor, var, state: Mapping[str, torch.Tensor], config: CSHLoRAConfig) -> torch.Tensor:
        """``h(s)`` of shape ``[*s.shape, r]``; ``var`` (or None) the variance of ``s``."""
        raise NotImplementedError


class ContinuousGate(RankGate):
    name = "continuous"
    kernel_mode = KERNEL_CONTINUOUS
    param_names = ("tau", "sharpness")

    def init_params(self, config, device, dtype):
        tau, sharp = config.rank_gate_init()
        return {
            "tau": torch.nn.Parameter(torch.tensor(tau, device=device, dtype=dtype), requires_grad=config.learn_tau),
            "sharpness": torch.nn.Parameter(
                torch.tensor(sharp, device=device, dtype=dtype), requires_grad=config.learn_sharpness
            ),
        }

    def values(self, s, var, state, config):
        return continuous_gate(s, state["tau"], state["sharpness"], var)


class BucketedGate(RankGate):
    name = "bucketed"
    kernel_mode = KERNEL_TABLE

    def init_buffers(self, config, device, dtype):
        edges = torch.tensor([math.log10(e) for e in config.bucket_edges_m], device=device, dtype=dtype)
        return {"bucket_edges": edges}

    def values(self, s, var, state, config):
        edges = state["bucket_edges"].to(device=s.device, dtype=s.dtype)
        return bucket_gate(s, edges, config.bucket_sizes(), var)


class OpenGate(RankGate):
    name = "none"
    kernel_mode = KERNEL_NONE

    @property
    def is_open(self) -> bool:
        return True

    def values(self, s, var, state, config):
        return torch.ones(*s.shape, config.r, device=s.device, dtype=s.dtype)


GATES: dict[str, RankGate] = {}


def register_gate(gate: RankGate) -> RankGate:
    GATES[gate.name] = gate
    return gate


def gate_for(name: str) -> RankGate:
    try:
        return GATES[name]
    except KeyError:
        raise ValueError(f"unknown gate {name!r}; registered: {', '.join(sorted(GATES))}") from None


for _gate in (ContinuousGate(), BucketedGate(), OpenGate()):
    register_gate(_gate)
