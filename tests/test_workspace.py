"""Workspace rules: package layout, versions, and cshlora's independence from the other packages."""

import ast
import re
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"cshlora": "cshlora", "sseu": "sseu", "geoscale_vqa": "geoscale_vqa", "scaleearth_cli": "scaleearth_cli"}


@pytest.mark.parametrize("folder, module", PACKAGES.items())
def test_each_member_has_pyproject_version_src_and_tests(folder, module):
    pkg = ROOT / "packages" / folder
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())["project"]
    assert meta["version"]
    version = pkg / "src" / module / "_version.py"  # imports nothing, so any submodule may read it
    assert f'__version__ = "{meta["version"]}"' in version.read_text()
    assert not [n for n in ast.walk(ast.parse(version.read_text())) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert "from ._version import __version__" in (pkg / "src" / module / "__init__.py").read_text()
    assert any((pkg / "tests").glob("test_*.py")), f"{folder} has no tests"


def _imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_cshlora_imports_nothing_from_the_other_packages():
    allowed = {"torch", "safetensors", "peft", "bitsandbytes", "triton", "cshlora", "__future__"}
    import sys

    stdlib = set(sys.stdlib_module_names)
    for path in (ROOT / "packages/cshlora/src/cshlora").rglob("*.py"):
        foreign = _imported_top_levels(path) - allowed - stdlib
        assert not foreign, f"{path.relative_to(ROOT)} imports {sorted(foreign)}"


def test_cshlora_declares_only_torch_safetensors_and_triton():
    meta = tomllib.loads((ROOT / "packages/cshlora/pyproject.toml").read_text())["project"]
    names = {d.split(";")[0].split(">")[0].split("=")[0].strip() for d in meta["dependencies"]}
    assert names == {"torch", "safetensors", "triton"}
    assert any("sys_platform == 'linux'" in d for d in meta["dependencies"] if d.startswith("triton"))
    assert set(meta["optional-dependencies"]) == {"peft", "qlora"}


def test_design_notes_cited_by_the_code_are_in_the_repository():
    """Code and READMEs cite "docs/design.md section N": the file and each cited section must exist."""
    design = (ROOT / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\.", design, flags=re.M))
    cited = {}
    for path in [*ROOT.glob("packages/*/src/**/*.py"), *ROOT.glob("tools/*.py"), *ROOT.glob("**/README.md")]:
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        assert "DESIGN.md" not in text, f"{path} cites a DESIGN.md outside the repository"
        for n in re.findall(r"docs/design\.md section (\d+)", text):
            cited.setdefault(n, []).append(path.name)
    assert cited, "nothing cites docs/design.md (update this test if that is intended)"
    assert set(cited) <= sections, {n: cited[n] for n in set(cited) - sections}


def test_the_three_gsd_range_warnings_say_the_same():
    """cshlora, sseu and geoscale_vqa each check GSDs at their own boundary (each installs alone): the range,
    the warning's class name and its wording must be the same in all three."""
    import warnings

    import torch

    import cshlora
    import geoscale_vqa.gsd
    import sseu.gsd

    caught = {}
    for name, call in {
        "cshlora": lambda: cshlora.log10_gsd(torch.tensor([50_000.0])),
        "sseu": lambda: sseu.gsd.warn_if_implausible(torch.tensor([4.69897]), "x"),
        "geoscale_vqa": lambda: geoscale_vqa.gsd.validate_gsd(50_000.0, what="x"),
    }.items():
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            call()
        (warning,) = w
        caught[name] = (type(warning.message).__name__, str(warning.message).split(": ", 1)[1])
    assert len(set(caught.values())) == 1, caught
    assert caught["sseu"] == ("ImplausibleGSDWarning", "1 GSD value(s) outside the plausible range 0.01 m - 10 km "
                                                      "(e.g. 5e+04 m); used as given, check the units")  # fmt: skip
