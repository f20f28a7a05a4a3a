"""Deterministic WebDataset tar shards, written under a temporary name and renamed when complete.

Every member gets the same metadata (mtime 0, uid/gid 0, no user names, mode 0644), so a shard's bytes
depend only on its samples. The file is fsynced before the atomic rename, so a shard that exists under
its final name is complete even after a power cut or `kill -9`.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

from .pipeline import Sample

TMP_MARK = ".tmp-"


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info, io.BytesIO(data)


def tmp_path(final: Path) -> Path:
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}")


def write_shard(final: Path, samples: list[Sample]) -> tuple[int, str]:
    """Write `samples` to `final` atomically; returns (bytes, sha256 hex)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(final)
    with open(tmp, "wb") as f:
        with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for sample in samples:
                tar.addfile(*_member(f"{sample.key}.{sample.image_ext}", sample.image_bytes))
                tar.addfile(*_member(f"{sample.key}.json", sample.json_bytes()))
        f.flush()
        os.fsync(f.fileno())
    data = tmp.read_bytes()
    os.replace(tmp, final)
    fsync_dir(final.parent)
    return len(data), hashlib.sha256(data).hexdigest()


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (the project's one file hash: shards, checkpoints, results)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
