"""The training run's configuration: one dataclass, read from YAML, overridden by flags, saved with the run."""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .adapters import ADAPTER_KINDS, ADAPTERS
from .scale import GateSource

QUANTIZE = ("none", "nf4")
DEVICES = ("auto", "cpu", "cuda")
RESOLVED_CONFIG_NAME = "config.yaml"


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the field."""


# YAML 1.1 (PyYAML) reads `lr: 1e-4` as text (it wants `1.0e-4`): such a string is taken as the number.
_SCI_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)[eE][+-]?\d+")
# What a value must be, in words, for fields whose type alone does not say it.
_EXPECTED = {
    "resume": "'none', 'auto' or a checkpoint folder",
    "gate_gsd": "oracle, predicted, mixed:P, noisy:SIGMA, fixed:METRES or none (scaleearth_cli.scale)",
    "sources": "a list of source names, e.g. [llava] or [synthetic, rsvqa-lr]",
    "quantize": "nf4 or none",
}
_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "text", list: "a list", dict: "a mapping"}


def _typed(name: str, value, hint):
    """``value`` checked against the field's type hint (converted only for YAML's `1e-4`-as-text quirk)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    base = typing.get_origin(hint) or hint
    if base is float and isinstance(value, str) and _SCI_NUMBER.fullmatch(value.strip()):
        value = float(value)
    ok = {
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        bool: lambda v: isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        dict: lambda v: isinstance(v, dict),
    }.get(base, lambda v: True)(value)
    if not ok:
        expected = _EXPECTED.get(name, _WORDS.get(base, str(hint)))
        if base is list:
            expected = _EXPECTED.get(name, "a list of text")
        raise ConfigError(f"{name}: expected {expected}, got {value!r}")
    return value


