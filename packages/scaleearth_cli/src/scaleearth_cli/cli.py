"""Typer application: each command parses and validates its flags, then calls library code.

An expected user error (bad input data, a bad config, a damaged file) ends the command with one line
`error: ...` and exit code 1; `scaleearth --debug ...` or SCALEEARTH_DEBUG=1 shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from .adapters import ADAPTERS

DEBUG_ENV = "SCALEEARTH_DEBUG"


_USER_ERRORS = (  # besides ValueError and OSError; looked up only where loaded (nothing else raises them)
    ("geoscale_vqa.manifest", "BuildError"),
    ("scaleearth_cli.train", "TrainingError"),
    ("yaml", "YAMLError"),
    ("safetensors", "SafetensorError"),
)


def _expected_errors() -> tuple[type[BaseException], ...]:
    """Errors a user causes and can fix: everything else (a bug) keeps its traceback."""
    loaded = [getattr(sys.modules[m], name) for m, name in _USER_ERRORS if m in sys.modules]
    return (ValueError, OSError, *loaded)


def one_line(err: BaseException) -> str:
    """The error's message on one line (whitespace collapsed), or its type when it has none."""
    return " ".join(str(err).split()) or type(err).__name__


class _Commands(TyperGroup):
    """Runs a command; an expected error becomes `error: <one line>` and exit code 1 (see module doc)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except _expected_errors() as err:
            if ctx.meta.get("scaleearth.debug") or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            typer.echo(f"error: {one_line(err)} (scaleearth --debug shows the traceback)", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="scaleearth",
    no_args_is_help=True,
    add_completion=False,
    cls=_Commands,
)


@app.callback()
def main(
    ctx: typer.Context,
    debug: Annotated[
        bool, typer.Option("--debug", help=f"Show the full traceback of an error (or set {DEBUG_ENV}=1).")
    ] = False,
) -> None:
    """ScaleEarth: continuous scale conditioning (CS-HLoRA) for remote-sensing VLMs.

    Example:

        uv run scaleearth info
    """
    ctx.meta["scaleearth.debug"] = debug


@app.command()
def info() -> None:
    """Show the installed ScaleEarth packages and the available CS-HLoRA backends.

    Example:

        uv run scaleearth info
    """
    from importlib.metadata import version

    from rich.console import Console
    from rich.table import Table

    import cshlora

    table = Table(title="ScaleEarth")
    table.add_column("package")
    table.add_column("version")
    for dist in ("cshlora", "sseu", "geoscale-vqa", "scaleearth-cli"):
        table.add_row(dist, version(dist))
    Console().print(table)
    Console().print(f"cshlora backends: {', '.join(cshlora.available_backends())}")


@app.command("build-data")
def build_data(
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            metavar="KIND=ARG",
            help="A source to read (repeatable, mixable): rsvqa-lr=DIR, rsvqa-hr=DIR, rsvqa-xben=DIR, mtsccd=DIR, "
            "dota=DIR, fmow=DIR, llava=FILE.json, folder=DIR (images + manifest.jsonl), synthetic=COUNT.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder: OUT/<split>/*.tar, manifest.json, rejects.jsonl.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes; the output is identical for any number.")] = 1,
    shard_size: Annotated[int, typer.Option(min=1, help="Images (samples) per shard.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed for template choice, shuffling and synthetic scenes.")] = 0,
    templates: Annotated[
        bool, typer.Option("--templates/--no-templates", help="Add GSD-conditioned template QA.")
    ] = True,
    max_template_qa: Annotated[int, typer.Option(min=0, help="Template QA per image at most.")] = 8,
    max_side: Annotated[
        int | None, typer.Option(min=1, help="Downscale larger images to this many pixels (GSD scaled to match).")
    ] = None,
    synthetic_size: Annotated[int, typer.Option(min=16, help="Pixels per side of synthetic scenes.")] = 96,
    teacher: Annotated[
        str | None, typer.Option(help="Hugging Face image-text model (id or folder) that writes teacher QA.")
    ] = None,
    teacher_device: Annotated[str, typer.Option(help="Device for the teacher model (cpu, cuda, cuda:1, ...).")] = "cpu",
    teacher_dtype: Annotated[
        str, typer.Option(help="Teacher weights dtype: auto, float32, bfloat16, float16.")
    ] = "auto",
    teacher_qa_per_tier: Annotated[int, typer.Option(min=1, help="Teacher QA pairs asked for per visible tier.")] = 3,
    teacher_max_new_tokens: Annotated[int, typer.Option(min=1, help="Teacher reply length limit in tokens.")] = 256,
    teacher_trust_remote_code: Annotated[
        bool, typer.Option(help="Allow the teacher checkpoint to run its own code.")
    ] = False,
    resume: Annotated[
        bool, typer.Option(help="Continue an interrupted build in OUT (same sources and options).")
    ] = False,
    part: Annotated[
        str | None, typer.Option(metavar="i/N", help="Build only part i of N (Slurm arrays, indexed jobs).")
    ] = None,
    merge_parts: Annotated[
        Path | None,
        typer.Option(
            "--merge-parts", metavar="OUT", help="Merge the finished parts in OUT into one manifest, then exit."
        ),
    ] = None,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Reject images with more pixels than this, before decoding them.")
    ] = 100_000_000,
    max_file_mb: Annotated[
        int, typer.Option(min=1, help="Reject image and label files larger than this many MiB, unread.")
    ] = 512,
    allow_outside_root: Annotated[
        bool,
        typer.Option(
            "--allow-outside-root",
            help="Read files whose real path (symlinks resolved) leaves their source's folder; refused by default.",
        ),
    ] = False,
) -> None:
    """Build GeoScale-VQA: scale-layered QA from remote-sensing datasets, written as WebDataset shards.

    Example:

        uv run scaleearth build-data --source synthetic=2000 --source rsvqa-lr=/data/RSVQA_LR --out corpus

        uv run scaleearth build-data --source synthetic=2000 --out corpus --part 0/4

        uv run scaleearth build-data --merge-parts corpus
    """
    from rich.console import Console

    import geoscale_vqa

    console = Console()
    if merge_parts is not None:
        if source:
            raise typer.BadParameter("--merge-parts takes no --source", param_hint="--merge-parts")
        geoscale_vqa.merge_parts(merge_parts)  # a BuildError is one `error:` line (see _Commands)
        console.print(f"merged the parts of {merge_parts} into {merge_parts / 'manifest.json'}")
        return
    if not source:
        raise typer.BadParameter("give at least one --source KIND=ARG", param_hint="--source")
    if out is None:
        raise typer.BadParameter("an output folder is needed", param_hint="--out")
    try:
        specs = [geoscale_vqa.parse_source(s) for s in source]
    except geoscale_vqa.SourceError as err:
        raise typer.BadParameter(str(err), param_hint="--source") from None
    try:
        part_of = geoscale_vqa.parse_part(part) if part is not None else (0, 1)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--part") from None
    if teacher_dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise typer.BadParameter(f"unknown dtype {teacher_dtype!r}", param_hint="--teacher-dtype")
    teacher_config = None
    if teacher is not None:
        from geoscale_vqa.qa.teacher import TeacherConfig

        teacher_config = TeacherConfig(
            model=teacher,
            device=teacher_device,
            dtype=teacher_dtype,
            max_new_tokens=teacher_max_new_tokens,
            qa_per_tier=teacher_qa_per_tier,
            trust_remote_code=teacher_trust_remote_code,
        )
    geoscale_vqa.build(  # BuildError, SourceError (an unreadable index file): one `error:` line
        specs,
        out,
        workers=workers,
        shard_size=shard_size,
        seed=seed,
        templates=templates,
        max_template_qa=max_template_qa,
        max_side=max_side,
        synthetic_size=synthetic_size,
        teacher=teacher_config,
        resume=resume,
        part=part_of,
        max_pixels=max_pixels,
        max_file_bytes=max_file_mb * 2**20,
        allow_outside_root=allow_outside_root,
        console=console,
    )


@app.command("make-tiny-model")
def make_tiny_model_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the model, tokenizer and processor to.")],
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
    hidden_size: Annotated[
        int, typer.Option(min=16, help="Width of the LLM and the vision tower (multiple of 16).")
    ] = 64,
    layers: Annotated[int, typer.Option(min=1, help="LLM decoder layers.")] = 2,
) -> None:
    """Write a tiny randomly initialised Qwen3-VL (same classes as Qwen3-VL-8B) for tests and demos.

    Loads with AutoModelForImageTextToText / AutoProcessor.from_pretrained(OUT), like the real model.

    Example:

        uv run scaleearth make-tiny-model --out tiny-qwen3-vl
    """
    from rich.console import Console

    from .tiny import make_tiny_model

    if hidden_size % 16:
        raise typer.BadParameter("must be a multiple of 16", param_hint="--hidden-size")
    path = make_tiny_model(out, seed=seed, hidden_size=hidden_size, num_layers=layers)
    Console().print(f"tiny Qwen3-VL written to {path}")


def _check_corpus(cfg) -> None:
    """Fail in one line, before any model loads, when the corpus cannot give this run a sample."""
    from geoscale_vqa.reader import corpus_problem

    problem = corpus_problem(cfg.data, cfg.split, cfg.resolved_sources)
    if problem is None:
        return
    what, message = problem
    if what == "sources":
        asked = "Stage 1 trains on llava unless told otherwise" if cfg.sources is None else "--sources named them"
        message += f" ({asked}; pick the corpus's sources with --sources NAME, or build the missing one)"
    raise ValueError(message)


def _train_overrides(flags: dict) -> dict:
    """The TrainConfig values of the flags the user gave (None = not given: the file or the default applies)."""
    out = {}
    for key, value in flags.items():
        if key in ("config", "settings") or value is None or value == []:
            continue
        out[key] = str(value) if isinstance(value, Path) else value
    return out


@app.command()
def train(
    stage: Annotated[int | None, typer.Option(help="1: SFT on instruction data; 2: CS-HLoRA + SSE-U.")] = None,
    data: Annotated[Path | None, typer.Option(help="A build-data output folder (WebDataset shards).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder: config, metrics, checkpoints.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML run config; flags override its values.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Hugging Face id or local folder (Stage 2: the Stage-1 --merge output).")
    ] = None,
    adapter: Annotated[str | None, typer.Option(help=f"{' | '.join(ADAPTERS)} (Stage 2).")] = None,
    quantize: Annotated[str | None, typer.Option(help="nf4 | none (default: nf4 for Stage 2).")] = None,
    gate_gsd: Annotated[
        str | None,
        typer.Option(help="Gate GSD in training: oracle | predicted | mixed:P | noisy:SIGMA | fixed:METRES | none."),
    ] = None,
    r: Annotated[int | None, typer.Option("--lora-rank", "--r", help="Adapter rank r.")] = None,
    alpha: Annotated[
        float | None, typer.Option("--lora-alpha", "--alpha", help="Adapter alpha (scaling alpha / r).")
    ] = None,
    gsd_loss_weight: Annotated[float | None, typer.Option(help="lambda in CE + lambda * beta-NLL.")] = None,
    sources: Annotated[
        list[str] | None, typer.Option("--sources", help="Corpus sources to train on (default: llava for Stage 1).")
    ] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Samples per micro-batch per process.")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Micro-batches per optimizer step.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate of the adapter.")] = None,
    warmup_steps: Annotated[int | None, typer.Option(help="Linear warm-up steps before the cosine decay.")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per sample at most.")] = None,
    save_every: Annotated[int | None, typer.Option(help="Checkpoint every K steps.")] = None,
    log_every: Annotated[int | None, typer.Option(help="Read metrics (one device sync) every K steps.")] = None,
    resume: Annotated[str | None, typer.Option(help="none | auto | a checkpoint folder.")] = None,
    max_bad_steps: Annotated[int | None, typer.Option(help="Stop after this many non-finite steps.")] = None,
    gradient_checkpointing: Annotated[
        bool | None, typer.Option("--gradient-checkpointing/--no-gradient-checkpointing")
    ] = None,
    merge: Annotated[
        bool | None, typer.Option("--merge/--no-merge", help="Stage 1: write a merged model folder.")
    ] = None,
    full_finetune: Annotated[
        bool | None, typer.Option("--full-finetune/--lora", help="Stage 1: train the whole LLM.")
    ] = None,
    unfreeze_vision: Annotated[bool | None, typer.Option("--unfreeze-vision/--freeze-vision")] = None,
    unfreeze_projector: Annotated[bool | None, typer.Option("--unfreeze-projector/--freeze-projector")] = None,
    num_workers: Annotated[int | None, typer.Option(help="DataLoader worker processes.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of initialisation, shuffling and mixed gating.")] = None,
    nproc: Annotated[int | None, typer.Option(help="Processes (torchrun; gloo on CPU, NCCL on GPU).")] = None,
    device: Annotated[str | None, typer.Option(help="auto | cpu | cuda | cuda:N (auto: cuda when available).")] = None,
    trust_remote_code: Annotated[bool | None, typer.Option("--trust-remote-code/--no-trust-remote-code")] = None,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress", help="Show the progress bar.")] = None,
    settings: Annotated[
        list[str] | None,
        typer.Argument(
            help="Any other config key as KEY=VALUE (e.g. beta=0.3 sseu_lr=1e-3 bf16=false).", show_default=False
        ),
    ] = None,
) -> None:
    """Train Stage 1 (SFT) or Stage 2 (CS-HLoRA + SSE-U) of ScaleEarth on Qwen3-VL.

    Precedence: defaults < --config YAML < KEY=VALUE < flags. Every key and its default: KEYS.

    Example:

        uv run scaleearth train --stage 1 --data corpus --model Qwen/Qwen3-VL-8B-Instruct --out runs/s1 --merge

        uv run scaleearth train --stage 2 --data corpus --model runs/s1/merged --out runs/s2 --adapter cshlora

        uv run scaleearth train --config run.yaml --nproc 2 --resume auto
    """
    flags = dict(locals())  # every option is a TrainConfig key of the same name (but config and settings)
    from rich.console import Console

    from .config import RESOLVED_CONFIG_NAME, ConfigError, check_runnable, load_config, parse_overrides
    from .train import train as run_training

    console = Console()
    try:
        cfg = load_config(config, parse_overrides(settings or []) | _train_overrides(flags))
        check_runnable(cfg)
    except ConfigError as err:  # a bad value: one line, and the usage-error exit code as for a bad flag
        raise _fail(console, err, code=2) from None
    _check_corpus(cfg)
    if cfg.nproc > 1:
        from .distributed import launch

        resolved = cfg.save(Path(cfg.out) / RESOLVED_CONFIG_NAME)
        raise typer.Exit(launch(resolved, cfg.nproc))
    result = run_training(cfg, console=console)  # TrainingError and other user errors: one `error:` line
    console.print(f"trained {result.steps} steps ({result.skipped_steps} skipped); outputs in {result.final_dir}")
    if result.merged_dir is not None:
        console.print(f"merged Stage-1 model: {result.merged_dir}")


def _with_keys(doc: str) -> str:
    from .config import keys_and_defaults

    return doc.replace("KEYS", keys_and_defaults())


train.__doc__ = _with_keys(train.__doc__)


# -- evaluation ----------------------------------------------------------------------------------
BENCH_HELP = "xlrs | omniearth | rsvqa | geoscale"


def _check_bench(bench: str) -> None:
    from geoscale_vqa.benchmarks import BENCHMARKS

    if bench not in BENCHMARKS:
        raise typer.BadParameter(f"unknown benchmark {bench!r}; expected {BENCH_HELP}", param_hint="--bench")


def _load_model(model: str, adapter: Path | None, device: str | None, quantize: str, max_pixels: int | None):
    from .inference import load_eval_model

    if quantize not in ("none", "nf4"):
        raise typer.BadParameter(f"expected none or nf4, got {quantize!r}", param_hint="--quantize")
    if adapter is not None and not adapter.exists():
        raise typer.BadParameter(f"{adapter} does not exist", param_hint="--adapter")
    # A damaged or mismatched adapter / SSE-U head is a ValueError naming the file: one `error:` line.
    return load_eval_model(model, adapter, device=device, quantize=quantize, max_pixels=max_pixels)


def _fail(console, err: Exception, code: int = 1):
    """The one way a command reports an error it expects: one ``error:`` line, exit ``code`` (2: usage)."""
    typer.echo(f"error: {one_line(err)}", err=True)
    return typer.Exit(code)


Model = Annotated[str, typer.Option(help="Hugging Face id or local folder of the (Stage-1) base model.")]
Device = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1, ... (default: cuda if available).")]
Quantize = Annotated[str, typer.Option(help="none | nf4 (the LLM base in 4 bit, as Stage 2 trains it).")]
MaxPixels = Annotated[
    int | None, typer.Option(min=1, help="Pixel budget per image (default: the processor's); larger ones shrink.")
]
Images = Annotated[Path | None, typer.Option(help="Image root for XLRS JSONL, OmniEarth, RSVQA (default: their own).")]
Split = Annotated[str | None, typer.Option(help="rsvqa: test | test_phili ...; geoscale: test (default: test).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Questions per generation batch.")]
MaxNewTokens = Annotated[int, typer.Option(min=1, help="Answer length limit in tokens (greedy decoding).")]
Limit = Annotated[int | None, typer.Option(min=1, help="Only the first N questions (recorded in the results).")]
Parser = Annotated[
    str,
    typer.Option(
        help="strict: the project's strict-then-fallback reading; official: the benchmark's own scorer "
        "(lmms-eval XLRS, OmniEarth-Bench mcq_utils, RSVQA answer encoding). results.json holds both."
    ),
]


def _check_parser(parser: str) -> None:
    from geoscale_vqa.benchmarks import PARSERS

    if parser not in PARSERS:
        raise typer.BadParameter(f"expected strict or official, got {parser!r}", param_hint="--parser")


@app.command("eval")
def eval_cmd(
    bench: Annotated[str, typer.Option(help=BENCH_HELP)],
    data: Annotated[Path, typer.Option(help="The benchmark in its published layout (see geoscale_vqa README).")],
    model: Model,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for predictions.jsonl, results.json, plots.")],
    adapter: Annotated[
        Path | None, typer.Option(help="A Stage-2 run folder (uses final/), a checkpoint or an adapter folder.")
    ] = None,
    gsd_source: Annotated[
        str, typer.Option(help="oracle | predicted | none | noisy:SIGMA (decades) | fixed:METRES.")
    ] = "oracle",
    images: Images = None,
    split: Split = None,
    batch_size: BatchSize = 8,
    max_new_tokens: MaxNewTokens = 16,
    limit: Limit = None,
    seed: Annotated[int, typer.Option(help="Seed of the noisy:SIGMA draws (one per question).")] = 0,
    device: Device = None,
    quantize: Quantize = "none",
    max_pixels: MaxPixels = None,
    tiling: Annotated[
        str, typer.Option(help="none | grid:N: cut images over --max-pixels into N x N tiles, each within it.")
    ] = "none",
    parser: Parser = "strict",
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")] = True,
) -> None:
    """Run a model on a benchmark: predictions JSONL, results JSON (with provenance) and a table.

    The gate's GSD: oracle = the benchmark's GSD made effective for the resized image (benchmarks without
    one fall back to the policy: SSE-U estimate, else default; the results count each branch);
    predicted = the policy without metadata; none = the neutral default; noisy:SIGMA = oracle + N(0, SIGMA²)
    decades; fixed:METRES = one GSD for all. With an SSE-U head and true GSDs the results carry its MAE,
    coverage and a calibration plot. Images over --max-pixels are downscaled whole, or with --tiling
    grid:N cut into N x N tiles first; the gate gets the effective GSD of what the model sees, and each
    question's resize, tiles and effective GSD go into predictions.jsonl.

    Example:

        uv run scaleearth eval --bench rsvqa --data RSVQA_HR --split test_phili --model s1/merged --adapter s2 --out hr

        uv run scaleearth eval --bench xlrs --data XLRS --model s1/merged --adapter s2 --gsd-source predicted --out xlrs

        uv run scaleearth eval --bench xlrs --data XLRS --model s1/merged --tiling grid:2 --parser official --out xt
    """
    from rich.console import Console

    from geoscale_vqa.benchmarks import results_table

    from .evaluate import evaluate
    from .inference import Tiling
    from .results import EvalResult
    from .scale import GateSource

    console = Console()
    _check_bench(bench)
    _check_parser(parser)
    try:
        GateSource.parse(gsd_source)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--gsd-source") from None
    try:
        Tiling.parse(tiling)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--tiling") from None
    em = _load_model(model, adapter, device, quantize, max_pixels)
    try:
        results = evaluate(
            em, bench, data, out, gsd_source=gsd_source, images=images, split=split, batch_size=batch_size,
            max_new_tokens=max_new_tokens, limit=limit, seed=seed, console=console if progress else None,
            parser=parser, tiling=tiling,
        )  # fmt: skip
    except ValueError as err:
        raise _fail(console, err) from None
    console.print(results_table(results))
    typed = EvalResult.from_dict(results)
    console.print("gate GSD per question: " + ", ".join(f"{n} {b}" for b, n in typed.branches.items()))
    if typed.gsd_note:
        console.print(typed.gsd_note)
    if typed.sseu:
        m = typed.sseu
        console.print(
            f"SSE-U: MAE {m.mae_log10:.3f} decades ({m.mae_m:.3g} m), 95 % coverage {m.coverage_95:.2f}; "
            f"plot {m.calibration_plot}"
        )
    console.print(f"results: {Path(out) / 'results.json'}")


@app.command("score")
def score_cmd(
    bench: Annotated[str, typer.Option(help=BENCH_HELP)],
    data: Annotated[Path, typer.Option(help="The benchmark in its published layout.")],
    predictions: Annotated[Path, typer.Option(help='JSONL, one {"id": ..., "prediction": "..."} per line.')],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for results.json and scored.jsonl.")],
    images: Images = None,
    split: Split = None,
    parser: Parser = "strict",
) -> None:
    """Score predictions from any model (no model is run): results JSON and a table.

    Example:

        uv run scaleearth score --bench xlrs --data XLRS-Bench-lite --predictions other-model.jsonl --out scores/xlrs

        uv run scaleearth score --bench omniearth --data prepare_data --predictions p.jsonl --parser official -o om
    """
    from rich.console import Console

    from geoscale_vqa.benchmarks import results_table

    from .evaluate import score_file

    console = Console()
    _check_bench(bench)
    _check_parser(parser)
    try:
        results = score_file(bench, data, predictions, out, images=images, split=split, parser=parser)
    except ValueError as err:
        raise _fail(console, err) from None
    console.print(results_table(results))
    console.print(f"results: {Path(out) / 'results.json'}")


@app.command("spoof")
def spoof_cmd(
    data: Annotated[Path, typer.Option(help="RSVQA folder / questions file, or a GeoScale corpus folder.")],
    model: Model,
    adapter: Annotated[Path, typer.Option(help="A Stage-2 run folder, checkpoint or adapter folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for spoof.csv, spoof.png, spoof.json.")],
    bench: Annotated[str, typer.Option(help="rsvqa | geoscale (benchmarks with a true GSD).")] = "rsvqa",
    gsd_range: Annotated[str, typer.Option(metavar="LOW:HIGH", help="GSD range in metres (log-spaced).")] = "0.03:30",
    points: Annotated[int, typer.Option(min=2, help="GSDs in the range.")] = 25,
    images: Images = None,
    split: Split = None,
    batch_size: BatchSize = 8,
    max_new_tokens: MaxNewTokens = 16,
    limit: Limit = None,
    device: Device = None,
    quantize: Quantize = "none",
    max_pixels: MaxPixels = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")] = True,
) -> None:
    """GSD spoofing: feed each GSD of a log range to the gate instead of the true one; accuracy per GSD.

    Writes a CSV and a PNG with the true GSD marked (the effective GSD of the model's pixels; the median
    if samples differ).

    Example:

        uv run scaleearth spoof --data RSVQA_HR --model s1/merged --adapter s2 --gsd-range 0.03:30 --out spoof
    """
    from rich.console import Console

    from .spoof import parse_gsd_range, spoof

    console = Console()
    if bench not in ("rsvqa", "geoscale"):
        raise typer.BadParameter("spoofing needs a benchmark with a true GSD: rsvqa or geoscale", param_hint="--bench")
    try:
        low_high = parse_gsd_range(gsd_range)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--gsd-range") from None
    em = _load_model(model, adapter, device, quantize, max_pixels)
    try:
        result = spoof(
            em, bench, data, out, gsd_range=low_high, points=points, images=images, split=split,
            batch_size=batch_size, max_new_tokens=max_new_tokens, limit=limit, console=console if progress else None,
        )  # fmt: skip
    except ValueError as err:
        raise _fail(console, err) from None
    best = max(result.rows, key=lambda r: r["accuracy"])
    which = "median true" if result.true_gsd_varies else "true"
    console.print(
        f"{which} GSD {result.true_gsd_m:.3g} m (dataset {result.dataset_gsd_m:.3g} m); best accuracy "
        f"{100 * best['accuracy']:.2f} % at {best['gsd_m']:.3g} m"
    )
    console.print(f"wrote {result.csv_path} and {result.plot_path}")


@app.command("predict")
def predict_cmd(
    image: Annotated[Path | None, typer.Argument(help="An image file (a GeoTIFF's tags give its GSD).")] = None,
    question: Annotated[str | None, typer.Argument(help="The question about the image.")] = None,
    model: Model = "",
    adapter: Annotated[Path | None, typer.Option(help="A Stage-2 run folder, checkpoint or adapter folder.")] = None,
    gsd: Annotated[float | None, typer.Option(help="The image's GSD in metres per pixel (beats its tags).")] = None,
    images: Annotated[
        Path | None, typer.Option(help="Batch mode: a folder of images or a manifest.jsonl (image, id, gsd_m).")
    ] = None,
    questions: Annotated[
        Path | None, typer.Option(help="Batch mode: questions, one per line (or JSONL with 'question', 'id').")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Batch mode: predictions.jsonl (resumed if it exists).")] = None,
    part: Annotated[str, typer.Option(help="Batch mode: i/N, the images with index i mod N.")] = "0/1",
    batch_size: BatchSize = 8,
    max_new_tokens: MaxNewTokens = 64,
    device: Device = None,
    quantize: Quantize = "none",
    max_pixels: MaxPixels = None,
) -> None:
    """Answer questions about images; says where each GSD came from (--gsd, manifest, GeoTIFF tags or SSE-U).

    One image, or (batch mode) every question about every image of an archive, appended to --out and
    resumed after an interruption.

    Example:

        uv run scaleearth predict scene.tif "How many ships are in the harbour?" --model s1/merged --adapter s2

        uv run scaleearth predict --images tiles/ --questions q.txt --out preds.jsonl --model s1/merged --adapter s2

        # 4 machines (or a Slurm array): --part $SLURM_ARRAY_TASK_ID/4 --out preds.part$SLURM_ARRAY_TASK_ID.jsonl
    """
    from rich.console import Console

    console = Console()
    if not model:
        raise typer.BadParameter("the base model is required", param_hint="--model")
    batch = images is not None or questions is not None or out is not None
    if batch:
        from geoscale_vqa.build import parse_part

        if image is not None or question is not None or gsd is not None:
            raise typer.BadParameter("batch mode (--images/--questions/--out) takes no IMAGE, QUESTION or --gsd")
        for value, hint in ((images, "--images"), (questions, "--questions"), (out, "--out")):
            if value is None:
                raise typer.BadParameter("batch mode needs --images, --questions and --out", param_hint=hint)
        if not questions.is_file():
            raise typer.BadParameter(f"{questions} does not exist", param_hint="--questions")
        if not images.exists():
            raise typer.BadParameter(f"{images} does not exist", param_hint="--images")
        try:
            part_tuple = parse_part(part)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--part") from None
    elif image is None or question is None:
        raise typer.BadParameter("give IMAGE and QUESTION, or --images, --questions and --out")
    elif not image.is_file():
        raise typer.BadParameter(f"{image} does not exist", param_hint="IMAGE")
    em = _load_model(model, adapter, device, quantize, max_pixels)
    try:
        if batch:
            from .batch_predict import predict_archive

            result = predict_archive(em, images, questions, out, batch_size=batch_size,
                                     max_new_tokens=max_new_tokens, part=part_tuple, console=console)  # fmt: skip
            console.print(f"{result.written} predictions written to {result.out} ({result.skipped} already there)")
            return
        from .predict import predict

        result = predict(em, image, question, gsd_m=gsd, max_new_tokens=max_new_tokens)
    except ValueError as err:
        raise _fail(console, err) from None
    console.print(result.describe(), highlight=False, markup=False)


@app.command("export")
def export_cmd(
    adapter: Annotated[Path, typer.Option(help="A Stage-2 run folder, checkpoint or adapter folder.")],
    model: Model,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (lora/, merged/, export.json).")],
    gsd_grid: Annotated[
        str, typer.Option(help="GSDs in metres, comma-separated: one standard LoRA adapter each.")
    ] = "0.1,0.3,1,3,10,30,100",
    merged: Annotated[bool, typer.Option(help="Also write the base with each adapter merged in.")] = False,
) -> None:
    """Export CS-HLoRA at fixed GSDs as standard PEFT LoRA adapters, for engines that serve LoRA (vLLM, ...).

    At one GSD the gated update is an ordinary LoRA, so each adapter is exact; lora/cshlora_export.json maps
    GSD ranges to adapter names (nearest grid GSD in log10).

    Example:

        uv run scaleearth export --adapter runs/s2 --model runs/s1/merged --gsd-grid 0.1,0.3,1,3,10,30,100 --out served
    """
    from rich.console import Console

    from .export import export_run, parse_gsd_grid

    console = Console()
    try:
        grid = parse_gsd_grid(gsd_grid)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--gsd-grid") from None
    if not adapter.exists():
        raise typer.BadParameter(f"{adapter} does not exist", param_hint="--adapter")
    try:
        result = export_run(model, adapter, grid, out, merged=merged)
    except ValueError as err:
        raise _fail(console, err) from None
    console.print(f"{len(result.adapters)} LoRA adapters in {result.index.parent} (index {result.index.name})")
    if result.merged:
        console.print(f"{len(result.merged)} merged models in {result.merged[0].parent}")


@app.command("fit-sseu")
def fit_sseu_cmd(
    model: Model,
    data: Annotated[Path, typer.Option(help="A build-data corpus: its train split is fitted on, val is measured.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (sseu_head.safetensors, sseu_fit.json).")],
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = 3000,
    spectrum_tile: Annotated[
        int, typer.Option(min=0, help="Tile of the image's power spectrum the head also reads (0: features only).")
    ] = 64,
    limit: Annotated[
        int | None, typer.Option(min=2, help="At most N training images (their features stay in memory).")
    ] = None,
    device: Device = None,
) -> None:
    """Fit SSE-U on a Stage-1 model's frozen visual features; Stage 2 then starts from it.

    Give the head to Stage 2 with sseu_init=OUT/sseu_head.safetensors (and sseu_freeze=true to keep it).

    Example:

        uv run scaleearth fit-sseu --model runs/s1/merged --data corpus --out runs/sseu
        uv run scaleearth train --stage 2 --model runs/s1/merged --data corpus --out runs/s2 \\
            sseu_init=runs/sseu/sseu_head.safetensors sseu_freeze=true
    """
    from rich.console import Console

    from geoscale_vqa.reader import corpus_problem

    from .recipe import resolve_device
    from .sseu_fit import SSEUFitConfig, fit_sseu

    console = Console()
    problem = (None, f"{data} is not a folder") if not data.is_dir() else corpus_problem(data, "train", None)
    if problem is not None:
        raise typer.BadParameter(problem[1], param_hint="--data")
    try:
        report = fit_sseu(model, data, out, SSEUFitConfig(steps=steps, spectrum_tile=spectrum_tile, limit=limit),
                          device=str(resolve_device(device or "auto")))  # fmt: skip
    except ValueError as err:
        raise _fail(console, err) from None
    val = report["val_mae_log10"]
    console.print(f"SSE-U on {report['train_images']} images: train MAE {report['train_mae_log10']:.3f} decades"
                  + (f", val MAE {val:.3f} on {report['val_images']}, 90 % coverage {report['val_coverage_90']:.2f}"
                     if val is not None else "") + f" → {out}")  # fmt: skip


# -- recipes -------------------------------------------------------------------------------------
@app.command()
def quickstart(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: every artifact lands here.")] = Path(
        "runs/quickstart"
    ),
    pretrain_steps: Annotated[int, typer.Option(min=1, help="Backbone-pretraining steps (captions).")] = 1500,
    stage1_steps: Annotated[int, typer.Option(min=1, help="Stage-1 SFT steps.")] = 300,
    stage2_steps: Annotated[int, typer.Option(min=1, help="Stage-2 steps (CS-HLoRA).")] = 4000,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N (auto: cuda when available).")] = "auto",
    scenes: Annotated[
        int | None, typer.Option(min=10, help="Scale-world scenes in the corpus (1 in 10 held out; default 8000).")
    ] = None,
    questions: Annotated[
        int | None, typer.Option(min=0, help="Held-out questions to evaluate (default 800; 0 = all).")
    ] = 800,
    seed: Annotated[int, typer.Option(help="Seed of the data, the model and the training.")] = 0,
) -> None:
    """The whole pipeline on the synthetic scale world and a tiny Qwen3-VL: no GPU, no downloads.

    Builds the corpus, makes the tiny model, pretrains its backbone on captions (the stand-in for
    Qwen3-VL's own pretraining), trains Stage 1, fits SSE-U on the frozen Stage-1 features, trains Stage 2
    (CS-HLoRA, starting from that SSE-U), evaluates the held-out
    split with oracle and predicted GSD beside the blind prior, runs GSD spoofing, and prints the
    results. A second run reuses every finished step.

    Example:

        uv run scaleearth quickstart

        uv run scaleearth quickstart --out runs/qs --pretrain-steps 50 --stage1-steps 20 --stage2-steps 50
    """
    from rich.console import Console

    from .quickstart import QuickstartConfig, summary, summary_tables
    from .quickstart import quickstart as run_quickstart
    from .recipe import SyntheticWorld, resolve_device

    console = Console()
    try:
        resolve_device(device)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--device") from None
    world = SyntheticWorld(seed=seed)
    if scenes is not None:  # a smaller world shrinks its instruction and caption sets with it
        world = SyntheticWorld(scenes=scenes, stage1_images=max(8, min(world.stage1_images, scenes // 10)),
                               pretrain_images=max(8, min(world.pretrain_images, scenes // 2)), seed=seed)  # fmt: skip
    cfg = QuickstartConfig(
        out=out, pretrain_steps=pretrain_steps, stage1_steps=stage1_steps, stage2_steps=stage2_steps, device=device,
        world=world, questions=questions or None, seed=seed,
    )  # fmt: skip
    result = run_quickstart(cfg, console=console)
    for table in summary_tables(summary(result)):
        console.print(table)
    spoof = result.spoof
    best = max(spoof["points"], key=lambda p: p["accuracy"])
    console.print(
        f"spoofing: true GSD {spoof['true_gsd_m']:.3g} m; best accuracy {100 * best['accuracy']:.1f} % "
        f"at {best['gsd_m']:.3g} m"
    )
    console.print("plots:")
    for plot in result.plots:
        console.print(f"  {plot}")
    console.print(f"summary: {result.out / 'summary.json'}")


@app.command()
def ablate(
    config: Annotated[Path, typer.Option(help="Ablation YAML (see configs/ablate.yaml).")] = Path(
        "configs/ablate.yaml"
    ),
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run folder (overrides the file's out).")] = None,
    device: Annotated[
        str | None, typer.Option(help="auto | cpu | cuda | cuda:N (overrides the file's device).")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Two seeds and a small budget: same rows and statistics, minutes.")
    ] = False,
) -> None:
    """Train and evaluate the paper's ablation rows on the same data and budget, over several seeds.

    Rows: Stage-1 only, + LoRA (B2), + LoRA with GSD token, + bucketed MoE-LoRA (B4), + CS-HLoRA with
    oracle GSD, with SSE-U predicted GSD (at eval; in training and eval), with noisy GSD, beside the
    blind prior. Writes ablation.md (mean ± 95% CI over seeds, paired bootstrap against B2, per question
    type), ablation.json and the B4 vs CS-HLoRA spoofing plot. Finished steps are reused, so an
    interrupted run continues.

    Example:

        uv run scaleearth ablate --config configs/ablate.yaml

        uv run scaleearth ablate --quick --out runs/ablate-quick

        uv run scaleearth ablate --config my-8b-ablation.yaml --out runs/ablate-8b --device cuda
    """
    from rich.console import Console

    from .ablate import ablate as run_ablation
    from .ablate import load_ablation_config
    from .config import ConfigError

    console = Console()
    try:
        cfg = load_ablation_config(config, {"out": str(out) if out else None, "device": device}, quick=quick)
    except (ConfigError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--config") from None
    result = run_ablation(cfg, console=console)
    console.print(result.table, markup=False, highlight=False, soft_wrap=True)
    console.print(f"table: {result.table_path}\nvalues: {result.values_path}\nspoofing plot: {result.plot_path}")


if __name__ == "__main__":
    app()
