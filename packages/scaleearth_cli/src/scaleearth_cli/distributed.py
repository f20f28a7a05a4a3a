"""Data-parallel plumbing: the torchrun launcher behind ``--nproc N`` and the per-process setup."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str = "auto") -> DistInfo:
    """Join the process group torchrun set up (gloo on CPU, NCCL on GPU); a single process otherwise.

    ``device``: auto (cuda when available), cpu, cuda (an error without a GPU) or cuda:N (that GPU, for a
    single process; with several processes each takes the GPU of its local rank).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device} was asked for, but torch sees no GPU")
    if device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        if world > 1:
            raise RuntimeError(f"device {device} names one GPU, but {world} processes run: use device cuda")
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"device {device} was asked for, but torch sees {torch.cuda.device_count()} GPU(s)")
        local = index
    if device != "cpu" and torch.cuda.is_available():
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, device)


def teardown(info: DistInfo) -> None:
    if info.enabled and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        torch.distributed.barrier()


def any_rank(info: DistInfo, flag: bool) -> bool:
    """True if ``flag`` is true on any rank (every rank must then take the same branch)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


def launch(config_file: Path, nproc: int) -> int:
    """Run ``nproc`` training processes with torchrun on this machine; returns their exit status."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "scaleearth_cli.train",
        "--config",
        str(config_file),
    ]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default too; keeps N CPU ranks from oversubscribing
    return subprocess.call(cmd, env=env)
