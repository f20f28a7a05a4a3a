"""The one Rich progress bar of the project (build-data, train, eval, spoof, predict): title, bar, done/total,
optional rate and live fields, time left."""

from __future__ import annotations


def progress_bar(console, title: str, *, rate_unit: str | None = None, fields: tuple[str, ...] = ()):
    """A ``rich.progress.Progress`` writing to ``console``.

    ``rate_unit``: show the speed (``"samples/s"``) and the elapsed time; ``fields``: Rich format strings of
    task fields, e.g. ``"loss {task.fields[loss]}"`` (pass the values to ``add_task``/``update``).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task):
            return Text(f"{task.speed or 0:,.1f} {rate_unit}", style="cyan")

    columns = [TextColumn(f"[bold]{title}[/bold]"), BarColumn(), MofNCompleteColumn()]
    columns += [TextColumn(f) for f in fields]
    if rate_unit:
        columns += [Rate(), TimeElapsedColumn()]
    columns.append(TimeRemainingColumn())
    return Progress(*columns, console=console)
