"""``scaleearth ablate``: the paper's ablation rows trained and evaluated on the same data and budget.

One Stage-1 model is the shared starting point; each Stage-2 row trains its adapter from it with the same
config (only the adapter and the gate's training GSD differ) for every seed, and is evaluated on the same
questions. Rows that differ only at evaluation (SSE-U predicted or noisy GSD) reuse the trained CS-HLoRA
runs. Writes ``ablation.md`` (mean ± std over seeds), ``ablation.json`` (every value) and
``spoof_b4_vs_cshlora.png``. Every step is reused when complete, so an interrupted ablation resumes.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, TrainConfig
from .quickstart import tiny_training
from .recipe import (
    Built,
    EvalModels,
    EvalSettings,
    SpoofSettings,
    Steps,
    SyntheticWorld,
    build_synthetic_world,
    eval_step,
    make_tiny,
    resolve_device,
    spoof_step,
    train_step,
)

TABLE_NAME, VALUES_NAME, SPOOF_PLOT_NAME = "ablation.md", "ablation.json", "spoof_b4_vs_cshlora.png"
TINY = "tiny"


@dataclass(frozen=True)
class Row:
    """One line of the ablation table: which adapter (None: the Stage-1 model alone) and which gate GSD."""

    name: str
    adapter: str | None
    train_gate: str = "oracle"
    eval_gsd: str = "oracle"

    @property
    def slug(self) -> str:
        return f"{self.adapter or 'stage1'}-train-{self.train_gate}-eval-{self.eval_gsd}".replace(":", "")


def ablation_rows(noise_sigmas) -> list[Row]:
    return [
        Row("Stage-1 only", None),
        Row("+ LoRA (B2)", "lora"),
        Row("+ LoRA + GSD token", "gsd-token"),
        Row("+ bucketed MoE-LoRA (B4)", "bucketed"),
        Row("+ CS-HLoRA, oracle GSD", "cshlora"),
        Row("+ CS-HLoRA, train oracle / eval SSE-U", "cshlora", eval_gsd="predicted"),
        Row("+ CS-HLoRA, SSE-U in training and eval", "cshlora", train_gate="predicted", eval_gsd="predicted"),
        *(Row(f"+ CS-HLoRA, noisy GSD σ = {s:g} dec.", "cshlora", eval_gsd=f"noisy:{s:g}") for s in noise_sigmas),
    ]


@dataclass
class AblationConfig:
    out: str = "runs/ablate"
    device: str = "auto"
    model: str = TINY  # "tiny": make the tiny Qwen3-VL in OUT; else a Hugging Face id or folder
    stage1_model: str | None = None  # an existing merged Stage-1 model: skips Stage 1
    data: str | None = None  # a build-data folder (train + test splits); None: the synthetic world in OUT
    synthetic: SyntheticWorld = field(default_factory=SyntheticWorld)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    noise_sigmas: list[float] = field(default_factory=lambda: [0.3, 1.0])
    stage1: dict = field(default_factory=dict)  # TrainConfig keys
    stage2: dict = field(default_factory=dict)  # TrainConfig keys, shared by every row
    eval: EvalSettings = field(default_factory=EvalSettings)
    spoof: SpoofSettings = field(default_factory=SpoofSettings)
    spoof_data: str | None = None  # a benchmark with one true GSD (RSVQA-HR); None: the synthetic spoofing set

    def train_config(self, stage: int, **fixed) -> TrainConfig:
        """The YAML's stage section over the defaults (the tiny model's for ``model: tiny``), then ``fixed``."""
        values = {**(self.stage1 if stage == 1 else self.stage2), **fixed, "stage": stage}
        values = {k.replace("-", "_"): v for k, v in values.items()}
        if self.model == TINY:
            return tiny_training(**values)
        return TrainConfig.from_dict({"sources": ["llava"] if stage == 1 else None, **values})

    def validate(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: need one or more distinct seeds, got {self.seeds!r}")
        if any(not s > 0 for s in self.noise_sigmas):
            raise ConfigError(f"noise_sigmas: every sigma must be > 0 decades, got {self.noise_sigmas!r}")
        if self.data is not None and self.spoof_data is None:
            raise ConfigError("spoof_data: with your own data, name a benchmark with one true GSD (e.g. RSVQA-HR)")
        for stage in (1, 2):  # fail before any work starts
            self.train_config(stage, data="-", out="-", model="-", seed=0)
        resolve_device(self.device)


def load_ablation_config(path, overrides: dict | None = None) -> AblationConfig:
    """YAML (keys as in ``configs/ablate.yaml``), then ``overrides`` (top-level keys, None = not given)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    nested = {"synthetic": SyntheticWorld, "eval": EvalSettings, "spoof": SpoofSettings}
    known = {f.name for f in dataclasses.fields(AblationConfig)}
    unknown = sorted(set(values) - known)
    for key, cls in nested.items():
        section = values.get(key) or {}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown += [f"{key}.{k}" for k in sorted(set(section) - fields)]
        if key == "spoof" and "gsd_range" in section:
            section = {**section, "gsd_range": tuple(section["gsd_range"])}
        values[key] = cls(**{k: v for k, v in section.items() if k in fields})
    if unknown:
        raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
    cfg = AblationConfig(**values)
    cfg.validate()
    return cfg


