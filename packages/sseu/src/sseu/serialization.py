"""Save and load an :class:`SSEUHead` as one safetensors file (weights + JSON config, no pickle).

Loading trusts nothing in the file (as safetensors itself does not): the config in the header is
type-checked, the head it describes is built on the meta device and its parameter shapes compared with
the shapes the header declares *before* any tensor is read or allocated, and every tensor must be a
finite floating-point array. Every problem is a ``ValueError`` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .gsd import check_finite
from .head import SSEUHead

FORMAT = "sseu-head/1"
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")

# Constructor arguments of SSEUHead as save_head writes them, and the type each must have.
_COUNT, _REAL = "a positive integer", "a finite number"
_CONFIG_TYPES = {
    "in_features": _COUNT, "hidden": _COUNT, "depth": _COUNT, "pooling": "'attention' or 'mean'",
    "input_norm": "true or false",
    "dropout": _REAL, "init_mean": _REAL, "init_std": _REAL, "min_std": _REAL, "max_std": _REAL,
    "check_inputs": "true or false", "spectrum_tile": "a non-negative integer",
    "spectrum_bands": _COUNT, "spectrum_channels": _COUNT,
}  # fmt: skip


def save_head(head: SSEUHead, path: str | Path) -> Path:
    """Write the head's weights and constructor arguments to ``path`` (a ``.safetensors`` file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    save_file(state, str(path), metadata={"format": FORMAT, "config": json.dumps(head.config)})
    return path


def _has_type(value, expected: str) -> bool:
    if expected == _COUNT:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if expected == _REAL:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if expected == "a non-negative integer":
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if expected == "true or false":
        return isinstance(value, bool)
    return value in ("attention", "mean")


def _head_config(meta: dict, path) -> dict:
    """The constructor arguments stored in the header, each checked for its type."""
    try:
        config = json.loads(meta["config"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: the header holds no readable head config ({type(err).__name__}: {err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the head config must be an object, got {type(config).__name__}")
    unknown = sorted(set(config) - set(_CONFIG_TYPES))
    if unknown:
        raise ValueError(f"{path}: unknown head config keys {', '.join(unknown)}")
    for key, value in config.items():
        if not _has_type(value, _CONFIG_TYPES[key]):
            raise ValueError(f"{path}: head config {key} must be {_CONFIG_TYPES[key]}, got {json.dumps(value)}")
    return config


def _expected_shapes(config: dict, path) -> dict[str, tuple[int, ...]]:
    """Parameter shapes of the head ``config`` describes, from a copy on the meta device (no memory)."""
    try:
        with torch.device("meta"):
            head = SSEUHead(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: invalid head config ({err})") from None
    return {k: tuple(v.shape) for k, v in head.state_dict().items()}


def _check_header(f, expected: dict[str, tuple[int, ...]], path) -> None:
    stored = {k: f.get_slice(k) for k in f.keys()}
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: tensors do not fit the head config: missing {missing}, unexpected {unexpected}")
    for name, info in stored.items():
        shape = tuple(info.get_shape())
        if shape != expected[name]:
            raise ValueError(f"{path}: tensor {name} has shape {shape}, the head config implies {expected[name]}")
        if info.get_dtype() not in FLOAT_DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {info.get_dtype()}, expected a floating type")


def load_head(path: str | Path, device: str = "cpu") -> SSEUHead:
    """Rebuild the head saved by :func:`save_head`; raises ``ValueError`` for other or damaged files."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ValueError(f"{path} is not an SSE-U head file (format {meta.get('format')!r}, want {FORMAT!r})")
            config = _head_config(meta, path)
            _check_header(f, _expected_shapes(config, path), path)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from None
    for name, tensor in state.items():
        check_finite(tensor, f"{path}: tensor {name}")
    head = SSEUHead(**config)
    head.load_state_dict(state, strict=True)
    return head.to(device)
