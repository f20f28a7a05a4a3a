"""Use CS-HLoRA through PEFT: a custom LoRA layer registered on a ``LoraConfig``.

    from peft import get_peft_model
    import cshlora
    from cshlora.peft import cshlora_lora_config, save_pretrained, from_pretrained

    config = cshlora_lora_config(cshlora.CSHLoRAConfig(r=16, alpha=8))
    model = get_peft_model(base_model, config)      # every targeted nn.Linear is gated
    cshlora.set_scale(model, log10_gsd)             # as with the native API
    save_pretrained(model, "adapter/")             # PEFT files + cshlora_config.json
    model = from_pretrained(fresh_base, "adapter/")

PEFT does not serialise custom layer registrations, so loading goes through
:func:`from_pretrained`, which re-registers the layer from the saved ``cshlora_config.json``. Plain
``PeftModel.from_pretrained`` (or a serving engine) would build ordinary LoRA layers, drop the gates and
run the adapter ungated without a word, so :func:`save_pretrained` writes a ``target_modules`` in
``adapter_config.json`` that matches nothing and says why: plain PEFT refuses with
"Target modules (?#CS-HLoRA adapter: load it with cshlora.peft.from_pretrained ...) not found". The
real targets are kept in ``cshlora_config.json``. For engines that need plain LoRA, export one adapter
per GSD instead.
Merging follows PEFT: ``cshlora.set_scale(model, s0)`` with one scalar, then ``merge_and_unload()``.
Needs the ``peft`` extra (``pip install cshlora[peft]``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

try:
    from peft import LoraConfig, PeftModel
    from peft.tuners.lora.layer import Linear as _PeftLoraLinear
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("cshlora.peft needs PEFT: pip install 'cshlora[peft]'") from e

from .backends import gated_lowrank
from .config import CSHLoRAConfig
from .gates import GATES, gate_for
from .layer import ScaleConditioned, is_4bit
from .loading import read_checked_tensors
from .model import load_adapter_config, load_adapter_meta, write_adapter_config

_CONFIG_ATTR = "_cshlora_config"


class PeftCSHLoRALinear(ScaleConditioned, _PeftLoraLinear):
    """PEFT's LoRA ``Linear`` with per-rank gates ``lora_tau``/``lora_sharpness`` per adapter.

    The gate parameters carry the ``lora_`` prefix so PEFT trains, saves and loads them with the
    adapter. An adapter added from a plain ``LoraConfig`` (no CS-HLoRA config attached) runs ungated.
    """

    # Every registered gate kind's parameters, prefixed so PEFT trains, saves and loads them with the adapter.
    adapter_layer_names = _PeftLoraLinear.adapter_layer_names + tuple(
        dict.fromkeys(f"lora_{name}" for gate in GATES.values() for name in gate.param_names)
    )

    def update_layer(self, adapter_name: str, r: int, lora_alpha: int, config: LoraConfig, **kwargs) -> None:
        if not hasattr(self, "cs_configs"):
            # Must exist before PEFT's update_layer, which walks adapter_layer_names.
            for name in self.adapter_layer_names[len(_PeftLoraLinear.adapter_layer_names) :]:
                setattr(self, name, nn.ParameterDict())
            self.cs_configs: dict[str, CSHLoRAConfig] = {}
            self.gate_buffers: dict[str, dict[str, torch.Tensor]] = {}
        cs = getattr(config, _CONFIG_ATTR, None) or CSHLoRAConfig(r=r, alpha=lora_alpha, gate="none")
        if cs.r != r:
            raise ValueError(f"LoraConfig r={r} differs from the CS-HLoRA config r={cs.r}")
        gate = gate_for(cs.gate)
        for name in gate.param_names:  # a kind registered after this module was imported
            if not hasattr(self, f"lora_{name}"):
                setattr(self, f"lora_{name}", nn.ParameterDict())
                self.adapter_layer_names = (*self.adapter_layer_names, f"lora_{name}")
        super().update_layer(adapter_name, r, lora_alpha=lora_alpha, config=config, **kwargs)
        self.cs_configs[adapter_name] = cs
        weight = self.lora_A[adapter_name].weight
        # PEFT trains, saves and loads the parameters in the lora_-prefixed dicts (adapter_layer_names).
        for name, param in gate.init_params(cs, weight.device, weight.dtype).items():
            getattr(self, f"lora_{name}")[adapter_name] = param
        self.gate_buffers[adapter_name] = gate.init_buffers(cs, weight.device, torch.float64)

    # ScaleConditioned reads these; with several adapters the active one decides.
    @property
    def gate_kind(self) -> str:
        """The active adapters' gate kind ("none" when every active adapter is ungated)."""
        kinds = {self.cs_configs[a].gate for a in self.active_adapters if a in self.cs_configs} - {"none"}
        return "none" if not kinds else kinds.pop() if len(kinds) == 1 else "+".join(sorted(kinds))

    @property
    def needs_scale(self) -> bool:
        return any(not gate_for(self.cs_configs[a].gate).is_open for a in self.active_adapters if a in self.cs_configs)

    @property
    def default_log10_gsd(self) -> float | None:
        for a in self.active_adapters:
            if a in self.cs_configs and self.cs_configs[a].default_log10_gsd is not None:
                return self.cs_configs[a].default_log10_gsd
        return None

    def adapter_gate(self, adapter: str, s, var) -> torch.Tensor | None:
        cs = self.cs_configs[adapter]
        gate = gate_for(cs.gate)
        if gate.is_open or s is None:
            return None
        dtype = self.lora_A[adapter].weight.dtype
        s, var = s.to(dtype), (var.to(dtype) if var is not None else None)
        state = {name: getattr(self, f"lora_{name}")[adapter] for name in gate.param_names}
        return gate.values(s, var, {**state, **self.gate_buffers[adapter]}, cs)

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        self._check_forward_args(x, *args, **kwargs)
        if kwargs.pop("adapter_names", None) is not None:
            raise ValueError("CS-HLoRA layers do not support PEFT's mixed-adapter batches (adapter_names=)")
        if self.disable_adapters:
            if self.merged:
                self.unmerge()
            return self.base_layer(x, *args, **kwargs)
        result = self.base_layer(x, *args, **kwargs)
        if self.merged:
            return result
        s, var = self.resolve_scale(x)
        for adapter in self.active_adapters:
            if adapter not in self.lora_A.keys():
                continue
            delta = gated_lowrank(
                x,
                self.lora_A[adapter].weight,
                self.lora_B[adapter].weight,
                self.scaling[adapter],
                self.adapter_gate(adapter, s, var),
                self.lora_dropout[adapter],
            )
            result = result + delta.to(result.dtype)
        return result

    def get_delta_weight(self, adapter: str) -> torch.Tensor:
        """``ΔW`` at the stored scale, which must be one scalar (PEFT's merge API has no scale argument)."""
        if is_4bit(self.get_base_layer()):
            raise ValueError("merging CS-HLoRA into a 4-bit base is not supported through PEFT; use cshlora.merge")
        A, B = self.lora_A[adapter].weight, self.lora_B[adapter].weight
        gate = torch.ones(A.shape[0], device=A.device, dtype=A.dtype)
        if not gate_for(self.cs_configs[adapter].gate).is_open:
            gate = self.adapter_gate(adapter, *self.scalar_scale(None, None, A.device, A.dtype))
        return (B * (gate * self.scaling[adapter])) @ A

    def __repr__(self) -> str:
        return "cshlora." + super().__repr__()


