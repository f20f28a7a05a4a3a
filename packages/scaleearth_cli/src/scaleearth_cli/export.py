"""``scaleearth export``: a Stage-2 run as standard LoRA adapters (and merged models) at a grid of GSDs.

Layout of ``OUT``::

    lora/cshlora_export.json        the grid and the log10 range each adapter serves (cshlora.export)
    lora/gsd_<G>m/                   one PEFT LoRA adapter per grid GSD (adapter_config.json + safetensors)
    sseu_head.safetensors            the run's SSE-U head, when it has one (to pick an adapter without metadata)
    merged/gsd_<G>m/                 with ``merged=True``: the base with that adapter folded in (save_pretrained)
    export.json                      what was exported from what (model, adapter run, grid)

Everything is written under temporary names and renamed, so an interrupted export leaves no half folder
that looks complete; a rerun writes it again.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cshlora

from .adapters import ADAPTER_KINDS

EXPORT_SUMMARY = "export.json"


def parse_gsd_grid(text: str) -> list[float]:
    """``"0.1,0.3,1"`` -> ``[0.1, 0.3, 1.0]`` (metres, each finite and > 0, no repeats)."""
    try:
        grid = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--gsd-grid must be comma-separated metres, e.g. 0.1,0.3,1,3,10, got {text!r}") from None
    if not grid or any(not (math.isfinite(g) and g > 0) for g in grid):
        raise ValueError(f"--gsd-grid needs finite GSDs > 0 metres, got {text!r}")
    if len(set(grid)) != len(grid):
        raise ValueError(f"--gsd-grid lists a GSD twice: {text!r}")
    return sorted(grid)


@dataclass
class ExportResult:
    index: Path
    adapters: list[Path]
    merged: list[Path]


def export_run(
    model: str, adapter, gsds_m: Sequence[float], out, *, merged: bool = False, trust_remote_code: bool = False
) -> ExportResult:
    """Export the run's adapter at each GSD of ``gsds_m`` (metres) into ``out`` (layout in the module docstring)."""
    from .inference import AdapterRun
    from .modeling import load_vlm
    from .train import SSEU_HEAD_NAME

    run = AdapterRun.find(adapter)
    if ADAPTER_KINDS[run.kind].gsd_in_prompt:
        raise ValueError(
            "a gsd-token adapter reads the GSD from the prompt, not from a gate: serve it as one LoRA "
            "(its adapter folder) and write the GSD sentence into the prompt"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vlm, processor = load_vlm(model, trust_remote_code=trust_remote_code, device="cpu")
    cshlora.load_adapter(vlm, run.adapter_dir)
    lora_dir = out / "lora"
    index = cshlora.export_lora_grid(vlm, gsds_m, lora_dir, base_model_name_or_path=model)
    names = [e["name"] for e in cshlora.read_export_index(index)["adapters"]]
    if run.head_path is not None and run.head_path.is_file():
        shutil.copyfile(run.head_path, out / SSEU_HEAD_NAME)
    merged_dirs = []
    if merged:
        for name, gsd in zip(names, sorted(gsds_m)):
            target = out / "merged" / name
            tmp = target.with_name(target.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            fresh, _ = load_vlm(model, trust_remote_code=trust_remote_code, device="cpu")
            cshlora.load_adapter(fresh, run.adapter_dir)
            cshlora.merge(fresh, math.log10(gsd)).save_pretrained(tmp, safe_serialization=True)
            processor.save_pretrained(tmp)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
            merged_dirs.append(target)
    summary = {"model": model, "adapter": str(run.path), "kind": run.kind, "gsd_grid_m": sorted(gsds_m),
               "lora": [str(lora_dir / n) for n in names], "merged": [str(p) for p in merged_dirs]}  # fmt: skip
    (out / EXPORT_SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    return ExportResult(index, [lora_dir / n for n in names], merged_dirs)
