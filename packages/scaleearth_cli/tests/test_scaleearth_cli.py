from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from scaleearth_cli.cli import app

runner = CliRunner()


def test_info_lists_packages_and_backends():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    for dist in ("cshlora", "sseu", "geoscale-vqa", "scaleearth-cli"):
        assert dist in result.output
    assert version("cshlora") in result.output
    assert "cshlora backends: torch" in result.output


@pytest.mark.parametrize("args", [["--help"], ["info", "--help"]])
def test_every_help_has_an_example(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "Example" in result.output and "uv run scaleearth" in result.output


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "scaleearth"]
    assert ep.value == "scaleearth_cli.cli:app"
