"""Build GeoScale-VQA shards: parallel workers, resumable after any interruption, splittable over machines.

Layout of OUT:

    OUT/<split>/<split>-000000.tar   WebDataset shards (one sample per image, all its QA)
    OUT/manifest.json                counts per source/split/tier/origin, GSD histogram, shard list
    OUT/rejects.jsonl                every skipped input with its reason
    OUT/.geoscale/                   build state: the plan, the completed-shards log of each part

A shard job is written to a temporary name and renamed once complete, then recorded in the
completed-shards log (fsynced) with its size, sha256, plan digest and input digest. `resume=True` skips
jobs whose shard is in the log and still verifies (same size and sha256, same plan, input files unchanged:
`plan.inputs_digest`) and redoes the rest, saying which shards it rebuilds and why; since a job's bytes
depend only on the plan, the result equals an uninterrupted build whatever the worker count and wherever
the interruption fell. Damaged state files are never trusted: a torn or garbled log line only means its
shard is rebuilt.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._version import __version__
from .inputs import ReadLimits
from .manifest import (
    STATE_DIR,
    BuildError,
    add_sample_stats,
    empty_stats,
    is_shard_record,
    merge_parts,
    write_json_atomic,
)
from .pipeline import SampleSettings, make_sample
from .plan import Plan, ShardJob, make_plan
from .qa.templates import TEMPLATE_TYPES
from .shards import TMP_MARK, sha256_file, write_shard
from .sources import SourceSpec, parse_source

__all__ = ["BuildError", "BuildResult", "build", "merge_parts", "parse_part", "print_summary"]


@dataclass
class BuildResult:
    out: Path
    manifest: dict | None  # None for a part of a multi-part build (see merge_parts)
    part: tuple[int, int]
    elapsed_s: float
    shards_built: int
    shards_skipped: int
    samples_built: int = 0
    qa_built: int = 0
    items_processed: int = 0
    rejects_this_run: int = 0
    per_source: dict = field(default_factory=dict)
    shards_redone: dict = field(default_factory=dict)  # {shard: why its logged copy was not trusted}


def _part_tag(part: int, parts: int) -> str:
    return f"part-{part:04d}-of-{parts:04d}"


def parse_part(text: str) -> tuple[int, int]:
    """ "i/N" -> (i, N) with 0 <= i < N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"part must look like i/N with 0 <= i < N (e.g. 0/4), got {text!r}")
    return int(match[1]), int(match[2])


# ---------------------------------------------------------------------------------------------- worker


_WORKER: dict = {}


def _init_worker(out: str, settings: SampleSettings, queue) -> None:
    _WORKER.update(out=Path(out), settings=settings, queue=queue, teacher=None)
    if settings.teacher is not None:  # loaded once per process, reused for every shard
        from .qa.teacher import Teacher

        _WORKER["teacher"] = Teacher(settings.teacher)


def run_job(job: ShardJob, report=None) -> dict:
    """Make every sample of one shard job, write the shard, return its completed-shard record."""
    settings, out, teacher = _WORKER["settings"], _WORKER["out"], _WORKER["teacher"]
    if report is None and _WORKER.get("queue") is not None:
        report = _WORKER["queue"].put  # progress travels to the main process in small batches
    samples, rejects, stats = [], [], empty_stats()
    last, pending = time.monotonic(), 0
    for item in job.items:
        sample, item_rejects = make_sample(item, settings, teacher)
        rejects += [r.to_json() for r in item_rejects]
        if sample is not None:
            samples.append(sample)
            add_sample_stats(stats, sample.record)
        pending += 1
        if report is not None and (time.monotonic() - last > 0.2):
            report(pending)
            last, pending = time.monotonic(), 0
    if report is not None and pending:
        report(pending)
    size, sha = write_shard(out / job.name, samples)
    return {
        "index": job.index,
        "name": job.name,
        "split": job.split,
        "items": len(job.items),
        "samples": len(samples),
        "qa": sum(len(s.record["qa"]) for s in samples),
        "bytes": size,
        "sha256": sha,
        "inputs": job.inputs,
        "stats": stats,
        "rejects": rejects,
    }


# ------------------------------------------------------------------------------------------ main side