@dataclass
class TrainConfig:
    """Everything one ``scaleearth train`` run needs. Paths are strings so the YAML stays plain."""

    stage: int = 2
    data: str = ""
    out: str = ""
    model: str = "Qwen/Qwen3-VL-8B-Instruct"
    trust_remote_code: bool = False
    # Stage 2 defaults follow the paper: NF4 base, CS-HLoRA r=64, alpha=32 on every LLM projection.
    adapter: str = "cshlora"
    quantize: str | None = None  # None: nf4 for stage 2, none for stage 1
    r: int = 64
    alpha: float = 32.0
    gate_gsd: str = "oracle"
    # SSE-U and the joint loss CE + lambda * beta-NLL
    gsd_loss_weight: float = 0.1
    beta: float = 0.5
    sseu_warmup_steps: int = 0
    sseu_hidden: int = 256
    sseu_init: str | None = None  # an SSE-U head file (scaleearth fit-sseu) to start from instead of a new head
    sseu_freeze: bool = False  # keep that head fixed in Stage 2 (it was fitted on the same frozen features)
    # Stage 1
    full_finetune: bool = False
    unfreeze_vision: bool = False
    unfreeze_projector: bool = False
    merge: bool = False
    # data
    sources: list[str] | None = None  # None: llava for stage 1, every source for stage 2
    split: str = "train"
    max_turns: int | None = 4
    max_length: int = 2048
    shuffle_buffer: int = 0
    num_workers: int = 0
    # optimisation
    batch_size: int = 1
    grad_accum: int = 1
    max_steps: int = 1000
    lr: float = 2e-4
    sseu_lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = True
    bf16: bool | None = None  # None: bf16 autocast exactly when training on a GPU
    max_bad_steps: int = 10
    seed: int = 0
    # bookkeeping
    save_every: int = 500
    log_every: int = 10
    resume: str = "none"  # "none", "auto" or a checkpoint folder
    nproc: int = 1
    device: str = "auto"  # auto: cuda when available; cpu forces the CPU even on a GPU machine
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        def need(ok: bool, name: str, msg: str) -> None:
            if not ok:
                raise ConfigError(f"{name}: {msg}")

        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # types first: the range checks below compare numbers
            setattr(self, f.name, _typed(f.name, getattr(self, f.name), hints[f.name]))

        need(self.stage in (1, 2), "stage", f"must be 1 or 2, got {self.stage!r}")
        need(self.adapter in ADAPTERS, "adapter", f"must be one of {', '.join(ADAPTERS)}, got {self.adapter!r}")
        need(self.device in DEVICES or re.fullmatch(r"cuda:\d+", self.device) is not None, "device",
             f"must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}")  # fmt: skip
        need(self.quantize in (None, *QUANTIZE), "quantize", f"must be nf4 or none, got {self.quantize!r}")
        try:
            GateSource.parse(self.gate_gsd)
        except ValueError as err:
            raise ConfigError(f"gate_gsd: {err}") from None
        if ADAPTER_KINDS[self.adapter].gsd_in_prompt:
            # The GSD is written into the prompt before the vision tower runs: only metadata can be used.
            need(self.gate_gsd == "oracle", "gate_gsd", "the gsd-token baseline writes the metadata GSD into the "
                 "prompt, so it needs --gate-gsd oracle")  # fmt: skip
        for name in ("r", "batch_size", "grad_accum", "max_steps", "save_every", "log_every", "max_length", "nproc"):
            need(int(getattr(self, name)) >= 1, name, f"must be >= 1, got {getattr(self, name)!r}")
        for name in ("warmup_steps", "sseu_warmup_steps", "num_workers", "max_bad_steps", "shuffle_buffer"):
            need(int(getattr(self, name)) >= 0, name, f"must be >= 0, got {getattr(self, name)!r}")
        for name in ("lr", "sseu_lr", "alpha"):
            value = getattr(self, name)
            need(math.isfinite(value) and value > 0, name, f"must be a positive number, got {value!r}")
        weight = self.gsd_loss_weight
        need(math.isfinite(weight) and weight >= 0, "gsd_loss_weight", f"must be >= 0, got {weight!r}")
        need(0.0 <= self.beta <= 1.0, "beta", f"must be in [0, 1], got {self.beta!r}")
        need(self.max_turns is None or self.max_turns >= 1, "max_turns", f"must be >= 1, got {self.max_turns!r}")
        need(not self.sseu_freeze or self.sseu_init is not None, "sseu_freeze", "a frozen new head would predict "
             "the neutral default for every image: give sseu_init (a head from scaleearth fit-sseu)")  # fmt: skip
        need(self.sseu_init is None or self.stage == 2, "sseu_init", "SSE-U is trained in Stage 2 only")
        need(self.merge is False or self.stage == 1, "merge", "--merge writes a Stage-1 model; it is for --stage 1")
        need(not (self.merge and self.resolved_quantize == "nf4"), "merge", "cannot merge into an NF4 base; "
             "train Stage 1 with --quantize none")  # fmt: skip

    @property
    def resolved_quantize(self) -> str:
        if self.quantize is not None:
            return self.quantize
        return "nf4" if self.stage == 2 else "none"

    @property
    def resolved_sources(self) -> list[str] | None:
        if self.sources is not None:
            return list(self.sources)
        return ["llava"] if self.stage == 1 else None

    # -- files ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        bad = [k for k in d if not isinstance(k, str)]
        if bad:
            raise ConfigError(f"config keys must be names, got {bad[0]!r}")
        d = {k.replace("-", "_"): v for k, v in d.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**d)

    def save(self, path: str | Path) -> Path:
        import yaml

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=True))
        return path


def read_yaml(path: Path):
    """The YAML document in ``path``; a syntax error is one ConfigError line with its position."""
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text ({err})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"config file {path} is not valid YAML: {problem}{where}") from None


def parse_overrides(items: list[str]) -> dict[str, str]:
    """torchtune-style ``KEY=VALUE`` overrides (any TrainConfig key; values typed as YAML values are)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"overrides must look like KEY=VALUE (e.g. beta=0.3), got {item!r}")
        out[key] = read_yaml_value(value)
    return out


def read_yaml_value(text: str):
    """One value as YAML reads it (``0.3`` a number, ``[a, b]`` a list, ``true`` a bool), else the text."""
    import yaml

    try:
        return yaml.safe_load(text) if text.strip() else text
    except yaml.YAMLError:
        return text


def check_runnable(cfg: TrainConfig) -> None:
    """What a run needs beyond valid values: a run folder and existing training data (ConfigError)."""
    if not cfg.out:
        raise ConfigError("out: a run folder is needed (--out)")
    if not cfg.data:
        raise ConfigError("data: training data is needed, a build-data output folder (--data)")
    if not Path(cfg.data).exists():
        raise ConfigError(f"data: {cfg.data} does not exist")


def keys_and_defaults() -> str:
    """Every TrainConfig key with its default, for ``train --help``."""
    parts = []
    for f in dataclasses.fields(TrainConfig):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        parts.append(f"{f.name}={value!r}" if isinstance(value, str) else f"{f.name}={value}")
    return ", ".join(parts)


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """The YAML file's values (if any), then every override that is not None; validated."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        loaded = read_yaml(path) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of keys to values")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)
