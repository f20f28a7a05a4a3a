"""Typer application: each command parses and validates its flags, then calls library code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="scaleearth",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """ScaleEarth: continuous scale conditioning (CS-HLoRA) for remote-sensing VLMs.

    Example:

        uv run scaleearth info
    """


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
        try:
            geoscale_vqa.merge_parts(merge_parts)
        except geoscale_vqa.BuildError as err:
            console.print(f"[red]error:[/red] {err}")
            raise typer.Exit(1) from None
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
    try:
        geoscale_vqa.build(
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
            console=console,
        )
    except geoscale_vqa.BuildError as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1) from None


if __name__ == "__main__":
    app()
