"""The source registry: adapters register here by kind; the package `__init__` imports every adapter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..inputs import ReadLimits
from ..records import Item, Reject


class SourceError(ValueError):
    """A `--source` that cannot work at all: unknown kind, missing path, malformed argument."""


@dataclass(frozen=True)
class SourceOptions:
    seed: int = 0
    synthetic_size: int = 96
    limits: ReadLimits = ReadLimits()  # for the files an adapter reads itself (label files, fMoW JSON)


@dataclass(frozen=True)
class Adapter:
    kind: str
    summary: str
    validate: Callable[[str], None]
    items: Callable[[str, SourceOptions], Iterator[Item | Reject]]


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    arg: str

    def __str__(self) -> str:
        return f"{self.kind}={self.arg}"


REGISTRY: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    REGISTRY[adapter.kind] = adapter
    return adapter


def get_adapter(kind: str) -> Adapter:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise SourceError(f"unknown source kind {kind!r}; known kinds: {', '.join(sorted(REGISTRY))}") from None


def parse_source(text: str) -> SourceSpec:
    """Parse and validate one `KIND=ARG`; raises `SourceError` with a message fit for a user."""
    kind, sep, arg = text.partition("=")
    kind, arg = kind.strip(), arg.strip()
    if not sep or not kind or not arg:
        raise SourceError(f"--source must look like KIND=ARG (e.g. rsvqa-lr=/data/RSVQA_LR), got {text!r}")
    get_adapter(kind).validate(arg)
    return SourceSpec(kind, arg)
