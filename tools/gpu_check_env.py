"""What tools/gpu_check.py runs on: package versions against what each step needs, and the device."""

from __future__ import annotations

import importlib
import platform
import subprocess
from importlib import metadata

import torch
from benchlib import cpu_name

# package: (lowest version relied on, what is lost without it). torch is imported already.
REQUIREMENTS = {
    "torch": ("2.4", "everything"),
    "triton": ("3.0", "step kernels and step benchmark (the fused kernels)"),
    "transformers": ("4.57", "step stage2 (Qwen3-VL)"),
    "bitsandbytes": ("0.45", "the NF4 case of step kernels, and step stage2"),
    "peft": ("0.17", "the PEFT LoRA row of step benchmark and the PEFT variant of step stage2"),
    "safetensors": ("0.4", "importing cshlora and sseu"),
}
OTHER_PACKAGES = ("numpy", "accelerate", "matplotlib", "pyyaml")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        module = {"pyyaml": "yaml"}.get(name, name)
        try:
            return getattr(importlib.import_module(module), "__version__", "unknown")
        except ImportError:
            return None


def _at_least(found: str, need: str) -> bool:
    from packaging.version import Version

    return Version(found.split("+")[0]) >= Version(need)


def check_requirements() -> tuple[list[dict], dict]:
    """One row per package relied on (found version, ok), and every version recorded."""
    rows = []
    for name, (need, used_for) in REQUIREMENTS.items():
        found = _version(name)
        ok = found is not None and (found == "unknown" or _at_least(found, need))
        if ok and name in ("bitsandbytes", "peft", "triton", "transformers"):
            try:  # installed is not enough: a wheel for another CUDA or Python can fail on import
                importlib.import_module(name)
            except Exception as e:  # noqa: BLE001  (any import failure means: not usable here)
                ok, found = False, f"{found} (import fails: {type(e).__name__}: {e})"
        rows.append({"package": name, "need": f">={need}", "found": found, "ok": ok, "used_for": used_for})
    versions = {"python": platform.python_version()}
    versions.update({r["package"]: r["found"] for r in rows})
    versions.update({name: _version(name) for name in OTHER_PACKAGES})
    return rows, versions


def usable(rows: list[dict], name: str) -> bool:
    return next(r["ok"] for r in rows if r["package"] == name)


def _nvidia_smi(field: str) -> str | None:
    try:
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else None


def device_info(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"name": f"CPU: {cpu_name()}", "kind": "cpu", "threads": torch.get_num_threads()}
    props = torch.cuda.get_device_properties(device)
    return {
        "name": props.name,
        "kind": "cuda",
        "driver": _nvidia_smi("driver_version"),
        "cuda_runtime": torch.version.cuda,
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": props.total_memory / 2**30,
        "multiprocessors": props.multi_processor_count,
        "clocks_sm_mhz_now": _nvidia_smi("clocks.sm"),
    }


def git_commit(root) -> dict:
    """The commit checked (the GPU machine gets a copy of the tree, possibly without .git: then None)."""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True,
                               timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if head.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
