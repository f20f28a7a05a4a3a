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
from .quickstart import TinyModel, tiny_training
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
    pretrain_and_stage1,
    resolve_device,
    spoof_step,
    sseu_fit_step,
    train_step,
)
from .results import EvalResult, Scores
from .stats import mean_ci, paired_bootstrap

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
        Row(B2, "lora"),
        Row("+ LoRA + GSD token", "gsd-token"),
        Row("+ bucketed MoE-LoRA (B4)", "bucketed"),
        Row("+ CS-HLoRA, oracle GSD", "cshlora"),
        Row("+ CS-HLoRA, train oracle / eval SSE-U", "cshlora", eval_gsd="predicted"),
        Row("+ CS-HLoRA, SSE-U in training and eval", "cshlora", train_gate="predicted", eval_gsd="predicted"),
        *(Row(f"+ CS-HLoRA, noisy GSD σ = {s:g} dec.", "cshlora", eval_gsd=f"noisy:{s:g}") for s in noise_sigmas),
    ]


B2 = "+ LoRA (B2)"
PRIOR = "Blind prior (no image)"
GSD_AWARE = ("+ LoRA + GSD token", "+ bucketed MoE-LoRA (B4)", "+ CS-HLoRA, oracle GSD")
MIN_TYPE_QUESTIONS = 30  # per-type comparisons below this many questions are not reported
# --quick: the same rows and statistics at a budget that runs in a few minutes (CI, a first look).
QUICK = {
    "seeds": [0, 1],
    "pretrain": {"max_steps": 300},
    "stage1": {"max_steps": 100},
    "stage2": {"max_steps": 300},
    "eval": {"limit": 200},
    "spoof": {"points": 5, "limit": 48},
    "bootstrap_replicates": 2000,
    "sseu_fit": {"steps": 500},
}


