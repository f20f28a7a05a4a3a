"""CS-HLoRA at fixed GSDs as standard PEFT LoRA adapters, for engines that serve LoRA (vLLM, SGLang, TGI).

At one scale ``s`` the update ``(alpha/r) B diag(h(s)) A`` is an ordinary rank-r LoRA with ``B' = B diag(h(s))``
and the same ``A`` and ``alpha``. :func:`export_lora` writes that adapter in PEFT's own files
(``adapter_config.json`` + ``adapter_model.safetensors``), loadable by plain ``PeftModel.from_pretrained``;
:func:`export_lora_grid` writes one per GSD of a grid plus an index, and :func:`adapter_for_gsd` picks the
adapter for a request's GSD from that index: the grid point nearest in log10 (a GSD exactly half-way between
two grid points takes the finer one; below the finest or above the coarsest, the end point).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .gate import check_log10_gsd
from .model import _require_layers

EXPORT_INDEX_NAME = "cshlora_export.json"
EXPORT_FORMAT = "cshlora-lora-export/1"
PEFT_PREFIX = "base_model.model."  # how PEFT names a module of the model it wraps, in its adapter files


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def lora_state_dict(model: nn.Module, log10_gsd: float) -> dict[str, torch.Tensor]:
    """PEFT-named ``lora_A``/``lora_B`` weights of the standard LoRA equal to ``model``'s adapter at one scale."""
    s = torch.tensor(float(log10_gsd), dtype=torch.float64)
    check_log10_gsd(s)
    out = {}
    for name, layer in _require_layers(model, "export"):
        if layer.merged:
            raise ValueError(f"{name} is merged; unmerge (or load the adapter afresh) before exporting")
        A = layer.lora_A.detach()
        B = layer.lora_B.detach().to(torch.float64)
        if not layer.gate.is_open:
            B = B * _gate64(layer, s)  # in float64, so the gated B is rounded once
        out[f"{PEFT_PREFIX}{name}.lora_A.weight"] = A.contiguous().cpu()
        out[f"{PEFT_PREFIX}{name}.lora_B.weight"] = B.to(layer.lora_B.dtype).contiguous().cpu()
    return out


def _gate64(layer, s: torch.Tensor) -> torch.Tensor:
    state = {name: value.detach().double().cpu() for name, value in layer.gate_state().items()}
    return layer.gate.values(s, None, state, layer.config)


def export_lora(model: nn.Module, log10_gsd: float, path: str | os.PathLike, *, base_model_name_or_path=None) -> Path:
    """Write the standard PEFT LoRA adapter equal to ``model``'s CS-HLoRA at ``log10_gsd`` into ``path``.

    Exact up to rounding the gated ``B`` once to the adapter's dtype. Dropout is kept (it only acts in
    training). ``target_modules`` lists the adapted modules by their full names, so nothing else matches.
    """
    from safetensors.torch import save_file

    layers = _require_layers(model, "export")
    config = layers[0][1].config
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = lora_state_dict(model, log10_gsd)
    peft_config = {
        "peft_type": "LORA",
        "task_type": None,
        "r": config.r,
        "lora_alpha": config.alpha,
        "lora_dropout": config.dropout,
        "bias": "none",
        "target_modules": sorted(name for name, _ in layers),
        "base_model_name_or_path": base_model_name_or_path,
        "inference_mode": True,
        "fan_in_fan_out": False,
        "init_lora_weights": True,
    }
    tmp = path / "adapter_model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt", "cshlora_log10_gsd": repr(float(log10_gsd))})
    os.replace(tmp, path / "adapter_model.safetensors")
    _atomic_write(path / "adapter_config.json", (json.dumps(peft_config, indent=2) + "\n").encode())
    return path


def grid_name(gsd_m: float) -> str:
    """Adapter name for a grid GSD, as served engines want it (letters, digits, ``_`` and ``.``)."""
    return f"gsd_{gsd_m:g}m"


def export_lora_grid(
    model: nn.Module, gsds_m: Sequence[float], out: str | os.PathLike, *, base_model_name_or_path=None
) -> Path:
    """One PEFT LoRA adapter per GSD (metres) in ``out/<name>/`` and the index ``out/cshlora_export.json``."""
    grid = sorted({float(g) for g in gsds_m})
    if not grid or any(not (math.isfinite(g) and g > 0) for g in grid):
        raise ValueError(f"the GSD grid must hold finite values > 0 metres, got {list(gsds_m)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for g in grid:
        name = grid_name(g)
        export_lora(model, math.log10(g), out / name, base_model_name_or_path=base_model_name_or_path)
        entries.append({"name": name, "gsd_m": g, "log10_gsd": math.log10(g)})
    logs = [e["log10_gsd"] for e in entries]
    for i, e in enumerate(entries):  # the log10 range each adapter serves: midpoints to its neighbours
        e["from_log10_gsd"] = None if i == 0 else (logs[i - 1] + logs[i]) / 2
        e["to_log10_gsd"] = None if i == len(logs) - 1 else (logs[i] + logs[i + 1]) / 2
    index = {
        "format": EXPORT_FORMAT,
        "rule": "nearest grid GSD in log10; half-way goes to the finer one; outside the grid, the end point",
        "adapters": entries,
    }
    _atomic_write(out / EXPORT_INDEX_NAME, (json.dumps(index, indent=2) + "\n").encode())
    return out / EXPORT_INDEX_NAME


def read_export_index(path: str | os.PathLike) -> dict:
    """The index written by :func:`export_lora_grid` (a folder or the JSON file), validated."""
    path = Path(path)
    if path.is_dir():
        path = path / EXPORT_INDEX_NAME
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path}: not a readable export index ({err})") from None
    if not isinstance(index, dict) or index.get("format") != EXPORT_FORMAT or not index.get("adapters"):
        raise ValueError(f"{path}: not a {EXPORT_FORMAT} index")
    for e in index["adapters"]:
        if not (
            isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("log10_gsd"), (int, float))
        ):
            raise ValueError(f"{path}: malformed adapter entry {e!r}")
    return index


def adapter_for_gsd(index: dict, gsd_m: float) -> str:
    """The name of the exported adapter that serves a request at ``gsd_m`` metres (see the module docstring)."""
    if not (isinstance(gsd_m, (int, float)) and math.isfinite(gsd_m) and gsd_m > 0):
        raise ValueError(f"gsd_m must be a finite number > 0 metres per pixel, got {gsd_m!r}")
    s = math.log10(gsd_m)
    # sorted by GSD, so on a tie min() keeps the first: the finer grid point
    entries = sorted(index["adapters"], key=lambda e: e["log10_gsd"])
    return min(entries, key=lambda e: abs(e["log10_gsd"] - s))["name"]
