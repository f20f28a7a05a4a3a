"""`uv build --package cshlora` makes a wheel that installs into a fresh venv next to torch alone."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

SMOKE = """
import sys, torch, cshlora
assert not any(m.split('.')[0] in ('peft', 'bitsandbytes', 'transformers', 'sseu', 'geoscale_vqa') for m in sys.modules)
model = cshlora.inject(torch.nn.Sequential(torch.nn.Linear(4, 4)), cshlora.CSHLoRAConfig(r=4, target_modules=['0']))
cshlora.set_scale(model, 1.0)
print('ok', cshlora.__version__, tuple(model(torch.randn(2, 4)).shape))
"""


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed for this test (run the suite with `uv run pytest`)"
    return uv


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
def test_wheel_installs_and_imports_with_only_torch(tmp_path):
    uv = _uv()
    _run([uv, "build", "--package", "cshlora", "--wheel", "--out-dir", str(tmp_path / "dist")], cwd=ROOT)
    wheels = list((tmp_path / "dist").glob("cshlora-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    python = venv / "bin" / "python"
    torch_pin = f"torch=={torch.__version__.split('+')[0]}"
    install = [uv, "pip", "install", "--quiet", "--python", str(python), str(wheels[0]), torch_pin]
    # Prefer the local cache (the suite's own environment put torch there); fall back to the index.
    if subprocess.run(install + ["--offline"], capture_output=True).returncode != 0:
        _run(install)
    assert "ok 0.1.0 (2, 4)" in _run([str(python), "-c", SMOKE])
    installed = _run([uv, "pip", "list", "--python", str(python)])
    assert "peft" not in installed and "bitsandbytes" not in installed
