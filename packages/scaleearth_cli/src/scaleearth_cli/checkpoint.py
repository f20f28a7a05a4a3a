"""Training checkpoints without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder ``checkpoints/step-000040/`` holds the trainable weights (adapter, SSE-U head,
anything unfrozen), the optimizer moments, the scheduler, every RNG and each rank's data position.
It is written under a temporary name and renamed once complete, so a killed run never leaves a
half-written checkpoint that ``--resume auto`` could pick up; ``trainer_state.json``, written last,
records the sha256 of every other file, so a checkpoint damaged later (a truncated or changed file) is
recognised: ``--resume auto`` then falls back to the newest intact one and says so, and loading a damaged
one is a ``ValueError`` naming the file.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from geoscale_vqa.shards import sha256_file

from .data import DataPosition

CHECKPOINT_DIR = "checkpoints"
TRAINER_STATE = "trainer_state.json"
_PREFIX = "step-"


def trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().contiguous().cpu() for n, p in module.named_parameters() if p.requires_grad}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{idx}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    meta = {
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"{_PREFIX}{step:06d}"


def _file_digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != TRAINER_STATE
    }


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why checkpoint folder ``ckpt`` cannot be trusted (None when it is intact)."""
    try:
        state = json.loads((Path(ckpt) / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"{TRAINER_STATE} is unreadable ({type(err).__name__})"
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        return f"{TRAINER_STATE} is malformed (no step)"
    files = state.get("files")
    if files is None:  # written before checksums were recorded: the safetensors headers must at least hold
        return _legacy_problem(Path(ckpt))
    if not isinstance(files, dict):
        return f"{TRAINER_STATE} is malformed (no file list)"
    for name, digest in files.items():
        path = Path(ckpt) / name
        if not path.is_file():
            return f"{name} is missing"
        if sha256_file(path) != digest:
            return f"{name} does not match its recorded sha256 (truncated or changed)"
    return None


def _legacy_problem(ckpt: Path) -> str | None:
    from safetensors import SafetensorError, safe_open

    for path in sorted(ckpt.rglob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as f:
                list(f.keys())
        except (OSError, SafetensorError) as err:
            return f"{path.relative_to(ckpt)} is unreadable ({err})"
    return None


def _say(message: str) -> None:
    if os.environ.get("RANK", "0") == "0":  # once per run, not once per rank
        print(message, file=sys.stderr, flush=True)


def latest_checkpoint(run_dir: Path, say=_say) -> Path | None:
    """The newest intact checkpoint of a run (temporary folders of a killed save are ignored).

    A newer checkpoint that is damaged is skipped, and ``say`` is told which one and why.
    """
    root = Path(run_dir) / CHECKPOINT_DIR
    done = [p for p in root.glob(f"{_PREFIX}*") if p.is_dir() and (p / TRAINER_STATE).is_file()]
    done = [p for p in done if p.name[len(_PREFIX) :].isdigit()]
    for ckpt in sorted(done, key=lambda p: int(p.name[len(_PREFIX) :]), reverse=True):
        problem = checkpoint_problem(ckpt)
        if problem is None:
            return ckpt
        say(f"warning: checkpoint {ckpt} is damaged ({problem}); falling back to an older one")
    return None


def save_rank_state(ckpt_tmp: Path, rank: int, position: DataPosition) -> None:
    """Per-rank state: RNG and data position (ranks read different shards)."""
    ckpt_tmp.mkdir(parents=True, exist_ok=True)
    rng_tensors, rng_meta = _rng_state()
    save_file(rng_tensors, str(ckpt_tmp / f"rng_rank{rank}.safetensors"))
    meta = {"rng": rng_meta, "data": {"epoch": position.epoch, "batches": position.batches}}
    (ckpt_tmp / f"rank{rank}.json").write_text(json.dumps(meta))


def save_checkpoint(
    run_dir: Path,
    step: int,
    module: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    trainer: dict,
    export,
) -> Path:
    """Rank 0 writes the shared state and renames the folder; ``export(folder)`` adds adapter/head files."""
    final = checkpoint_path(run_dir, step)
    tmp = final.with_name(final.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(module), str(tmp / "trainable.safetensors"))
    opt_tensors, opt_meta = _optimizer_tensors(optimizer)
    save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "optimizer.json").write_text(json.dumps(opt_meta))
    (tmp / "scheduler.json").write_text(json.dumps(scheduler.state_dict()))
    export(tmp)
    files = _file_digests(tmp)
    (tmp / TRAINER_STATE).write_text(json.dumps({**trainer, "step": step, "files": files}, indent=2))
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    return final


def load_checkpoint(ckpt: Path, module, optimizer, scheduler, rank: int) -> tuple[dict, DataPosition]:
    """Restore everything ``save_checkpoint`` wrote; returns the trainer state and this rank's data position.

    A damaged checkpoint (see ``checkpoint_problem``) is a ``ValueError`` before anything is restored.
    """
    ckpt = Path(ckpt)
    problem = checkpoint_problem(ckpt)
    if problem is not None:
        raise ValueError(f"checkpoint {ckpt} is damaged: {problem}; resume from an older one (--resume auto)")
    state = load_file(str(ckpt / "trainable.safetensors"))
    params = dict(module.named_parameters())
    missing = sorted(n for n, p in params.items() if p.requires_grad and n not in state)
    unexpected = sorted(set(state) - set(params))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {ckpt} does not fit this model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))
    _load_optimizer(
        optimizer, load_file(str(ckpt / "optimizer.safetensors")), json.loads((ckpt / "optimizer.json").read_text())
    )
    scheduler.load_state_dict(json.loads((ckpt / "scheduler.json").read_text()))
    rank_file = ckpt / f"rank{rank}.json"
    if not rank_file.is_file():
        raise ValueError(f"checkpoint {ckpt} has no state for rank {rank}: resume with the same number of processes")
    meta = json.loads(rank_file.read_text())
    _set_rng_state(load_file(str(ckpt / f"rng_rank{rank}.safetensors")), meta["rng"])
    trainer = json.loads((ckpt / TRAINER_STATE).read_text())
    return trainer, DataPosition(**meta["data"])
