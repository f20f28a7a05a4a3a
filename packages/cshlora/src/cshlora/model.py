"""Model-level operations: inject adapters, set the scale, merge, save and load."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from .config import CSHLoRAConfig
from .gate import check_log10_gsd, check_variance
from .layer import CSHLoRALinear, ScaleConditioned, as_scale_tensor
from .loading import config_from_json, read_checked_tensors

ADAPTER_WEIGHTS_NAME = "cshlora_adapter.safetensors"
ADAPTER_CONFIG_NAME = "cshlora_config.json"
ADAPTER_FORMAT = "cshlora-adapter/1"


def cshlora_layers(model: nn.Module) -> Iterator[tuple[str, CSHLoRALinear]]:
    """Every native CS-HLoRA layer in ``model`` with its qualified name."""
    for name, module in model.named_modules():
        if isinstance(module, CSHLoRALinear):
            yield name, module


def scale_conditioned_layers(model: nn.Module) -> list[ScaleConditioned]:
    """Every layer that reads the scale: native CS-HLoRA layers and their PEFT counterparts."""
    return [m for m in model.modules() if isinstance(m, ScaleConditioned)]


def _require_layers(model: nn.Module, action: str) -> list[tuple[str, CSHLoRALinear]]:
    layers = list(cshlora_layers(model))
    if not layers:
        raise ValueError(f"cannot {action}: the model has no CS-HLoRA layers (call cshlora.inject first)")
    return layers


def _set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def _targets(model: nn.Module, config: CSHLoRAConfig) -> list[tuple[str, nn.Module]]:
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if name and isinstance(module, nn.Linear) and config.matches(name)
    ]
    if not targets:
        raise ValueError(
            f"no linear layer of {type(model).__name__} matches target_modules={config.target_modules!r} "
            f"(exclude_modules={config.exclude_modules!r})"
        )
    return targets


def inject(model: nn.Module, config: CSHLoRAConfig) -> nn.Module:
    """Wrap every targeted linear layer of ``model`` in a :class:`CSHLoRALinear`, in place.

    All other parameters are frozen (as PEFT does); the adapter's ``lora_A``/``lora_B`` train, and
    ``tau``/``sharpness`` train unless the config freezes them. Returns ``model``.
    """
    if any(True for _ in cshlora_layers(model)):
        raise ValueError("the model already has CS-HLoRA layers; inject once per model")
    targets = _targets(model, config)
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in targets:
        _set_submodule(model, name, CSHLoRALinear(module, config))
    model.cshlora_config = config
    if callable(getattr(model, "save_pretrained", None)):
        # transformers would write base_layer/lora_* keys that its from_pretrained cannot map back
        # (it only reports missing keys and leaves the projections random): refuse instead.
        model.save_pretrained = _refuse_save_pretrained
    return model


def _refuse_save_pretrained(*args, **kwargs):
    raise TypeError(
        "this model has CS-HLoRA layers injected, and transformers' save_pretrained would write weights its "
        "from_pretrained cannot load. Save the adapter with cshlora.save_adapter(model, path) (load it onto a "
        "fresh base with cshlora.load_adapter), or fold one GSD in with cshlora.merge(model, log10_gsd) and then "
        "call save_pretrained on the merged model."
    )


def set_scale(model: nn.Module, log10_gsd, var=None) -> None:
    """Set the scale ``s = log10(GSD in metres)`` that every CS-HLoRA layer of ``model`` uses.

    ``log10_gsd``: a number, ``[B]`` (per sample) or ``[B, T]`` (per token); ``var``: the variance of
    ``s`` in the same shape (or a scalar), which switches the gates to their expectation under
    ``s ~ N(log10_gsd, var)``. The value stays until the next call (or :func:`clear_scale`), so
    gradient-checkpoint recomputation sees the same scale. Autograd history is kept: pass a
    detached tensor unless gradients should reach whatever produced it.
    """
    layers = scale_conditioned_layers(model)
    if not layers:
        raise ValueError("cannot set the scale: the model has no CS-HLoRA layers (call cshlora.inject first)")
    device = next(p.device for p in layers[0].parameters())
    s = as_scale_tensor(log10_gsd, "log10_gsd", device=device)
    check_log10_gsd(s)
    v = None
    if var is not None:
        v = as_scale_tensor(var, "var", device=device)
        check_variance(v)
        if v.dim() == 0 and s.dim() > 0:
            v = v.expand(s.shape)
        if v.shape != s.shape:
            raise ValueError(f"var has shape {tuple(v.shape)} but log10_gsd has shape {tuple(s.shape)}")
    for layer in layers:
        layer.set_scale(s, v)


def set_gsd(model: nn.Module, gsd_m, var=None) -> None:
    """:func:`set_scale` with the GSD in metres per pixel (a number, ``[B]`` or ``[B, T]``), so units are explicit.

    Every value must be finite and > 0; ``var`` is the variance of ``log10(gsd_m)``, as in :func:`set_scale`.
    """
    layers = scale_conditioned_layers(model)
    device = next(p.device for p in layers[0].parameters()) if layers else None
    g = as_scale_tensor(gsd_m, "gsd_m", device=device)
    if not bool(torch.isfinite(g).all() & (g > 0).all()):
        raise ValueError(f"gsd_m must be finite and > 0 metres per pixel, got {g.tolist()}")
    set_scale(model, torch.log10(g), var)


def clear_scale(model: nn.Module) -> None:
    """Forget the stored scale (layers then need an explicit scale or their default)."""
    for layer in scale_conditioned_layers(model):
        layer.set_scale(None, None)


def merge(model: nn.Module, log10_gsd=None, var=None, unload: bool = True) -> nn.Module:
    """Fold ``ΔW(s0)`` into every base layer for one fixed deployment scale ``s0``.

    With ``unload=True`` (default) the wrappers are replaced by their base layers and a plain model
    is returned, ready for ``save_pretrained``. With ``unload=False`` the wrappers stay (merged) and
    :func:`unmerge` restores the adapter.
    """
    for _, layer in _require_layers(model, "merge"):
        layer.merge(log10_gsd, var)
    return unload_adapter(model) if unload else model


def unmerge(model: nn.Module) -> nn.Module:
    for _, layer in _require_layers(model, "unmerge"):
        layer.unmerge()
    return model


def unload_adapter(model: nn.Module) -> nn.Module:
    """Replace every CS-HLoRA wrapper by its base layer (merged or not), in place."""
    for name, layer in list(cshlora_layers(model)):
        _set_submodule(model, name, layer.base_layer)
    if hasattr(model, "cshlora_config"):
        del model.cshlora_config
    if model.__dict__.get("save_pretrained") is _refuse_save_pretrained:
        del model.__dict__["save_pretrained"]
    return model


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter's parameters only, keyed by qualified name (``<module>.lora_A`` ...)."""
    out = {}
    for name, layer in _require_layers(model, "collect adapter weights"):
        for pname in layer.adapter_param_names:
            out[f"{name}.{pname}"] = getattr(layer, pname).detach()
    return out


