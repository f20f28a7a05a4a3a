"""Configuration of a CS-HLoRA adapter: rank, scaling, targets and the scale tiers of its ranks."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

GateKind = str  # a name in cshlora.gates.GATES: "continuous", "bucketed", "none", or a registered kind
BackendName = str  # "auto" or a name in cshlora.available_backends()

# Every linear projection of a Qwen/Llama-style decoder. The Qwen3-VL vision tower names its
# projections differently (qkv, proj, linear_fc*), so these defaults leave it untouched.
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

BACKEND_ENV_VAR = "CSHLORA_BACKEND"


@dataclass(frozen=True)
class Tier:
    """A group of ranks that carries one kind of visual evidence.

    ``size`` is the tier's share of the rank budget (``r`` is split in proportion to the sizes, so the
    defaults give exactly ranks 0–10 / 11–31 / 32–63 at r=64). ``threshold_m`` is the GSD in metres at
    which that evidence stops being visible: the tier's gates are initialised to close there
    (``tau = log10(threshold_m)``). ``sharpness`` is the initial slope ``a`` of the gate per decade
    of GSD: at 4.0 a gate goes from 0.88 to 0.12 across one decade centred on its threshold.
    """

    name: str
    size: float
    threshold_m: float
    sharpness: float = 4.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("Tier.name must be a non-empty string")
        if not (math.isfinite(self.size) and self.size > 0):
            raise ValueError(f"Tier {self.name!r}: size must be a positive number, got {self.size!r}")
        if not (math.isfinite(self.threshold_m) and self.threshold_m > 0):
            raise ValueError(
                f"Tier {self.name!r}: threshold_m must be a finite GSD in metres > 0, got {self.threshold_m!r}"
            )
        if not math.isfinite(self.sharpness):
            raise ValueError(f"Tier {self.name!r}: sharpness must be finite, got {self.sharpness!r}")

    @property
    def tau(self) -> float:
        """Initial gate threshold in log10 metres."""
        return math.log10(self.threshold_m)


# Object ranks close past ~2 m (cars, single trees), structure ranks past ~30 m (buildings, roads,
# field parcels), semantic ranks past ~1 km (land cover, urban/rural).
DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("object", 11, 2.0),
    Tier("structure", 21, 30.0),
    Tier("semantic", 32, 1000.0),
)

# B4 baseline: hard GSD buckets at the same physical boundaries as the tiers' first two thresholds.
DEFAULT_BUCKET_EDGES_M = (2.0, 30.0)


def _split_counts(total: int, weights: list[float]) -> list[int]:
    """Split ``total`` into integer parts proportional to ``weights`` by rounding cumulative sums."""
    cum = 0.0
    wsum = sum(weights)
    bounds = [0]
    for w in weights:
        cum += w
        bounds.append(round(total * cum / wsum))
    counts = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    # Never leave a tier empty when there are enough ranks: borrow from the largest one.
    for i, c in enumerate(counts):
        if c == 0 and total >= len(counts):
            j = max(range(len(counts)), key=lambda k: counts[k])
            counts[j] -= 1
            counts[i] += 1
    return counts


@dataclass
class CSHLoRAConfig:
    """Everything needed to build (and later rebuild) a CS-HLoRA adapter.

    ``gate`` is the one switch between the method and its baselines, which share the same layer:
    ``"continuous"`` (CS-HLoRA, ``h_k(s) = sigmoid(a_k (tau_k - s))``), ``"none"`` (plain LoRA,
    every gate 1) and ``"bucketed"`` (parameter-matched MoE-LoRA: the ranks are split into equal
    slices, one per GSD bucket delimited by ``bucket_edges_m``, and only the slice of the sample's
    bucket is open).

    ``target_modules`` follows PEFT: a list of names matched against the end of each module's
    qualified name, or one string used as a full-match regular expression. ``exclude_modules``
    works the same way and wins over ``target_modules``.

    ``default_log10_gsd``: used when no scale was set; ``None`` makes a missing scale an error.
    """

    r: int = 64
    alpha: float = 32.0
    dropout: float = 0.0
    target_modules: list[str] | str | None = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    exclude_modules: list[str] | str | None = None
    tiers: tuple[Tier, ...] = DEFAULT_TIERS
    gate: GateKind = "continuous"
    bucket_edges_m: tuple[float, ...] = DEFAULT_BUCKET_EDGES_M
    learn_tau: bool = True
    learn_sharpness: bool = True
    default_log10_gsd: float | None = None
    backend: BackendName = "auto"

    def __post_init__(self) -> None:
        self.tiers = tuple(Tier(**t) if isinstance(t, dict) else t for t in self.tiers)
        self.bucket_edges_m = tuple(float(e) for e in self.bucket_edges_m)
        if isinstance(self.target_modules, tuple):
            self.target_modules = list(self.target_modules)
        if isinstance(self.exclude_modules, tuple):
            self.exclude_modules = list(self.exclude_modules)
        if not isinstance(self.r, int) or isinstance(self.r, bool) or self.r <= 0:
            raise ValueError(f"r must be a positive integer, got {self.r!r}")
        if not math.isfinite(self.alpha) or self.alpha <= 0:
            raise ValueError(f"alpha must be a positive number, got {self.alpha!r}")
        if not (0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        from .gates import GATES

        if self.gate not in GATES:
            raise ValueError(f"gate must be one of the registered gate kinds ({', '.join(GATES)}), got {self.gate!r}")
        from .backends import available_backends

        if self.backend != "auto" and self.backend not in available_backends():
            raise ValueError(
                f"backend must be 'auto' or a registered backend ({', '.join(available_backends())}), "
                f"got {self.backend!r}"
            )
        if self.gate == "continuous" and not self.tiers:
            raise ValueError("a continuous gate needs at least one tier")
        if self.gate == "continuous" and self.r < len(self.tiers):
            raise ValueError(f"r={self.r} is smaller than the number of tiers ({len(self.tiers)})")
        if self.gate == "bucketed":
            edges = self.bucket_edges_m
            if any(not (math.isfinite(e) and e > 0) for e in edges):
                raise ValueError(f"bucket_edges_m must be finite GSDs in metres > 0, got {edges!r}")
            if list(edges) != sorted(set(edges)):
                raise ValueError(f"bucket_edges_m must be strictly increasing, got {edges!r}")
            if self.r < len(edges) + 1:
                raise ValueError(f"r={self.r} is smaller than the number of buckets ({len(edges) + 1})")
        if self.default_log10_gsd is not None and not math.isfinite(self.default_log10_gsd):
            raise ValueError(f"default_log10_gsd must be finite, got {self.default_log10_gsd!r}")
        if self.target_modules is not None and not isinstance(self.target_modules, (list, str)):
            raise ValueError(f"target_modules must be a list of names or a regex string, got {self.target_modules!r}")

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def tier_sizes(self) -> list[int]:
        """Number of ranks in each tier, in order (sums to ``r``)."""
        return _split_counts(self.r, [t.size for t in self.tiers])

    def tier_slices(self) -> dict[str, slice]:
        """Rank range of each tier, e.g. ``{"object": slice(0, 11), ...}`` at the defaults."""
        out, start = {}, 0
        for tier, n in zip(self.tiers, self.tier_sizes()):
            out[tier.name] = slice(start, start + n)
            start += n
        return out

    def rank_gate_init(self) -> tuple[list[float], list[float]]:
        """Initial ``tau`` (log10 m) and ``sharpness`` of every rank, from its tier."""
        tau, sharpness = [], []
        for tier, n in zip(self.tiers, self.tier_sizes()):
            tau += [tier.tau] * n
            sharpness += [tier.sharpness] * n
        return tau, sharpness

    def bucket_sizes(self) -> list[int]:
        """Rank slice sizes of the bucketed baseline: ``r`` split as evenly as possible."""
        return _split_counts(self.r, [1.0] * (len(self.bucket_edges_m) + 1))

    def resolved_backend(self) -> str:
        """The backend asked for, after the ``CSHLORA_BACKEND`` environment override."""
        env = os.environ.get(BACKEND_ENV_VAR, "").strip().lower()
        if env:
            if env not in ("auto", "torch", "triton"):
                raise ValueError(f"{BACKEND_ENV_VAR}={env!r}: expected 'auto', 'torch' or 'triton'")
            return env
        return self.backend

    def matches(self, module_name: str) -> bool:
        """Whether a module with this qualified name is a target (before checking its type)."""
        if _name_matches(self.exclude_modules, module_name):
            return False
        return _name_matches(self.target_modules, module_name)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["tiers"] = [dataclasses.asdict(t) for t in self.tiers]
        d["bucket_edges_m"] = list(self.bucket_edges_m)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CSHLoRAConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown CSHLoRAConfig fields: {unknown}")
        d = dict(d)
        if "tiers" in d:
            d["tiers"] = tuple(Tier(**t) if isinstance(t, dict) else t for t in d["tiers"])
        if "bucket_edges_m" in d:
            d["bucket_edges_m"] = tuple(d["bucket_edges_m"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CSHLoRAConfig:
        return cls.from_dict(json.loads(text))


def _name_matches(spec: list[str] | str | None, name: str) -> bool:
    if spec is None:
        return False
    if isinstance(spec, str):
        return re.fullmatch(spec, name) is not None
    return any(name == t or name.endswith("." + t) for t in spec)