def _read_log(log: Path) -> list[dict]:
    """The records of a completed-shards log; torn or garbled lines (a kill mid-append) are skipped."""
    records = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if is_shard_record(record):
            records.append(record)
    return records


def _why_redo(record: dict, out: Path, job: ShardJob, digest: str) -> str | None:
    """None when the logged shard can be kept, else the reason it is rebuilt."""
    path = out / record["name"]
    if record.get("plan") != digest:
        return "logged by another plan"
    if record.get("inputs") != job.inputs:
        return "its input files changed (size, mtime or content)"
    if not path.is_file():
        return "the shard file is missing"
    if path.stat().st_size != record.get("bytes"):
        return "the shard has the wrong size"
    if sha256_file(path) != record.get("sha256"):
        return "the shard's sha256 does not match the log (changed or damaged since it was written)"
    return None


def _load_done(log: Path, out: Path, jobs: dict[str, ShardJob], digest: str) -> tuple[dict[str, dict], dict]:
    """({name: record} of the logged shards that verify, {name: reason} of those that do not)."""
    done, redo = {}, {}
    for record in _read_log(log):
        job = jobs.get(record["name"])
        if job is None:
            continue
        why = _why_redo(record, out, job, digest)
        if why is None:
            done[record["name"]] = record
            redo.pop(record["name"], None)
        elif record["name"] not in done:
            redo[record["name"]] = why
    return done, redo


def _prepare_state(out: Path, plan: Plan, part: int, parts: int, resume: bool) -> tuple[Path, Path, bool]:
    """(state folder, completed-shards log, whether the previous plan file was damaged)."""
    state = out / STATE_DIR
    tag = _part_tag(part, parts)
    plan_file = state / f"{tag}.plan.json"
    if out.exists() and not resume:
        if plan_file.exists() or (out / "manifest.json").exists():
            raise BuildError(f"{out} already holds a build; pass --resume to continue it or choose another --out")
        if parts == 1 and any(out.iterdir()):
            raise BuildError(f"{out} is not empty; choose an empty or new --out")
    previous = None
    if plan_file.exists():
        try:
            previous = json.loads(plan_file.read_text(encoding="utf-8"))["digest"]
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError):
            previous = False  # damaged: every logged shard is checked against this plan's digest instead
        if previous and previous != plan.digest:
            raise BuildError(
                f"the inputs or settings changed since {out} was started (plan digest differs); "
                "resume needs the same sources, seed and options, or start a new --out"
            )
    state.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        plan_file,
        {
            "digest": plan.digest,
            "config": plan.config(),
            "jobs": len(plan.jobs),
            "part": part,
            "parts": parts,
            "builder": __version__,
        },
    )
    return state, state / f"{tag}.done.jsonl", previous is False


def _remove_own_tmp(out: Path, jobs: list[ShardJob], tag: str, parts: int) -> None:
    """Temporary files an interrupted run of this part left behind (other parts may be running)."""
    stale = list((out / STATE_DIR).glob(f".{tag}*{TMP_MARK}*"))
    if parts == 1:
        stale += [p for name in ("manifest.json", "rejects.jsonl") for p in out.glob(f".{name}{TMP_MARK}*")]
    for path in stale:
        path.unlink(missing_ok=True)
    for job in jobs:
        final = out / job.name
        if final.parent.is_dir():
            for tmp in final.parent.glob(f".{final.name}{TMP_MARK}*"):
                tmp.unlink(missing_ok=True)


def _progress(console):
    from .progress import progress_bar

    return progress_bar(console, "building", rate_unit="samples/s")


