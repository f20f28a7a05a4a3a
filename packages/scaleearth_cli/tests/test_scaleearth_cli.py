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


# -- issue 13: expected user errors are one line and a non-zero exit; --debug shows the traceback ------
def _one_error_line(result) -> str:
    """The command's one `error:` line (progress printed before it is fine; a traceback is not)."""
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert result.exit_code != 0 and len(errors) == 1 and "Traceback" not in result.output, result.output
    assert result.output.rstrip().endswith(errors[0]), result.output
    return errors[0]


@pytest.fixture(scope="module")
def synthetic_corpus(tmp_path_factory):
    from geoscale_vqa import build

    out = tmp_path_factory.mktemp("cli-corpus") / "corpus"
    build(["synthetic=12"], out, shard_size=4)
    return out


def test_debug_flag_and_environment_show_the_traceback(tmp_path, monkeypatch):
    args = ["build-data", "--merge-parts", str(tmp_path)]
    line = _one_error_line(runner.invoke(app, args))
    assert "no completed parts" in line and "--debug" in line
    from geoscale_vqa import BuildError

    assert isinstance(runner.invoke(app, ["--debug", *args]).exception, BuildError)
    monkeypatch.setenv("SCALEEARTH_DEBUG", "1")
    assert isinstance(runner.invoke(app, args).exception, BuildError)


def test_a_broken_index_file_stops_build_data_in_one_line(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "LR_split_test_questions.json").write_text('{"questions": [')
    for part in ("answers", "images"):
        (tmp_path / "src" / f"LR_split_test_{part}.json").write_text(f'{{"{part}": []}}')
    result = runner.invoke(
        app, ["build-data", "--source", f"rsvqa-lr={tmp_path / 'src'}", "--out", str(tmp_path / "o")]
    )
    assert "LR_split_test_questions.json is not valid JSON" in _one_error_line(result)


def test_damaged_build_state_files_are_rebuilt_or_one_line(tmp_path, synthetic_corpus):
    import shutil

    out = tmp_path / "corpus"
    shutil.copytree(synthetic_corpus, out)
    state = out / ".geoscale"
    (state / "part-0000-of-0001.plan.json").write_bytes(b"\x00garbage")
    (state / "part-0000-of-0001.done.jsonl").write_text("[1, 2]\nnull\n")
    args = ["build-data", "--source", "synthetic=12", "--out", str(out), "--shard-size", "4", "--resume"]
    resumed = runner.invoke(app, args)
    assert resumed.exit_code == 0 and "damaged plan file" in resumed.output, resumed.output
    (state / "part-0000-of-0001.json").write_text("{}")
    assert "part-0000-of-0001.json is damaged" in _one_error_line(
        runner.invoke(app, ["build-data", "--merge-parts", str(out)])
    )


def test_train_names_a_missing_source_or_an_empty_corpus_in_one_line(tmp_path, synthetic_corpus):
    from geoscale_vqa import build

    train = ["train", "--out", str(tmp_path / "run"), "--model", str(tmp_path / "no-model")]
    line = _one_error_line(runner.invoke(app, [*train, "--stage", "1", "--data", str(synthetic_corpus)]))
    assert "no samples from source(s) llava" in line and "synthetic (12)" in line and "--sources" in line
    line = _one_error_line(runner.invoke(app, [*train, "--data", str(synthetic_corpus), "--sources", "dota"]))
    assert "source(s) dota" in line
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "manifest.jsonl").write_text('{"image": "missing.png", "gsd_m": 1}\n')
    build([f"folder={tmp_path / 'src'}"], tmp_path / "empty")
    line = _one_error_line(runner.invoke(app, [*train, "--data", str(tmp_path / "empty")]))
    assert "holds no samples" in line and "rejects.jsonl" in line
    assert not (tmp_path / "run").exists()
