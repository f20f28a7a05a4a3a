"""Reading a source's files without trusting them: inside the source folder, regular files only, bounded.

Every file a build reads goes through `read_bytes`: its real path (symlinks resolved) must lie under the
source's root unless `allow_outside_root` is set; it is opened non-blocking, so a FIFO cannot hang the
build; anything but a regular file (FIFO, device, socket) is refused; and the size is checked before a
byte is read, so `/dev/zero` or a 3 GB file named `.png` cannot exhaust memory. `fingerprint` tells
`--resume` whether a file changed: size and mtime, plus the content hash of small files.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
CHEAP_HASH_BYTES = 64 * 1024  # files up to this size are hashed whole when fingerprinted
MAX_INDEX_BYTES = 2048 * MiB  # index files (manifests, split JSON) the user names: read whole, so bounded too


@dataclass(frozen=True)
class ReadLimits:
    """What a build will read: part of the build's settings, so changing one changes the plan."""

    max_file_bytes: int = 512 * MiB  # an image or label file larger than this is rejected unread
    max_pixels: int = 100_000_000  # an image with more pixels is rejected before it is decoded
    allow_outside_root: bool = False  # read files whose real path leaves the source folder

    def __post_init__(self):
        for name in ("max_file_bytes", "max_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


class InputError(Exception):
    """A file the build must not or cannot read; `reason` becomes the reject's reason."""

    def __init__(self, reason: str, detail: str | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether `path`, with every symlink resolved, lies in folder `root` (also resolved)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, base]) == base


def _check_confined(path, root, allow_outside: bool) -> None:
    if root is not None and not allow_outside and not inside(path, root):
        raise InputError("path outside the source folder", f"{path} resolves to {os.path.realpath(path)}")


def read_bytes(path: str | os.PathLike, *, root=None, max_bytes: int, allow_outside: bool = False) -> bytes:
    """The bytes of regular file `path` (at most `max_bytes`), confined to `root` when one is given.

    Raises FileNotFoundError for a missing file (callers try other candidates) and `InputError` for one
    that is outside `root`, not a regular file, too large or unreadable.
    """
    _check_confined(path, root, allow_outside)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as err:
        raise InputError("unreadable file", err.strerror or str(err)) from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InputError("not a regular file", f"{path} is a {_kind(info.st_mode)}")
        if info.st_size > max_bytes:
            raise InputError("file too large", f"{info.st_size} bytes, the limit is {max_bytes}")
        try:
            data = f.read(max_bytes + 1)
        except OSError as err:
            raise InputError("unreadable file", err.strerror or str(err)) from None
    if len(data) > max_bytes:  # it grew while we read it
        raise InputError("file too large", f"more than {max_bytes} bytes")
    return data


def read_index(path: str | os.PathLike) -> bytes:
    """An index file the user named (manifest, split JSON): a regular file of bounded size."""
    return read_bytes(path, max_bytes=MAX_INDEX_BYTES)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory")):  # fmt: skip
        if test(mode):
            return name
    return "special file"


def fingerprint(path: str | os.PathLike, *, root=None, allow_outside: bool = False) -> list:
    """What `--resume` compares to notice a changed input: [size, mtime_ns] plus sha256 for small files.

    Never opens anything it would not read in a build: files outside `root` and special files are
    described by that fact alone.
    """
    try:
        _check_confined(path, root, allow_outside)
        info = os.stat(path)
    except InputError:
        return ["outside"]
    except OSError:
        return ["missing"]
    if not stat.S_ISREG(info.st_mode):
        return [_kind(info.st_mode)]
    out = [info.st_size, info.st_mtime_ns]
    if info.st_size <= CHEAP_HASH_BYTES:
        try:
            out.append(hashlib.sha256(read_bytes(path, max_bytes=CHEAP_HASH_BYTES)).hexdigest())
        except (OSError, InputError):
            out.append("unreadable")
    return out


def first_existing(paths: list[str]) -> str | None:
    return next((p for p in paths if Path(p).exists()), None)