def _run_jobs(jobs: list[ShardJob], out: Path, settings: SampleSettings, workers: int, on_record, console) -> None:
    total = sum(len(j.items) for j in jobs)
    progress = _progress(console) if console is not None and jobs else None
    task = progress.add_task("build", total=total) if progress else None

    def advance(n):
        if progress:
            progress.update(task, advance=n)

    if workers <= 1:
        _init_worker(str(out), settings, None)
        try:
            if progress:
                progress.start()
            for job in jobs:
                on_record(run_job(job, report=advance))
        finally:
            if progress:
                progress.stop()
        return
    ctx = mp.get_context("spawn")  # fresh interpreters: safe with torch threads and a loaded teacher
    queue = ctx.Queue()
    with ctx.Pool(workers, initializer=_init_worker, initargs=(str(out), settings, queue)) as pool:
        results = pool.imap_unordered(run_job, jobs)
        if progress:
            progress.start()
        try:
            for _ in jobs:
                while True:
                    while not queue.empty():
                        advance(queue.get())
                    try:
                        record = results.next(timeout=0.1)
                        break
                    except mp.TimeoutError:
                        continue
                on_record(record)
            while not queue.empty():
                advance(queue.get())
        finally:
            if progress:
                progress.stop()


def build(
    sources: list[str | SourceSpec],
    out: str | os.PathLike,
    *,
    workers: int = 1,
    shard_size: int = 1000,
    seed: int = 0,
    templates: bool = True,
    max_template_qa: int = 8,
    template_types: list[str] | tuple[str, ...] | None = None,
    max_side: int | None = None,
    synthetic_size: int = 96,
    teacher=None,
    resume: bool = False,
    part: tuple[int, int] = (0, 1),
    max_pixels: int = ReadLimits.max_pixels,
    max_file_bytes: int = ReadLimits.max_file_bytes,
    allow_outside_root: bool = False,
    console=None,
) -> BuildResult:
    """Build (or resume, or build one part of) a GeoScale-VQA corpus in `out`.

    `sources` are `KIND=ARG` strings or `SourceSpec`s; `teacher` a `qa.teacher.TeacherConfig` or None;
    `part=(i, N)` builds every N-th shard job starting at i and leaves the manifest to `merge_parts`.
    Files are read only inside each source's folder (unless `allow_outside_root`), only if regular and at
    most `max_file_bytes` long, and images only up to `max_pixels`; anything else is a reject.
    With a rich `console`, shows a progress bar and prints a summary table.
    """
    started = time.monotonic()
    specs = [s if isinstance(s, SourceSpec) else parse_source(s) for s in sources]
    if not specs:
        raise ValueError("at least one source is needed")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    index, parts = part
    if not 0 <= index < parts:
        raise ValueError(f"part must satisfy 0 <= i < N, got {index}/{parts}")
    if template_types is not None and (unknown := sorted(set(template_types) - set(TEMPLATE_TYPES))):
        raise ValueError(f"unknown template QA type(s) {', '.join(unknown)}; known: {', '.join(TEMPLATE_TYPES)}")
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be positive, got {max_side}")
    settings = SampleSettings(
        seed=seed, templates=templates, max_template_qa=max_template_qa, max_side=max_side, teacher=teacher,
        template_types=None if template_types is None else tuple(sorted(set(template_types))),
        limits=ReadLimits(max_file_bytes=max_file_bytes, max_pixels=max_pixels, allow_outside_root=allow_outside_root),
    )  # fmt: skip
    out = Path(out)
    if console is not None:
        console.print(f"planning {', '.join(map(str, specs))} ...")
    plan = make_plan(specs, shard_size=shard_size, settings=settings, synthetic_size=synthetic_size)
    state, log, damaged_plan = _prepare_state(out, plan, index, parts, resume)
    my_jobs = plan.part_jobs(index, parts)
    _remove_own_tmp(out, my_jobs, _part_tag(index, parts), parts)
    done, redo = _load_done(log, out, {j.name: j for j in my_jobs}, plan.digest) if resume else ({}, {})
    # Start the log afresh with the records that hold, so a torn last line never swallows the next one.
    write_json_atomic(log, sorted(done.values(), key=lambda r: r["index"]), lines=True)
    todo = [j for j in my_jobs if j.name not in done]
    if console is not None:
        if damaged_plan:
            console.print(f"[yellow]warning:[/yellow] {log.parent} held a damaged plan file; rewritten, and every "
                          "logged shard checked against the current plan")  # fmt: skip
        for name, why in sorted(redo.items()):
            console.print(f"[yellow]rebuilding[/yellow] {name}: {why}")
        console.print(
            f"{sum(len(j.items) for j in plan.jobs)} images in {len(plan.jobs)} shards, "
            f"{len(plan.rejects)} inputs rejected while planning; this run: {len(todo)} shards "
            f"({len(my_jobs) - len(todo)} already complete), {workers} worker(s)"
        )
    result = BuildResult(
        out=out,
        manifest=None,
        part=(index, parts),
        elapsed_s=0.0,
        shards_built=0,
        shards_skipped=len(my_jobs) - len(todo),
        shards_redone=redo,
    )

    with open(log, "a", encoding="utf-8") as log_file:

        def on_record(record):
            record["plan"] = plan.digest
            log_file.write(json.dumps(record, sort_keys=True) + "\n")
            log_file.flush()
            os.fsync(log_file.fileno())
            done[record["name"]] = record
            result.shards_built += 1
            result.samples_built += record["samples"]
            result.qa_built += record["qa"]
            result.items_processed += record["items"]
            result.rejects_this_run += len(record["rejects"])

        _run_jobs(todo, out, settings, workers, on_record, console)

    part_record = {
        "digest": plan.digest,
        "config": plan.config(),
        "part": index,
        "parts": parts,
        "jobs": len(plan.jobs),
        "shards": sorted(done.values(), key=lambda r: r["index"]),
        "plan_rejects": [r.to_json() for r in plan.rejects] if index == 0 else [],
    }
    write_json_atomic(state / f"{_part_tag(index, parts)}.json", part_record)
    if parts == 1:  # every shard was just written or verified: no need to hash them all again
        result.manifest = merge_parts(out, verify=False)
    result.elapsed_s = time.monotonic() - started
    if console is not None:
        print_summary(result, console)
    return result