def register(lora_config: LoraConfig, cs_config: CSHLoRAConfig) -> LoraConfig:
    """Attach ``cs_config`` to ``lora_config`` and register the CS-HLoRA layer for ``nn.Linear``."""
    if lora_config.r != cs_config.r:
        raise ValueError(f"LoraConfig r={lora_config.r} differs from the CS-HLoRA config r={cs_config.r}")
    setattr(lora_config, _CONFIG_ATTR, cs_config)
    lora_config._register_custom_module({nn.Linear: PeftCSHLoRALinear})
    return lora_config


def cshlora_lora_config(cs_config: CSHLoRAConfig | None = None, **lora_kwargs: Any) -> LoraConfig:
    """A ``LoraConfig`` mirroring ``cs_config`` (r, alpha, dropout, targets) with the layer registered.

    Extra keyword arguments go to ``LoraConfig`` (e.g. ``task_type``).
    """
    cs = cs_config or CSHLoRAConfig()
    lora_kwargs.setdefault("r", cs.r)
    lora_kwargs.setdefault("lora_alpha", cs.alpha)
    lora_kwargs.setdefault("lora_dropout", cs.dropout)
    lora_kwargs.setdefault("target_modules", cs.target_modules)
    if cs.exclude_modules is not None:
        lora_kwargs.setdefault("exclude_modules", cs.exclude_modules)
    return register(LoraConfig(**lora_kwargs), cs)