@dataclass
class AblationConfig:
    out: str = "runs/ablate"
    device: str = "auto"
    model: str = TINY  # "tiny": make the tiny Qwen3-VL in OUT; else a Hugging Face id or folder
    stage1_model: str | None = None  # an existing merged Stage-1 model: skips Stage 1
    data: str | None = None  # a build-data folder (train + test splits); None: the synthetic world in OUT
    synthetic: SyntheticWorld = field(default_factory=SyntheticWorld)
    tiny: TinyModel = field(default_factory=TinyModel)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    noise_sigmas: list[float] = field(default_factory=lambda: [0.3, 1.0])
    pretrain: dict = field(default_factory=dict)  # TrainConfig keys of the tiny backbone pretraining
    stage1: dict = field(default_factory=dict)  # TrainConfig keys
    stage2: dict = field(default_factory=dict)  # TrainConfig keys, shared by every row
    # SSEUFitConfig keys of the one SSE-U fit every row starts from (kept fixed); None: SSE-U trains jointly in
    # each Stage-2 run instead (its features are then held in memory only batch by batch).
    sseu_fit: dict | None = field(default_factory=dict)
    eval: EvalSettings = field(default_factory=EvalSettings)
    spoof: SpoofSettings = field(default_factory=SpoofSettings)
    spoof_data: str | None = None  # a benchmark with one true GSD (RSVQA-HR); None: the synthetic spoofing set
    bootstrap_replicates: int = 10_000

    def train_config(self, stage: int, **fixed) -> TrainConfig:
        """The YAML's stage section over the defaults (the tiny model's for ``model: tiny``), then ``fixed``.

        ``stage`` 0 is the tiny model's backbone pretraining.
        """
        section = {0: self.pretrain, 1: self.stage1, 2: self.stage2}[stage]
        values = {k.replace("-", "_"): v for k, v in {**section, **fixed}.items()}
        if self.model == TINY:
            return tiny_training(stage=stage, **values)
        return TrainConfig.from_dict({"sources": ["llava"] if stage == 1 else None, **values, "stage": stage})

    def validate(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds: need one or more distinct seeds, got {self.seeds!r}")
        if any(not s > 0 for s in self.noise_sigmas):
            raise ConfigError(f"noise_sigmas: every sigma must be > 0 decades, got {self.noise_sigmas!r}")
        if self.data is not None and self.spoof_data is None:
            raise ConfigError("spoof_data: with your own data, name a benchmark with one true GSD (e.g. RSVQA-HR)")
        if self.eval.split == "train":
            raise ConfigError("eval.split: the blind prior and every row are fitted on train; evaluate val or test")
        if self.sseu_fit is not None:
            from .sseu_fit import SSEUFitConfig

            if not isinstance(self.sseu_fit, dict):
                raise ConfigError(f"sseu_fit: expected a mapping of fit-sseu keys or null, got {self.sseu_fit!r}")
            try:
                SSEUFitConfig(**self.sseu_fit)
            except TypeError as err:
                raise ConfigError(f"sseu_fit: {err}") from None
        if self.bootstrap_replicates < 100:
            raise ConfigError(f"bootstrap_replicates: need >= 100, got {self.bootstrap_replicates}")
        for stage in (0, 1, 2) if self.model == TINY else (1, 2):  # fail before any work starts
            self.train_config(stage, data="-", out="-", model="-", seed=0)
        resolve_device(self.device)


def load_ablation_config(path, overrides: dict | None = None, *, quick: bool = False) -> AblationConfig:
    """YAML (keys as in ``configs/ablate.yaml``), then ``QUICK`` if ``quick``, then ``overrides`` (None: not given)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping")
    if quick:
        for key, value in QUICK.items():
            values[key] = {**(values.get(key) or {}), **value} if isinstance(value, dict) else value
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    nested = {"synthetic": SyntheticWorld, "tiny": TinyModel, "eval": EvalSettings, "spoof": SpoofSettings}
    known = {f.name for f in dataclasses.fields(AblationConfig)}
    unknown = sorted(set(values) - known)
    for key, cls in nested.items():
        section = values.get(key) or {}
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown += [f"{key}.{k}" for k in sorted(set(section) - fields)]
        section = {k: tuple(v) if isinstance(v, list) else v for k, v in section.items() if k in fields}
        values[key] = cls(**section)
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
    table: str  # the Markdown tables
    steps: Steps


def ablate(cfg: AblationConfig, console=None) -> AblationResult:
    device = resolve_device(cfg.device)
    out, steps = Path(cfg.out), Steps(console)
    pretraining = None
    if cfg.data is None:
        world = build_synthetic_world(steps, out, cfg.synthetic, console)
        corpus, spoof_set, pretraining = world.corpus, world.spoof, world.pretraining
    else:
        corpus = Built(Path(cfg.data), f"given:{cfg.data}")
    if cfg.spoof_data is not None:
        spoof_set = Built(Path(cfg.spoof_data), f"given:{cfg.spoof_data}")
    progress = console is not None
    if cfg.stage1_model is not None:
        stage1 = Built(Path(cfg.stage1_model), f"given:{cfg.stage1_model}")
    else:
        tiny = cfg.model == TINY
        base = (
            make_tiny(steps, out / "tiny-qwen3-vl", **cfg.tiny.sizes()) if tiny else Built(Path(cfg.model), cfg.model)
        )
        stage1 = pretrain_and_stage1(
            steps, out, base=base, corpus=corpus, pretraining=pretraining if tiny else None, console=console,
            # The shared steps take the world's seed, not a row seed: a run over a subset of the seeds
            # (one machine each) then shares them instead of retraining them.
            make_config=lambda stage, **fixed: cfg.train_config(stage, seed=cfg.synthetic.seed, device=device,
                                                                progress=progress, **fixed),
        )  # fmt: skip

    quantize = cfg.train_config(2, data="-", out="-", model="-").resolved_quantize
    models = EvalModels(device, quantize=quantize)  # evaluate in the precision Stage 2 trained in
    runs: dict[tuple, Built] = {}
    sseu_init, after_fit = {}, []
    if cfg.sseu_fit is not None:  # one SSE-U fit on the shared Stage-1 features; every row starts from it, fixed
        from .sseu_fit import SSEUFitConfig
        from .train import SSEU_HEAD_NAME

        fit_cfg = SSEUFitConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.sseu_fit.items()})
        fitted = sseu_fit_step(steps, out / "sseu", model=stage1, corpus=corpus, cfg=fit_cfg, device=device)
        sseu_init, after_fit = {"sseu_init": str(fitted.path / SSEU_HEAD_NAME), "sseu_freeze": True}, [fitted.digest]

    def stage2_run(adapter: str, gate: str, seed: int) -> Built:
        key = (adapter, gate, seed)
        if key not in runs:
            s2 = cfg.train_config(2, data=str(corpus.path), model=str(stage1.path), adapter=adapter, gate_gsd=gate,
                                  out=str(out / "runs" / f"{adapter}-{gate}-seed{seed}"), seed=seed, device=device,
                                  progress=progress, **sseu_init)  # fmt: skip
            runs[key] = train_step(steps, f"Stage 2 {adapter}, gate {gate}, seed {seed}", s2,
                                   [corpus.digest, stage1.digest, *after_fit], console)  # fmt: skip
        return runs[key]

    values, prior, types, questions = [], None, None, None  # questions: ids every row must share
    for row in ablation_rows(cfg.noise_sigmas):
        for seed in cfg.seeds[:1] if row.adapter is None else cfg.seeds:  # Stage 1 is one model
            adapter = stage2_run(row.adapter, row.train_gate, seed) if row.adapter else None
            folder = out / "evals" / (f"{row.slug}-seed{seed}" if adapter else row.slug)
            results = eval_step(
                steps, f"eval {row.name}, seed {seed}", folder, models, model=stage1, adapter=adapter,
                data=corpus, how=cfg.eval, gsd_source=row.eval_gsd, seed=seed, console=console,
            )  # fmt: skip
            scored = _scored(folder)
            ids = [r["id"] for r in scored]
            if questions is not None and ids != questions:
                raise ValueError(f"{folder} scored other questions than the first row: rows cannot be paired")
            questions, types = ids, [str(r.get("type", "")) for r in scored]
            correct = [int(bool(r["correct"])) for r in scored]
            values.append({"row": row.name, "seed": seed, **_numbers(results), "correct": correct})
            prior = prior or results.get("blind_prior")

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
    rows = ablation_rows(cfg.noise_sigmas)
    summary = summarise(rows, values, prior, types, replicates=cfg.bootstrap_replicates)
    table = markdown_table(summary) + "\n\n" + markdown_type_table(summary)
    table_path = out / TABLE_NAME
    table_path.write_text(_header(cfg, device) + table + "\n")
    values_path = out / VALUES_NAME
    spoof_values = {k: [[p["accuracy"] for p in s["points"]] for s in v] for k, v in curves.items()}
    slim = [{k: v for k, v in value.items() if k != "correct"} for value in values]
    values_path.write_text(json.dumps({"rows": slim, "summary": summary, "spoof_accuracy": spoof_values}, indent=1))
    return AblationResult(table_path, values_path, plot, table, steps)


def _numbers(results: dict) -> dict:
    r = EvalResult.from_dict(results)
    return {
        "questions": r.questions,
        "accuracy": r.scores.accuracy,
        "tier_mean": r.scores.tier_mean,
        "sseu_mae_log10": r.sseu.mae_log10 if r.sseu else None,
    }


def _scored(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "scored.jsonl").read_text().splitlines() if line]


def summarise(rows: list[Row], values: list[dict], prior: dict | None, types: list[str], *, replicates: int) -> dict:
    """Per row: mean accuracy with its 95% t interval over seeds, and the paired bootstrap against B2
    (overall, and per question type with at least ``MIN_TYPE_QUESTIONS`` questions for the GSD-aware rows)."""
    by_row = {row.name: [v for v in values if v["row"] == row.name] for row in rows}
    base = [v["correct"] for v in by_row.get(B2, [])]
    out = {"prior": None, "rows": [], "types": {}}
    if prior is not None:
        scores = Scores.from_dict(prior)
        out["prior"] = {"accuracy": scores.accuracy, "definition": prior["definition"],
                        "type": {t: acc for t, (_, acc) in scores.types.items()}}  # fmt: skip
    for row in rows:
        mine = by_row[row.name]
        if not mine:
            continue
        acc = mean_ci([v["accuracy"] for v in mine])
        entry = {
            "row": row.name, "adapter": row.adapter, "gate": f"{row.train_gate} → {row.eval_gsd}", "seeds": len(mine),
            "questions": mine[0]["questions"], "accuracy": dataclasses.asdict(acc),
            "tier_mean": statistics.fmean(v["tier_mean"] for v in mine),
            "sseu_mae_log10": _mean_or_none([v["sseu_mae_log10"] for v in mine]),
            "vs_b2": None,
        }  # fmt: skip
        if base and row.name != B2:
            test = paired_bootstrap([v["correct"] for v in mine], base, replicates=replicates)
            entry["vs_b2"] = dataclasses.asdict(test) | {"significant": test.significant}
        out["rows"].append(entry)
    counts = {t: types.count(t) for t in sorted(set(types or []))}
    for name in (B2, *GSD_AWARE):
        mine = by_row.get(name) or []
        if not mine or not base:
            continue
        per_type = {}
        for t, n in counts.items():
            if n < MIN_TYPE_QUESTIONS:
                continue
            idx = [i for i, qt in enumerate(types) if qt == t]
            mine_t = [[c[i] for i in idx] for c in (v["correct"] for v in mine)]
            base_t = [[c[i] for i in idx] for c in base]
            entry = {"n": n, "accuracy": statistics.fmean(sum(c) / n for c in mine_t)}
            if name != B2:
                test = paired_bootstrap(mine_t, base_t, replicates=replicates)
                entry["vs_b2"] = dataclasses.asdict(test) | {"significant": test.significant}
            per_type[t] = entry
        out["types"][name] = per_type
    return out


def _mean_or_none(xs):
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _vs(test: dict | None) -> tuple[str, str]:
    if test is None:
        return "–", "–"
    mark = " *" if test["significant"] else ""
    diff = f"{100 * test['difference']:+.1f} [{100 * test['low']:+.1f}, {100 * test['high']:+.1f}]"
    return diff, f"{test['p_value']:.3f}{mark}"


def markdown_table(summary: dict) -> str:
    """One line per row: mean accuracy ± 95% CI over seeds, seed std, the paired difference to B2 and its p."""
    lines = [
        "| configuration | adapter | gate GSD (train → eval) | seeds | questions | accuracy % (mean ± 95% CI) "
        "| seed std | Δ vs B2 [95% CI] | p (paired bootstrap) | tier mean % | SSE-U MAE (decades) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    if summary["prior"] is not None:
        lines.append(f"| {PRIOR} | – | – | – | – | {_pct(summary['prior']['accuracy'])} | – | – | – | – | – |")
    for r in summary["rows"]:
        acc = r["accuracy"]
        ci = "" if r["seeds"] == 1 else f" ± {100 * acc['half_width']:.1f}"
        std = "–" if r["seeds"] == 1 else f"{100 * acc['std']:.1f}"
        diff, p = _vs(r["vs_b2"])
        mae = "–" if r["sseu_mae_log10"] is None else f"{r['sseu_mae_log10']:.3f}"
        lines.append(
            f"| {r['row']} | {r['adapter'] or '–'} | {'–' if r['adapter'] is None else r['gate']} | {r['seeds']} "
            f"| {r['questions']} | {_pct(acc['mean'])}{ci} | {std} | {diff} | {p} | {_pct(r['tier_mean'])} | {mae} |"
        )
    return "\n".join(lines)


def markdown_type_table(summary: dict) -> str:
    """Per question type: the prior, B2 and each GSD-aware row (Δ vs B2, * where p < 0.05)."""
    names = [n for n in (B2, *GSD_AWARE) if n in summary["types"]]
    if not names:
        return ""
    types = sorted(summary["types"][names[0]])
    head = "| question type | n | prior % | " + " | ".join(names) + " |"
    lines = [head, "| --- | ---: | ---: |" + " ---: |" * len(names)]
    prior = (summary["prior"] or {}).get("type", {})
    for t in types:
        cells = []
        for name in names:
            e = summary["types"][name][t]
            cell = _pct(e["accuracy"])
            if "vs_b2" in e:
                cell += f" ({100 * e['vs_b2']['difference']:+.1f}{'*' if e['vs_b2']['significant'] else ''})"
            cells.append(cell)
        n = summary["types"][names[0]][t]["n"]
        lines.append(f"| {t} | {n} | {_pct(prior[t]) if t in prior else '–'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _header(cfg: AblationConfig, device: str) -> str:
    s1, s2 = cfg.train_config(1, data="-", out="-", model="-"), cfg.train_config(2, data="-", out="-", model="-")
    data = cfg.data or f"synthetic scale world, {cfg.synthetic.scenes} scenes (seed {cfg.synthetic.seed})"
    return (
        f"# Ablation ({cfg.model}, {device})\n\n"
        f"- data: {data}; evaluated on {cfg.eval.bench} split {cfg.eval.split}"
        f"{f', first {cfg.eval.limit} questions' if cfg.eval.limit else ''}; every row on the same questions\n"
        f"- Stage 1: {s1.max_steps} steps × batch {s1.batch_size}; Stage 2: {s2.max_steps} steps × batch "
        f"{s2.batch_size}, r = {s2.r}, alpha = {s2.alpha:g}, quantize {s2.resolved_quantize}; seeds {cfg.seeds}\n"
        f"- no model selection: every row trains the fixed budget above and is scored once\n"
        f"- mean ± 95% t interval over seeds; Δ vs B2 and p from a paired bootstrap over seeds and questions "
        f"({cfg.bootstrap_replicates} replicates); * marks p < 0.05\n\n"
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
