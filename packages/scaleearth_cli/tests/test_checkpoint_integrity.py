"""Checkpoints record the sha256 of their files; `--resume auto` skips a damaged one and says so."""

import json

import pytest
import torch

from scaleearth_cli import checkpoint as ckpt
from scaleearth_cli.data import DataPosition


def _save(run, step, module, optimizer, scheduler):
    tmp = ckpt.checkpoint_path(run, step).with_name(f"step-{step:06d}.tmp")
    ckpt.save_rank_state(tmp, 0, DataPosition(0, step))
    return ckpt.save_checkpoint(run, step, module, optimizer, scheduler, {"skipped": 0}, lambda folder: None)


@pytest.fixture
def run(tmp_path):
    torch.manual_seed(0)
    module = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(module.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    for step in (10, 20):
        module(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        _save(tmp_path, step, module, optimizer, scheduler)
    return tmp_path, module, optimizer, scheduler


def test_resume_auto_falls_back_to_the_newest_intact_checkpoint_and_says_so(run):
    run_dir, module, optimizer, scheduler = run
    newest = ckpt.checkpoint_path(run_dir, 20)
    assert ckpt.latest_checkpoint(run_dir) == newest
    weights = newest / "trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:-16])  # truncated, as by a full disk
    said = []
    assert ckpt.latest_checkpoint(run_dir, say=said.append) == ckpt.checkpoint_path(run_dir, 10)
    assert len(said) == 1 and "step-000020" in said[0] and "trainable.safetensors" in said[0]
    with pytest.raises(ValueError, match="step-000020 is damaged: trainable.safetensors does not match"):
        ckpt.load_checkpoint(newest, module, optimizer, scheduler, rank=0)
    state, position = ckpt.load_checkpoint(ckpt.checkpoint_path(run_dir, 10), module, optimizer, scheduler, rank=0)
    assert state["step"] == 10 and position.batches == 10


def test_a_same_size_change_or_a_garbled_state_file_is_damage(run):
    run_dir = run[0]
    older, newest = ckpt.checkpoint_path(run_dir, 10), ckpt.checkpoint_path(run_dir, 20)
    rng = newest / "rng_rank0.safetensors"
    data = bytearray(rng.read_bytes())
    data[-1] ^= 0xFF
    rng.write_bytes(bytes(data))
    assert "rng_rank0.safetensors does not match" in ckpt.checkpoint_problem(newest)
    (older / "trainer_state.json").write_text("{")
    assert "unreadable" in ckpt.checkpoint_problem(older)
    assert ckpt.latest_checkpoint(run_dir, say=lambda _: None) is None
    state = json.loads((ckpt.checkpoint_path(run_dir, 20) / "trainer_state.json").read_text())
    assert set(state["files"]) >= {"trainable.safetensors", "optimizer.safetensors", "rank0.json"}
