"""Typer application: each command parses and validates its flags, then calls library code."""

from __future__ import annotations

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


if __name__ == "__main__":
    app()