# -------------------------------------------------------------------------------------------- summary


def print_summary(result: BuildResult, console) -> None:
    from rich.table import Table

    rate = result.items_processed / result.elapsed_s if result.elapsed_s > 0 else 0.0
    qa_rate = result.qa_built / result.elapsed_s if result.elapsed_s > 0 else 0.0
    manifest = result.manifest
    if manifest is None:
        console.print(
            f"part {result.part[0]}/{result.part[1]} done: {result.shards_built} shards built, "
            f"{result.shards_skipped} already complete; merge with build-data --merge-parts {result.out}"
        )
    else:
        table = Table(title=f"GeoScale-VQA in {result.out}")
        for column in ("source", "samples", "QA", "rejected"):
            table.add_column(column, justify="left" if column == "source" else "right")
        counts = manifest["counts"]
        sources = sorted(set(counts["by_source"]) | set(counts["rejects_by_source"]))
        for src in sources:
            row = counts["by_source"].get(src, {"samples": 0, "qa": 0})
            table.add_row(src, f"{row['samples']:,}", f"{row['qa']:,}", f"{counts['rejects_by_source'].get(src, 0):,}")
        t = manifest["totals"]
        table.add_row("[bold]total", f"[bold]{t['samples']:,}", f"[bold]{t['qa']:,}", f"[bold]{t['rejects']:,}")
        console.print(table)
        tiers = ", ".join(f"{k} {v:,}" for k, v in counts["by_tier"].items())
        origins = ", ".join(f"{k} {v:,}" for k, v in counts["by_origin"].items())
        console.print(f"QA by tier: {tiers}; by origin: {origins}")
        if counts["rejects_by_reason"]:
            console.print(
                "rejected: "
                + ", ".join(f"{k} {v}" for k, v in counts["rejects_by_reason"].items())
                + f" (details in {result.out / 'rejects.jsonl'})"
            )
        if counts["implausible_gsd"]:
            console.print(
                f"[yellow]warning:[/yellow] {counts['implausible_gsd']} images have a GSD outside 0.01 m - 10 km "
                "(kept as given; check the source's units)"
            )
        console.print(f"{t['shards']} shards, {t['bytes'] / 1e6:,.1f} MB, {t['bytes'] / max(t['qa'], 1):,.0f} bytes/QA")
    console.print(
        f"this run: {result.shards_built} shards built, {result.shards_skipped} skipped as complete, "
        f"{result.elapsed_s:,.1f} s, {rate:,.1f} samples/s, {qa_rate:,.1f} QA/s"
    )