@dataclass
class AblationResult:
    table_path: Path
    values_path: Path
    plot_path: Path
    table: str  # the Markdown table
    steps: Steps


def ablate(cfg: AblationConfig, console=None) -> AblationResult:
    device = resolve_device(cfg.device)
    out, steps = Path(cfg.out), Steps(console)
    if cfg.data is None:
        corpus, spoof_set = build_synthetic_world(steps, out, cfg.synthetic, console)
    else:
        corpus = Built(Path(cfg.data), f"given:{cfg.data}")
    if cfg.spoof_data is not None:
        spoof_set = Built(Path(cfg.spoof_data), f"given:{cfg.spoof_data}")
    progress = console is not None
    if cfg.stage1_model is not None:
        stage1 = Built(Path(cfg.stage1_model), f"given:{cfg.stage1_model}")
    else:
        base = make_tiny(steps, out / "tiny-qwen3-vl") if cfg.model == TINY else Built(Path(cfg.model), cfg.model)
        s1 = cfg.train_config(1, data=str(corpus.path), model=str(base.path), out=str(out / "stage1"), merge=True,
                              seed=cfg.seeds[0], device=device, progress=progress)  # fmt: skip
        trained = train_step(steps, "Stage 1 (shared by every row)", s1, [corpus.digest, base.digest], console)
        stage1 = Built(trained.path / "merged", trained.digest)

    quantize = cfg.train_config(2, data="-", out="-", model="-").resolved_quantize
    models = EvalModels(device, quantize=quantize)  # evaluate in the precision Stage 2 trained in
    runs: dict[tuple, Built] = {}

    def stage2_run(adapter: str, gate: str, seed: int) -> Built:
        key = (adapter, gate, seed)
        if key not in runs:
            s2 = cfg.train_config(2, data=str(corpus.path), model=str(stage1.path), adapter=adapter, gate_gsd=gate,
                                  out=str(out / "runs" / f"{adapter}-{gate}-seed{seed}"), seed=seed, device=device,
                                  progress=progress)  # fmt: skip
            runs[key] = train_step(steps, f"Stage 2 {adapter}, gate {gate}, seed {seed}", s2,
                                   [corpus.digest, stage1.digest], console)  # fmt: skip
        return runs[key]

    values = []
    for row in ablation_rows(cfg.noise_sigmas):
        for seed in cfg.seeds[:1] if row.adapter is None else cfg.seeds:  # Stage 1 is one model
            adapter = stage2_run(row.adapter, row.train_gate, seed) if row.adapter else None
            name = f"{row.slug}-seed{seed}" if adapter else row.slug
            results = eval_step(
                steps, f"eval {row.name}, seed {seed}", out / "evals" / name, models, model=stage1, adapter=adapter,
                data=corpus, how=cfg.eval, gsd_source=row.eval_gsd, seed=seed, console=console,
            )  # fmt: skip
            values.append({"row": row.name, "seed": seed, **_numbers(results)})

    curves = {}
    for label, adapter in (("B4 (bucketed)", "bucketed"), ("CS-HLoRA", "cshlora")):
        curves[label] = [
            spoof_step(
                steps,
                f"spoofing {adapter}, seed {seed}",
                out / "spoof" / f"{adapter}-seed{seed}",
                models,
                model=stage1,
                adapter=stage2_run(adapter, "oracle", seed),
                data=spoof_set,
                how=cfg.spoof,
                console=console,
            )  # fmt: skip
            for seed in cfg.seeds
        ]
    plot = plot_spoof_curves(curves, out / SPOOF_PLOT_NAME)
    table = markdown_table(ablation_rows(cfg.noise_sigmas), values)
    table_path = out / TABLE_NAME
    table_path.write_text(_header(cfg, device) + table + "\n")
    values_path = out / VALUES_NAME
    spoof_values = {k: [[p["accuracy"] for p in s["points"]] for s in v] for k, v in curves.items()}
    values_path.write_text(json.dumps({"rows": values, "spoof_accuracy": spoof_values}, indent=1) + "\n")
    return AblationResult(table_path, values_path, plot, table, steps)


