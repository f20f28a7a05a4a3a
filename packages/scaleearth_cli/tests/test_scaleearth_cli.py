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


COMMANDS = [c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands]


@pytest.mark.parametrize("args", [["--help"]] + [[name, "--help"] for name in COMMANDS])
def test_every_help_has_an_example(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 0
    assert "Example" in result.output and "uv run scaleearth" in result.output


def test_the_documented_commands_exist():
    assert {"info", "build-data", "make-tiny-model", "train", "eval", "score", "spoof", "predict"} <= set(COMMANDS)


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="console_scripts") if e.name == "scaleearth"]
    assert ep.value == "scaleearth_cli.cli:app"
