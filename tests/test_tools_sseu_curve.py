"""tools/sseu_spectrum_curve.py runs end to end on a small world and writes what it prints."""

import importlib.util
import json
from pathlib import Path

TOOL = Path(__file__).resolve().parents[1] / "tools" / "sseu_spectrum_curve.py"


def test_the_spectrum_curve_tool_fits_and_reports(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("sseu_spectrum_curve", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "curve.json"
    assert tool.main(["--sizes", "24,48", "--val", "16", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [row["train_scenes"] for row in record["fit"]] == [24, 48] and record["val_scenes"] == 16
    assert all(0 < row["val_mae_log10"] < 3 for row in record["fit"])  # decades over a 3-decade range
    assert "val MAE" in capsys.readouterr().out
