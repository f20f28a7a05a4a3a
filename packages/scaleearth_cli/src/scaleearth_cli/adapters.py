"""The Stage-2 adapter kinds, in one table: CS-HLoRA and the paper's baselines, all of rank ``r``.

Every place that needs to know what a kind is (config validation, building the adapter, the collator's
GSD sentence, reading a run back, export) looks it up here; nothing else spells the names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AdapterKind:
    name: str
    gate: str  # the cshlora gate kind (cshlora.gates)
    gsd_in_prompt: bool  # the GSD reaches the model as prompt text, before the vision tower runs
    summary: str

    @property
    def scale_gated(self) -> bool:
        return self.gate != "none"


ADAPTER_KINDS: dict[str, AdapterKind] = {
    k.name: k
    for k in (
        AdapterKind("cshlora", "continuous", False, "CS-HLoRA: ranks gated by a continuous function of log10 GSD"),
        AdapterKind("lora", "none", False, "B2: standard LoRA, no scale"),
        AdapterKind("gsd-token", "none", True, "LoRA with the GSD written into the prompt"),
        AdapterKind("bucketed", "bucketed", False, "B4: parameter-matched bucketed MoE-LoRA"),
    )
}
ADAPTERS = tuple(ADAPTER_KINDS)


def adapter_kind(name: str) -> AdapterKind:
    try:
        return ADAPTER_KINDS[name]
    except KeyError:
        raise ValueError(f"adapter must be one of {', '.join(ADAPTERS)}, got {name!r}") from None


def kind_of_gate(gate: str) -> AdapterKind:
    """The kind a saved adapter is, from its gate alone (a run without its config: gsd-token reads as lora)."""
    return next((k for k in ADAPTER_KINDS.values() if k.gate == gate and not k.gsd_in_prompt), ADAPTER_KINDS["lora"])
