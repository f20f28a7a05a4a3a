"""The package README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_a_python_example():
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = BLOCKS[index].replace("/tmp/", f"{tmp_path}/")
    exec(compile(code, f"geoscale_vqa README[python block {index}]", "exec"), {"__name__": "readme_example"})


def test_readme_lists_every_source_kind():
    from geoscale_vqa.sources import REGISTRY

    text = README.read_text()
    assert all(f"| `{kind}` |" in text for kind in REGISTRY)
