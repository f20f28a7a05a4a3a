"""Render a results dict as a Rich table for the CLI: headline metrics, then accuracy per group."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def results_table(results: Mapping, *, max_rows_per_group: int = 40) -> Table:
    counts = results["counts"]
    parser = results.get("parser", "strict")
    read = f"{counts['fallback']} read by fallback" if parser == "strict" else "official extraction"
    caption = (
        f"{counts['questions']} questions · {counts['correct']} correct · {read} · "
        f"{counts['unparseable']} unparseable · {counts['invalid']} invalid letter · {counts['missing']} missing · "
        f"{counts['unknown_ids']} unknown ids"
    )
    if "parsers" in results:
        other = "official" if parser == "strict" else "strict"
        caption += (
            f" · parser {parser}; {results['parsers']['judged_differently']} answer(s) judged differently by "
            f"the {other} parser ({100 * results['parsers'][other]['correct'] / max(counts['questions'], 1):.2f}% "
            "correct there)"
        )
    if results.get("partial_run"):
        caption += f" · partial run: {results['partial_run']['note']}"
    if counts.get("skipped"):
        caption += " · skipped " + ", ".join(f"{n} {why}" for why, n in counts["skipped"].items())
    table = Table(title=f"{results['title']} ({results['benchmark']})", caption=caption)
    for column, justify in (("group", "left"), ("name", "left"), ("n", "right"), ("accuracy %", "right")):
        table.add_column(column, justify=justify)
    for name, value in results["metrics"].items():
        table.add_row("[bold]metric", name, str(counts["questions"]), f"[bold]{_pct(value)}")
    for group, stats in results["groups"].items():
        table.add_section()
        for i, (label, s) in enumerate(stats.items()):
            if i == max_rows_per_group:
                table.add_row(group, f"… {len(stats) - i} more in results.json", "", "")
                break
            name = f"{label} (L4 mean {_pct(s['l4_mean'])})" if "l4_mean" in s else label
            table.add_row(group, name, str(s["n"]), _pct(s["accuracy"]))
    return table
