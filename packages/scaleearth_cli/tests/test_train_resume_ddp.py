"""Checkpoints, kill -9 + --resume auto, and 2-process DDP on CPU, all through the real command."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

pytest.importorskip("transformers")

STEPS = 24


def _command(corpus, model, out, *extra):
    return [
        sys.executable, "-m", "scaleearth_cli.cli", "train", "--stage", "2", "--data", str(corpus),
        "--model", str(model), "--out", str(out), "--adapter", "cshlora", "--quantize", "nf4", "--r", "8",
        "--alpha", "16", "--batch-size", "2", "--max-steps", str(STEPS), "--lr", "3e-3", "--save-every", "4",
        "--log-every", "1", "--gate-gsd", "mixed:0.5", "--no-progress", *extra,
    ]  # fmt: skip


def _env():
    # Same thread count in every process: CPU float sums are then reproducible bit for bit.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_killed_then_resumed_run_ends_like_an_uninterrupted_one(tmp_path, tiny_model_dir, train_corpus):
    whole = tmp_path / "whole"
    done = subprocess.run(_command(train_corpus, tiny_model_dir, whole), env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + done.stdout

    cut = tmp_path / "cut"
    proc = subprocess.Popen(_command(train_corpus, tiny_model_dir, cut), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while not (cut / "checkpoints" / "step-000004").is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (cut / "final").exists(), "the run finished before it could be killed"
    killed_at = max(int(p.name.split("-")[1]) for p in (cut / "checkpoints").glob("step-??????"))
    assert 4 <= killed_at < STEPS

    # without --resume the run refuses to overwrite; with it, it picks up the latest checkpoint
    refused = subprocess.run(_command(train_corpus, tiny_model_dir, cut), env=_env(), capture_output=True, text=True)
    assert refused.returncode == 1 and "--resume auto" in refused.stderr  # one `error:` line, on stderr
    resumed = subprocess.run(_command(train_corpus, tiny_model_dir, cut, "--resume", "auto"), env=_env(),
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout

    a = load_file(whole / "final" / "adapter" / "cshlora_adapter.safetensors")
    b = load_file(cut / "final" / "adapter" / "cshlora_adapter.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    ha = load_file(whole / "final" / "sseu_head.safetensors")
    hb = load_file(cut / "final" / "sseu_head.safetensors")
    assert all((ha[k] == hb[k]).all() for k in ha)
    # the same loss curve, step for step, with no duplicate rows from the killed attempt
    whole_rows, cut_rows = _metrics(whole), _metrics(cut)
    assert [r["step"] for r in cut_rows] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in cut_rows] == [r["loss"] for r in whole_rows]


@pytest.mark.slow
def test_two_cpu_processes_train_and_agree(tmp_path, tiny_model_dir, train_corpus):
    out = tmp_path / "ddp"
    cmd = _command(train_corpus, tiny_model_dir, out, "--nproc", "2")
    cmd[cmd.index("--max-steps") + 1] = "3"
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
    digests = json.loads((out / "ddp_check.json").read_text())["digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    rows = _metrics(out)
    assert [r["step"] for r in rows] == [1, 2, 3]
    adapter = load_file(out / "final" / "adapter" / "cshlora_adapter.safetensors")
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if k.endswith("lora_B"))