# A regex that matches no module name (the empty negative lookahead always fails), with the reason in a
# regex comment, so that PEFT's "target modules ... not found" error tells the user what to call.
PLAIN_PEFT_GUARD = (
    "(?#CS-HLoRA adapter: load it with cshlora.peft.from_pretrained; plain PEFT would run it ungated)(?!)"
)


def save_pretrained(model: PeftModel, path: str | os.PathLike, adapter_name: str = "default", **kwargs: Any) -> Path:
    """``model.save_pretrained(path)`` plus the CS-HLoRA config PEFT cannot serialise.

    ``adapter_config.json`` gets :data:`PLAIN_PEFT_GUARD` as its ``target_modules`` so that plain PEFT
    refuses the folder instead of running it ungated; the real value is kept in ``cshlora_config.json``
    (``peft_target_modules``) and restored by :func:`from_pretrained`.
    """
    peft_config = model.peft_config[adapter_name]
    cs = getattr(peft_config, _CONFIG_ATTR, None)
    if cs is None:
        raise ValueError(f"adapter {adapter_name!r} was not created from a CS-HLoRA config")
    model.save_pretrained(str(path), selected_adapters=[adapter_name], **kwargs)
    out = Path(path) if adapter_name == "default" else Path(path) / adapter_name
    targets = peft_config.target_modules
    targets = sorted(targets) if isinstance(targets, (set, list, tuple)) else targets
    config_file = out / "adapter_config.json"
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    saved["target_modules"] = PLAIN_PEFT_GUARD
    tmp = config_file.with_name(config_file.name + ".tmp")
    tmp.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, config_file)
    write_adapter_config(out, cs, peft=True, peft_target_modules=targets)
    return out


def _rank_fits(path: Path, r: int):
    """A check of PEFT's adapter tensors against the rank of the CS-HLoRA config, on the file header."""
    rank_dim = {"lora_A": 0, "lora_B": 1, "lora_tau": 0, "lora_sharpness": 0}

    def check(stored: dict[str, tuple[int, ...]]) -> None:
        for name, shape in stored.items():
            kind = next((k for k in rank_dim if f".{k}" in name), None)
            if kind is None:
                continue
            ok = len(shape) == (1 if kind in ("lora_tau", "lora_sharpness") else 2) and shape[rank_dim[kind]] == r
            if not ok:
                raise ValueError(f"{path}: tensor {name} has shape {shape}, which does not fit the config's r={r}")

    return check


def from_pretrained(model: nn.Module, path: str | os.PathLike, **kwargs: Any) -> PeftModel:
    """Load an adapter written by :func:`save_pretrained` onto ``model`` through PEFT.

    Both config files are validated and the weights file's shapes (read from its header) compared with
    the configured rank before PEFT allocates anything; NaN/inf weights are refused (``ValueError``).
    """
    path = Path(path)
    cs_config = load_adapter_config(path)
    try:
        lora_config = LoraConfig.from_pretrained(str(path))
    except (OSError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: unreadable PEFT adapter_config.json ({type(err).__name__}: {err})") from None
    if lora_config.r != cs_config.r:
        raise ValueError(f"{path}: adapter_config.json has r={lora_config.r!r}, cshlora_config.json r={cs_config.r}")
    if lora_config.target_modules == PLAIN_PEFT_GUARD:
        targets = load_adapter_meta(path).get("peft_target_modules")
        if not (isinstance(targets, str) or (isinstance(targets, list) and all(isinstance(t, str) for t in targets))):
            raise ValueError(f"{path}: cshlora_config.json has no valid peft_target_modules ({targets!r})")
        lora_config.target_modules = set(targets) if isinstance(targets, list) else targets
    weights = path / "adapter_model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no PEFT adapter weights at {weights}")
    read_checked_tensors(weights, _rank_fits(weights, cs_config.r))
    register(lora_config, cs_config)
    try:
        return PeftModel.from_pretrained(model, str(path), config=lora_config, **kwargs)
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        raise ValueError(f"adapter at {path} does not fit the model: {' '.join(str(err).split())[:300]}") from None