def _numbers(results: dict) -> dict:
    sseu = (results.get("sseu") or {}).get("metrics", {})
    return {
        "questions": results["counts"]["questions"],
        "accuracy": results["metrics"]["overall"],
        "tier_mean": results["metrics"]["tier_mean"],
        "sseu_mae_log10": sseu.get("mae_log10"),
    }


def _mean_std(xs: list[float], scale: float = 100.0, digits: int = 1) -> str:
    if not xs:
        return "–"
    mean = scale * statistics.fmean(xs)
    if len(xs) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {scale * statistics.stdev(xs):.{digits}f}"


def markdown_table(rows: list[Row], values: list[dict]) -> str:
    """One line per row: accuracy and tier mean (%), SSE-U MAE (decades), mean ± sample std over seeds."""
    lines = [
        "| configuration | adapter | gate GSD (train → eval) | seeds | questions | accuracy % | tier mean % "
        "| SSE-U MAE (decades) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        mine = [v for v in values if v["row"] == row.name]
        mae = [v["sseu_mae_log10"] for v in mine if v["sseu_mae_log10"] is not None]
        gate = "–" if row.adapter is None else f"{row.train_gate} → {row.eval_gsd}"
        lines.append(
            f"| {row.name} | {row.adapter or '–'} | {gate} | {len(mine)} | {mine[0]['questions'] if mine else 0} "
            f"| {_mean_std([v['accuracy'] for v in mine])} | {_mean_std([v['tier_mean'] for v in mine])} "
            f"| {_mean_std(mae, scale=1.0, digits=3)} |"
        )
    return "\n".join(lines)


def _header(cfg: AblationConfig, device: str) -> str:
    s1, s2 = cfg.train_config(1, data="-", out="-", model="-"), cfg.train_config(2, data="-", out="-", model="-")
    data = cfg.data or f"synthetic scale world, {cfg.synthetic.scenes} scenes (seed {cfg.synthetic.seed})"
    return (
        f"# Ablation ({cfg.model}, {device})\n\n"
        f"- data: {data}; evaluated on {cfg.eval.bench} split {cfg.eval.split}"
        f"{f', first {cfg.eval.limit} questions' if cfg.eval.limit else ''}\n"
        f"- Stage 1: {s1.max_steps} steps × batch {s1.batch_size}; Stage 2: {s2.max_steps} steps × batch "
        f"{s2.batch_size}, r = {s2.r}, alpha = {s2.alpha:g}, quantize {s2.resolved_quantize}; seeds {cfg.seeds}\n\n"
    )


def plot_spoof_curves(curves: dict[str, list[dict]], path: Path) -> Path:
    """Mean accuracy over seeds per spoofed GSD, one line per adapter, the true (effective) GSD marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, runs in curves.items():
        gsd = [p["gsd_m"] for p in runs[0]["points"]]
        acc = [100 * statistics.fmean(r["points"][i]["accuracy"] for r in runs) for i in range(len(gsd))]
        ax.plot(gsd, acc, marker="o", label=f"{label} (mean of {len(runs)} seed{'s' * (len(runs) > 1)})")
    true_gsd = next(iter(curves.values()))[0]["true_gsd_m"]
    ax.axvline(true_gsd, color="tab:red", linestyle="--", label=f"true GSD {true_gsd:.3g} m (model pixels)")
    ax.set_xscale("log")
    ax.set(xlabel="GSD fed to the gate (m per pixel)", ylabel="accuracy (%)", title="GSD spoofing: B4 vs CS-HLoRA")
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