def _model_config(model: nn.Module) -> CSHLoRAConfig:
    cfg = getattr(model, "cshlora_config", None)
    if cfg is None:
        cfg = _require_layers(model, "find the adapter config")[0][1].config
    return cfg


def save_adapter(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write the adapter to directory ``path``: ``cshlora_adapter.safetensors`` + ``cshlora_config.json``.

    Files are written to temporary names and renamed, so an interrupted save never leaves a
    half-written adapter behind.
    """
    from safetensors.torch import save_file

    from ._version import __version__

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous().cpu() for k, v in adapter_state_dict(model).items()}
    tmp_w = path / (ADAPTER_WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp_w), metadata={"format": ADAPTER_FORMAT})
    os.replace(tmp_w, path / ADAPTER_WEIGHTS_NAME)
    write_adapter_config(path, _model_config(model), cshlora_version=__version__)
    return path


def write_adapter_config(path: Path, config: CSHLoRAConfig, **extra) -> None:
    """Write ``cshlora_config.json`` atomically (temporary name, then rename)."""
    meta = {"format": ADAPTER_FORMAT, **extra, "config": config.to_dict()}
    tmp = path / (ADAPTER_CONFIG_NAME + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path / ADAPTER_CONFIG_NAME)


def load_adapter_config(path: str | os.PathLike) -> CSHLoRAConfig:
    """The config stored next to an adapter written by :func:`save_adapter` (or cshlora.peft)."""
    meta = load_adapter_meta(path)
    return config_from_json(meta, str(Path(path) / ADAPTER_CONFIG_NAME))


def load_adapter_meta(path: str | os.PathLike) -> dict:
    """The whole ``cshlora_config.json`` (format, config and what the writer added), validated as JSON."""
    path = Path(path)
    cfg_file = path / ADAPTER_CONFIG_NAME
    if not cfg_file.is_file():
        raise FileNotFoundError(f"no CS-HLoRA adapter at {path}: {ADAPTER_CONFIG_NAME} is missing")
    try:
        meta = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{cfg_file} is not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != ADAPTER_FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{cfg_file}: unsupported adapter format {found!r} (expected {ADAPTER_FORMAT})")
    return meta


def _expected_shapes(model: nn.Module, config: CSHLoRAConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of the adapter tensors ``config`` would give ``model``, from layers built on the meta device."""
    if any(True for _ in cshlora_layers(model)):
        return {k: tuple(v.shape) for k, v in adapter_state_dict(model).items()}
    shapes = {}
    for name, module in _targets(model, config):
        shadow = nn.Linear(module.in_features, module.out_features, bias=False, device="meta")
        layer = CSHLoRALinear(shadow, config)
        shapes.update({f"{name}.{p}": tuple(getattr(layer, p).shape) for p in layer.adapter_param_names})
    return shapes


def _fits(path: Path, expected: dict[str, tuple[int, ...]]):
    def check(stored: dict[str, tuple[int, ...]]) -> None:
        missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"adapter at {path} does not fit the model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
            )
        for name, shape in stored.items():
            if shape != expected[name]:
                raise ValueError(
                    f"adapter tensor {name} has shape {shape} in {path / ADAPTER_WEIGHTS_NAME}, the model and its "
                    f"config expect {expected[name]}"
                )

    return check


def load_adapter(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load an adapter saved by :func:`save_adapter` into ``model``.

    A model without CS-HLoRA layers is injected first with the saved config. Every adapter tensor
    must match a layer of the model and every layer must receive its tensors; anything else is an
    error that names the offending keys. Shapes are compared with the file's header before the
    adapter is injected or any tensor is read, and NaN/inf values are refused. Returns ``model``.
    """
    path = Path(path)
    config = load_adapter_config(path)
    injected = any(True for _ in cshlora_layers(model))
    if injected and _model_config(model).to_dict() != config.to_dict():
        raise ValueError(f"the model's CS-HLoRA config differs from the adapter's config at {path}")
    state = read_checked_tensors(path / ADAPTER_WEIGHTS_NAME, _fits(path, _expected_shapes(model, config)))
    if not injected:
        inject(model, config)
    with torch.no_grad():
        for key, target in adapter_state_dict(model).items():
            target.copy_(state[key].to(device=target.device, dtype=target.dtype))
    return model
