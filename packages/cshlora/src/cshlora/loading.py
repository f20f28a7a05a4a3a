"""Loading adapter files without trusting them: typed config fields, and safetensors checked header-first.

Used by :func:`cshlora.load_adapter` and :func:`cshlora.peft.from_pretrained`. A config value of the
wrong type, a tensor whose declared shape does not fit, a non-float or a NaN/inf tensor, or a file that
is not valid safetensors is a ``ValueError`` naming the file and what is wrong; shapes are compared
from the header before any tensor is read or any adapter memory allocated.
"""

from __future__ import annotations

import json
import os

import torch

from .config import CSHLoRAConfig

# What each field of a stored adapter config must be, checked before CSHLoRAConfig checks the values.
_NAMES = "a list of module names, a regex string or null"
_CONFIG_TYPES = {
    "r": "a positive integer", "alpha": "a number", "dropout": "a number", "target_modules": _NAMES,
    "exclude_modules": _NAMES, "tiers": "a list of {name, size, threshold_m, sharpness} objects",
    "gate": "a string", "bucket_edges_m": "a list of numbers", "learn_tau": "true or false",
    "learn_sharpness": "true or false", "default_log10_gsd": "a number or null", "backend": "a string",
}  # fmt: skip
_TIER_KEYS = {"name", "size", "threshold_m", "sharpness"}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _has_type(value, expected: str) -> bool:
    if expected == "a positive integer":
        return isinstance(value, int) and not isinstance(value, bool) and value > 0
    if expected == "a number":
        return _is_number(value)
    if expected == "a number or null":
        return value is None or _is_number(value)
    if expected == "true or false":
        return isinstance(value, bool)
    if expected == "a string":
        return isinstance(value, str)
    if expected == _NAMES:
        return (
            value is None
            or isinstance(value, str)
            or (isinstance(value, list) and all(isinstance(v, str) for v in value))
        )
    if expected == "a list of numbers":
        return isinstance(value, list) and all(_is_number(v) for v in value)
    return isinstance(value, list) and all(  # tiers
        isinstance(t, dict) and set(t) <= _TIER_KEYS and {"name", "size", "threshold_m"} <= set(t)
        and isinstance(t["name"], str) and all(_is_number(t[k]) for k in t if k != "name")
        for t in value
    )  # fmt: skip


def config_from_json(meta, where: str) -> CSHLoRAConfig:
    """A CSHLoRAConfig from the ``config`` object of an adapter config file; every field's type is checked
    first, so a bad value is a ``ValueError`` naming the key, the value and what was expected."""
    config = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(config, dict):
        raise ValueError(f"{where}: no CS-HLoRA config object under 'config'")
    unknown = sorted(set(config) - set(_CONFIG_TYPES))
    if unknown:
        raise ValueError(f"{where}: unknown CS-HLoRA config keys {', '.join(unknown)}")
    for key, value in config.items():
        if not _has_type(value, _CONFIG_TYPES[key]):
            raise ValueError(f"{where}: {key} must be {_CONFIG_TYPES[key]}, got {json.dumps(value)}")
    try:
        return CSHLoRAConfig.from_dict(config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def read_checked_tensors(path: str | os.PathLike, check_header) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, trusted only after checks (safetensors' own rule for headers):
    ``check_header({name: shape})`` sees the declared shapes first and raises ``ValueError`` when they do
    not fit, before any tensor is read or allocated; then every tensor must be a finite float array."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            infos = {name: f.get_slice(name) for name in f.keys()}
            check_header({name: tuple(info.get_shape()) for name, info in infos.items()})
            for name, info in infos.items():
                if info.get_dtype() not in ("F16", "BF16", "F32", "F64"):
                    raise ValueError(f"{path}: tensor {name} has dtype {info.get_dtype()}, expected a float type")
            state = {name: f.get_tensor(name) for name in infos}
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from None
    for name, tensor in state.items():
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            n_nan = int(torch.isnan(tensor).sum())
            raise ValueError(f"{path}: tensor {name} has {n_nan} NaN and {int(bad.sum()) - n_nan} inf value(s)")
    return state
